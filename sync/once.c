/* sync/once.c: gort_once (Go's sync.Once).
 *
 * done: 0 until fn has returned (or panicked, or ended its goroutine), then
 * 1 forever. m serialises the first callers: the one that wins the mutex
 * runs fn with the mutex held, the others sleep on it and find done == 1
 * when they get it.
 *
 * Fast path: one acquire load of done. Acquire pairs with the release store
 * of done in once_finish, so a caller that sees 1 also sees everything fn
 * wrote. (A CAS 0 -> 1 before calling fn would be wrong, as Go's once.go
 * explains: a second caller would return before fn has finished.)
 *
 * Slow path: under m, re-check done (relaxed: m orders it), then run fn
 * inside gort_try, with a deferred call (gort_defer, registered inside the
 * try body) that stores done = 1 and unlocks m. The deferred call runs in
 * every way fn can end: a return, a panic (before gort_try recovers it; we
 * then panic again with the same message, so the panic reaches our caller
 * as in Go, and the once counts as done), and gort_exit inside fn (which
 * runs every deferred call of the goroutine). Without it, a gort_exit in fn
 * would leave m locked and every later caller asleep forever.
 *
 * Callers: goroutines. A thread gort did not create may call it too (fn
 * then runs without panic recovery, which needs a goroutine; a panic there
 * is fatal anyway), but blocks its thread if it has to wait.
 */
#include "gort.h"
#include "sync/sync.h"

struct once_call {
    gort_once *o;
    void (*fn)(void *);
    void *arg;
};

static GORT_NOINLINE void once_do_slow(gort_once *o, void (*fn)(void *), void *arg);

void gort_once_do(gort_once *o, void (*fn)(void *), void *arg)
{
    /* Acquire: pairs with the release store in once_finish. */
    if (GORT_LIKELY(__atomic_load_n(&o->done, __ATOMIC_ACQUIRE) != 0)) return;
    once_do_slow(o, fn, arg);
}

/* o->m held: mark done, then let the waiters in (they re-check done). */
static void once_finish(void *arg)
{
    gort_once *o = arg;
    /* Release: publishes fn's effects to the fast path's acquire load. */
    __atomic_store_n(&o->done, 1, __ATOMIC_RELEASE);
    gort_mutex_unlock(&o->m);
}

static void once_body(void *arg)
{
    struct once_call *c = arg;
    gort_defer(once_finish, c->o);
    c->fn(c->arg);
}

static GORT_NOINLINE void once_do_slow(gort_once *o, void (*fn)(void *), void *arg)
{
    gort_mutex_lock(&o->m);
    if (__atomic_load_n(&o->done, __ATOMIC_RELAXED) != 0) { /* m orders this load */
        gort_mutex_unlock(&o->m);
        return;
    }
    if (!gort_g()) { /* no goroutine: nothing to recover with */
        fn(arg);
        once_finish(o);
        return;
    }
    struct once_call c = {o, fn, arg};
    const char *msg = NULL;
    if (!gort_try(once_body, &c, &msg)) {
        /* once_finish has run (done = 1, m unlocked): pass the panic on.
         * gort_panic copies the text before it could be overwritten. */
        gort_panic("%s", msg ? msg : "");
    }
}

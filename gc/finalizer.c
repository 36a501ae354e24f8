/* gc/finalizer.c: gort_set_finalizer (Go's runtime.SetFinalizer) and the
 * finalizer goroutine (Go's mfinal.go).
 *
 * A record per finalizable object, in gort_malloc memory, hashed by the
 * object's address. The record holds the object's address inverted
 * (~obj: a word with the top bits set, which no scan takes for a pointer),
 * so the table does not keep the object alive, and fn's argument plainly,
 * so the manual-heap scan keeps the argument alive.
 *
 * Each cycle, during mark, every finalizable object's contents are scanned
 * (not the object itself): what it points to stays alive, so an object
 * reachable only from a finalizable one survives until that finalizer has
 * run (Go's rule; of two finalizable objects, the one pointed to is
 * finalized a cycle later). At mark termination an object still unmarked
 * is unreachable: its record leaves the table for the ready queue, now
 * holding the plain address (so the object survives until the finalizer has
 * run), and the object is marked for this cycle. The finalizer goroutine
 * (a runtime goroutine, started with the first queued finalizer) runs each
 * fn(obj, arg) once; the object is collected at a later cycle unless fn
 * made it reachable again.
 *
 * Lock: fin.lock, a leaf (taken with the world stopped by the collector,
 * which holds no other lock then).
 */
#include "gc/gc.h"

struct finrec {
    uintptr_t key; /* ~obj while in the table; obj on the ready queue */
    void (*fn)(void *obj, void *arg);
    void *arg;
    struct finrec *next;
};

static struct {
    struct rlock lock;
    struct finrec **buckets; /* gort_calloc'd; nbuckets a power of two */
    uint32_t nbuckets, n;
    struct finrec *ready, *ready_tail;
    struct g *g; /* the finalizer goroutine */
    bool parked;
    bool started;
} fin;

static inline uint32_t hash(uintptr_t obj, uint32_t nb)
{
    return (uint32_t)((obj >> 4) * 0x9E3779B97F4A7C15ULL >> 32) & (nb - 1);
}

/* fin.lock held. */
static void grow(void)
{
    uint32_t nb = fin.nbuckets ? fin.nbuckets * 2 : 256;
    struct finrec **b = gort_calloc(nb, sizeof *b);
    for (uint32_t i = 0; i < fin.nbuckets; i++) {
        struct finrec *r = fin.buckets[i], *next;
        for (; r; r = next) {
            next = r->next;
            uint32_t h = hash(~r->key, nb);
            r->next = b[h];
            b[h] = r;
        }
    }
    gort_free(fin.buckets);
    fin.buckets = b;
    fin.nbuckets = nb;
}

void gort_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg)
{
    uintptr_t start;
    uint32_t idx;
    if (!obj) gort_panic("gort_set_finalizer: nil object");
    if (!gc_object_of((uintptr_t)obj, &start, &idx))
        gort_panic("gort_set_finalizer: pointer not allocated by gort_new");
    if (start != (uintptr_t)obj)
        gort_panic("gort_set_finalizer: pointer not at beginning of allocated block");
    struct finrec *nr = fn ? gort_malloc(sizeof *nr) : NULL; /* not under the lock */
    rlock_acquire(&fin.lock);
    struct finrec **pp = NULL;
    if (fin.nbuckets)
        for (pp = &fin.buckets[hash(start, fin.nbuckets)]; *pp; pp = &(*pp)->next)
            if ((*pp)->key == ~start) break;
    if (!fn) {
        struct finrec *old = pp && *pp ? *pp : NULL;
        if (old) {
            *pp = old->next;
            fin.n--;
        }
        rlock_release(&fin.lock);
        gort_free(old);
        return;
    }
    if (pp && *pp) {
        rlock_release(&fin.lock);
        gort_free(nr);
        gort_panic("gort_set_finalizer: finalizer already set");
    }
    if (fin.n >= 2 * fin.nbuckets) grow();
    nr->key = ~start;
    GORT_STORE(nr->arg, arg); /* manual memory the collector may have scanned already */
    nr->fn = fn;
    uint32_t h = hash(start, fin.nbuckets);
    nr->next = fin.buckets[h];
    fin.buckets[h] = nr;
    fin.n++;
    rlock_release(&fin.lock);
}

void gc_mark_finalizer_roots(struct gcwork *w)
{
    rlock_acquire(&fin.lock);
    for (uint32_t i = 0; i < fin.nbuckets; i++)
        for (struct finrec *r = fin.buckets[i]; r; r = r->next) {
            uintptr_t start;
            uint32_t idx;
            struct span *s = gc_object_of(~r->key, &start, &idx);
            if (s && s->spanclass / NUM_SIZE_CLASSES == KIND_SCAN)
                gc_scan_range(w, start, start + span_objsize(s));
        }
    rlock_release(&fin.lock);
}

uint32_t gc_queue_finalizers(struct gcwork *w)
{
    (void)w;
    uint32_t queued = 0;
    rlock_acquire(&fin.lock);
    for (uint32_t i = 0; i < fin.nbuckets; i++)
        for (struct finrec **pp = &fin.buckets[i]; *pp;) {
            struct finrec *r = *pp;
            uintptr_t start;
            uint32_t idx;
            struct span *s = gc_object_of(~r->key, &start, &idx);
            if (!s || span_marked(s, idx)) {
                pp = &r->next;
                continue;
            }
            span_mark(s, idx); /* resurrected for this cycle; its contents were marked */
            *pp = r->next;
            fin.n--;
            r->key = start;
            r->next = NULL;
            if (fin.ready_tail)
                fin.ready_tail->next = r;
            else
                fin.ready = r;
            fin.ready_tail = r;
            queued++;
        }
    rlock_release(&fin.lock);
    return queued;
}

static bool unlock_fin(struct g *gp, void *arg)
{
    (void)gp;
    rlock_release(arg);
    return true;
}

/* In its own frame, so that once it returns no live frame of the
 * finalizer goroutine holds the object (it parks with only the loop's
 * frame above it, and the scan starts at its stack pointer). */
static GORT_NOINLINE void run_one(struct finrec *r)
{
    void *obj = (void *)r->key;
    void (*fn)(void *, void *) = r->fn;
    void *arg = r->arg;
    gort_free(r);
    fn(obj, arg);
}

static void finalizer_loop(void *unused)
{
    (void)unused;
    for (;;) {
        rlock_acquire(&fin.lock);
        struct finrec *r = fin.ready;
        if (!r) {
            fin.g = gort_g();
            fin.parked = true;
            gopark(unlock_fin, &fin.lock, WAIT_FINALIZER);
            continue;
        }
        fin.ready = r->next;
        if (!fin.ready) fin.ready_tail = NULL;
        rlock_release(&fin.lock);
        run_one(r);
    }
}

void gc_wake_finalizers(void)
{
    rlock_acquire(&fin.lock);
    bool start = fin.ready && !fin.started;
    if (start) fin.started = true;
    struct g *wake = NULL;
    if (fin.ready && fin.parked) {
        fin.parked = false;
        wake = fin.g;
    }
    rlock_release(&fin.lock);
    if (start) {
        sched_go_system(finalizer_loop, NULL);
        /* fin.g is only needed for wake-ups: the goroutine parks with
         * fin.parked set under the lock, so record it from there. */
    }
    if (wake) goready(wake, false);
}

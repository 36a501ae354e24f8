/* sync/pool.c: gort_pool (Go's sync.Pool): a cache of reusable objects,
 * per processor first.
 *
 * Layout. p->local points to a struct pool_array of p->localn per-P entries
 * (struct pool_local, one cache line each), indexed by P id:
 *   private  one object; read and written only by the goroutine running on
 *            that P while pinned (sched_proc_pin), so it needs no lock.
 *   shared   a stack of fixed-size chunks under the entry's lock (an rlock:
 *            the owner pushes and pops, other Ps steal when theirs is
 *            empty). nshared mirrors its size for lock-free "empty?" hints.
 * p->victim / p->victimn: the previous generation's array (see cleanup).
 *
 * Get: own private, own shared, other Ps' shared (steal), then the victim
 * cache (own private, every shared), then new() (after unpinning: new may
 * block). Put: own private if empty, else own shared. Both pin the goroutine
 * to its P for the duration, so the P id stays ours and no stop-the-world
 * (hence no cleanup) can happen meanwhile.
 *
 * Sizing. The array is allocated on first use, sized to gomaxprocs. A P id
 * beyond localn (gomaxprocs grew, or a cleanup emptied local) takes the slow
 * path: under pools_lock, allocate a bigger array and publish it (local with
 * release, then localn with release; readers load localn then local with
 * acquire, so a reader that sees a size sees an array at least that big,
 * fully initialised). Sizes only grow while an array is current (a pinned
 * reader's P id is below gomaxprocs, and growth picks max(gomaxprocs, id+1)).
 * The replaced array may still be in use by pinned goroutines on other Ps,
 * so it is not freed: it is chained to the new one (retired) and freed at the
 * next cleanup, when nobody is pinned. Objects left in it are dropped, as Go
 * drops them.
 *
 * Cleanup (Go's poolCleanup; sync_pool_cleanup, world stopped): for every
 * registered pool, free the victim array, then victim = local, local = NULL.
 * Invariant: a pool is on the all_pools list (linked through p->next) iff
 * local != NULL or victim != NULL; pools_lock protects the list and every
 * change of local/victim. So a pool that goes unused for two collections
 * holds no memory and is off the list.
 *
 * Threads gort did not create, and goroutines inside a blocking region
 * (sched_proc_pin() == -1: no P), cannot pin; they do all their pool work
 * under pools_lock (which excludes cleanup and array replacement), put into
 * entry 0's shared stack and take from any shared stack, never touching
 * private slots.
 *
 * Lock order: pools_lock > pool_local.lock (leaf). Both are rlocks: no
 * parking while held; nothing calls new() or user code while holding them.
 *
 * Memory: arrays and chunks are manual heap (gort_malloc), which the
 * collector scans, so pooled objects live until a cleanup drops them (the
 * collector calls sync_pool_cleanup at the start of each cycle: an object
 * survives one cycle in the victim generation and is dropped at the next).
 * Rejected: Go's lock-free poolDequeue chain. Its growth drops drained
 * dequeues that concurrent thieves may still read, which Go leaves to its
 * collector; in C it needs hazard pointers or epochs. The per-entry lock is
 * uncontended except while stealing, and the private slot keeps the common
 * Put/Get pair lock-free.
 *
 * Callers: goroutines or any thread; sync_pool_cleanup only from the
 * collector with the world stopped (or a test that guarantees no other pool
 * use). Lifetime: a gort_pool stays on the global list until two cleanups
 * after its last use, so it must not be freed or zeroed before then (Go's
 * collector has no such rule to state; a C user must be told).
 */
#include <stdlib.h>
#include <string.h>

#include "gort.h"
#include "sync/pool.h"
#include "sync/sync.h"

#define POOL_CHUNK 30 /* slots per chunk: 256-byte chunks */

struct pool_chunk {
    struct pool_chunk *next; /* older (fuller) chunk below this one */
    uint32_t n;              /* used slots [0, n) */
    void *slot[POOL_CHUNK];
};

struct pool_local {
    void *private;             /* the owning P's goroutine only, pinned */
    struct rlock lock;         /* protects shared and spare */
    _Atomic uint32_t nshared;  /* objects in shared; written under lock */
    struct pool_chunk *shared; /* top chunk (the one being filled) first */
    struct pool_chunk *spare;  /* an empty chunk kept against malloc churn */
} __attribute__((aligned(CACHE_LINE)));
_Static_assert(sizeof(struct pool_local) == CACHE_LINE, "one cache line per P");

struct pool_array {
    struct pool_array *retired; /* arrays this one replaced; freed at cleanup */
    size_t n;
    struct pool_local l[]; /* n entries, indexed by P id */
};

static struct rlock pools_lock; /* all_pools, local/victim replacement */
static void *all_pools;         /* gort_pools holding caches, via p->next */

/* ---- memory ------------------------------------------------------------- */

static void *pool_alloc(size_t n)
{
    size_t sz = (n + CACHE_LINE - 1) & ~(size_t)(CACHE_LINE - 1);
    void *v = gort_aligned_alloc(CACHE_LINE, sz);
    if (!v) gort__fatal("out of memory (sync pool, %zu bytes)", n);
    memset(v, 0, sz);
    return v;
}

static void chunks_free(struct pool_chunk *c)
{
    while (c) {
        struct pool_chunk *next = c->next;
        gort_free(c);
        c = next;
    }
}

/* Nobody may be using a (or the arrays it retired). Drops their objects. */
static void array_free(struct pool_array *a)
{
    while (a) {
        struct pool_array *older = a->retired;
        for (size_t i = 0; i < a->n; i++) {
            chunks_free(a->l[i].shared);
            chunks_free(a->l[i].spare);
        }
        gort_free(a);
        a = older;
    }
}

/* ---- shared stacks -------------------------------------------------------- */

static void shared_push(struct pool_local *l, void *x)
{
    rlock_acquire(&l->lock);
    struct pool_chunk *c = l->shared;
    if (!c || c->n == POOL_CHUNK) {
        struct pool_chunk *fresh = l->spare;
        if (fresh)
            l->spare = NULL;
        else
            fresh = pool_alloc(sizeof *fresh); /* malloc does not park: fine under an rlock */
        fresh->n = 0;
        fresh->next = c;
        l->shared = c = fresh;
    }
    c->slot[c->n++] = x;
    atomic_store_explicit(&l->nshared, atomic_load_explicit(&l->nshared, memory_order_relaxed) + 1,
                          memory_order_relaxed);
    rlock_release(&l->lock);
}

static void *shared_pop(struct pool_local *l)
{
    /* Relaxed hint: a stale zero only makes this Get miss, which a cache
     * may do. */
    if (atomic_load_explicit(&l->nshared, memory_order_relaxed) == 0) return NULL;
    void *x = NULL;
    rlock_acquire(&l->lock);
    struct pool_chunk *c = l->shared;
    if (c && c->n == 0 && c->next) { /* drained top chunk: keep one spare */
        l->shared = c->next;
        if (l->spare) {
            gort_free(c);
        } else {
            c->next = NULL; /* array_free walks spare as a list */
            l->spare = c;
        }
        c = l->shared;
    }
    if (c && c->n > 0) {
        x = c->slot[--c->n];
        atomic_store_explicit(&l->nshared,
                              atomic_load_explicit(&l->nshared, memory_order_relaxed) - 1,
                              memory_order_relaxed);
    }
    rlock_release(&l->lock);
    return x;
}

/* ---- the per-P array ------------------------------------------------------ */

static inline struct pool_array *array_load(void **slot)
{
    /* Acquire: the array's initialised contents; pairs with the release
     * stores in array_grow_locked. */
    return (struct pool_array *)__atomic_load_n(slot, __ATOMIC_ACQUIRE);
}

/* pools_lock held. Make p->local cover at least want entries. */
static struct pool_array *array_grow_locked(gort_pool *p, size_t want)
{
    struct pool_array *old = array_load(&p->local);
    if (old && old->n >= want) return old;
    struct pool_array *a = pool_alloc(sizeof *a + want * sizeof(struct pool_local));
    a->n = want;
    a->retired = old;
    if (!old && !p->victim) { /* not on the list yet: register */
        p->next = all_pools;
        all_pools = p;
    }
    /* Release, twice: readers load localn, then local (both acquire), so
     * one that sees the new size sees the new array and its zeroed
     * entries. */
    __atomic_store_n(&p->local, (void *)a, __ATOMIC_RELEASE);
    __atomic_store_n(&p->localn, want, __ATOMIC_RELEASE);
    return a;
}

static GORT_NOINLINE struct pool_local *pool_pin_slow(gort_pool *p, int pid)
{
    size_t want = (size_t)atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    if (want < (size_t)pid + 1) want = (size_t)pid + 1;
    rlock_acquire(&pools_lock);
    struct pool_array *a = array_grow_locked(p, want);
    rlock_release(&pools_lock);
    return &a->l[pid];
}

/* Pin to the P and return its entry; NULL outside goroutines (not pinned
 * then). Fast path: two acquire loads. */
static inline struct pool_local *pool_pin(gort_pool *p, int *pid_out)
{
    int pid = sched_proc_pin();
    *pid_out = pid;
    if (GORT_UNLIKELY(pid < 0)) return NULL;
    size_t n = __atomic_load_n(&p->localn, __ATOMIC_ACQUIRE);
    if (GORT_LIKELY((size_t)pid < n)) return &array_load(&p->local)->l[pid];
    return pool_pin_slow(p, pid);
}

/* ---- threads without a P ---------------------------------------------------- */

static void pool_put_foreign(gort_pool *p, void *x)
{
    rlock_acquire(&pools_lock);
    size_t want = (size_t)atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    struct pool_array *a = array_grow_locked(p, want ? want : 1);
    shared_push(&a->l[0], x);
    rlock_release(&pools_lock);
}

/* Take from any shared stack of a (may be NULL). */
static void *steal_any(struct pool_array *a, size_t n, size_t start)
{
    if (!a) return NULL;
    if (n > a->n) n = a->n;
    for (size_t i = 0; i < n; i++) {
        void *x = shared_pop(&a->l[(start + i) % n]);
        if (x) return x;
    }
    return NULL;
}

static void *pool_get_foreign(gort_pool *p)
{
    rlock_acquire(&pools_lock);
    /* localn changes only under pools_lock; victimn may drop to 0 (hint). */
    void *x = steal_any(array_load(&p->local), p->localn, 0);
    if (!x)
        x = steal_any(array_load(&p->victim), __atomic_load_n(&p->victimn, __ATOMIC_RELAXED), 0);
    rlock_release(&pools_lock);
    return x;
}

/* ---- Get and Put ---------------------------------------------------------- */

/* Pinned on P pid; own private and shared were empty. */
static GORT_NOINLINE void *pool_get_slow(gort_pool *p, int pid)
{
    size_t n = __atomic_load_n(&p->localn, __ATOMIC_ACQUIRE);
    void *x = steal_any(array_load(&p->local), n, (size_t)pid + 1);
    if (x) return x;
    /* The victim cache: our private first, then every shared stack. */
    size_t vn = __atomic_load_n(&p->victimn, __ATOMIC_ACQUIRE);
    if ((size_t)pid >= vn) return NULL;
    struct pool_array *v = array_load(&p->victim);
    struct pool_local *l = &v->l[pid];
    x = l->private;
    l->private = NULL;
    if (!x) x = steal_any(v, vn, (size_t)pid);
    /* Empty: skip the victim from now on until the next cleanup (which
     * frees it). Puts never refill it. Relaxed: a hint. */
    if (!x) __atomic_store_n(&p->victimn, 0, __ATOMIC_RELAXED);
    return x;
}

void *gort_pool_get(gort_pool *p)
{
    int pid;
    struct pool_local *l = pool_pin(p, &pid);
    void *x;
    if (GORT_UNLIKELY(!l)) {
        x = pool_get_foreign(p);
    } else {
        x = l->private;
        l->private = NULL;
        if (!x) x = shared_pop(l);
        if (!x) x = pool_get_slow(p, pid);
        sched_proc_unpin();
    }
    if (!x && p->new) x = p->new (); /* unpinned: new may block */
    return x;
}

void gort_pool_put(gort_pool *p, void *x)
{
    if (!x) return;
    /* The pool's arrays are manual memory the collector may have scanned
     * already this cycle: shade x (the insertion half of the barrier). */
    if (GORT_UNLIKELY(gort__gc_barrier)) gort_gc_memmove(&x, &x, sizeof x);
    int pid;
    struct pool_local *l = pool_pin(p, &pid);
    if (GORT_UNLIKELY(!l)) {
        pool_put_foreign(p, x);
        return;
    }
    if (!l->private)
        l->private = x;
    else
        shared_push(l, x);
    sched_proc_unpin();
}

/* ---- cleanup -------------------------------------------------------------- */

void sync_pool_cleanup(void)
{
    rlock_acquire(&pools_lock); /* excludes threads without a P */
    void **pp = &all_pools;
    while (*pp) {
        gort_pool *p = *pp;
        struct pool_array *local = p->local;
        array_free(p->victim);
        if (local) { /* nobody is pinned: what local replaced can go now */
            array_free(local->retired);
            local->retired = NULL;
        }
        p->victim = local;
        p->victimn = p->localn;
        p->local = NULL;
        p->localn = 0;
        if (!local) { /* held only a victim: now holds nothing */
            *pp = p->next;
            p->next = NULL;
        } else {
            pp = &p->next;
        }
    }
    rlock_release(&pools_lock);
}

/* mem/mcentral.c: where caches get small spans, per NUMA node and span class
 * (Go's mcentral.go, reduced to what explicit frees leave for it).
 *
 * A span stays with the cache that took it until it is empty (mem.h,
 * "Ownership"), so an mcentral holds only empty spans: up to CENTRAL_KEEP
 * retired ones per class, already cut for the class (re-handing one out
 * costs a few stores: the objects are carved lazily again), and beyond that
 * it passes spans to and from its node's page heap.
 * Rejected: Go's partial/full span sets shared by all caches. With explicit
 * frees racing the hand-over, a span that changes owner while holding live
 * objects needs a second notification target for remote frees; keeping
 * partly used spans with their cache (and adopting a destroyed P's cache as
 * a whole, mcache.c) avoids that for the price of memory held by a cache
 * until its spans empty.
 *
 * Span sizes. A span of class cls has class_to_npages[cls] pages (the
 * generator's choice: tail waste <= 1/8) doubled while it stays within
 * SPAN_MIN_PAGES and GC_MARK_WORDS * 64 objects: 32 KiB for every class of
 * up to 4 KiB. With one-page spans a class of 512 bytes refills every 16
 * allocations, and a span that regains a few free blocks at a time (larson:
 * random frees spread over every span) turns over every few; the price is
 * up to 32 KiB a cache holds per class it uses. Doubling never raises the
 * tail waste fraction (a tail t of a span becomes 2t mod size <= 2t of
 * twice the span), and the division magic stays exact for every offset
 * (tests/test_mem_sizeclasses.c checks both on these sizes).
 *
 * GC spans (KIND_SCAN, KIND_NOSCAN) are zeroed when handed out if their
 * pages may hold old data, so gort_new never clears an object.
 *
 * Lock: central->lock (per class), above the heap lock; held for a list
 * push or pop.
 */
#include <string.h>

#include "mem/mem.h"

uint32_t mem_class_npages(unsigned cls)
{
    uint32_t np = class_to_npages[cls], size = class_to_size[cls];
    if (!size) return np; /* class 0: large objects */
    while (np * 2 <= SPAN_MIN_PAGES &&
           ((uintptr_t)np * 2 << PAGE_SHIFT) / size <= GC_MARK_WORDS * 64)
        np *= 2;
    return np;
}

static void span_init_class(struct span *s, unsigned sc)
{
    unsigned cls = sc % NUM_SIZE_CLASSES;
    s->spanclass = (uint16_t)sc;
    s->elemsize = class_to_size[cls];
    s->divmagic = class_to_divmagic[cls];
    s->divtest = UINT64_MAX / s->elemsize + 1;
    s->nelems = (uint32_t)((s->npages << PAGE_SHIFT) / s->elemsize);
    s->spanbytes = s->nelems * s->elemsize;
    s->carve = s->base;
    s->limit = s->base + s->spanbytes;
    s->free = blk_enc(blk_end(s));
    s->nalloc = 0;
}

static struct span *hand_out(struct mcache *c, struct span *s, unsigned sc);

struct span *mcentral_grab(struct mcache *c, unsigned sc)
{
    struct node_mem *nm = node_mem(c->node);
    struct mcentral *mc = &nm->central[sc];
    rlock_acquire(&mc->lock);
    struct span *s = mc->empty;
    if (s) {
        mc->empty = s->next;
        mc->nempty--;
    }
    rlock_release(&mc->lock);
    if (s) {
        s->carve = s->base;
        s->free = blk_enc(blk_end(s));
        s->nalloc = 0;
        /* A kept empty span is on no sweep queue: mark bits a conservative
         * pointer set on it since are stale, and would make the next
         * objects in those slots black and never scanned. */
        for (unsigned w = 0; w < GC_MARK_WORDS; w++)
            atomic_store_explicit(&s->gcmarks[w], 0, memory_order_relaxed);
    } else {
        s = mheap_alloc(&nm->heap, mem_class_npages(sc % NUM_SIZE_CLASSES));
        span_init_class(s, sc);
        s->state = SPAN_SMALL;
    }
    return hand_out(c, s, sc);
}

/* Ready s (swept, owner-less) for c: zero what needs it, reset the cache's
 * fields, take ownership. */
static struct span *hand_out(struct mcache *c, struct span *s, unsigned sc)
{
    if (sc >= NUM_SIZE_CLASSES && s->needzero) memset((void *)s->base, 0, s->spanbytes);
    if (sc >= NUM_SIZE_CLASSES) s->needzero = 0;
    s->next = s->prev = NULL;
    s->list = LIST_NONE;
    s->slow_at = -1;
    atomic_store_explicit(&s->tfree, 0, memory_order_relaxed); /* nobody else has it yet */
    s->tf_base = 0;
    s->pend = 0;
    /* Relaxed: the span reaches other threads only through objects allocated
     * from it, handed over by the program (that hand-off orders this store).
     * A GC span keeps NOBODY: nothing frees into it by hand, and gort_free's
     * owner test then rejects its objects with no test of the class. */
    atomic_store_explicit(&s->owner, sc >= NUM_SIZE_CLASSES ? NOBODY : c, memory_order_relaxed);
    return s;
}

struct span *mcentral_grab_gc(struct mcache *c, unsigned sc)
{
    struct node_mem *nm = node_mem(c->node);
    struct mcentral *mc = &nm->central[sc];
    struct span *s;
    mem_gc_sweep_credit(); /* the sweep phase: this allocation's share first */
    for (;;) {
        bool unswept = false;
        /* Lazy sweeping only while spans wait for it (the hint is exact for
         * threads holding a P: it changes with the world stopped), so that
         * the common refill pays no RMW on the shared sweepers counter. A
         * sweeper is counted before its pop (see mem.sweepers); seq_cst
         * pairs with mem_gc_sweep_done. */
        bool lazy = atomic_load_explicit(&mem.unswept, memory_order_relaxed) != 0;
        if (lazy) atomic_fetch_add(&mem.sweepers, 1);
        rlock_acquire(&mc->lock);
        s = spanq_pop(&mc->partial);
        if (!s && lazy && (s = spanq_pop(&mc->unswept))) unswept = true;
        rlock_release(&mc->lock);
        /* Relaxed: a hint for background sweepers (mem_gc_sweep_one). */
        if (unswept) atomic_fetch_sub_explicit(&mem.unswept, 1, memory_order_relaxed);
        /* Lazy sweep (Go's mcentral.cacheSpan): sweep what this class
         * has left before taking more pages. */
        bool mine = !s || !unswept || sweep_span(s, true); /* has free objects: ours */
        if (lazy) atomic_fetch_sub(&mem.sweepers, 1);
        if (mine) break;
    }
    if (!s)
        s = mcentral_grab(c, sc); /* a kept empty one or fresh pages, zeroed */
    else
        hand_out(c, s, sc);
    s->sweepgen = mem.sweepgen;
    mem_gc_took((int64_t)(s->nelems - s->nalloc) * s->elemsize);
    if (mem_gc_over_goal()) c->yield = true; /* gort_new waits after allocating */
    return s;
}

void mcentral_putback_gc(struct span *s)
{
    struct mcentral *mc = &node_mem(s->node)->central[s->spanclass];
    uint32_t freeobjs = s->nelems - s->nalloc;
    atomic_store_explicit(&s->owner, NOBODY, memory_order_relaxed);
    s->list = LIST_NONE;
    s->slow_at = -1;
    rlock_acquire(&mc->lock);
    spanq_push(freeobjs ? &mc->partial : &mc->full, s);
    rlock_release(&mc->lock);
    /* Relaxed: the pacer's counter (mem.h). Its free room is not taken. */
    atomic_fetch_sub_explicit(&mem.heap_live, (int64_t)freeobjs * s->elemsize,
                              memory_order_relaxed);
}

void mcentral_retire(struct span *s)
{
    struct node_mem *nm = node_mem(s->node);
    struct mcentral *mc = &nm->central[s->spanclass];
    atomic_store_explicit(&s->owner, NOBODY, memory_order_relaxed);
    s->list = LIST_NONE;
    s->needzero = 1;
    rlock_acquire(&mc->lock);
    if (mc->nempty < CENTRAL_KEEP) {
        s->next = mc->empty;
        mc->empty = s;
        mc->nempty++;
        rlock_release(&mc->lock);
        return;
    }
    rlock_release(&mc->lock);
    mheap_free(&nm->heap, s);
}

void mcentral_flush(struct node_mem *nm)
{
    for (unsigned sc = 0; sc < NUM_SPAN_CLASSES; sc++) {
        struct mcentral *mc = &nm->central[sc];
        rlock_acquire(&mc->lock);
        struct span *s = mc->empty;
        mc->empty = NULL;
        mc->nempty = 0;
        rlock_release(&mc->lock);
        while (s) {
            struct span *next = s->next;
            mheap_free(&nm->heap, s);
            s = next;
        }
    }
}

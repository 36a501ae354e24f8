/* mem/sweep.c: the allocator's side of the collector: sweeping GC spans,
 * handing spans back at mark termination, and walking the heap for the
 * marker (manual ranges, tiny blocks, allocate-black).
 *
 * See mem.h, "Collected spans", for where GC spans live. Sweeping a small
 * span (Go's mspan.sweep, for free lists instead of alloc bits):
 *   1. walk its free list into a bitmap of free blocks (blocks at or past
 *      s->carve were never handed out and stay uncarved);
 *   2. every carved block that is neither free nor marked died this cycle:
 *      zero it and thread it on the free list;
 *   3. clear the mark bits; nalloc = the marked carved blocks.
 * A marked free block (a conservative pointer into a free block) stays
 * free: the free bitmap wins. A span left with no live object goes back to
 * its class's kept empties or the heap without the zeroing (needzero).
 * Cost: O(nelems) bit work, plus a memset of each dead object, plus the
 * free-list walk; the memset moves gort_new's zeroing from allocation to
 * sweep (the allocator never clears a GC object it hands out).
 *
 * Invariants, for every GC span on a queue or in a cache (world stopped):
 *   - every block that is free or uncarved is zero but for its link word;
 *   - between mark termination and its sweep a span is on an unswept queue
 *     and nobody allocates from it; after its sweep its marks are clear.
 *
 * Who calls: allocation (mcentral_grab_gc, lazily; mheap_alloc_large,
 * reclaiming large objects; both in proportion, "Sweep pacing" below), the
 * collector's background sweep (mem_gc_sweep_one), mark termination (world
 * stopped).
 * Locks: mcentral locks and the heap lock, briefly, never nested here
 * except in mem lock order (fallback > orphan > mcentral > heap).
 */
#include <string.h>

#include "mem/mem.h"

static struct span *const EMPTY = &mem_empty_span;

/* ---- small spans ------------------------------------------------------------------ */

/* Not __builtin_popcountll: without -mpopcnt gcc calls libgcc's
 * __popcountdi2, which links into the program's own .text, where the
 * preemption signal takes it for user code and would stop the goroutine
 * in the middle of the allocator (sched/preempt.c: gort's code must not call
 * out to code linked into the executable). */
static inline uint32_t popcount64(uint64_t x)
{
    x = x - ((x >> 1) & 0x5555555555555555ULL);
    x = (x & 0x3333333333333333ULL) + ((x >> 2) & 0x3333333333333333ULL);
    x = (x + (x >> 4)) & 0x0F0F0F0F0F0F0F0FULL;
    return (uint32_t)((x * 0x0101010101010101ULL) >> 56);
}

bool sweep_span(struct span *s, bool keep)
{
    /* Relaxed: the pacer's count (see "Sweep pacing"). */
    atomic_fetch_add_explicit(&mem.pages_swept, s->npages, memory_order_relaxed);
    uint64_t freebits[GC_MARK_WORDS] = {0};
    uintptr_t size = s->elemsize, base = s->base;
    uint32_t ncarved = (uint32_t)((s->carve - base) / size);
    for (uintptr_t b = s->free ^ mem.secret; !blk_is_end(b);
         b = ((struct block *)b)->enc ^ mem.secret) {
        uint32_t i = (uint32_t)(((b - base) * s->divmagic) >> 32);
        freebits[i >> 6] |= 1ULL << (i & 63);
    }
    uint32_t live = 0; /* marked, carved, not free */
    for (uint32_t w = 0; w < GC_MARK_WORDS && w * 64 < ncarved; w++) {
        uint64_t carved = ncarved - w * 64 >= 64 ? ~0ULL : (1ULL << (ncarved - w * 64)) - 1;
        live += popcount64(atomic_load_explicit(&s->gcmarks[w], memory_order_relaxed) &
                           ~freebits[w] & carved);
    }
    uint32_t freed = s->nalloc - live; /* nalloc counted the carved, non-free blocks */
    if (freed) {
        /* Relaxed: statistics (memstats subtracts them). */
        atomic_fetch_add_explicit(&mem.gc_nfree[s->spanclass], freed, memory_order_relaxed);
    }
    struct mcentral *mc = &node_mem(s->node)->central[s->spanclass];
    if (live == 0) {
        for (uint32_t w = 0; w < GC_MARK_WORDS; w++)
            atomic_store_explicit(&s->gcmarks[w], 0, memory_order_relaxed);
        s->sweepgen = mem.sweepgen;
        s->nalloc = 0;
        mcentral_retire(s); /* needzero: its dead objects were not cleared */
        return false;
    }
    if (freed) {
        /* Rebuild the free list in address order (pushing from the top). */
        uintptr_t head = blk_enc(blk_end(s));
        for (uint32_t i = ncarved; i-- > 0;) {
            uint64_t bit = 1ULL << (i & 63);
            bool isfree = freebits[i >> 6] & bit;
            if (!isfree && span_marked(s, i)) continue;
            struct block *b = (struct block *)(base + (uintptr_t)i * size);
            if (!isfree) memset(b, 0, size);
            b->enc = head;
            head = blk_enc((uintptr_t)b);
        }
        s->free = head;
        s->nalloc = live;
    }
    for (uint32_t w = 0; w < GC_MARK_WORDS; w++)
        atomic_store_explicit(&s->gcmarks[w], 0, memory_order_relaxed);
    s->sweepgen = mem.sweepgen;
    s->needzero = 0;
    bool hasfree = !span_free_empty(s) || s->carve < s->limit;
    if (hasfree && keep) return true;
    rlock_acquire(&mc->lock);
    spanq_push(hasfree ? &mc->partial : &mc->full, s);
    rlock_release(&mc->lock);
    return false;
}

/* ---- large objects ---------------------------------------------------------------- */

/* Sweep large objects of h's unswept queue until max of them were swept
 * or *freed (pages given back to the heap) reaches want; returns how many
 * were swept and adds the pages freed to *freed. */
static uint32_t sweep_large(struct mheap *h, uint32_t max, uint64_t want, uint64_t *freed)
{
    uint32_t n = 0;
    uint64_t pages = 0;
    rlock_acquire(&h->lock);
    struct span *s;
    while (n < max && *freed < want && (s = spanq_pop(&h->large_unswept))) {
        n++;
        atomic_fetch_sub_explicit(&mem.unswept, 1, memory_order_relaxed);
        pages += s->npages;
        s->sweepgen = mem.sweepgen;
        if (atomic_load_explicit(&s->gcmarks[0], memory_order_relaxed)) {
            atomic_store_explicit(&s->gcmarks[0], 0, memory_order_relaxed);
            spanq_push(&h->large_gc, s);
            continue;
        }
        *freed += s->npages;
        h->large_gc_pages -= s->npages;
        h->large_nfree++;
        h->large_bytes_freed += (uint64_t)s->npages << PAGE_SHIFT;
        mheap_free_locked(h, s);
    }
    rlock_release(&h->lock);
    /* Relaxed: the pacer's count. */
    if (pages) atomic_fetch_add_explicit(&mem.pages_swept, (int64_t)pages, memory_order_relaxed);
    return n;
}

void mheap_large_gc_add(struct mheap *h, struct span *s)
{
    s->sweepgen = mem.sweepgen;
    h->large_gc_pages += s->npages;
    spanq_push(&h->large_gc, s);
}

void mem_gc_reclaim(struct mheap *h, uint32_t npages)
{
    /* Racy peek: the queue fills only at mark termination (world stopped)
     * and empties under the lock; a stale non-empty view costs a lock
     * round, a stale empty one takes fresh pages once. */
    if (!h->large_unswept.head) return;
    atomic_fetch_add(&mem.sweepers, 1); /* see mem.sweepers */
    uint64_t freed = 0;
    sweep_large(h, UINT32_MAX, npages, &freed);
    atomic_fetch_sub(&mem.sweepers, 1);
}

/* ---- the sweep loop --------------------------------------------------------------- */

/* Sweep one small span or up to 16 large objects, whichever comes first
 * on the queues; false when no queue had any. */
static bool sweep_next(void)
{
    for (int n = 0; n < mem.nnodes; n++) {
        struct node_mem *nm = node_mem(n);
        for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++) {
            struct mcentral *mc = &nm->central[sc];
            if (!mc->unswept.head) continue;    /* racy peek; rechecked under the lock */
            atomic_fetch_add(&mem.sweepers, 1); /* see mem.sweepers */
            rlock_acquire(&mc->lock);
            struct span *s = spanq_pop(&mc->unswept);
            rlock_release(&mc->lock);
            if (s) {
                atomic_fetch_sub_explicit(&mem.unswept, 1, memory_order_relaxed);
                sweep_span(s, false);
            }
            atomic_fetch_sub(&mem.sweepers, 1);
            if (s) return true;
        }
        if (nm->heap.large_unswept.head) {
            atomic_fetch_add(&mem.sweepers, 1);
            uint64_t freed = 0;
            uint32_t k = sweep_large(&nm->heap, 16, UINT64_MAX, &freed);
            atomic_fetch_sub(&mem.sweepers, 1);
            if (k) return true;
        }
    }
    return false;
}

bool mem_gc_sweep_one(void)
{
    /* Relaxed: a hint; the queues, under their locks, are the truth. */
    if (atomic_load_explicit(&mem.unswept, memory_order_relaxed) == 0) return false;
    if (sweep_next()) return true;
    /* Spans popped by lazy sweepers (mcentral_grab_gc) are counted there. */
    return atomic_load_explicit(&mem.unswept, memory_order_relaxed) != 0;
}

/* ---- sweep pacing -------------------------------------------------------------------
 *
 * The background sweeper (the collector's goroutine) may lag behind the
 * program, or not run at all for a while (its thread descheduled on a busy
 * machine): then unswept spans hold dead objects while allocators take
 * fresh pages, and both heap_alloc and the page heap grow past the goal.
 * So, as in Go (mgcsweep.go, deductSweepCredit), allocators sweep in
 * proportion to what they take: by the time heap_live has grown by
 * `distance` from the mark termination's basis, every page is swept.
 *   target(heap_live) = (heap_live - basis) / bpp,  bpp = distance / sweep_pages
 * An allocator that finds pages_swept < target sweeps spans until it is
 * not. Lazy sweeps of a class (mcentral_grab_gc), the background sweeper
 * and reclaims count too, so in the common case (the sweeper ahead) the
 * credit check is two loads and a division, and only in the sweep phase. */

void mem_gc_sweep_pace(int64_t basis, int64_t distance)
{
    int64_t pages = (int64_t)mem.sweep_pages, bpp = 0;
    if (pages > 0 && distance > 0 && distance != INT64_MAX) {
        bpp = distance / pages;
        if (bpp < 1) bpp = 1;
    }
    /* Relaxed: the world is stopped; restarting it publishes these. */
    atomic_store_explicit(&mem.pages_swept, 0, memory_order_relaxed);
    atomic_store_explicit(&mem.sweep_basis, basis, memory_order_relaxed);
    atomic_store_explicit(&mem.sweep_bpp, bpp, memory_order_relaxed);
}

void mem_gc_sweep_credit_slow(void)
{
    /* Relaxed: the pacer's hints; a stale value sweeps a span more or less. */
    int64_t bpp = atomic_load_explicit(&mem.sweep_bpp, memory_order_relaxed);
    if (bpp <= 0) return;
    int64_t grown = atomic_load_explicit(&mem.heap_live, memory_order_relaxed) -
                    atomic_load_explicit(&mem.sweep_basis, memory_order_relaxed);
    if (grown <= 0) return;
    int64_t target = grown / bpp;
    while (atomic_load_explicit(&mem.pages_swept, memory_order_relaxed) < target &&
           atomic_load_explicit(&mem.unswept, memory_order_relaxed) != 0)
        if (!sweep_next()) return; /* the rest is being swept by others */
}

bool mem_gc_sweep_done(void)
{
    return atomic_load(&mem.unswept) == 0 && atomic_load(&mem.sweepers) == 0;
}

/* ---- mark termination ------------------------------------------------------------- */

/* c's GC spans go back to their mcentrals (world stopped, or c's lock held). */
static void hand_back(struct mcache *c)
{
    for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++) {
        struct span *s = c->cur[sc];
        if (s == EMPTY) continue;
        c->cur[sc] = EMPTY;
        mcentral_putback_gc(s);
    }
    c->tiny = c->tinyoff = 0;
}

void mem_gc_mark_termination(void)
{
    mem_init();
    /* Threads without a P (foreign threads, blocking regions) keep running
     * while the world is stopped: take the fallback caches' locks; sysmon's
     * scavenger tidies orphans under the orphan locks. Mem lock order. */
    for (int n = 0; n < mem.nnodes; n++)
        rlock_acquire(&node_mem(n)->fallback_lock);
    for (int n = 0; n < mem.nnodes; n++)
        rlock_acquire(&node_mem(n)->orphan_lock);
    /* Acquire: pairs with mcache_new's release push. */
    for (struct mcache *c = atomic_load_explicit(&mem.allcaches, memory_order_acquire); c;
         c = c->allnext)
        hand_back(c);
    for (int n = mem.nnodes; n-- > 0;)
        rlock_release(&node_mem(n)->orphan_lock);
    for (int n = mem.nnodes; n-- > 0;)
        rlock_release(&node_mem(n)->fallback_lock);

    uint32_t unswept = 0;
    uint64_t pages = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        struct node_mem *nm = node_mem(n);
        for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++) {
            struct mcentral *mc = &nm->central[sc];
            rlock_acquire(&mc->lock);
            if (mc->unswept.head) gort__fatal("mark termination: spans left unswept");
            spanq_splice(&mc->unswept, &mc->partial);
            spanq_splice(&mc->unswept, &mc->full);
            unswept += mc->unswept.n;
            pages += (uint64_t)mc->unswept.n * mem_class_npages(sc % NUM_SIZE_CLASSES);
            rlock_release(&mc->lock);
        }
        struct mheap *h = &nm->heap;
        rlock_acquire(&h->lock);
        spanq_splice(&h->large_unswept, &h->large_gc);
        unswept += h->large_unswept.n;
        pages += h->large_gc_pages;
        rlock_release(&h->lock);
    }
    mem.sweep_pages = pages;
    atomic_store_explicit(&mem.unswept, unswept, memory_order_relaxed);
    mem.sweepgen += 2;
}

/* ---- for the marker ---------------------------------------------------------------- */

void mem_gc_tiny_blocks(void (*fn)(uintptr_t block))
{
    mem_init();
    for (int n = 0; n < mem.nnodes; n++)
        rlock_acquire(&node_mem(n)->fallback_lock);
    for (struct mcache *c = atomic_load_explicit(&mem.allcaches, memory_order_acquire); c;
         c = c->allnext)
        if (c->tiny) fn(c->tiny);
    for (int n = mem.nnodes; n-- > 0;)
        rlock_release(&node_mem(n)->fallback_lock);
}

void mem_gc_mark_new(void *p)
{
    uintptr_t start;
    uint32_t idx;
    struct span *s = gc_object_of((uintptr_t)p, &start, &idx);
    if (s) span_mark(s, idx);
}

/* The allocated objects of a small manual span, in runs: a block whose
 * first word decodes (mem.secret) into its own span (links and list ends,
 * blk_end; or to NULL, which no list holds any more) is a free
 * block (on the owner's list, a remote chain or a batch: gort_free's
 * double-free test), whose stale contents must not keep objects alive. A
 * live object whose first word happens to equal such a value is skipped
 * (conservatively, the same odds as gort_free's false double-free alarm). */
static void manual_objects(struct span *s, uintptr_t lo, uintptr_t hi,
                           void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
    uintptr_t size = __atomic_load_n(&s->elemsize, __ATOMIC_RELAXED);
    uintptr_t end = s->base + __atomic_load_n(&s->spanbytes, __ATOMIC_RELAXED);
    /* hi is the carve (at most end: spans are carved a page or so at a
     * time, mcache.c carve) or the span's last page (end plus a tail
     * shorter than an object); beyond that the span is changing under us:
     * scan it all. */
    if (!size || hi >= end + size || end <= lo) {
        fn(lo, hi, arg);
        return;
    }
    uintptr_t run = 0; /* start of the current run of live objects, 0: none */
    for (uintptr_t b = lo; b + size <= hi; b += size) {
        uintptr_t d = *(volatile uintptr_t *)b ^ mem.secret;
        bool isfree = d == 0 || d - s->base < end - s->base;
        if (isfree && run) fn(run, b, arg), run = 0;
        if (!isfree && !run) run = b;
    }
    if (run) fn(run, hi, arg);
}

void mem_gc_manual_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg)
{
    mem_init();
    for (int n = 0; n < mem.nnodes; n++) {
        struct mheap *h = &node_mem(n)->heap;
        rlock_acquire(&h->lock);
        struct arena *first = h->arenas; /* arenas are only ever prepended */
        rlock_release(&h->lock);
        for (struct arena *ar = first; ar; ar = ar->next) {
            for (uintptr_t i = 0; i < ARENA_PAGES;) {
                struct span *s = atomic_load_explicit(&ar->spans[i], memory_order_relaxed);
                uintptr_t page = ar->base + (i << PAGE_SHIFT);
                /* Racy reads of a span that may change under us: bounded by
                 * the arena and checked against the page we stand on. */
                uint32_t np = s ? __atomic_load_n(&s->npages, __ATOMIC_RELAXED) : 0;
                uint8_t st = s ? __atomic_load_n(&s->state, __ATOMIC_RELAXED) : 0;
                if (!s || s == &mem_dead_span || np == 0 || s->base != page ||
                    (st != SPAN_SMALL && st != SPAN_LARGE)) {
                    i++;
                    continue;
                }
                if (s->spanclass < NUM_SIZE_CLASSES) { /* KIND_MANUAL */
                    /* A large span may run on into the next arena of its group
                     * (contiguous memory); that arena's walk skips its pages. */
                    uintptr_t hi = page + ((uintptr_t)np << PAGE_SHIFT);
                    if (st == SPAN_SMALL) {
                        uintptr_t carve = __atomic_load_n(&s->carve, __ATOMIC_RELAXED);
                        if (carve >= page && carve < hi) hi = carve;
                        manual_objects(s, page, hi, fn, arg);
                    } else if (hi > page) {
                        fn(page, hi, arg);
                    }
                }
                i += np; /* past the arena's end: the loop ends */
            }
        }
    }
}

void mem_gc_for_each_span(void (*fn)(struct span *s, void *arg), void *arg)
{
    for (struct mcache *c = atomic_load_explicit(&mem.allcaches, memory_order_acquire); c;
         c = c->allnext)
        for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++)
            if (c->cur[sc] != EMPTY) fn(c->cur[sc], arg);
    for (int n = 0; n < mem.nnodes; n++) {
        struct node_mem *nm = node_mem(n);
        for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++) {
            struct mcentral *mc = &nm->central[sc];
            rlock_acquire(&mc->lock);
            for (struct span *s = mc->partial.head; s; s = s->qnext)
                fn(s, arg);
            for (struct span *s = mc->full.head; s; s = s->qnext)
                fn(s, arg);
            rlock_release(&mc->lock);
        }
        rlock_acquire(&nm->heap.lock);
        for (struct span *s = nm->heap.large_gc.head; s; s = s->qnext)
            fn(s, arg);
        rlock_release(&nm->heap.lock);
    }
}

int mem_gc_unscanned(uintptr_t (*r)[2])
{
    /* The arena map, and mem itself: arena_lo/arena_hi hold heap addresses
     * (the first object of the lowest arena would never be collected). */
    r[0][0] = (uintptr_t)mem_arena_map;
    r[0][1] = (uintptr_t)(mem_arena_map + ARENA_MAP_LEN + 1);
    r[1][0] = (uintptr_t)&mem;
    r[1][1] = (uintptr_t)(&mem + 1);
    return 2;
}

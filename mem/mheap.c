/* mem/mheap.c: the page heap of one NUMA node (Go's mheap.go, in the
 * shape of Go 1.11's: free runs on lists by length, coalesced on free).
 *
 * Free runs ("free spans") of n pages sit on free[n] for n < HEAP_LISTS and
 * on free[0] beyond; a bitmap of non-empty lists finds the shortest
 * sufficient list with one count-trailing-zeros per 64 lists. An allocation
 * takes the head of that list (best fit by length), or the best fit on
 * free[0] (lowest address on ties), splitting off the rest; when nothing
 * fits, the heap grows by a new arena group (arena.c) of at least 64 MiB.
 *
 * Coalescing: the page table (arena.spans) maps every page of an in-use span
 * to it, and the first and last page of a free span to it, so a freed span
 * finds its neighbours in O(1) (the pages just before and after) and merges
 * with those that are free, of this node, and in the same scavenged state.
 * Interior pages of a free span may still name an old span: readers of the
 * table bound-check (gort_free does).
 *
 * Scavenged state. Fresh arena pages and pages returned with MADV_DONTNEED
 * read as zero and cost no memory: such a free span is `scavenged` (and
 * needs no zeroing). Runs of different states are not merged (merging would
 * either count untouched memory as resident or discard resident data);
 * the scavenger merges them once it has released the dirty one.
 *
 * Statistics, in pages, under the lock: pages_inuse (small and large spans),
 * pages_free (free spans), pages_released (scavenged free spans);
 * memstats.heap_sys = (inuse + free - released) * PAGE_SIZE, kept for all
 * nodes together in mem.heap_resident too (bytes, changed only where a
 * scavenged run is allocated or a run is scavenged).
 *
 * The memory limit (mem.memlimit, the collector's soft limit). Taking
 * scavenged pages makes them resident again; when that takes memstats.sys
 * past the limit, the allocation returns free pages to the kernel until
 * sys is 1/64 under it (limit_check; Go's allocSpan does the same), and the
 * collector does it down to 95% after each sweep. Nothing is returned
 * without a limit but what the scavenger finds idle (malloc.c).
 *
 * Callers: mcentral (small spans), gort_malloc and friends (large objects),
 * the scavenger. Lock: h->lock, a leaf of mem's lock order; held for O(1)
 * list work per call, plus the madvise calls of a scavenge (bounded by its
 * byte budget).
 */
#include <string.h>

#include "mem/mem.h"

#define SPAN_CHUNK (64 << 10)

/* ---- span structs (heap lock) -------------------------------------------------- */

static struct span *span_new(struct mheap *h)
{
    if (!h->spanpool) {
        struct span *v = mem_meta_alloc(SPAN_CHUNK);
        for (size_t i = 0; i < SPAN_CHUNK / sizeof *v; i++) {
            v[i].node = (uint16_t)h->node;
            v[i].next = h->spanpool;
            h->spanpool = &v[i];
        }
    }
    struct span *s = h->spanpool;
    h->spanpool = s->next;
    uint16_t node = s->node;
    memset(s, 0, sizeof *s);
    s->node = node;
    s->free = blk_enc(1); /* empty; a small span's list ends in blk_end (mcentral.c) */
    atomic_store_explicit(&s->owner, NOBODY, memory_order_relaxed);
    return s;
}

static void span_dead(struct mheap *h, struct span *s)
{
    s->state = SPAN_DEAD;
    atomic_store_explicit(&s->owner, NOBODY, memory_order_relaxed);
    s->next = h->spanpool;
    h->spanpool = s;
}

/* ---- page table -------------------------------------------------------------------- */

static inline void set_page(uintptr_t a, struct span *s)
{
    struct arena *ar = atomic_load_explicit(&mem.arena_map[a >> ARENA_SHIFT], memory_order_relaxed);
    /* Relaxed: readers that matter got their pointer through a hand-off that
     * happened after this store (see struct arena). */
    atomic_store_explicit(&ar->spans[(a >> PAGE_SHIFT) & (ARENA_PAGES - 1)], s,
                          memory_order_relaxed);
}

static void set_all_pages(struct span *s)
{
    for (uint32_t i = 0; i < s->npages; i++)
        set_page(s->base + ((uintptr_t)i << PAGE_SHIFT), s);
}

static void set_ends(struct span *s)
{
    set_page(s->base, s);
    set_page(s->base + ((uintptr_t)(s->npages - 1) << PAGE_SHIFT), s);
}

/* ---- free lists -------------------------------------------------------------------- */

static inline unsigned list_of(uint32_t npages)
{
    return npages < HEAP_LISTS ? npages : 0;
}

static void list_insert(struct mheap *h, struct span *s)
{
    unsigned i = list_of(s->npages);
    s->prev = NULL;
    s->next = h->free[i];
    if (s->next) s->next->prev = s;
    h->free[i] = s;
    h->nonempty[i / 64] |= 1UL << (i % 64);
}

static void list_remove(struct mheap *h, struct span *s)
{
    unsigned i = list_of(s->npages);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->free[i] = s->next;
    if (s->next) s->next->prev = s->prev;
    if (!h->free[i]) h->nonempty[i / 64] &= ~(1UL << (i % 64));
    s->next = s->prev = NULL;
}

/* The free neighbour of s at address a (a page just outside s), if it can
 * merge with s. */
static struct span *mergeable(struct mheap *h, struct span *s, uintptr_t a)
{
    struct span *o = span_of(a);
    if (!o || o->node != h->node || o->state != SPAN_FREE || o->scavenged != s->scavenged)
        return NULL;
    uintptr_t end = o->base + ((uintptr_t)o->npages << PAGE_SHIFT);
    return a >= o->base && a < end ? o : NULL; /* not a stale interior entry */
}

/* Put free span s on the lists, merged with its free neighbours. */
static void free_insert(struct mheap *h, struct span *s)
{
    s->state = SPAN_FREE;
    struct span *o;
    if (s->base >= PAGE_SIZE && (o = mergeable(h, s, s->base - PAGE_SIZE))) {
        list_remove(h, o);
        s->base = o->base;
        s->npages += o->npages;
        if (o->free_since > s->free_since) s->free_since = o->free_since;
        span_dead(h, o);
    }
    if ((o = mergeable(h, s, s->base + ((uintptr_t)s->npages << PAGE_SHIFT)))) {
        list_remove(h, o);
        s->npages += o->npages;
        if (o->free_since > s->free_since) s->free_since = o->free_since;
        span_dead(h, o);
    }
    set_ends(s);
    list_insert(h, s);
}

static struct span *find_fit(struct mheap *h, uint32_t npages)
{
    if (npages < HEAP_LISTS) {
        for (unsigned w = npages / 64; w < HEAP_LISTS / 64; w++) {
            uint64_t bits = h->nonempty[w];
            if (w == npages / 64) bits &= ~0UL << (npages % 64);
            if (bits) return h->free[w * 64 + (unsigned)__builtin_ctzl(bits)];
        }
    }
    struct span *best = NULL;
    for (struct span *s = h->free[0]; s; s = s->next)
        if (s->npages >= npages && (!best || s->npages < best->npages ||
                                    (s->npages == best->npages && s->base < best->base)))
            best = s;
    return best;
}

static bool grow(struct mheap *h, uint32_t npages)
{
    size_t bytes = (size_t)npages << PAGE_SHIFT;
    struct arena *ar = arena_grow(h, bytes < ARENA_SIZE ? ARENA_SIZE : bytes);
    if (!ar) return false;
    bytes = (bytes + ARENA_SIZE - 1) & ~(ARENA_SIZE - 1);
    struct span *s = span_new(h);
    s->base = ar->base;
    s->npages = (uint32_t)(bytes >> PAGE_SHIFT);
    s->scavenged = 1; /* untouched: zero, not resident */
    s->free_since = 0;
    h->pages_free += s->npages;
    h->pages_released += s->npages;
    free_insert(h, s);
    return true;
}

/* ---- allocation -------------------------------------------------------------------- */

static struct span *alloc_locked(struct mheap *h, uint32_t npages)
{
    struct span *s = find_fit(h, npages);
    if (!s) {
        if (!grow(h, npages)) return NULL;
        s = find_fit(h, npages);
    }
    list_remove(h, s);
    h->pages_free -= s->npages;
    if (s->scavenged) {
        h->pages_released -= s->npages;
        /* Relaxed: a statistic (the limit's check, mem.h). */
        atomic_fetch_add_explicit(&mem.heap_resident, (int64_t)npages << PAGE_SHIFT,
                                  memory_order_relaxed);
    }
    if (s->npages > npages) { /* split: the rest stays free */
        struct span *rest = span_new(h);
        rest->base = s->base + ((uintptr_t)npages << PAGE_SHIFT);
        rest->npages = s->npages - npages;
        rest->scavenged = s->scavenged;
        rest->needzero = s->needzero;
        rest->free_since = s->free_since;
        rest->state = SPAN_FREE;
        h->pages_free += rest->npages;
        if (rest->scavenged) h->pages_released += rest->npages;
        set_ends(rest);
        list_insert(h, rest);
        s->npages = npages;
    }
    s->needzero = s->scavenged ? 0 : 1;
    s->scavenged = 0;
    /* No longer free: the caller sets its real state after dropping the
     * lock, and meanwhile a neighbour being freed must not merge with it
     * (mergeable) nor the collector take it for an object's span. */
    s->state = SPAN_DEAD;
    h->pages_inuse += npages;
    set_all_pages(s);
    return s;
}

/* Pages that were released (or never touched) are resident again: under
 * the memory limit, give others back if memstats.sys is now past it, with
 * a margin so that not every allocation has to (Go's allocSpan scavenges
 * what it pages in when over the limit). No lock held. */
static void limit_check(void)
{
    /* Relaxed: hints; the scavenge itself is under the heap locks. */
    int64_t limit = atomic_load_explicit(&mem.memlimit, memory_order_relaxed);
    if (GORT_LIKELY(limit == INT64_MAX)) return;
    int64_t sys = atomic_load_explicit(&mem.heap_resident, memory_order_relaxed) +
                  (int64_t)atomic_load_explicit(&mem.meta_bytes, memory_order_relaxed);
    if (sys > limit) mem_scavenge_to(limit - limit / 64);
}

struct span *mheap_alloc(struct mheap *h, uint32_t npages)
{
    rlock_acquire(&h->lock);
    struct span *s = alloc_locked(h, npages);
    bool paged_in = s && !s->needzero;
    rlock_release(&h->lock);
    if (!s) mem_throw_oom((size_t)npages << PAGE_SHIFT);
    if (paged_in) limit_check();
    return s;
}

void mheap_free_locked(struct mheap *h, struct span *s)
{
    h->pages_inuse -= s->npages;
    h->pages_free += s->npages;
    atomic_store_explicit(&s->owner, NOBODY, memory_order_relaxed);
    s->scavenged = 0;
    s->needzero = 1;
    s->free_since = ki_nanotime();
    s->nalloc = 0;
    s->large_off = 0;
    s->spanclass = 0;
    free_insert(h, s);
}

void mheap_free(struct mheap *h, struct span *s)
{
    rlock_acquire(&h->lock);
    mheap_free_locked(h, s);
    rlock_release(&h->lock);
}

/* ---- large objects ------------------------------------------------------------------ */

void *mheap_alloc_large(int node, size_t n, size_t align, bool zero, enum span_kind kind)
{
    if (n > MAX_ALLOC || align > MAX_ALLOC) return NULL;
    if (n == 0) n = 1; /* the object must lie inside the span even when aligned up */
    size_t pad = align > PAGE_SIZE ? align - PAGE_SIZE : 0;
    size_t npages = (n + pad + PAGE_SIZE - 1) >> PAGE_SHIFT;
    if (npages > UINT32_MAX) return NULL;
    struct mheap *h = &node_mem(node)->heap;
    bool gc = kind != KIND_MANUAL;
    /* In the sweep phase: dead large objects' pages first, and the share
     * of the sweep this allocation owes (sweep.c), before taking more. */
    if (GORT_UNLIKELY(atomic_load_explicit(&mem.unswept, memory_order_relaxed) != 0)) {
        mem_gc_reclaim(h, (uint32_t)npages);
        if (gc) mem_gc_sweep_credit_slow();
    }
    rlock_acquire(&h->lock);
    struct span *s = alloc_locked(h, (uint32_t)npages);
    if (!s) {
        rlock_release(&h->lock);
        mem_throw_oom(n);
    }
    uintptr_t p = align > PAGE_SIZE ? (s->base + align - 1) & ~(align - 1) : s->base;
    s->large_off = (uint32_t)(p - s->base);
    s->state = SPAN_LARGE;
    s->spanclass = (uint16_t)spanclass_of(kind, 0);
    h->large_nalloc++;
    h->large_bytes += npages << PAGE_SHIFT;
    bool needzero = s->needzero;
    if (gc) {
        memset((void *)s->gcmarks, 0, sizeof s->gcmarks);
        mheap_large_gc_add(h, s);
    }
    rlock_release(&h->lock);
    if (!needzero) limit_check();
    if (zero && needzero) memset((void *)p, 0, n);
    if (gc) {
        /* Allocate black while marking; relaxed load: the flag changes only
         * with the world stopped. */
        if (GORT_UNLIKELY(gort__gc_barrier)) span_mark(s, 0);
        mem_gc_took((int64_t)(npages << PAGE_SHIFT));
    }
    return (void *)p;
}

void mheap_free_large(struct span *s, uintptr_t a)
{
    struct mheap *h = &node_mem(s->node)->heap;
    rlock_acquire(&h->lock);
    if (s->state != SPAN_LARGE || a != s->base + s->large_off) {
        rlock_release(&h->lock);
        mem_bad_free(s->state == SPAN_LARGE ? "pointer into the middle of an object"
                                            : "double free or pointer not allocated by gort",
                     (void *)a);
    }
    h->large_nfree++;
    h->large_bytes_freed += (uint64_t)s->npages << PAGE_SHIFT;
    mheap_free_locked(h, s);
    rlock_release(&h->lock);
}

/* ---- scavenger ---------------------------------------------------------------------- */

uint64_t mheap_scavenge(struct mheap *h, int64_t older_than, uint64_t max_bytes)
{
    uint64_t released = 0;
    rlock_acquire(&h->lock);
    struct span *todo = NULL;
    for (unsigned i = 0; i < HEAP_LISTS && released < max_bytes; i++) {
        struct span *next;
        for (struct span *s = h->free[i]; s && released < max_bytes; s = next) {
            next = s->next;
            if (s->scavenged || s->free_since > older_than) continue;
            list_remove(h, s);
            s->state = SPAN_DEAD; /* in transit: neighbours do not merge with it */
            s->next = todo;
            todo = s;
            released += (uint64_t)s->npages << PAGE_SHIFT;
        }
    }
    while (todo) {
        struct span *s = todo;
        todo = s->next;
        (void)ki_mdiscard((void *)s->base, (size_t)s->npages << PAGE_SHIFT);
        s->scavenged = 1;
        s->needzero = 0;
        h->pages_released += s->npages;
        free_insert(h, s);
    }
    h->released_total += released;
    /* Relaxed: a statistic (see alloc_locked). */
    atomic_fetch_sub_explicit(&mem.heap_resident, (int64_t)released, memory_order_relaxed);
    rlock_release(&h->lock);
    return released;
}

void mem_heap_pages(int node, uint64_t *inuse, uint64_t *free, uint64_t *released)
{
    mem_init();
    struct mheap *h = &node_mem(node)->heap;
    rlock_acquire(&h->lock);
    *inuse = h->pages_inuse << PAGE_SHIFT;
    *free = h->pages_free << PAGE_SHIFT;
    *released = h->pages_released << PAGE_SHIFT;
    rlock_release(&h->lock);
}

/* mem/malloc.c: the public allocation API (include/gort.h, "memory"):
 * gort_malloc and friends, gort_new, memstats, the scavenger's entry points.
 *
 * Fast paths, both inline here with no lock and no atomic RMW:
 *   gort_malloc  cache (three loads: TLS M, its P, the P's cache), size
 *                class (one table load), pop (mcache_pop, mem.h): 26
 *                instructions, no frame (the refill is a tail call).
 *   gort_free    span (two loads: arena_map, the page table), owner check
 *                (which also rejects large and GC objects), object-start
 *                and double-free checks (one multiply, one range test),
 *                push on the span's free list, one counter: 52
 *                instructions, no frame.
 * Everything else (no cache yet, no P, large objects, frees to another
 * cache's span, errors) goes to the _slow functions.
 *
 * The scavenger: mem_scavenge_tick(now) is the hook sysmon calls (any
 * thread, no P needed, not reentrant with itself: a CAS on last_scavenge
 * elects one caller per period). Until sysmon calls it, the refill path of
 * every 1024th span drives it. Each period (SCAV_PERIOD_NS) it tidies the
 * caches nobody runs (orphans, fallbacks), hands kept empty spans back to
 * the heaps, and returns pages free for SCAV_IDLE_NS or more, at most
 * SCAV_BUDGET bytes per node, so one tick costs at most a few milliseconds
 * of madvise. gort_free_os_memory does all of it at once, without limits.
 * Under the collector's memory limit, mem_scavenge_to returns free pages
 * of any age until memstats.sys is under a target (mheap.c, "The memory
 * limit"); mem_gc_nonheap gives the pacer what the GC heap cannot use.
 */
#include <errno.h>
#include <string.h>

#include "gort.h"
#include "mem/mem.h"

#define SCAV_PERIOD_NS (50 * 1000 * 1000LL)
#define SCAV_IDLE_NS   (1000 * 1000 * 1000LL)
#define SCAV_BUDGET    (16UL << 20)

void mem_tidy_idle_caches(void);

static int current_node(void)
{
    int node;
    if (sched_mcache_slot(&node)) return node < mem.nnodes ? node : 0;
    return mem_current_node();
}

static GORT_NOINLINE void *alloc_slow(size_t n, enum span_kind kind, bool zero, size_t align)
{
    mem_init();
    if (n > MAX_SMALL_SIZE || align > PAGE_SIZE) {
        void *p = mheap_alloc_large(current_node(), n, align, zero, kind);
        if (!p) errno = ENOMEM;
        return p;
    }
    unsigned cls = size_to_class(n);
    if (align > 1)
        while (cls < NUM_SIZE_CLASSES && class_to_size[cls] % align)
            cls++;
    if (cls >= NUM_SIZE_CLASSES) {
        void *p = mheap_alloc_large(current_node(), n, align, zero, kind);
        if (!p) errno = ENOMEM;
        return p;
    }
    unsigned sc = spanclass_of(kind, cls);
    struct mcache *c = mcache_fast();
    if (!c) c = mcache_slow_get();
    void *p = c ? mcache_alloc(c, sc) : mcache_alloc_nop(sc);
    if (zero && kind == KIND_MANUAL) memset(p, 0, n);
    if (kind != KIND_MANUAL && GORT_UNLIKELY(gort__gc_barrier)) mem_gc_mark_new(p);
    return p;
}

/* A refill noted a preemption request (mcache.c note_preempt): yield now,
 * the allocation done, if the caller is the program's own code (gort's
 * callers may hold runtime locks; they yield at their next check). */
static GORT_NOINLINE void alloc_yield(struct mcache *c, void *caller)
{
    c->yield = false;
    if (!sched_user_pc((uintptr_t)caller)) return;
    if (mem_gc_over_goal()) gc_throttle();
    preempt_check();
}

#define ALLOC_YIELD_CHECK(c)                                                          \
    do {                                                                              \
        if (GORT_UNLIKELY((c)->yield)) alloc_yield((c), __builtin_return_address(0)); \
    } while (0)

/* The refill half of the public small-object paths: refill, allocate black
 * while the collector marks (GC classes), then yield if the refill (the
 * only place that sets c->yield) asked for it, the object marked first.
 * Out of line so that the fast paths make no call but tail calls (no frame
 * to build, no register to save). */
static GORT_NOINLINE void *refill_slow(struct mcache *c, unsigned sc, void *caller)
{
    void *p = mcache_refill(c, sc);
    if (sc >= NUM_SIZE_CLASSES && GORT_UNLIKELY(gort__gc_barrier)) mem_gc_mark_new(p);
    if (GORT_UNLIKELY(c->yield)) alloc_yield(c, caller);
    return p;
}

/* The small size class of n (n <= MAX_SMALL_SIZE); one table load. */
#define SMALL_CLASS(n) size_to_class(n)

void *gort_malloc(size_t n)
{
    struct mcache *c = mcache_fast();
    size_t sc;
    if (GORT_LIKELY(n <= SMALL_SIZE_MAX)) /* one compare for the common sizes */
        sc = size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    else if (n <= MAX_SMALL_SIZE)
        sc = size_to_class128[(n - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
    else
        return alloc_slow(n, KIND_MANUAL, false, 1);
    if (GORT_UNLIKELY(!c)) return alloc_slow(n, KIND_MANUAL, false, 1);
    sc = spanclass_of(KIND_MANUAL, (unsigned)sc);
    void *p = mcache_pop(c, sc);
    if (GORT_LIKELY(p)) return p;
    return refill_slow(c, (unsigned)sc, __builtin_return_address(0));
}

void *gort_calloc(size_t n, size_t size)
{
    size_t total;
    if (__builtin_mul_overflow(n, size, &total)) {
        errno = ENOMEM;
        return NULL;
    }
    struct mcache *c = mcache_fast();
    if (GORT_LIKELY(c && total <= MAX_SMALL_SIZE)) {
        void *p = mcache_alloc(c, spanclass_of(KIND_MANUAL, size_to_class(total)));
        return memset(p, 0, total);
    }
    return alloc_slow(total, KIND_MANUAL, true, 1);
}

void *gort_aligned_alloc(size_t align, size_t n)
{
    if (!align || (align & (align - 1))) {
        errno = EINVAL;
        return NULL;
    }
    if (align <= 8) return gort_malloc(n);
    return alloc_slow(n < align && align <= MAX_SMALL_SIZE ? align : n, KIND_MANUAL, false, align);
}

/* gort_free of NULL (nothing) or of an address beyond user space (fatal). */
static GORT_NOINLINE void free_odd(void *p)
{
    if (p) mcache_free_slow(mcache_fast(), NULL, p);
}

void gort_free(void *p)
{
    uintptr_t a = (uintptr_t)p;
    /* NULL (wraps) and addresses past user space in one test; a == 2^47
     * finds the map's extra NULL entry (mem_arena_map). */
    if (GORT_UNLIKELY((a - 1) >> ADDR_BITS)) return free_odd(p);
    /* span_of, the range test done. Relaxed: see struct arena. */
    struct arena *ar = atomic_load_explicit(&mem_arena_map[a >> ARENA_SHIFT], memory_order_relaxed);
    struct mcache *c = mcache_fast();
    if (GORT_UNLIKELY(!ar)) return mcache_free_slow(c, NULL, p);
    struct span *s = atomic_load_explicit(&ar->spans[(a >> PAGE_SHIFT) & (ARENA_PAGES - 1)],
                                          memory_order_relaxed);
    /* Relaxed: only our own store can make owner equal c (mem.h, struct span).
     * Spans no cache owns, and GC spans, have owner NOBODY, never c (not even
     * a NULL c), so this also rejects large and GC objects. */
    if (GORT_LIKELY(atomic_load_explicit(&s->owner, memory_order_relaxed) == c)) {
        uintptr_t off = a - s->base;
        uintptr_t d = ((struct block *)p)->enc ^ mem.secret;
        /* An object start of the span (divtest: mem.h), and not a free
         * block (its word does not decode into the span, list ends
         * included: blk_end). */
        if (GORT_LIKELY(off < s->spanbytes && off * s->divtest < s->divtest &&
                        d - s->base >= s->spanbytes)) {
            ((struct block *)p)->enc = s->free;
            s->free = blk_enc(a);
            s->nalloc--;
            counter_inc(&c->nfree[s->spanclass]);
            if (GORT_UNLIKELY((int32_t)s->nalloc <= s->slow_at))
                return mcache_free_local_slow(c, s);
            return;
        }
    }
    mcache_free_slow(c, s, p);
}

size_t gort_malloc_usable_size(void *p)
{
    if (!p) return 0;
    struct span *s = span_of((uintptr_t)p);
    uintptr_t a = (uintptr_t)p;
    if (s && s->state == SPAN_LARGE && a == s->base + s->large_off)
        return ((size_t)s->npages << PAGE_SHIFT) - s->large_off;
    if (!s || s->state != SPAN_SMALL || a - s->base >= s->spanbytes)
        mem_bad_free("gort_malloc_usable_size of a pointer not allocated by gort", p);
    return s->elemsize;
}

void *gort_realloc(void *p, size_t n)
{
    if (!p) return gort_malloc(n);
    if (n == 0) {
        gort_free(p);
        return NULL;
    }
    size_t have = gort_malloc_usable_size(p);
    if (n <= have && n >= have / 2) return p;
    void *q = gort_malloc(n);
    if (!q) return NULL;
    memcpy(q, p, n < have ? n : have);
    gort_free(p);
    return q;
}

/* ---- garbage-collected objects ----------------------------------------------------- */

/* After a large (or cache-less) allocation: the same waits as alloc_yield's
 * for callers in the program's own code. Large objects never pass through
 * a refill, so this is where a loop of them honours a preemption request
 * (the signal finds it in gort's code, zeroing or in the page heap, most
 * of the time: without this check a stop-the-world waits on it, and with
 * it the collector's start) and waits past the pacer's goal. */
static inline void large_yield(void *caller)
{
    struct g *gp = gort_g();
    if (GORT_LIKELY(!gp)) return;
    bool preempt = atomic_load_explicit(&gp->preempt, memory_order_relaxed);
    if (GORT_LIKELY(!preempt && !mem_gc_over_goal())) return;
    if (!sched_user_pc((uintptr_t)caller)) return;
    if (mem_gc_over_goal()) gc_throttle();
    preempt_check();
}

void *gort_new(size_t n)
{
    struct mcache *c = mcache_fast();
    if (GORT_LIKELY(c && n <= MAX_SMALL_SIZE)) {
        unsigned sc = spanclass_of(KIND_SCAN, SMALL_CLASS(n));
        void *p = mcache_pop(c, sc);
        if (GORT_UNLIKELY(!p)) return refill_slow(c, sc, __builtin_return_address(0));
        /* Allocate black while the collector marks (one load and a branch
         * otherwise; the flag changes only with the world stopped). */
        if (GORT_UNLIKELY(gort__gc_barrier)) mem_gc_mark_new(p);
        return p;
    }
    void *p = alloc_slow(n, KIND_SCAN, true, 1);
    large_yield(__builtin_return_address(0));
    return p;
}

void *gort_new_noscan(size_t n)
{
    struct mcache *c = mcache_fast();
    if (GORT_LIKELY(c && n - 1 < TINY_SIZE - 1)) { /* 1 <= n < 16: the tiny allocator */
        uintptr_t off = c->tinyoff;
        if (!(n & 7))
            off = (off + 7) & ~7UL;
        else if (!(n & 3))
            off = (off + 3) & ~3UL;
        else if (!(n & 1))
            off = (off + 1) & ~1UL;
        if (off + n <= TINY_SIZE && c->tiny) {
            c->tinyoff = off + n;
            return (void *)(c->tiny + off);
        }
        void *p = mcache_tiny_refill(c, n, 1);
        ALLOC_YIELD_CHECK(c);
        return p;
    }
    if (GORT_LIKELY(c && n <= MAX_SMALL_SIZE)) {
        unsigned sc = spanclass_of(KIND_NOSCAN, SMALL_CLASS(n));
        void *p = mcache_pop(c, sc);
        if (GORT_UNLIKELY(!p)) return refill_slow(c, sc, __builtin_return_address(0));
        if (GORT_UNLIKELY(gort__gc_barrier)) mem_gc_mark_new(p);
        return p;
    }
    if (!c && n - 1 < TINY_SIZE - 1) {
        mem_init();
        if ((c = mcache_slow_get())) return gort_new_noscan(n);
        return mcache_tiny_nop(n);
    }
    void *p = alloc_slow(n, KIND_NOSCAN, true, 1);
    large_yield(__builtin_return_address(0));
    return p;
}

/* ---- statistics ---------------------------------------------------------------------- */

void gort_read_memstats(gort_memstats *out)
{
    memset(out, 0, sizeof *out);
    mem_init();
    struct mcache *own = mcache_fast();
    if (own) mcache_flush_remote(own);
    int64_t objects = 0, bytes = 0;
    uint64_t total = 0;
    /* Acquire: pairs with mcache_new's release push (the caches' contents). */
    for (struct mcache *c = atomic_load_explicit(&mem.allcaches, memory_order_acquire); c;
         c = c->allnext)
        for (unsigned sc = 0; sc < NUM_SPAN_CLASSES; sc++) {
            /* Relaxed: statistics, single writers (struct mclass). */
            uint64_t nm = atomic_load_explicit(&c->nmalloc[sc], memory_order_relaxed);
            uint64_t nf = atomic_load_explicit(&c->nfree[sc], memory_order_relaxed);
            int64_t size = class_to_size[sc % NUM_SIZE_CLASSES];
            objects += (int64_t)(nm - nf);
            bytes += (int64_t)(nm - nf) * size;
            total += nm * (uint64_t)size;
        }
    for (unsigned sc = 0; sc < NUM_SPAN_CLASSES; sc++) {
        uint64_t nf = atomic_load_explicit(&mem.foreign_nfree[sc], memory_order_relaxed) +
                      atomic_load_explicit(&mem.gc_nfree[sc], memory_order_relaxed);
        objects -= (int64_t)nf;
        bytes -= (int64_t)nf * class_to_size[sc % NUM_SIZE_CLASSES];
    }
    uint64_t heap_sys = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        struct mheap *h = &node_mem(n)->heap;
        rlock_acquire(&h->lock);
        objects += (int64_t)(h->large_nalloc - h->large_nfree);
        bytes += (int64_t)(h->large_bytes - h->large_bytes_freed);
        total += h->large_bytes;
        heap_sys += (h->pages_inuse + h->pages_free - h->pages_released) << PAGE_SHIFT;
        rlock_release(&h->lock);
    }
    out->heap_objects = objects > 0 ? (uint64_t)objects : 0;
    out->heap_alloc = bytes > 0 ? (uint64_t)bytes : 0;
    out->total_alloc = total;
    out->heap_sys = heap_sys;
    out->sys = heap_sys + atomic_load_explicit(&mem.meta_bytes, memory_order_relaxed);
    gc_read_stats(out);
}

uint64_t gort_heap_released(void)
{
    mem_init();
    uint64_t r = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        struct mheap *h = &node_mem(n)->heap;
        rlock_acquire(&h->lock);
        r += h->pages_released << PAGE_SHIFT;
        rlock_release(&h->lock);
    }
    return r;
}

int64_t mem_gc_nonheap(void)
{
    mem_init();
    int64_t gcbytes = 0;
    /* Acquire: pairs with mcache_new's release push (as in gort_read_memstats). */
    for (struct mcache *c = atomic_load_explicit(&mem.allcaches, memory_order_acquire); c;
         c = c->allnext)
        for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++) {
            /* Relaxed: statistics, single writers (struct mclass). */
            uint64_t nm = atomic_load_explicit(&c->nmalloc[sc], memory_order_relaxed);
            uint64_t nf = atomic_load_explicit(&c->nfree[sc], memory_order_relaxed);
            gcbytes += (int64_t)(nm - nf) * class_to_size[sc % NUM_SIZE_CLASSES];
        }
    for (unsigned sc = NUM_SIZE_CLASSES; sc < NUM_SPAN_CLASSES; sc++)
        gcbytes -= (int64_t)atomic_load_explicit(&mem.gc_nfree[sc], memory_order_relaxed) *
                   class_to_size[sc % NUM_SIZE_CLASSES];
    int64_t sys = (int64_t)atomic_load_explicit(&mem.meta_bytes, memory_order_relaxed);
    int64_t free_resident = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        struct mheap *h = &node_mem(n)->heap;
        rlock_acquire(&h->lock);
        gcbytes += (int64_t)(h->large_gc_pages << PAGE_SHIFT);
        sys += (int64_t)((h->pages_inuse + h->pages_free - h->pages_released) << PAGE_SHIFT);
        free_resident += (int64_t)((h->pages_free - h->pages_released) << PAGE_SHIFT);
        rlock_release(&h->lock);
    }
    int64_t other = sys - free_resident - (gcbytes > 0 ? gcbytes : 0);
    return other > 0 ? other : 0;
}

uint64_t mem_scavenge_to(int64_t target)
{
    mem_init();
    uint64_t r = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        /* Relaxed: statistics; each heap's scavenge is under its lock. */
        int64_t sys = atomic_load_explicit(&mem.heap_resident, memory_order_relaxed) +
                      (int64_t)atomic_load_explicit(&mem.meta_bytes, memory_order_relaxed);
        if (sys <= target) break;
        r += mheap_scavenge(&node_mem(n)->heap, INT64_MAX, (uint64_t)(sys - target));
    }
    return r;
}

/* ---- scavenger ------------------------------------------------------------------------ */

void mem_scavenge_tick(int64_t now_ns)
{
    if (!atomic_load_explicit(&mem.ready, memory_order_acquire)) return;
    int64_t last = atomic_load_explicit(&mem.last_scavenge, memory_order_relaxed);
    if (now_ns - last < SCAV_PERIOD_NS) return;
    /* Relaxed: elects one caller per period; the work is under the locks. */
    if (!atomic_compare_exchange_strong_explicit(&mem.last_scavenge, &last, now_ns,
                                                 memory_order_relaxed, memory_order_relaxed))
        return;
    mem_tidy_idle_caches();
    for (int n = 0; n < mem.nnodes; n++) {
        mcentral_flush(node_mem(n));
        mheap_scavenge(&node_mem(n)->heap, now_ns - SCAV_IDLE_NS, SCAV_BUDGET);
    }
}

uint64_t gort_free_os_memory(void)
{
    mem_init();
    struct mcache *own = mcache_fast();
    if (own) mcache_flush_remote(own);
    mem_tidy_idle_caches();
    uint64_t r = 0;
    for (int n = 0; n < mem.nnodes; n++) {
        mcentral_flush(node_mem(n));
        r += mheap_scavenge(&node_mem(n)->heap, INT64_MAX, UINT64_MAX);
    }
    return r;
}

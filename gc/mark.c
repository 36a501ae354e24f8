/* gc/mark.c: marking: shading, conservative scanning, work buffers, the
 * write barrier and mark assists (Go's mgcmark.go, mgcwork.go,
 * mbarrier.go).
 *
 * Shading (gc_shade): a word is a pointer candidate when it lies within
 * the range of addresses gort's arenas ever covered (two compares), then
 * when the page table maps it into a GC span (mem.h gc_object_of: two
 * loads and a multiply); interior pointers resolve to their object. The
 * mark bit is set with one atomic OR; only the marker that set it greys the
 * object (pushes it to be scanned), and only objects of KIND_SCAN spans:
 * gort_new_noscan memory is never read. Large objects are pushed in
 * OBLET_BYTES pieces so one huge array does not serialise marking.
 *
 * Work buffers: see gc.h. A marker with a P uses the P's buffer (so the
 * write barrier and assists of one P share one), the collector's goroutine
 * its own, a thread without a P the locked nop buffer.
 *
 * The write barrier (gort__store, GORT_STORE's out-of-line body; it stores
 * too, so no preemption can fall between barrier and store): while
 * gort__gc_barrier is set, shade(*slot), shade(ptr) (Go's hybrid
 * barrier: Yuasa's deletion half keeps alive what a scanned stack may have
 * loaded from the slot; Dijkstra's insertion half what an unscanned one
 * stored). gort__gc_barrier changes only with the world stopped, so every
 * goroutine sees it flip at a switch point: no fence on the store side.
 *
 * Mark assists (gc_assist): an allocator that takes fresh heap while the
 * collector marks scans twice as many bytes of grey objects first (Go pays
 * assist credit per byte too; no credit bank here). Assists never yield.
 */
#include <string.h>

#include "gc/gc.h"

volatile unsigned gort__gc_barrier; /* set while marking (world stopped to change it) */

/* ---- work buffers ----------------------------------------------------------------- */

static struct wbuf *wbuf_get_empty(void)
{
    rlock_acquire(&gc.wlock);
    struct wbuf *b = gc.empty;
    if (b) gc.empty = b->next;
    rlock_release(&gc.wlock);
    if (!b) {
        b = mem_meta_alloc(sizeof *b); /* never freed: reused across cycles */
    }
    b->next = NULL;
    b->n = 0;
    return b;
}

static void wbuf_put_full(struct wbuf *b)
{
    rlock_acquire(&gc.wlock);
    b->next = gc.full;
    gc.full = b;
    /* Relaxed: a hint for markers looking for work; the list is locked. */
    atomic_fetch_add_explicit(&gc.nfull, 1, memory_order_relaxed);
    rlock_release(&gc.wlock);
}

static struct wbuf *wbuf_get_full(void)
{
    if (!atomic_load_explicit(&gc.nfull, memory_order_relaxed)) return NULL;
    rlock_acquire(&gc.wlock);
    struct wbuf *b = gc.full;
    if (b) {
        gc.full = b->next;
        atomic_fetch_sub_explicit(&gc.nfull, 1, memory_order_relaxed);
    }
    rlock_release(&gc.wlock);
    return b;
}

static void wbuf_put_empty(struct wbuf *b)
{
    rlock_acquire(&gc.wlock);
    b->next = gc.empty;
    gc.empty = b;
    rlock_release(&gc.wlock);
}

static inline void push(struct gcwork *w, uintptr_t lo, uintptr_t len)
{
    struct wbuf *b = w->buf;
    if (GORT_UNLIKELY(!b)) b = w->buf = wbuf_get_empty();
    if (GORT_UNLIKELY(b->n == WBUF_PAIRS)) {
        wbuf_put_full(b);
        b = w->buf = wbuf_get_empty();
    }
    b->v[2 * b->n] = lo;
    b->v[2 * b->n + 1] = len;
    b->n++;
}

static inline bool pop(struct gcwork *w, uintptr_t *lo, uintptr_t *len)
{
    struct wbuf *b = w->buf;
    if (GORT_UNLIKELY(!b || b->n == 0)) {
        struct wbuf *f = wbuf_get_full();
        if (!f) return false;
        if (b) wbuf_put_empty(b);
        b = w->buf = f;
    }
    b->n--;
    *lo = b->v[2 * b->n];
    *len = b->v[2 * b->n + 1];
    return true;
}

void gc_flush(struct gcwork *w)
{
    if (w->buf && w->buf->n) {
        wbuf_put_full(w->buf);
        w->buf = NULL;
    }
}

struct gcwork *gc_p_work(void)
{
    struct m *m = gort_m();
    struct p *p = m ? m->p : NULL;
    if (!p) return NULL;
    if (GORT_UNLIKELY(!p->gcw)) p->gcw = mem_meta_alloc(sizeof *p->gcw);
    return p->gcw;
}

bool gc_work_empty(void)
{
    if (atomic_load_explicit(&gc.nfull, memory_order_relaxed)) return false;
    int32_t procs = atomic_load(&gomaxprocs);
    for (int32_t i = 0; i < procs; i++) {
        struct gcwork *w = allp[i]->gcw;
        if (w && w->buf && w->buf->n) return false;
    }
    return !(gc.nop_work.buf && gc.nop_work.buf->n);
}

/* ---- shading and scanning ---------------------------------------------------------- */

void gc_shade(struct gcwork *w, uintptr_t v)
{
    /* Relaxed: the bounds only widen; an arena made during this cycle
     * holds only objects allocated black. */
    if (v < atomic_load_explicit(&mem.arena_lo, memory_order_relaxed) ||
        v >= atomic_load_explicit(&mem.arena_hi, memory_order_relaxed))
        return;
    uintptr_t start;
    uint32_t idx;
    struct span *s = gc_object_of(v, &start, &idx);
    if (!s || !span_mark(s, idx)) return;
    uintptr_t size = span_objsize(s);
    w->marked += (int64_t)size;
    if (s->spanclass / NUM_SIZE_CLASSES != KIND_SCAN) return;
    for (uintptr_t off = 0; off < size; off += OBLET_BYTES)
        push(w, start + off, size - off < OBLET_BYTES ? size - off : OBLET_BYTES);
}

/* Reads other goroutines' stacks and whole objects, ASan redzones
 * included: not instrumented. */
__attribute__((no_sanitize("address"))) void gc_scan_range(struct gcwork *w, uintptr_t lo,
                                                           uintptr_t hi)
{
    uintptr_t alo = atomic_load_explicit(&mem.arena_lo, memory_order_relaxed);
    uintptr_t aspan = atomic_load_explicit(&mem.arena_hi, memory_order_relaxed) - alo;
    lo = (lo + 7) & ~7UL;
    for (uintptr_t p = lo; p + 8 <= hi; p += 8) {
        uintptr_t v = *(volatile uintptr_t *)p;
        if (GORT_UNLIKELY(v - alo < aspan)) gc_shade(w, v);
    }
    w->scanned += (int64_t)(hi > lo ? hi - lo : 0);
}

/* Share work when others have none (Go's gcWork.balance): half of a
 * well-filled local buffer goes to the global lists, so assists and other
 * markers find something to do. */
static void balance(struct gcwork *w)
{
    struct wbuf *b = w->buf;
    if (!b || b->n < 64 || atomic_load_explicit(&gc.nfull, memory_order_relaxed)) return;
    struct wbuf *half = wbuf_get_empty();
    uint32_t k = b->n / 2;
    memcpy(half->v, b->v + 2 * (b->n - k), 2 * k * sizeof b->v[0]);
    half->n = k;
    b->n -= k;
    wbuf_put_full(half);
}

bool gc_drain(struct gcwork *w, int64_t budget, bool preemptible)
{
    int64_t start = w->scanned;
    uintptr_t lo, len;
    uint32_t n = 0;
    while (pop(w, &lo, &len)) {
        if ((n & 15) == 0) balance(w);
        gc_scan_range(w, lo, lo + len);
        if (budget >= 0 && w->scanned - start >= budget) return false;
        if (preemptible && (n & 63) == 0) gc_preempt_point();
        n++;
    }
    return true;
}

/* ---- the write barrier ---------------------------------------------------------------- */

static void barrier_shade(uintptr_t a, uintptr_t b)
{
    struct gcwork *w = gc_p_work();
    if (GORT_LIKELY(w)) {
        gc_shade(w, a);
        gc_shade(w, b);
        gc_flush_if_asked(w);
        return;
    }
    rlock_acquire(&gc.nop_lock);
    gc_shade(&gc.nop_work, a);
    gc_shade(&gc.nop_work, b);
    rlock_release(&gc.nop_lock);
}

void barrier_shade_one(uintptr_t v)
{
    barrier_shade(v, 0);
}

void gort__store(void **slot, void *ptr)
{
    if (GORT_UNLIKELY(gort__gc_barrier))
        barrier_shade((uintptr_t) * (void *volatile *)slot, (uintptr_t)ptr);
    *(void *volatile *)slot = ptr;
}

void gort_gc_memmove(void *dst, const void *src, size_t n)
{
    if (GORT_UNLIKELY(gort__gc_barrier)) {
        /* Both halves of the hybrid barrier for every word: shade what is
         * overwritten and what is copied. */
        uintptr_t d = (uintptr_t)dst, s = (uintptr_t)src;
        for (uintptr_t a = (d + 7) & ~7UL; a + 8 <= d + n; a += 8)
            barrier_shade(*(volatile uintptr_t *)a, 0);
        for (uintptr_t a = (s + 7) & ~7UL; a + 8 <= s + n; a += 8)
            barrier_shade(*(const volatile uintptr_t *)a, 0);
    }
    memmove(dst, src, n);
}

/* ---- mark assists --------------------------------------------------------------------- */

void gc_assist(int64_t bytes)
{
    if (atomic_load_explicit(&gc.phase, memory_order_relaxed) != GC_MARK) return;
    struct gcwork *w = gc_p_work();
    if (!w) return;
    int64_t t0 = ki_nanotime();
    gc_drain(w, 2 * bytes, false);
    gc_flush_if_asked(w);
    /* Relaxed: statistics. */
    atomic_fetch_add_explicit(&gc.assist_ns, ki_nanotime() - t0, memory_order_relaxed);
}

/* mem/mcache.c: per-P caches: refill, remote frees, notifications, release
 * and adoption, the fallback caches of threads without a P.
 *
 * The fast paths are inline (mem.h mcache_alloc; malloc.c gort_free): a pop
 * or push on the owning span's free list, no lock, no atomic RMW. Everything
 * here is their slow half (the _slow / _refill of each pair), entered once
 * per span's worth of objects or for frees that are not the owner's.
 *
 * Remote frees (mem.h, "Remote-free notification"): a cache that frees
 * objects of another cache's span gathers consecutive frees to the same span
 * into a chain (up to REMOTE_BATCH_MAX) and publishes the chain with one CAS
 * on the span's tfree word; a different span, a full batch, or any slow path
 * of the cache (refill, release, memstats) flushes it. So a producer/consumer
 * pair pays one CAS per 32 frees, and frees always reach the owning span's
 * node. A thread without a P pushes each block alone.
 *
 * Destroyed Ps (mcache_release, world stopped): the cache flushes its batch,
 * collects its notifications, gives its empty spans back, and goes on its
 * node's orphan list with its partly used spans; the next P created on that
 * node adopts the whole cache. Remote frees to an orphan's spans keep landing
 * on the spans (and its notify stack) meanwhile; mem_scavenge_tick collects
 * them and retires spans that empty. Caches are never freed, so a freer
 * that read s->owner can always push on that cache's notify stack.
 *
 * Threads without a P (foreign threads, before gort_main, blocking regions)
 * allocate through their node's fallback cache under fallback_lock; it is a
 * cache like the others, owned by whoever holds the lock.
 *
 * Known limit: remote frees reach their span at once, but the owner turns
 * them back into free pages only in its own slow path. A P that stays idle
 * (or keeps allocating only other classes without refilling) holds the
 * spans other Ps emptied until it allocates again, its P is destroyed, or
 * (with the collector) the next stop-the-world flushes every cache. Nothing
 * here can take another running P's cache without a lock on its fast path.
 */
#include <string.h>

#include "mem/mem.h"

static struct span *const EMPTY = &mem_empty_span;

static inline bool span_has_free(const struct span *s)
{
    return !span_free_empty(s) || s->pend || s->carve < s->limit;
}

/* ---- span lists (owner) ------------------------------------------------------------ */

/* Leave the full list only with a quarter of the span free, by local frees
 * (slow_at) or remote ones (the notify credit, arm_notify). Hysteresis: a
 * span bouncing between full and current for one block at a time costs a
 * refill and two atomics per block (mem.h, "Remote-free notification"; the
 * no-stranding argument there needs slow_at > nelems / 2 - 1: the fraction
 * asked for must stay under a half). */
static inline int32_t full_slow_at(const struct span *s)
{
    return (int32_t)(s->nelems - (s->nelems + 3) / 4);
}

static void list_push(struct span **head, struct span *s, uint8_t which)
{
    s->prev = NULL;
    s->next = *head;
    if (*head) (*head)->prev = s;
    *head = s;
    s->list = which;
    s->slow_at = which == LIST_PARTIAL ? 0 : full_slow_at(s);
}

static void list_unlink(struct span **head, struct span *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        *head = s->next;
    if (s->next) s->next->prev = s->prev;
    s->next = s->prev = NULL;
    s->list = LIST_NONE;
    s->slow_at = -1;
}

/* ---- collecting remote frees (owner) ----------------------------------------------- */

/* The length of the chain in tfree word old (mem.h, "Remote-free
 * notification"), given the owner's tf_base. */
static inline uint32_t chain_len(const struct span *s, uintptr_t old)
{
    return (uint32_t)(((old >> TF_COUNT_SHIFT) - s->tf_base) & TF_COUNT_MASK);
}

/* Put the chain of n blocks starting at raw address chain (linked by
 * encoded words, ending in the encoded blk_end(s)) on s's free list;
 * returns n. On an empty free list (a refill, a full span) the chain is
 * the new list as it stands, since both end in blk_end(s); on a non-empty
 * one (a partial span made current) it waits in s->pend until the list
 * runs out (take_pend). No walk either way, so no miss per block here (the
 * allocations that pop them read their links anyway); only a second chain
 * while one is pending is walked to its tail and appended to the list. */
static uint32_t merge_chain(struct span *s, uintptr_t chain, uint32_t n)
{
    if (!chain) return 0;
    s->nalloc -= n;
    if (!span_free_empty(s) && !s->pend) {
        s->pend = chain;
        return n;
    }
    if (!span_free_empty(s)) {
        struct block *b = (struct block *)chain;
        uintptr_t next;
        while (!blk_is_end(next = b->enc ^ mem.secret))
            b = (struct block *)next;
        b->enc = s->free;
    }
    s->free = blk_enc(chain);
    return n;
}

/* s's free list ran out: make its pending chain the list, if any. */
static inline bool take_pend(struct span *s)
{
    if (!s->pend) return false;
    s->free = blk_enc(s->pend);
    s->pend = 0;
    return true;
}

/* Take s's remote chain, keeping TF_QUEUED (only the notify drain clears it)
 * and clearing TF_NOTIFY (the caller is making s its current span). */
static uint32_t collect(struct span *s)
{
    uintptr_t old = atomic_load_explicit(&s->tfree, memory_order_relaxed);
    for (;;) {
        if (!(old & TF_CHAIN)) {
            if (old & TF_NOTIFY)
                atomic_fetch_and_explicit(&s->tfree, ~TF_NOTIFY, memory_order_relaxed);
            return 0;
        }
        /* Acquire: the chain's links and blocks were written before the
         * freers' release CAS (and the count they added is in this word).
         * The count restarts at 0 (tf_base), in the same CAS. */
        if (atomic_compare_exchange_weak_explicit(&s->tfree, &old, old & TF_QUEUED,
                                                  memory_order_acquire, memory_order_relaxed)) {
            uint32_t n = chain_len(s, old);
            s->tf_base = 0;
            return merge_chain(s, old & TF_CHAIN, n);
        }
    }
}

/* Ask remote freers to notify us (s is leaving the current slot), unless a
 * chain is waiting: then collect it and return false. */
static bool arm_notify(struct span *s)
{
    int32_t credit = (int32_t)s->nalloc - full_slow_at(s);
    if (credit < 1) credit = 1;
    uintptr_t old = atomic_load_explicit(&s->tfree, memory_order_relaxed);
    for (;;) {
        if (old & TF_CHAIN) {
            collect(s);
            return false;
        }
        /* Relaxed: no data is published; a freer that sees TF_NOTIFY only
         * counts up from -credit in this word (RMWs on one location agree)
         * and pushes the span on our notify stack, with its own release.
         * The chain is empty, so no count is lost by the reset. */
        uint32_t base = (uint32_t)(-(uintptr_t)credit & TF_COUNT_MASK);
        uintptr_t nw = (old & TF_QUEUED) | TF_NOTIFY | (uintptr_t)base << TF_COUNT_SHIFT;
        if (atomic_compare_exchange_weak_explicit(&s->tfree, &old, nw, memory_order_relaxed,
                                                  memory_order_relaxed)) {
            s->tf_base = base;
            return true;
        }
    }
}

static inline bool queued(struct span *s)
{
    return atomic_load_explicit(&s->tfree, memory_order_relaxed) & TF_QUEUED;
}

/* s (owned, on no list, not current) goes back to the heap when empty, on
 * the partial list when it has free blocks (remote frees to it just wait on
 * its chain until it is current again), else on the full list with
 * TF_NOTIFY armed. An empty span still on the notify stack waits there for
 * the drain. */
static void park_span(struct mclass *k, struct span *s)
{
    for (;;) {
        if (s->nalloc == 0 && s->spanclass < NUM_SIZE_CLASSES && !queued(s)) {
            mcentral_retire(s);
            return;
        }
        if (span_has_free(s)) {
            list_push(&k->partial, s, LIST_PARTIAL);
            return;
        }
        if (arm_notify(s)) {
            list_push(&k->full, s, LIST_FULL);
            return;
        }
        /* a chain arrived and was collected: s has free blocks now */
    }
}

void mcache_drain_notify(struct mcache *c)
{
    /* Acquire: pairs with the pushers' release CAS (notify_next, and the
     * TF_QUEUED they set before). */
    struct span *s = atomic_exchange_explicit(&c->notify, NULL, memory_order_acquire);
    while (s) {
        struct span *next = s->notify_next;
        /* Acquire: the chain (as in collect). Clears TF_QUEUED: from here a
         * freer may queue s again, after we are done with notify_next. */
        uintptr_t old = atomic_exchange_explicit(&s->tfree, 0, memory_order_acquire);
        merge_chain(s, old & TF_CHAIN, chain_len(s, old));
        s->tf_base = 0;
        struct mclass *k = &c->cls[s->spanclass];
        if (s->list == LIST_FULL) {
            list_unlink(&k->full, s);
            park_span(k, s);
        } else if (s->list == LIST_PARTIAL && s->nalloc == 0) {
            list_unlink(&k->partial, s);
            park_span(k, s); /* retires it */
        }
        s = next;
    }
}

/* ---- remote frees ------------------------------------------------------------------ */

/* Publish the chain head..tail of n blocks (raw addresses; tail's link is
 * overwritten) on s, notifying the owner when s is on its full list and
 * this exhausts its credit. */
static void remote_push(struct span *s, uintptr_t head, uintptr_t tail, uint32_t n)
{
    struct block *t = (struct block *)tail;
    uintptr_t old = atomic_load_explicit(&s->tfree, memory_order_relaxed), nw;
    do {
        t->enc = blk_enc((old & TF_CHAIN) ? old & TF_CHAIN : blk_end(s));
        /* The count adds n (mod 2^17: the carry leaves the word); armed,
         * it started at -credit, so carrying past 2^17 - 1 uses it up. */
        nw = (head | (old & ~TF_CHAIN)) + ((uintptr_t)n << TF_COUNT_SHIFT);
        if ((old & (TF_NOTIFY | TF_QUEUED)) == TF_NOTIFY &&
            (old >> TF_COUNT_SHIFT) + n > TF_COUNT_MASK)
            nw |= TF_QUEUED;
        /* Release: publishes the chain's links (and the freed blocks) to
         * the owner's acquire in collect / mcache_drain_notify. */
    } while (!atomic_compare_exchange_weak_explicit(&s->tfree, &old, nw, memory_order_release,
                                                    memory_order_relaxed));
    if ((nw & TF_QUEUED) && !(old & TF_QUEUED)) {
        /* We set TF_QUEUED: s is ours to push, once. Its owner cannot change:
         * our blocks keep nalloc > 0 until the owner collects them. */
        struct mcache *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
        struct span *h = atomic_load_explicit(&o->notify, memory_order_relaxed);
        do {
            s->notify_next = h;
            /* Release: publishes notify_next; pairs with the drain's acquire. */
        } while (!atomic_compare_exchange_weak_explicit(&o->notify, &h, s, memory_order_release,
                                                        memory_order_relaxed));
    }
}

void mcache_flush_remote(struct mcache *c)
{
    if (!c->rb_n) return;
    remote_push(c->rb_span, c->rb_head, c->rb_tail, c->rb_n);
    c->rb_span = NULL;
    c->rb_n = 0;
}

_Noreturn void mem_bad_free(const char *what, const void *p)
{
    gort__fatal("gort_free(%p): %s", p, what);
}

void mcache_free_slow(struct mcache *c, struct span *s, void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (!s) mem_bad_free("pointer not allocated by gort", p);
    if (s->state == SPAN_LARGE) {
        if (s->spanclass >= NUM_SIZE_CLASSES)
            mem_bad_free("object allocated by gort_new (garbage-collected, not freed by hand)", p);
        mheap_free_large(s, a);
        return;
    }
    if (s->state != SPAN_SMALL) mem_bad_free("double free or pointer not allocated by gort", p);
    uintptr_t off = a - s->base;
    if (off >= s->spanbytes) mem_bad_free("pointer not allocated by gort", p);
    if ((uint32_t)((off * s->divmagic) >> 32) * s->elemsize != off)
        mem_bad_free("pointer into the middle of an object", p);
    if (s->spanclass >= NUM_SIZE_CLASSES)
        mem_bad_free("object allocated by gort_new (garbage-collected, not freed by hand)", p);
    struct mcache *o = atomic_load_explicit(&s->owner, memory_order_relaxed);
    uintptr_t d = ((struct block *)p)->enc ^ mem.secret;
    if (o == NOBODY || d == 0 || d - s->base < s->spanbytes) mem_bad_free("double free", p);
    if (o == c && c) { /* ours after all (the caller did not check) */
        ((struct block *)p)->enc = s->free;
        s->free = blk_enc(a);
        s->nalloc--;
        counter_inc(&c->nfree[s->spanclass]);
        if ((int32_t)s->nalloc <= s->slow_at) mcache_free_local_slow(c, s);
        return;
    }
    if (!c) {
        /* Relaxed: a statistic. */
        atomic_fetch_add_explicit(&mem.foreign_nfree[s->spanclass], 1, memory_order_relaxed);
        remote_push(s, a, a, 1);
        return;
    }
    counter_inc(&c->nfree[s->spanclass]);
    if (c->rb_span == s && c->rb_n < REMOTE_BATCH_MAX) {
        ((struct block *)p)->enc = blk_enc(c->rb_head);
        c->rb_head = a;
        c->rb_n++;
        return;
    }
    mcache_flush_remote(c);
    ((struct block *)p)->enc = blk_enc(blk_end(s));
    c->rb_span = s;
    c->rb_head = c->rb_tail = a;
    c->rb_n = 1;
}

void mcache_free_local_slow(struct mcache *c, struct span *s)
{
    struct mclass *k = &c->cls[s->spanclass];
    if (s->list == LIST_FULL) {
        /* A free block again: no notifications needed, but TF_NOTIFY stays
         * set (no atomic RMW on the line the freers write): at worst a
         * freer uses up the credit and queues s, and the drain collects its
         * chain on the partial list (mem.h, "Remote-free notification"). */
        list_unlink(&k->full, s);
        list_push(&k->partial, s, LIST_PARTIAL);
    }
    if (s->nalloc == 0 && s->list == LIST_PARTIAL && !queued(s)) {
        list_unlink(&k->partial, s);
        mcentral_retire(s);
    }
}

/* ---- refill ------------------------------------------------------------------------ */

/* Thread a page's worth of s's uncarved objects onto its (empty) free
 * list, and at least CARVE_MIN (a large class still refills only every
 * CARVE_MIN objects). On fresh memory (uncarved blocks known zero: see
 * take_fresh) only the blocks that start in the OS page of the first one,
 * at least one: the links written are the only stores to those pages, and
 * a page written ahead of use is resident whether the program ever uses
 * its blocks or not. */
#define CARVE_MIN    16
#define OS_PAGE_SIZE 4096UL
static void carve(struct span *s)
{
    uintptr_t size = s->elemsize;
    uintptr_t n = (s->limit - s->carve) / size;
    uintptr_t max = PAGE_SIZE / size > CARVE_MIN ? PAGE_SIZE / size : CARVE_MIN;
    if (!s->needzero) {
        uintptr_t page_end = (s->carve | (OS_PAGE_SIZE - 1)) + 1;
        uintptr_t in_page = (page_end - s->carve + size - 1) / size;
        if (max > in_page) max = in_page;
    }
    if (n > max) n = max;
    uintptr_t first = s->carve, last = first + (n - 1) * size;
    for (uintptr_t b = first; b < last; b += size)
        ((struct block *)b)->enc = blk_enc(b + size);
    ((struct block *)last)->enc = s->free; /* empty: the encoded blk_end */
    s->free = blk_enc(first);
    s->carve = last + size;
}

/* Blocks of at least FRESH_MIN bytes carved from fresh memory are handed
 * out with no store to them at all (Go's allocator leaves fresh pages
 * untouched too): an idle 4 KiB buffer costs no resident page until the
 * program writes it. Sound because such a block's first word is already
 * what mcache_pop would have written (0: "not a free-list link", the
 * double-free test's view of an allocated block), and the whole block is
 * zero (what a GC class needs). Fresh: s->needzero == 0, i.e. the span's
 * pages held no data when it was handed out (never used, or released to
 * the kernel) or a GC span zeroed by hand_out; blocks at or past s->carve
 * were never handed out since, so they are still zero. The price: one
 * refill per such block while the span is fresh, which at 2 KiB or more
 * is small beside what the program does with the block. */
#define FRESH_MIN 2048
static inline void *take(struct mcache *c, struct span *s, unsigned sc)
{
    if (span_free_empty(s)) {
        if (!s->needzero && s->elemsize >= FRESH_MIN) {
            uintptr_t b = s->carve; /* the caller saw carve < limit */
            s->carve = b + s->elemsize;
            s->nalloc++;
            counter_inc(&c->nmalloc[sc]);
            return (void *)b;
        }
        carve(s);
    }
    return mcache_alloc(c, sc);
}

/* A goroutine allocating in a loop spends most of its time in gort's code,
 * where the preemption signal cannot stop it: note the request for the
 * public entry to act on once the allocation is done (malloc.c). */
static inline void note_preempt(struct mcache *c)
{
    struct g *gp = gort_g();
    if (gp && atomic_load_explicit(&gp->preempt, memory_order_relaxed)) c->yield = true;
}

void *mcache_refill(struct mcache *c, unsigned sc)
{
    note_preempt(c);
    mcache_flush_remote(c);
    /* Relaxed peek: a stale NULL only delays the drain to the next refill. */
    if (atomic_load_explicit(&c->notify, memory_order_relaxed)) mcache_drain_notify(c);
    if (GORT_UNLIKELY(++c->refills % 1024 == 0) && !c->fallback) mem_scavenge_tick(ki_nanotime());
    struct mclass *k = &c->cls[sc];
    struct span *s = c->cur[sc];
    if (sc >= NUM_SIZE_CLASSES) {
        /* A GC class: the cache holds its current span only (mem.h,
         * "Collected spans"); no frees ever reach it. */
        if (s == EMPTY || (span_free_empty(s) && s->carve >= s->limit)) {
            if (s != EMPTY) mcentral_putback_gc(s);
            c->cur[sc] = EMPTY; /* mcentral_grab_gc may start a cycle or assist */
            s = mcentral_grab_gc(c, sc);
            s->list = LIST_CUR;
            c->cur[sc] = s;
        }
        return take(c, s, sc);
    }
    if (s != EMPTY && span_free_empty(s) && !take_pend(s) && !collect(s) && s->carve >= s->limit) {
        c->cur[sc] = EMPTY;
        s->list = LIST_NONE;
        s->slow_at = -1;
        park_span(k, s);
    }
    while (c->cur[sc] == EMPTY) {
        s = k->partial;
        if (s) {
            list_unlink(&k->partial, s);
            if (span_free_empty(s)) take_pend(s); /* e.g. a current span parked by tidy */
            collect(s);
            if (!span_has_free(s)) { /* defensive: partial spans have free blocks */
                park_span(k, s);
                continue;
            }
        } else {
            s = mcentral_grab(c, sc);
        }
        s->list = LIST_CUR;
        s->slow_at = -1;
        c->cur[sc] = s;
    }
    return take(c, c->cur[sc], sc);
}

void *mcache_tiny_refill(struct mcache *c, size_t n, size_t align)
{
    (void)align;
    uintptr_t b = (uintptr_t)mcache_alloc(c, spanclass_of(KIND_NOSCAN, size_to_class(TINY_SIZE)));
    ((uint64_t *)b)[1] = 0; /* word 0 is zeroed by mcache_alloc; GC spans are zeroed */
    if (GORT_UNLIKELY(gort__gc_barrier)) mem_gc_mark_new((void *)b); /* allocate black */
    /* Keep the block with more room left (Go's rule). */
    if (n < c->tinyoff || !c->tiny) {
        c->tiny = b;
        c->tinyoff = n;
    }
    return (void *)b;
}

/* ---- creation, release, adoption --------------------------------------------------- */

static struct mcache *mcache_new(int node)
{
    struct mcache *c = mem_meta_alloc(sizeof *c);
    c->node = node;
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        c->cur[i] = EMPTY;
    struct mcache *h = atomic_load_explicit(&mem.allcaches, memory_order_relaxed);
    do {
        c->allnext = h;
        /* Release: publishes the initialised cache to memstats readers
         * (their acquire load of allcaches). */
    } while (!atomic_compare_exchange_weak_explicit(&mem.allcaches, &h, c, memory_order_release,
                                                    memory_order_relaxed));
    return c;
}

/* The caller owns c (its P, or the orphan lock): give back empty spans, and
 * leave cur spans on the partial/full lists. */
static void mcache_tidy(struct mcache *c)
{
    mcache_flush_remote(c);
    mcache_drain_notify(c);
    for (unsigned sc = 0; sc < NUM_SPAN_CLASSES; sc++) {
        struct mclass *k = &c->cls[sc];
        struct span *s = c->cur[sc];
        if (s != EMPTY) {
            c->cur[sc] = EMPTY;
            if (sc >= NUM_SIZE_CLASSES) {
                mcentral_putback_gc(s);
                continue;
            }
            s->list = LIST_NONE;
            s->slow_at = -1;
            park_span(k, s);
        }
    }
    c->tiny = c->tinyoff = 0;
}

void mcache_release(struct mcache *c)
{
    mcache_tidy(c);
    struct node_mem *nm = node_mem(c->node);
    rlock_acquire(&nm->orphan_lock);
    c->orphan_next = nm->orphans;
    nm->orphans = c;
    rlock_release(&nm->orphan_lock);
}

struct mcache *mcache_slow_get(void)
{
    mem_init();
    int node;
    struct mcache **slot = sched_mcache_slot(&node);
    if (!slot) return NULL;
    if (*slot) return *slot;
    if (node < 0 || node >= mem.nnodes) node = 0;
    struct node_mem *nm = node_mem(node);
    rlock_acquire(&nm->orphan_lock);
    struct mcache *c = nm->orphans;
    if (c) nm->orphans = c->orphan_next;
    rlock_release(&nm->orphan_lock);
    if (c)
        mcache_drain_notify(c);
    else
        c = mcache_new(node);
    *slot = c;
    return c;
}

/* ---- threads without a P ------------------------------------------------------------ */

static struct mcache *fallback_lock(void)
{
    mem_init();
    struct node_mem *nm = node_mem(mem_current_node());
    rlock_acquire(&nm->fallback_lock);
    if (!nm->fallback) {
        nm->fallback = mcache_new(nm->heap.node);
        nm->fallback->fallback = true;
    }
    return nm->fallback;
}

static void fallback_unlock(struct mcache *c)
{
    rlock_release(&node_mem(c->node)->fallback_lock);
}

void *mcache_alloc_nop(unsigned sc)
{
    struct mcache *c = fallback_lock();
    void *p = mcache_alloc(c, sc);
    fallback_unlock(c);
    return p;
}

void *mcache_tiny_nop(size_t n)
{
    struct mcache *c = fallback_lock();
    void *p = mcache_tiny_refill(c, n, 1);
    fallback_unlock(c);
    return p;
}

/* ---- the scavenger's part: orphans and fallback caches ------------------------------ */

void mem_tidy_idle_caches(void);
void mem_tidy_idle_caches(void)
{
    for (int n = 0; n < mem.nnodes; n++) {
        struct node_mem *nm = node_mem(n);
        rlock_acquire(&nm->orphan_lock);
        for (struct mcache *c = nm->orphans; c; c = c->orphan_next)
            mcache_tidy(c);
        rlock_release(&nm->orphan_lock);
        rlock_acquire(&nm->fallback_lock);
        if (nm->fallback) mcache_tidy(nm->fallback);
        rlock_release(&nm->fallback_lock);
    }
}

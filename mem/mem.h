/* mem/mem.h: the allocator's private structures and its inline fast paths.
 *
 * The model is Go's (malloc.go, mheap.go, mcentral.go, mcache.go) with
 * mimalloc's answer to explicit frees (mimalloc's page.c, free.c):
 *
 *   arena     64 MiB of address space, aligned to 64 MiB, owned by one NUMA
 *             node (mbind'ed there on real NUMA machines), with a table
 *             page -> span. arena_map[addr >> 26] finds the arena of any
 *             address in two loads (arena.c).
 *   span      a run of 8 KiB pages: free (in its node's page heap), a small
 *             span cut into objects of one size class, or one large object.
 *   mheap     per node: the page heap (free runs in lists by length, found
 *             through a bitmap, coalesced on free), arenas, span structs,
 *             large objects, the scavenger (mheap.c).
 *   mcentral  per node and span class: where caches get spans (retired
 *             empty spans first, then fresh ones from the heap) (mcentral.c).
 *   mcache    per P: for each span class a current span to allocate from and
 *             the other spans it owns (partial, full); the tiny allocator; a
 *             batch of frees bound for another cache's span (mcache.c).
 *             Threads without a P use a per-node fallback cache under a lock.
 *
 * Span classes. spanclass = kind * NUM_SIZE_CLASSES + sizeclass, kind one of
 * KIND_MANUAL (gort_malloc: freed by hand, never collected, scanned as roots
 * by the future GC), KIND_SCAN and KIND_NOSCAN (gort_new / gort_new_noscan:
 * collected by the future GC, never freed by hand). The three never share a
 * span, so the collector can sweep GC spans without touching manual objects.
 *
 * Ownership. A small span belongs to exactly one mcache from the moment it is
 * handed out until it is empty again (s->owner). Only the owner touches
 * s->free, s->nalloc and the list links; it allocates with no lock and no
 * atomic (mcache_alloc below: a pop and two increments). Frees:
 *   - by the owner: push on s->free (gort_free's fast path, malloc.c);
 *   - by anyone else (another P, a foreign thread, another node): a lock-free
 *     push on s->tfree (several blocks at once when batched), which the owner
 *     collects; the block goes home to its span, never to the freeing node.
 * Invariant (per span, owner's view):
 *   nalloc == objects handed out - frees collected by the owner
 *          == live objects + |tfree list| + |blocks in other caches' batches|
 *   nelems == nalloc + |free| + |pend| + (limit - carve) / elemsize
 *
 * Remote-free notification (mimalloc's delayed free). s->tfree is a pointer
 * to a chain of blocks (TF_CHAIN) with two flag bits and a count:
 *   TF_NOTIFY  the owner keeps s on its full list (no free block known), so
 *              it would never look at s again by itself and must be told
 *              once enough remote frees have arrived (it may linger after s
 *              left the full list by local frees: see below);
 *   TF_QUEUED  s is on its owner's notify stack (owner->notify);
 *   count      (bits 47..63, mod 2^17) every push adds its n blocks in its
 *              CAS; the owner resets it whenever it takes the chain (to 0)
 *              or arms TF_NOTIFY (to minus the credit), and remembers what
 *              it set (s->tf_base), so it knows the chain's length without
 *              walking it: count - tf_base. A chain holds at most nelems
 *              (<= 1024) blocks, far below 2^17.
 * A remote freer that pushes n blocks onto a span with TF_NOTIFY and not
 * TF_QUEUED, and whose n carries the count past 2^17 - 1 (the credit is
 * used up), sets TF_QUEUED in the same CAS and then pushes s on
 * owner->notify. Only
 * the owner clears TF_QUEUED, in one exchange after popping s from that
 * stack (mcache_drain_notify, in any slow path of the owner), and then moves
 * s to its partial list or retires it. So a span is on the notify stack iff
 * TF_QUEUED, at most once. The owner arms TF_NOTIFY only by a CAS that sees
 * an empty chain (otherwise it collects the chain instead), with a credit
 * of nalloc - slow_at (at least 1): the free blocks that its local frees
 * would need to move s off the full list (hysteresis, both ways: a span
 * that comes back with one free block goes full again after one
 * allocation, a refill and two atomics per block). No span is stranded:
 * with k local and r remote frees since arming, k < credit and r < credit
 * while all nalloc objects are freed would need nalloc >= 2 slow_at + 2,
 * and slow_at = nelems - ceil(nelems / 4) excludes that. When local frees
 * move s to the partial list the owner leaves TF_NOTIFY set (clearing it
 * would be an atomic RMW on a line the freers write): the cost is at most
 * one early notification, which the drain handles like any (it collects the
 * chain and retires s if that empties it). Chains on current and partial
 * spans are collected when the span is (made) current: one CAS per remote
 * free (per batch), no notification; a chain taken onto an empty free list
 * becomes the list as it is (it ends in blk_end(s), the empty list's mark),
 * with no walk.
 *
 * Double frees and foreign pointers (gort_free). The page -> span table
 * rejects addresses outside gort's heap and in free pages; the offset must be
 * an object start (one multiply: s->divtest); and the first word of a free
 * block holds its free-list link XORed with a per-process secret, and every
 * list of a span's free blocks (free list, remote chain, batch) ends in
 * blk_end(s) = base + 1, an odd address inside the span, so freeing a block
 * that is already free finds a word that decodes into its own span (one
 * range test): fatal, with a false alarm only for user data equal to
 * secret ^ (an address in the span). The allocator zeroes that word when it
 * hands a block out, and tests the low bit of the decoded head for "empty".
 *
 * Alloc bits: not kept on the fast path (a bit flip per malloc and free
 * would cost a multiply and a read-modify-write each). An object is
 * allocated iff it lies below s->carve and is on none of s->free, s->pend, s->tfree
 * and the caches' batches, so the collector can derive the bitmap with the
 * world stopped (not written yet); arena.markbits is reserved for its mark
 * bits (one bit per 8 bytes, not mapped yet).
 *
 * Collected spans (KIND_SCAN, KIND_NOSCAN; mem/sweep.c). A cache holds
 * only its current span of a GC class (Go's mcache); every other GC span
 * is owner-less on its mcentral's partial, full or unswept queue, and
 * large GC objects are on their heap's large_gc queue. At mark termination
 * (world stopped) caches hand their current spans back and every queue
 * becomes unswept (mem_gc_mark_termination): O(caches x classes) work,
 * not O(spans). Sweeping a span frees the objects whose mark bit is clear,
 * zeroes them (GC objects are handed out zeroed, and a free block holds
 * nothing but its encoded link, so a conservative pointer into a free
 * block finds nothing to follow), then clears the bits. Allocation sweeps
 * lazily (an mcentral with no swept partial span sweeps unswept ones
 * first; a large allocation sweeps dead large objects first) and in
 * proportion to the heap it takes (sweep.c, "Sweep pacing"), and the
 * collector sweeps the rest in the background; the next cycle starts only
 * once everything is swept.
 *
 * Lock order (outer first): sched.lock (p_destroy calls mcache_release) >
 * fallback cache lock > node orphan lock > mcentral lock > mheap lock >
 * mem.init_lock. No mem lock is held while calling out of mem/, and no mem
 * function blocks or yields while holding one.
 */
#ifndef GORT_MEM_H
#define GORT_MEM_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel-iface/ki.h"
#include "gort.h"
#include "mem/sizeclasses.h"
#include "sched/sched.h"

#define PAGE_SHIFT       13
#define PAGE_SIZE        (1UL << PAGE_SHIFT)
#define ARENA_SHIFT      26
#define ARENA_SIZE       (1UL << ARENA_SHIFT)
#define ARENA_PAGES      (ARENA_SIZE >> PAGE_SHIFT)
#define ADDR_BITS        47 /* x86-64 user space */
#define ARENA_MAP_LEN    (1UL << (ADDR_BITS - ARENA_SHIFT))
#define MEM_MAX_NODES    KI_MAX_NODES
#define MAX_ALLOC        (1UL << 46) /* larger requests fail (NULL), never fatal */
#define TINY_SIZE        16
#define HEAP_LISTS       128 /* free runs of 1..127 pages by length; [0]: longer */
#define CENTRAL_KEEP     4   /* empty spans an mcentral keeps per class */
#define REMOTE_BATCH_MAX 32  /* frees batched per remote span before one CAS */
#define GC_MARK_WORDS    16  /* 1024 mark bits: the most objects a span holds (8-byte class) */
#define SPAN_MIN_PAGES   4   /* small spans of fewer pages are grown to this (mcentral.c) */

enum span_kind { KIND_MANUAL = 0, KIND_SCAN = 1, KIND_NOSCAN = 2, NUM_KINDS = 3 };
#define NUM_SPAN_CLASSES (NUM_KINDS * NUM_SIZE_CLASSES)
static inline unsigned spanclass_of(enum span_kind k, unsigned sizeclass)
{
    return (unsigned)k * NUM_SIZE_CLASSES + sizeclass;
}

enum span_state {
    SPAN_DEAD,  /* struct on its heap's pool, describes nothing */
    SPAN_FREE,  /* free pages on its heap's lists (heap lock) */
    SPAN_SMALL, /* objects of one class; owned by s->owner or on an mcentral */
    SPAN_LARGE, /* one large object */
};
enum span_list { LIST_NONE, LIST_CUR, LIST_PARTIAL, LIST_FULL };

#define TF_NOTIFY      1UL
#define TF_QUEUED      2UL
#define TF_FLAGS       3UL
#define TF_CHAIN       (((1UL << ADDR_BITS) - 1) & ~7UL) /* the chain's first block */
#define TF_COUNT_SHIFT ADDR_BITS /* bits 47..63: the count (see "Remote-free notification") */
#define TF_COUNT_BITS  (64 - TF_COUNT_SHIFT)
#define TF_COUNT_MASK  ((1UL << TF_COUNT_BITS) - 1)

/* A free block: its link, XORed with mem.secret (see "Double frees"). */
struct block {
    uintptr_t enc;
};

struct mcache;

struct span {
    /* Owner-only while SPAN_SMALL and owned; first line: the fast paths. */
    uintptr_t free;  /* encoded head of the free list (encoded blk_end: empty) */
    uint32_t nalloc; /* see the invariant above */
    uint32_t elemsize;
    uintptr_t base; /* first object (small) or first page */
    uint32_t divmagic;
    uint32_t spanbytes;             /* small: nelems * elemsize; large: 0 */
    _Atomic(struct mcache *) owner; /* the cache holding a small manual span (NOBODY
                                     * otherwise, GC spans included: see "Ownership");
                                     * written by heap/mcentral/adoption with the span
                                     * unpublished to other caches; read (relaxed) by
                                     * any freer, who compares it to its own cache */
    uint64_t divtest;               /* small: UINT64_MAX / elemsize + 1, so that for off < 2^32,
                                       off % elemsize == 0 iff off * divtest < divtest (mod 2^64):
                                       gort_free's object-start test in one multiply (Lemire, Kaser
                                       and Kurz, "Faster remainder by direct computation", 2019) */
    uint16_t spanclass;
    uint8_t state;     /* enum span_state; written under the heap lock or by the owner
                          before the span is handed out */
    uint8_t list;      /* enum span_list; owner only */
    uint16_t node;     /* immutable: span structs come from a per-node pool */
    uint8_t needzero;  /* pages may hold old data */
    uint8_t scavenged; /* free span whose pages were returned to the kernel */
    int32_t slow_at;   /* owner: a local free that leaves nalloc <= slow_at takes the slow
                          path (partial: 0, empty; full: enough free blocks to leave the full
                          list; current or on no list: -1, never) */
    uint32_t tf_base;  /* owner: tfree's count field when the owner last set it (0, or
                          minus the credit when arming TF_NOTIFY): the chain holds
                          (count - tf_base) mod 2^TF_COUNT_BITS blocks */

    _Atomic uintptr_t tfree __attribute__((aligned(CACHE_LINE))); /* remote frees + TF_* */
    struct span *notify_next; /* on owner->notify; written by the freer that set TF_QUEUED */

    uintptr_t carve, limit;   /* objects [carve, limit) not yet on any list (owner) */
    uintptr_t pend;           /* owner: a collected remote chain (raw address of its first
                                 block, 0: none) waiting for the free list to run out: taken
                                 onto a non-empty list with no walk (mcache.c merge_chain) */
    struct span *next, *prev; /* mcache lists (owner), heap free lists, mcentral (locks) */
    uint32_t npages;
    uint32_t nelems;
    uint32_t large_off; /* large: object at base + large_off (aligned allocations) */
    int64_t free_since; /* free span: when it was freed (scavenger) */

    /* The collector's part (GC spans only; see "Collected spans" above). */
    uint32_t sweepgen;  /* == mem.sweepgen: swept this cycle; + 2 behind: not yet */
    struct span *qnext; /* GC spans: link in a struct spanq (its queue's lock) */
    _Atomic uint64_t gcmarks[GC_MARK_WORDS]; /* bit i: object i reached (large: bit 0) */
};
_Static_assert(offsetof(struct span, free) == 0, "fast-path fields first");
_Static_assert(offsetof(struct span, tf_base) + sizeof(uint32_t) <= CACHE_LINE,
               "gort_free's fields on the first line");

struct arena {
    _Atomic(struct span *) spans[ARENA_PAGES]; /* page -> span; written under the node's heap
                                                  lock; read anywhere (relaxed): a pointer
                                                  handed out was published before */
    uintptr_t base;
    int node;
    struct arena *next; /* heap's list; heap lock */
    uint8_t *markbits;  /* reserved for the collector: 1 bit per 8 bytes, lazily mapped */
};

/* A singly linked span queue (through s->qnext) with its tail, for O(1)
 * splicing at mark termination. */
struct spanq {
    struct span *head, *tail;
    uint32_t n;
};

static inline void spanq_push(struct spanq *q, struct span *s)
{
    s->qnext = q->head;
    q->head = s;
    if (!q->tail) q->tail = s;
    q->n++;
}
static inline struct span *spanq_pop(struct spanq *q)
{
    struct span *s = q->head;
    if (!s) return NULL;
    q->head = s->qnext;
    if (!q->head) q->tail = NULL;
    q->n--;
    s->qnext = NULL;
    return s;
}
/* Append all of *from to *to; *from becomes empty. */
static inline void spanq_splice(struct spanq *to, struct spanq *from)
{
    if (!from->head) return;
    if (to->tail)
        to->tail->qnext = from->head;
    else
        to->head = from->head;
    to->tail = from->tail;
    to->n += from->n;
    from->head = from->tail = NULL;
    from->n = 0;
}

struct mheap {
    struct rlock lock;
    int node;
    struct span *free[HEAP_LISTS]; /* free runs: [n] exactly n pages, [0] >= HEAP_LISTS */
    uint64_t nonempty[HEAP_LISTS / 64];
    struct arena *arenas;
    struct span *spanpool; /* dead span structs */
    /* statistics (heap lock; read racily by gort_read_memstats) */
    uint64_t pages_inuse, pages_free, pages_released; /* released ⊆ free */
    uint64_t large_nalloc, large_nfree, large_bytes, large_bytes_freed;
    uint64_t released_total;    /* bytes ever returned to the kernel */
    struct spanq large_gc;      /* large GC objects */
    struct spanq large_unswept; /* ... from the last mark termination, not yet swept */
    uint64_t large_gc_pages;    /* pages of the objects on large_gc and large_unswept */
} __attribute__((aligned(CACHE_LINE)));

struct mcentral {
    struct rlock lock;
    struct span *empty; /* retired empty spans of this class, owner-less */
    uint32_t nempty;
    /* GC classes only: owner-less spans that caches do not hold. */
    struct spanq partial; /* swept, with free objects */
    struct spanq full;    /* swept, no free object (or handed back by a cache) */
    struct spanq unswept; /* from the last mark termination, not yet swept */
} __attribute__((aligned(CACHE_LINE)));

struct mclass {
    struct span *partial; /* owned spans with free blocks (doubly linked) */
    struct span *full;    /* owned spans with none known (TF_NOTIFY set) */
};

struct mcache {
    /* The fast paths' fields first, as arrays indexed by span class (one
     * scaled-index access each, no multiply by a struct size). */
    struct span *cur[NUM_SPAN_CLASSES]; /* never NULL: &mem_empty_span when none */
    /* Objects allocated and freed by this cache; single writer (the owner,
     * counter_inc), read racily by memstats (relaxed loads). */
    _Atomic uint64_t nmalloc[NUM_SPAN_CLASSES], nfree[NUM_SPAN_CLASSES];
    struct mclass cls[NUM_SPAN_CLASSES];
    uintptr_t tiny, tinyoff;       /* tiny allocator: current 16-byte block */
    bool yield;                    /* a refill saw a preemption request (alloc_yield) */
    _Atomic(struct span *) notify; /* spans with remote frees (TF_QUEUED) */
    struct span *rb_span;          /* remote batch: frees bound for rb_span */
    uintptr_t rb_head, rb_tail;    /* encoded chain: head ... tail */
    uint32_t rb_n;
    uint32_t refills; /* drives mem_scavenge_tick until sysmon does */
    int node;
    bool fallback;          /* a node's locked cache for threads without a P */
    struct mcache *allnext; /* mem.allcaches; append-only */
    struct mcache *orphan_next;
};

struct node_mem {
    struct mheap heap;
    struct mcentral central[NUM_SPAN_CLASSES];
    struct rlock orphan_lock; /* protects orphans */
    struct mcache *orphans;   /* caches of destroyed Ps, adopted by new Ps of the node */
    struct rlock fallback_lock;
    struct mcache *fallback;
};

struct mem_global {
    _Atomic uint32_t ready; /* 0, then 1 once mem_init is done (release) */
    struct rlock init_lock;
    uintptr_t secret;                   /* free-list link key, fixed at init */
    _Atomic(struct arena *) *arena_map; /* == mem_arena_map once initialised */
    int nnodes;
    bool numa_real;
    int kernel_node[MEM_MAX_NODES];
    _Atomic(struct mcache *) allcaches; /* every cache ever made (push-only) */
    _Atomic uint64_t meta_bytes;        /* metadata mapped: arena tables, span structs, caches */
    _Atomic uint64_t foreign_nfree[NUM_SPAN_CLASSES]; /* frees by threads without a P */
    _Atomic int64_t last_scavenge;                    /* mem_scavenge_tick pacing */
    /* The collector's (gc/): */
    uint32_t sweepgen;         /* += 2 at each mark termination (world stopped) */
    _Atomic uint32_t unswept;  /* spans left to sweep this cycle (a hint for sweepers) */
    _Atomic uint32_t sweepers; /* sweeps in progress: counted before the pop, so that
                                  unswept == 0 && sweepers == 0 means all swept */
    _Atomic uint64_t gc_nfree[NUM_SPAN_CLASSES]; /* objects the sweeper freed */
    _Atomic int64_t heap_live;            /* bytes of GC spans held by caches or swept since the
                                             last mark termination, plus large GC objects: the
                                             pacer's measure (gc/pacer) */
    _Atomic int64_t gc_trigger;           /* heap_live at which the next cycle starts */
    _Atomic uintptr_t arena_lo, arena_hi; /* every arena lies within (they only widen) */
    _Atomic int64_t gc_goal;              /* the pacer's hard goal: allocators past it wait for the
                                             next mark termination (gc_throttle) */
    /* Proportional sweep (sweep.c "Sweep pacing"): set with the world stopped at mark
     * termination (mem_gc_sweep_pace), read by allocators (relaxed: hints). */
    _Atomic int64_t sweep_basis;   /* heap_live when the sweep phase began */
    _Atomic int64_t sweep_bpp;     /* bytes an allocator may take per page swept; 0: none */
    _Atomic int64_t pages_swept;   /* pages of GC spans swept since mark termination */
    uint64_t sweep_pages;          /* pages left unswept by the last mark termination */
    _Atomic int64_t memlimit;      /* gc's soft memory limit (bytes of memstats.sys),
                                      INT64_MAX none: the page heap scavenges under it */
    _Atomic int64_t heap_resident; /* bytes of heap pages not released to the kernel
                                      (inuse + free - released, all nodes): memstats.heap_sys;
                                      changed under a heap lock, read racily */
    struct node_mem *nodes[MEM_MAX_NODES];
};
extern struct mem_global mem GORT_HIDDEN;
extern struct span mem_empty_span GORT_HIDDEN; /* free: encoded 1 (empty), carve == limit */
/* The owner of every span no cache owns (free, large, retired, dead, and the
 * dead span that unused pages map to): never a cache, so gort_free's owner
 * check also rejects callers without a cache (c NULL) with one compare. */
extern struct mcache mem_nobody GORT_HIDDEN;
#define NOBODY (&mem_nobody)
extern struct span mem_dead_span GORT_HIDDEN; /* pages of an arena not (yet) in any span */

/* ---- arena.c -------------------------------------------------------------------- */
void mem_init_slow(void);
static inline void mem_init(void)
{
    /* Acquire: pairs with the release store at the end of mem_init_slow. */
    if (GORT_UNLIKELY(!atomic_load_explicit(&mem.ready, memory_order_acquire))) mem_init_slow();
}
/* Reserve a new arena group of at least bytes (a multiple of ARENA_SIZE) for
 * node; NULL when the kernel refuses. Heap lock held. */
struct arena *arena_grow(struct mheap *h, size_t bytes);
/* Metadata memory (zeroed, never freed); fatal when out of memory. */
void *mem_meta_alloc(size_t bytes);
_Noreturn void mem_throw_oom(size_t n);
/* Node of a thread without a P: the node of the CPU it runs on. */
int mem_current_node(void);

/* ARENA_MAP_LEN entries in .bss (16 MiB of address space; only the pages of
 * entries in use are ever touched), and one more, always NULL, for the
 * address 2^47, which gort_free's range test ((a - 1) >> ADDR_BITS) lets
 * through. */
extern _Atomic(struct arena *) mem_arena_map[ARENA_MAP_LEN + 1] GORT_HIDDEN;

/* The span holding address a (mem_dead_span for an unused page of an arena),
 * or NULL (outside gort's heap). */
static inline struct span *span_of(uintptr_t a)
{
    if (GORT_UNLIKELY(a >> ADDR_BITS)) return NULL;
    /* Relaxed: see struct arena. */
    struct arena *ar = atomic_load_explicit(&mem_arena_map[a >> ARENA_SHIFT], memory_order_relaxed);
    if (GORT_UNLIKELY(!ar)) return NULL;
    return atomic_load_explicit(&ar->spans[(a >> PAGE_SHIFT) & (ARENA_PAGES - 1)],
                                memory_order_relaxed);
}

/* ---- mheap.c -------------------------------------------------------------------- */
static inline struct node_mem *node_mem(int node)
{
    return mem.nodes[node];
}
/* A span of npages in-use pages from node's heap (state set by the caller).
 * *needzero: the pages may hold old data. Fatal when out of memory. */
struct span *mheap_alloc(struct mheap *h, uint32_t npages);
/* Give s's pages back (any state but FREE); coalesces. */
void mheap_free(struct mheap *h, struct span *s);
void *mheap_alloc_large(int node, size_t n, size_t align, bool zero, enum span_kind kind);
void mheap_free_large(struct span *s, uintptr_t a);
void mheap_free_locked(struct mheap *h, struct span *s);
/* A new large GC object joins h's large_gc queue (heap lock held). */
void mheap_large_gc_add(struct mheap *h, struct span *s);
/* Release free pages idle since before `older_than` (INT64_MAX: all), at most
 * max_bytes; returns the bytes released. */
uint64_t mheap_scavenge(struct mheap *h, int64_t older_than, uint64_t max_bytes);

/* ---- mcentral.c ----------------------------------------------------------------- */
/* Pages of a span of size class cls (mcentral.c, "Span sizes"). */
uint32_t mem_class_npages(unsigned cls);
/* A span of class sc for cache c (owned by c, on no list). */
struct span *mcentral_grab(struct mcache *c, unsigned sc);
/* The same for a GC class: a swept span with free objects (sweeping unswept
 * ones on the way), else a kept empty or fresh one. */
struct span *mcentral_grab_gc(struct mcache *c, unsigned sc);
/* A cache gives back its current span of a GC class (owner c). */
void mcentral_putback_gc(struct span *s);
/* Sweep s (a small GC span taken off an unswept queue: owner-less, ours
 * alone). keep: when it has free objects return true and leave it to the
 * caller (on no queue); otherwise it goes where it belongs (kept empties or
 * the heap, partial, full) and the result is false. (mem/sweep.c) */
bool sweep_span(struct span *s, bool keep);
/* An empty span (nalloc == 0, not on the notify stack) back from its owner. */
void mcentral_retire(struct span *s);
/* Move kept empty spans of every class back to the page heap. */
void mcentral_flush(struct node_mem *nm);

/* ---- mcache.c ------------------------------------------------------------------- */
/* The calling P's cache, NULL on a thread without a P or before the P has one
 * (then mcache_slow_get). The inline twin of sched_mcache_slot: three loads. */
static inline struct mcache *mcache_fast(void)
{
    struct m *m = gort_m();
    if (GORT_UNLIKELY(!m)) return NULL;
    struct p *p = m->p;
    return p ? p->mcache : NULL;
}
/* Refill class sc of c and allocate one object from it (never NULL). */
void *mcache_refill(struct mcache *c, unsigned sc);
/* Frees the fast path did not take: another cache's span, a large object,
 * a thread without a P, or an error to report. c may be NULL. */
void mcache_free_slow(struct mcache *c, struct span *s, void *p);
/* Local free of a span that became empty or left the full list. */
void mcache_free_local_slow(struct mcache *c, struct span *s);
/* Push the remote batch (c owner). */
void mcache_flush_remote(struct mcache *c);
/* Collect remote notifications (c owner). */
void mcache_drain_notify(struct mcache *c);
/* Release a destroyed P's cache: batches flushed, empty spans retired, the
 * rest kept for the next P of the same node to adopt (world stopped). */
void mcache_release(struct mcache *c);
/* Allocate size class sc (kind in sc) on a thread without a P: locked per-node
 * fallback cache. */
void *mcache_alloc_nop(unsigned sc);
void *mcache_tiny_nop(size_t n);
/* Create the calling P's cache (slot empty) or NULL without a P. */
struct mcache *mcache_slow_get(void);
/* Tiny allocator slow path (c owner). */
void *mcache_tiny_refill(struct mcache *c, size_t n, size_t align);

_Noreturn void mem_bad_free(const char *what, const void *p);

static inline uintptr_t blk_enc(uintptr_t next)
{
    return next ^ mem.secret;
}

/* The end of small span s's free list, remote chain or batch: base + 1, an
 * odd address inside s and never an object start ("Double frees"). Any
 * other list end (the empty and dead spans') is 1. */
static inline uintptr_t blk_end(const struct span *s)
{
    return s->base | 1;
}
static inline bool blk_is_end(uintptr_t raw)
{
    return raw & 1;
}
/* s's free list is empty (any span). */
static inline bool span_free_empty(const struct span *s)
{
    return blk_is_end(s->free ^ mem.secret);
}

/* Count one event on a single-writer statistics counter (the cache's
 * owner). One unlocked add to memory: on x86-64 an aligned 8-byte add
 * becomes visible to other CPUs as one store, so a racing relaxed load
 * (gort_read_memstats) reads the old or the new value, and with a single
 * writer no update is lost. A relaxed atomic load + store would do the same
 * in three instructions (GCC does not fold atomics into a memory operand). */
static inline void counter_inc(_Atomic uint64_t *c)
{
    __asm__("addq $1, %0" : "+m"(*(uint64_t *)c));
}

/* Pop one object of class sc from c's current span, or NULL when that span
 * has no free block (then mcache_refill). The fast path: no lock, no atomic
 * RMW, seven instructions after the cur[sc] load. */
static inline void *mcache_pop(struct mcache *c, size_t sc)
{
    struct span *s = c->cur[sc];
    uintptr_t b = s->free ^ mem.secret;
    if (GORT_UNLIKELY(blk_is_end(b))) return NULL;
    struct block *blk = (struct block *)b;
    s->free = blk->enc;
    blk->enc = 0; /* not a free-list link any more (double-free check) */
    s->nalloc++;
    counter_inc(&c->nmalloc[sc]);
    return blk;
}

/* Allocate from class sc of c (never NULL). */
static inline void *mcache_alloc(struct mcache *c, unsigned sc)
{
    void *p = mcache_pop(c, sc);
    return GORT_LIKELY(p) ? p : mcache_refill(c, sc);
}

static inline unsigned size_to_class(size_t n)
{
    if (GORT_LIKELY(n <= SMALL_SIZE_MAX))
        return size_to_class8[(n + SMALL_SIZE_DIV - 1) / SMALL_SIZE_DIV];
    return size_to_class128[(n - SMALL_SIZE_MAX + LARGE_SIZE_DIV - 1) / LARGE_SIZE_DIV];
}

/* ---- the collector's interface (mem/sweep.c; used by gc/) ------------------------ */
static inline bool span_is_gc(const struct span *s)
{
    return s->spanclass >= NUM_SIZE_CLASSES;
}

/* The GC object holding address a: its span, and its start and index in
 * *start and *idx; NULL when a is not inside an object of a GC span (in
 * use or not: a free block is found too, and is harmless to mark, see
 * "Collected spans"). Any thread, any time: the fields read are fixed while
 * the span is in use, and a racing reuse of the span struct yields at worst
 * a stray bit on a new span (floating garbage), never a write out of
 * bounds. */
static inline struct span *gc_object_of(uintptr_t a, uintptr_t *start, uint32_t *idx)
{
    struct span *s = span_of(a);
    if (!s || !span_is_gc(s)) return NULL;
    uint8_t st = __atomic_load_n(&s->state, __ATOMIC_RELAXED);
    if (st == SPAN_SMALL) {
        uintptr_t off = a - s->base;
        if (off >= s->spanbytes) return NULL;
        uint32_t i = (uint32_t)((off * s->divmagic) >> 32);
        if (i >= GC_MARK_WORDS * 64) return NULL;
        *idx = i;
        *start = s->base + (uintptr_t)i * s->elemsize;
        return s;
    }
    if (st == SPAN_LARGE) {
        uintptr_t o = s->base + s->large_off;
        if (a < o || a >= s->base + ((uintptr_t)s->npages << PAGE_SHIFT)) return NULL;
        *idx = 0;
        *start = o;
        return s;
    }
    return NULL;
}

/* Set object idx's mark bit; true when it was clear (the caller greys it).
 * Relaxed: the bits are read by the sweeper after mark termination, which
 * the stop-the-world orders; concurrent markers agree through the RMW. */
static inline bool span_mark(struct span *s, uint32_t idx)
{
    uint64_t bit = 1ULL << (idx & 63);
    _Atomic uint64_t *w = &s->gcmarks[idx >> 6];
    if (atomic_load_explicit(w, memory_order_relaxed) & bit) return false;
    return !(atomic_fetch_or_explicit(w, bit, memory_order_relaxed) & bit);
}

static inline bool span_marked(struct span *s, uint32_t idx)
{
    return atomic_load_explicit(&s->gcmarks[idx >> 6], memory_order_relaxed) >> (idx & 63) & 1;
}

/* Bytes an object of s occupies (large: its pages from the object on). */
static inline uintptr_t span_objsize(const struct span *s)
{
    return s->state == SPAN_LARGE ? ((uintptr_t)s->npages << PAGE_SHIFT) - s->large_off
                                  : s->elemsize;
}

/* World stopped: every cache hands back its GC spans and tiny block, every
 * GC span becomes unswept, sweepgen advances. */
void mem_gc_mark_termination(void);
/* Sweep one unswept span (any class, any node); false when none is left
 * to take (mem_gc_sweep_done tells whether the last sweeps have ended). */
bool mem_gc_sweep_one(void);
bool mem_gc_sweep_done(void);
/* Every current tiny block of every cache, for fn (mark start, world
 * stopped: subobjects carved from them during the cycle are then live). */
void mem_gc_tiny_blocks(void (*fn)(uintptr_t block));
/* Call fn on the in-use part of every manual (gort_malloc) span: [lo, hi)
 * holds its carved objects, allocated or free. Concurrent with the program;
 * a span freed meanwhile is scanned anyway (arena memory stays readable). */
void mem_gc_manual_ranges(void (*fn)(uintptr_t lo, uintptr_t hi, void *arg), void *arg);
/* Every GC span in use (caches' current spans, mcentral queues, large
 * objects), before mark termination hands them back; world stopped. For
 * the checkmark pass. */
void mem_gc_for_each_span(void (*fn)(struct span *s, void *arg), void *arg);
/* Allocate black: p was just allocated while the collector marks. */
void mem_gc_mark_new(void *p);
/* The address ranges of gort's own data that must not be scanned: tables
 * too large to scan that hold no object pointers (the arena map), and the
 * allocator's state, whose arena bounds point at objects. Fills r, returns
 * how many (at most MEM_GC_UNSCANNED). */
#define MEM_GC_UNSCANNED 2
int mem_gc_unscanned(uintptr_t (*r)[2]);

/* True when the heap is past the pacer's hard goal: the cycle that should
 * have held it back (marking, or requested and not yet marking) is late,
 * and the allocating goroutine should wait for it (gc_throttle) once its
 * allocation is done and it holds no runtime lock. Two relaxed loads. */
static inline bool mem_gc_over_goal(void)
{
    return GORT_UNLIKELY(atomic_load_explicit(&mem.heap_live, memory_order_relaxed) >
                         atomic_load_explicit(&mem.gc_goal, memory_order_relaxed));
}

/* Sweep pacing (sweep.c): world stopped, after mem_gc_mark_termination and
 * the reset of heap_live to basis: allocators sweep what the background
 * sweeper has not by the time heap_live reaches basis + distance
 * (distance <= 0 or INT64_MAX: no proportional sweep). */
void mem_gc_sweep_pace(int64_t basis, int64_t distance);
void mem_gc_sweep_credit_slow(void);
/* Before an allocator takes fresh heap in the sweep phase: sweep its share
 * (Go's deductSweepCredit). One relaxed load once everything is swept. */
static inline void mem_gc_sweep_credit(void)
{
    if (GORT_UNLIKELY(atomic_load_explicit(&mem.unswept, memory_order_relaxed) != 0))
        mem_gc_sweep_credit_slow();
}
/* Before a large allocation of npages from h: sweep h's unswept large
 * objects until npages were freed or none is left (Go's mheap.reclaim). */
void mem_gc_reclaim(struct mheap *h, uint32_t npages);
/* Bytes of memstats.sys that the GC heap cannot use: sys minus the free
 * resident pages minus the bytes of GC objects (allocated or not yet
 * swept). For the pacer's memory limit; walks every cache. */
int64_t mem_gc_nonheap(void);
/* Under the memory limit (mem.memlimit): return free pages to the kernel
 * until memstats.sys is at most target bytes (or nothing free is left);
 * returns the bytes released. No lock held. */
uint64_t mem_scavenge_to(int64_t target);

/* Implemented by gc/ (gc/gc.c): */
/* Wait (bounded) while the heap is past the hard goal (mem_gc_over_goal),
 * helping the marker or making way for the collector's goroutine: Go parks
 * such an assist until the cycle ends. From a goroutine, no lock (returns
 * at once elsewhere). */
void gc_throttle(void);
/* The collector's fields of memstats (num_gc, pauses, CPU fraction). */
void gc_read_stats(gort_memstats *out);
/* heap_live reached gc_trigger: start a cycle if none runs. Any thread. */
void gc_heap_grew(void);
/* The collector marks and the calling goroutine took bytes of fresh heap:
 * it helps with marking in proportion (Go's mark assist). */
void gc_assist(int64_t bytes);
/* Account bytes of GC heap taken by an allocator (a span's free room
 * handed to a cache, a large object) and act on the pacer's limits. */
static inline void mem_gc_took(int64_t bytes)
{
    /* Relaxed: a counter the pacer reads as a hint. */
    int64_t live = atomic_fetch_add_explicit(&mem.heap_live, bytes, memory_order_relaxed) + bytes;
    if (GORT_UNLIKELY(gort__gc_barrier)) gc_assist(bytes);
    if (GORT_UNLIKELY(live >= atomic_load_explicit(&mem.gc_trigger, memory_order_relaxed)))
        gc_heap_grew();
}

/* ---- ASan ------------------------------------------------------------------------ */
#if GORT_ASAN
void __asan_poison_memory_region(void const volatile *addr, size_t size);
#define MEM_POISON(p, n)   __asan_poison_memory_region((p), (n))
#define MEM_UNPOISON(p, n) __asan_unpoison_memory_region((p), (n))
#else
#define MEM_POISON(p, n)   ((void)(p), (void)(n))
#define MEM_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

/* ---- exposed for the tests (tests/test_malloc.c) ---------------------------------- */
/* Node whose heap holds p (-1: not gort's). */
int mem_node_of(const void *p);
/* Bytes of free pages on node's heap that are resident / released. */
void mem_heap_pages(int node, uint64_t *inuse, uint64_t *free, uint64_t *released);

void mem_scavenge_tick(int64_t now_ns);

#endif

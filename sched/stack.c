/* sched/stack.c: goroutine stacks and the G structs that own them.
 *
 * Each goroutine gets a fixed-size stack slot carved from a large
 * reservation (a "chunk" of about 16 MiB, one mapping):
 *
 *   slot:  [ guard | stack (grows down) ............ ]
 *          guard_lo stack_lo                   stack_hi
 *
 * G structs are packed densely in their own slabs (192 bytes each), apart
 * from the stacks: run queues, free lists and the global queue walk Gs, and
 * Gs spread one per stack slot would cost a cache and TLB miss each. A G
 * and its slot stay paired for life: dead Gs are reused through free lists
 * (proc.c), never unmapped. A parked goroutine costs its touched stack pages
 * (usually one) plus its G. A G's stack is not touched until it first runs
 * (stack_prepare is called then, by the M that runs it).
 *
 * Guards: with lightweight guard regions (MADV_GUARD_INSTALL, Linux 6.13+) a
 * guard costs no VMA, so every slot gets a 16 KiB guard, installed for the
 * whole chunk in one batched call, and a million stacks stay a few thousand
 * mappings (vm.max_map_count is 65530 by default). Without them, mprotect
 * guards split the mapping (two VMAs each), so only the first
 * MPROTECT_GUARD_BUDGET slots are guarded; the rest carry a canary word at
 * stack_lo that proc.c checks at every switch away (late detection).
 *
 * Chunks are per NUMA node and bound there with mbind when nodes are real;
 * transparent huge pages are disabled on them (one touched byte must not
 * fault in 2 MiB).
 *
 * The main goroutine gets its own 8 MiB mapping (C programs' main functions
 * expect a thread-sized stack).
 *
 * Locking: alloc_lock protects chunk state and allgs. The fault handler reads
 * the chunk table without the lock: entries are written before nchunks is
 * published (release), and never change afterwards.
 */
#include <string.h>

#include "sched/sched.h"

#define CHUNK_TARGET          (16UL << 20)
#define MAX_CHUNKS            65536
#define MAIN_STACK_SIZE       (8UL << 20)
#define MPROTECT_GUARD_BUDGET 8192

struct chunk {
    uintptr_t base;
    uintptr_t end;
};

static struct {
    struct rlock lock;
    size_t slot_size;  /* bytes per slot, page multiple */
    size_t guard_size; /* bytes of guard at the bottom of each slot */
    /* G slab being carved */
    char *gslab_next, *gslab_end;
    size_t slots_per_chunk;
    enum ki_guard_kind guard_kind;
    size_t mprotect_guarded;
    /* per node: the chunk being carved; its first cur_nguard slots have guards */
    uintptr_t cur[KI_MAX_NODES];
    size_t cur_next[KI_MAX_NODES];
    size_t cur_nguard[KI_MAX_NODES];
    struct chunk chunks[MAX_CHUNKS];
    _Atomic size_t nchunks;
} sa;

/* All Gs ever made (for goroutine dumps and, later, the collector). */
static struct g **allgs;
static size_t allglen, allgcap;

static size_t round_up(size_t n, size_t a)
{
    return (n + a - 1) / a * a;
}

void stack_init(void)
{
    sa.guard_kind = ki_guard_kind();
    sa.guard_size = sa.guard_kind == KI_GUARD_MADVISE ? 4 * KI_PAGE_SIZE : KI_PAGE_SIZE;
    sa.slot_size = round_up(sa.guard_size + cfg.stack_size, KI_PAGE_SIZE);
    sa.slots_per_chunk = CHUNK_TARGET / sa.slot_size;
    if (sa.slots_per_chunk < 16) sa.slots_per_chunk = 16;
}

static void allgs_add(struct g *gp)
{
    if (allglen == allgcap) {
        size_t ncap = allgcap ? allgcap * 2 : 1024;
        int err;
        struct g **n = ki_mmap_anon(ncap * sizeof *n, false, &err);
        if (!n) gort__fatal("out of memory (goroutine table of %zu entries)", ncap);
        if (allglen) memcpy(n, allgs, allglen * sizeof *n);
        /* The old table is left mapped: a concurrent dump may still read it. */
        allgs = n;
        allgcap = ncap;
    }
    allgs[allglen++] = gp;
}

/* Map a new chunk for node; sa.lock held. */
static void chunk_new(int node)
{
    size_t n = atomic_load_explicit(&sa.nchunks, memory_order_relaxed);
    if (n == MAX_CHUNKS) gort__fatal("out of memory (goroutine stacks: %zu chunks)", n);
    size_t len = sa.slots_per_chunk * sa.slot_size;
    int err;
    char *base = ki_mmap_anon(len, true, &err);
    if (!base)
        gort__fatal("out of memory (goroutine stack chunk of %zu bytes: errno %d)", len, -err);
    if (cfg.numa.real && cfg.numa.nnodes > 1)
        (void)ki_mbind_node(base, len, node); /* best effort: placement, not correctness */

    size_t nguard = sa.slots_per_chunk;
    if (sa.guard_kind == KI_GUARD_MPROTECT) {
        size_t left = MPROTECT_GUARD_BUDGET - sa.mprotect_guarded;
        nguard = nguard < left ? nguard : left;
        sa.mprotect_guarded += nguard;
    } else if (sa.guard_kind == KI_GUARD_NONE) {
        nguard = 0;
    }
    if (nguard) {
        void *ranges[nguard];
        for (size_t i = 0; i < nguard; i++)
            ranges[i] = base + i * sa.slot_size;
        int r = ki_guard_install(ranges, nguard, sa.guard_size);
        if (r < 0) gort__fatal("installing stack guard pages failed (errno %d)", -r);
    }
    sa.chunks[n].base = (uintptr_t)base;
    sa.chunks[n].end = (uintptr_t)base + len;
    /* Release: the entry is complete before the fault handler can see it. */
    atomic_store_explicit(&sa.nchunks, n + 1, memory_order_release);
    sa.cur[node] = (uintptr_t)base;
    sa.cur_next[node] = 0;
    sa.cur_nguard[node] = nguard;
}

#define G_SIZE 256 /* four cache lines */
_Static_assert(sizeof(struct g) <= G_SIZE, "struct g outgrew its slab slot");
#define GSLAB_SIZE (1UL << 20)

/* A zeroed G from the slab; sa.lock held. */
static struct g *g_new(void)
{
    if ((size_t)(sa.gslab_end - sa.gslab_next) < G_SIZE) {
        int err;
        char *slab = ki_mmap_anon(GSLAB_SIZE, false, &err);
        if (!slab) gort__fatal("out of memory (goroutine structs: errno %d)", -err);
        sa.gslab_next = slab;
        sa.gslab_end = slab + GSLAB_SIZE;
    }
    struct g *gp = (struct g *)sa.gslab_next;
    sa.gslab_next += G_SIZE;
    return gp;
}

static void g_set_stack(struct g *gp, uintptr_t slot, size_t slot_size, size_t guard, bool guarded)
{
    gp->guard_lo = slot;
    gp->stack_lo = slot + guard;
    gp->stack_hi = slot + slot_size;
    gp->unguarded = !guarded;
    if (!guarded) {
        gp->guard_lo = gp->stack_lo; /* empty guard range */
        *(volatile uint64_t *)gp->stack_lo = STACK_CANARY;
    }
}

struct g *stack_alloc_g(int node, bool main)
{
    if (node < 0 || node >= KI_MAX_NODES) node = 0;
    uintptr_t slot;
    size_t len = sa.slot_size;
    bool guarded;
    if (main) {
        len = round_up(sa.guard_size + MAIN_STACK_SIZE, KI_PAGE_SIZE);
        int err;
        char *base = ki_mmap_anon(len, true, &err);
        if (!base) gort__fatal("out of memory (main goroutine stack)");
        void *r = base;
        guarded = ki_guard_install(&r, 1, sa.guard_size) == 0;
        slot = (uintptr_t)base;
        rlock_acquire(&sa.lock);
    } else {
        rlock_acquire(&sa.lock);
        if (!sa.cur[node] || sa.cur_next[node] == sa.slots_per_chunk) chunk_new(node);
        size_t idx = sa.cur_next[node]++;
        slot = sa.cur[node] + idx * sa.slot_size;
        guarded = idx < sa.cur_nguard[node];
    }
    struct g *gp = g_new();
    g_set_stack(gp, slot, len, sa.guard_size, guarded);
    gp->is_main = main;
    gp->node = (uint16_t)node;
    atomic_store_explicit(&gp->status, G_IDLE, memory_order_relaxed);
    allgs_add(gp);
    rlock_release(&sa.lock);
    return gp;
}

void stack_prepare(struct g *gp)
{
    /* The frame gort__ctx_switch pops: control word pair, r15..r12, rbx,
     * rbp, then the return address. The extra zero word above it keeps the
     * SysV alignment at gort__gstart's entry (rsp % 16 == 8). */
    uintptr_t *sp = (uintptr_t *)gp->stack_hi;
    *--sp = 0;
    *--sp = (uintptr_t)gort__gstart;
    for (int i = 0; i < 6; i++)
        *--sp = 0;                              /* rbp rbx r12 r13 r14 r15 */
    *--sp = ((uintptr_t)0x037f << 32) | 0x1f80; /* x87 CW, MXCSR defaults */
    gp->sp = sp;
}

void stack_swap(struct g *a, struct g *b)
{
    uintptr_t glo = a->guard_lo, lo = a->stack_lo, hi = a->stack_hi;
    uint8_t ung = a->unguarded;
    uint16_t node = a->node;
    a->guard_lo = b->guard_lo, a->stack_lo = b->stack_lo, a->stack_hi = b->stack_hi;
    a->unguarded = b->unguarded, a->node = b->node;
    b->guard_lo = glo, b->stack_lo = lo, b->stack_hi = hi;
    b->unguarded = ung, b->node = node;
}

bool stack_addr_in_guard(const struct g *gp, uintptr_t addr)
{
    if (gp && addr >= gp->guard_lo && addr < gp->stack_lo) return true;
    /* Not the running G's: any slot's guard in any chunk. */
    size_t n = atomic_load_explicit(&sa.nchunks, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (addr >= sa.chunks[i].base && addr < sa.chunks[i].end)
            return (addr - sa.chunks[i].base) % sa.slot_size < sa.guard_size;
    }
    return false;
}

/* fork(): the allocator lock is held across fork so the child's copy of the
 * chunk state is consistent (proc.c's atfork handlers, lock order after
 * sched.gflock). */
void stack_fork_lock(void)
{
    rlock_acquire(&sa.lock);
}

void stack_fork_unlock(bool child)
{
    if (child)
        atomic_store_explicit(&sa.lock.key, 0, memory_order_relaxed);
    else
        rlock_release(&sa.lock);
}

size_t stack_allgs(struct g ***out)
{
    *out = allgs;
    return allglen;
}

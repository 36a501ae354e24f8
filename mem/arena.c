/* mem/arena.c: the allocator's start-up, its arenas and its metadata memory.
 *
 * Arenas are 64 MiB of address space aligned to 64 MiB (a larger request
 * gets a group of consecutive arenas), mapped read-write and MAP_NORESERVE
 * so untouched pages cost nothing. On a real multi-node machine each is
 * bound to its heap's node with mbind(MPOL_BIND) before any page is
 * touched; the pages are then first touched by the thread that allocates
 * from them, which runs on that node (its P's node). With GORT_NUMA=fake:N
 * the nodes are virtual and nothing is bound, but every path (per-node
 * heaps, remote frees between nodes) runs the same.
 *
 * arena_map (2^21 pointers, one per 64 MiB of the 47-bit user address space,
 * 16 MiB of MAP_NORESERVE memory of which only the entries used are touched)
 * maps an address to its arena in one load: Go's heapArena index on amd64.
 * Entries are published with a release store after the arena is initialised
 * and never removed (arenas are never unmapped; their pages are returned with
 * MADV_DONTNEED by the scavenger).
 *
 * mem_init_slow runs once, on the first allocation from any thread (before
 * gort_main too): it reads the NUMA topology itself (the scheduler's copy
 * may not exist yet), with the same GORT_NUMA value; a malformed value
 * falls back to one node here and is reported by gort_main's config_load.
 *
 * Metadata (span structs, caches, arena tables) comes from mem_meta_alloc:
 * mmap'ed, zeroed, never freed, counted in memstats.sys.
 */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <unistd.h>

#include "mem/mem.h"

struct mem_global mem;
struct span mem_empty_span;
struct span mem_dead_span;
struct mcache mem_nobody;
_Atomic(struct arena *) mem_arena_map[ARENA_MAP_LEN + 1];

#define MAX_CPUS 1024
static uint8_t cpu_node[MAX_CPUS]; /* written once in mem_init_slow */

_Noreturn void mem_throw_oom(size_t n)
{
    char buf[96];
    int len =
        snprintf(buf, sizeof buf, "runtime: out of memory: cannot allocate %zu-byte block\n", n);
    ki_write_all(2, buf, (size_t)len);
    gort__fatal("out of memory");
}

void *mem_meta_alloc(size_t bytes)
{
    bytes = (bytes + KI_PAGE_SIZE - 1) & ~(KI_PAGE_SIZE - 1);
    int err;
    void *p = ki_mmap_anon(bytes, false, &err);
    if (!p) mem_throw_oom(bytes);
    atomic_fetch_add_explicit(&mem.meta_bytes, bytes, memory_order_relaxed); /* a statistic */
    return p;
}

int mem_current_node(void)
{
    if (mem.nnodes <= 1) return 0;
    int cpu = sched_getcpu(); /* glibc reads it from rseq: no syscall */
    if (cpu < 0) return 0;
    return cpu < MAX_CPUS ? cpu_node[cpu] : 0;
}

void mem_init_slow(void)
{
    rlock_acquire(&mem.init_lock);
    if (atomic_load_explicit(&mem.ready, memory_order_relaxed)) {
        rlock_release(&mem.init_lock);
        return;
    }
    static struct ki_numa topo; /* kept: its CPU lists live as long as the process */
    char err[256];
    if (ki_numa_discover(&topo, getenv("GORT_NUMA"), err, sizeof err) < 0 || topo.nnodes < 1) {
        topo.nnodes = 1;
        topo.real = false;
    }
    mem.nnodes = topo.nnodes;
    mem.numa_real = topo.real && topo.nnodes > 1;
    for (int n = 0; n < topo.nnodes; n++) {
        mem.kernel_node[n] = topo.node[n].kernel_id;
        for (int i = 0; i < topo.node[n].ncpus; i++)
            if (topo.node[n].cpus[i] >= 0 && topo.node[n].cpus[i] < MAX_CPUS)
                cpu_node[topo.node[n].cpus[i]] = (uint8_t)n;
    }

    /* The secret: AT_RANDOM bytes mixed with the clock; never 0, top bit set
     * so that an encoded link is never a user-space address. */
    uintptr_t s = (uintptr_t)ki_nanotime() * 0x9e3779b97f4a7c15ULL;
    const unsigned char *r = (const unsigned char *)getauxval(AT_RANDOM);
    if (r) {
        uintptr_t x;
        memcpy(&x, r + 8, sizeof x);
        s ^= x;
    }
    mem.secret = (s | (1UL << 63)) & ~7UL;
    mem_empty_span.free = blk_enc(1); /* empty list */
    atomic_store_explicit(&mem_empty_span.owner, NOBODY, memory_order_relaxed);
    atomic_store_explicit(&mem_dead_span.owner, NOBODY, memory_order_relaxed);
    mem_dead_span.state = SPAN_DEAD;
    mem_dead_span.free = blk_enc(1);
    mem.arena_map = mem_arena_map;
    /* No goal and no limit until the collector's pacer sets them (gc_init):
     * nobody is over a goal of 0. */
    atomic_store_explicit(&mem.gc_goal, INT64_MAX, memory_order_relaxed);
    atomic_store_explicit(&mem.memlimit, INT64_MAX, memory_order_relaxed);
    size_t nmsize = (sizeof(struct node_mem) + KI_PAGE_SIZE - 1) & ~(KI_PAGE_SIZE - 1);
    for (int n = 0; n < mem.nnodes; n++) {
        struct node_mem *nm = mem_meta_alloc(nmsize);
        nm->heap.node = n;
        mem.nodes[n] = nm;
    }
    /* Nodes beyond the discovered ones (a P numbered past them, which only a
     * topology mismatch could produce) share node 0's structures. */
    for (int n = mem.nnodes; n < MEM_MAX_NODES; n++)
        mem.nodes[n] = mem.nodes[0];
    /* Release: publishes everything above; pairs with mem_init's acquire. */
    atomic_store_explicit(&mem.ready, 1, memory_order_release);
    rlock_release(&mem.init_lock);
}

struct arena *arena_grow(struct mheap *h, size_t bytes)
{
    bytes = (bytes + ARENA_SIZE - 1) & ~(ARENA_SIZE - 1);
    int err;
    /* Over-reserve by one arena and trim to get 64 MiB alignment. */
    uint8_t *raw = ki_mmap_anon(bytes + ARENA_SIZE, false, &err);
    if (!raw) return NULL;
    uintptr_t base = ((uintptr_t)raw + ARENA_SIZE - 1) & ~(ARENA_SIZE - 1);
    if (base > (uintptr_t)raw) ki_munmap(raw, base - (uintptr_t)raw);
    uintptr_t end = (uintptr_t)raw + bytes + ARENA_SIZE;
    if (end > base + bytes) ki_munmap((void *)(base + bytes), end - (base + bytes));
    if ((base + bytes) >> ADDR_BITS) {
        ki_munmap((void *)base, bytes);
        return NULL;
    }
    if (mem.numa_real && mem.kernel_node[h->node] >= 0)
        (void)ki_mbind_node((void *)base, bytes, mem.kernel_node[h->node]); /* best effort */
    /* Widen the collector's quick range check before any object here exists
     * (relaxed: see gc_shade). */
    uintptr_t lo = atomic_load_explicit(&mem.arena_lo, memory_order_relaxed);
    while ((lo == 0 || base < lo) &&
           !atomic_compare_exchange_weak_explicit(&mem.arena_lo, &lo, base, memory_order_relaxed,
                                                  memory_order_relaxed)) {
    }
    uintptr_t hi = atomic_load_explicit(&mem.arena_hi, memory_order_relaxed);
    while (base + bytes > hi &&
           !atomic_compare_exchange_weak_explicit(&mem.arena_hi, &hi, base + bytes,
                                                  memory_order_relaxed, memory_order_relaxed)) {
    }
    struct arena *first = NULL;
    for (uintptr_t a = base; a < base + bytes; a += ARENA_SIZE) {
        struct arena *ar = mem_meta_alloc(sizeof *ar);
        for (size_t i = 0; i < ARENA_PAGES; i++) /* unpublished yet: relaxed */
            atomic_store_explicit(&ar->spans[i], &mem_dead_span, memory_order_relaxed);
        ar->base = a;
        ar->node = h->node;
        ar->next = h->arenas;
        h->arenas = ar;
        /* Release: the arena is initialised before any freer can find it. */
        atomic_store_explicit(&mem.arena_map[a >> ARENA_SHIFT], ar, memory_order_release);
        if (!first) first = ar;
    }
    return first;
}

int mem_node_of(const void *p)
{
    uintptr_t a = (uintptr_t)p;
    if (a >> ADDR_BITS) return -1;
    struct arena *ar = atomic_load_explicit(&mem.arena_map[a >> ARENA_SHIFT], memory_order_acquire);
    return ar ? ar->node : -1;
}

/* tools/numabench/topo.c: which nodes gort-numabench measures, buffers bound to one of
 * them, and where their pages really are.
 *
 * Topology. The rows are the nodes gort's runtime sees (kernel-iface's
 * ki_numa_discover with the same GORT_NUMA value, so fake:N and off split the CPUs
 * exactly as the scheduler does). With real NUMA the columns add the nodes that have
 * memory and no CPU of ours (CXL or HBM memory, or nodes our cpuset excludes from
 * running but not from allocating): the memory a program may be given. A virtual node
 * of fake:N with no CPU (N above the CPU count) is run by the first node's CPUs, as
 * gort's Ps of such nodes are.
 *
 * Buffers. Mapped with MAP_NORESERVE, aligned to 2 MiB and marked MADV_HUGEPAGE so a
 * random walk over them does not measure page walks, then bound to their node with
 * mbind(MPOL_BIND) before any page is touched: the first touch (by a thread of the
 * node, nb_chase_build) then allocates every page on that node, or fails; nothing
 * falls back to another node silently. Unbound buffers (fake, off) get the kernel's
 * default first-touch placement.
 *
 * Placement. move_pages(2) with nodes == NULL only reports the node of each page
 * (status[i] >= 0) or why it cannot (-ENOENT: not present, -EFAULT); one query per
 * 4 KiB page, in batches. A page counts as elsewhere when it is present on another
 * node than the one the buffer was bound to.
 */
#include <errno.h>
#include <numa.h>
#include <numaif.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "tools/numabench/numabench.h"

#define HUGE_ALIGN  (2UL << 20)
#define QUERY_BATCH 4096
#define SMALL_PAGE  4096UL

int nb_topo_discover(struct nb_topo *t, char *err, size_t errlen)
{
    memset(t, 0, sizeof *t);
    if (ki_numa_discover(&t->ki, getenv("GORT_NUMA"), err, errlen) < 0) {
        if (err && errlen && !err[0]) snprintf(err, errlen, "cannot read the CPU topology");
        return -1;
    }
    t->mode = t->ki.fake ? NB_FAKE : t->ki.real ? NB_REAL : NB_OFF;
    const struct ki_numa_node *first = &t->ki.node[0];
    for (int i = 0; i < t->ki.nnodes && i < NB_MAX_COLS; i++) {
        const struct ki_numa_node *kn = &t->ki.node[i];
        struct nb_node *n = &t->node[i];
        n->label = t->mode == NB_REAL ? kn->kernel_id : i;
        n->kernel_id = t->mode == NB_REAL ? kn->kernel_id : -1;
        n->own_cpus = kn->ncpus > 0;
        n->ncpus = n->own_cpus ? kn->ncpus : first->ncpus;
        n->cpus = n->own_cpus ? kn->cpus : first->cpus;
    }
    t->nrows = t->ncols = t->ki.nnodes < NB_MAX_COLS ? t->ki.nnodes : NB_MAX_COLS;
    if (t->mode != NB_REAL) return 0;

    /* Memory-only columns: nodes we may allocate on that hold no CPU of ours. */
    struct bitmask *mems = numa_get_mems_allowed();
    int maxnode = numa_max_node();
    for (int k = 0; mems && k <= maxnode && t->ncols < NB_MAX_COLS; k++) {
        if (!numa_bitmask_isbitset(mems, (unsigned)k)) continue;
        bool row = false;
        for (int i = 0; i < t->nrows && !row; i++)
            row = t->node[i].kernel_id == k;
        long long total, free_bytes;
        nb_node_size(k, &total, &free_bytes);
        if (row || total <= 0) continue;
        t->node[t->ncols++] = (struct nb_node){
            .label = k,
            .kernel_id = k,
            .ncpus = t->node[0].ncpus,
            .cpus = t->node[0].cpus,
            .own_cpus = false,
            .mem_only = true,
        };
    }
    if (mems) numa_bitmask_free(mems);
    return 0;
}

void nb_topo_describe(const struct nb_topo *t, char *buf, size_t len)
{
    switch (t->mode) {
    case NB_REAL:
        snprintf(buf, len,
                 "%d NUMA node%s (the kernel's node ids; memory bound to its node with mbind)",
                 t->ncols, t->ncols == 1 ? "" : "s");
        break;
    case NB_FAKE:
        snprintf(buf, len,
                 "GORT_NUMA=fake:%d: %d virtual nodes splitting the CPUs, not the kernel's "
                 "nodes; memory is not bound (first touched by the column's CPUs), so all "
                 "columns measure the same real memory",
                 t->ki.nnodes, t->ki.nnodes);
        break;
    case NB_OFF:
    default:
        snprintf(buf, len, "%s: one node holding every CPU; memory is not bound",
                 getenv("GORT_NUMA") && !strcmp(getenv("GORT_NUMA"), "off") ? "GORT_NUMA=off"
                                                                            : "no NUMA support");
        break;
    }
}

/* "107520K" -> bytes; 0 when unreadable. */
static size_t read_size_file(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return 0;
    unsigned long v = 0;
    char unit = 0;
    int n = fscanf(f, "%lu%c", &v, &unit);
    fclose(f);
    if (n < 1) return 0;
    if (unit == 'K') return v << 10;
    if (unit == 'M') return v << 20;
    if (unit == 'G') return v << 30;
    return v;
}

size_t nb_llc_bytes(void)
{
    size_t best = 0;
    int best_level = -1, cpu = sched_getcpu();
    for (int i = 0; i < 16; i++) {
        char path[128];
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu%d/cache/index%d/level",
                 cpu >= 0 ? cpu : 0, i);
        FILE *f = fopen(path, "r");
        if (!f) break;
        int level = 0;
        if (fscanf(f, "%d", &level) != 1) level = 0;
        fclose(f);
        char *slash = strrchr(path, '/');
        snprintf(slash, sizeof path - (size_t)(slash - path), "/size");
        size_t sz = read_size_file(path);
        if (level > best_level || (level == best_level && sz > best)) {
            best_level = level;
            best = sz;
        }
    }
    if (best) return best;
    long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
    if (l3 > 0) return (size_t)l3;
    long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return l2 > 0 ? (size_t)l2 : 0;
}

void nb_node_size(int k, long long *total, long long *free_bytes)
{
    *total = *free_bytes = -1;
    if (k < 0 || numa_available() < 0) return;
    long long fr = -1;
    long long tot = numa_node_size64(k, &fr);
    *total = tot;
    *free_bytes = tot < 0 ? -1 : fr;
}

void *nb_buf_map(size_t n, int kernel_id, char *err, size_t errlen)
{
    size_t len = n + HUGE_ALIGN;
    char *raw =
        mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (raw == MAP_FAILED) {
        snprintf(err, errlen, "mmap of %zu MiB: %s", n >> 20, strerror(errno));
        return NULL;
    }
    /* Trim to a 2 MiB aligned range of n bytes (n is a multiple of 2 MiB). */
    char *p = (char *)(((uintptr_t)raw + HUGE_ALIGN - 1) & ~(HUGE_ALIGN - 1));
    if (p > raw) munmap(raw, (size_t)(p - raw));
    if (raw + len > p + n) munmap(p + n, (size_t)(raw + len - (p + n)));
    (void)madvise(p, n, MADV_HUGEPAGE); /* best effort: THP may be off ("never") */
    if (kernel_id >= 0) {
        struct bitmask *bm = numa_allocate_nodemask();
        if (!bm || (unsigned)kernel_id >= bm->size) {
            if (bm) numa_bitmask_free(bm);
            munmap(p, n);
            snprintf(err, errlen, "node %d: cannot build a node mask", kernel_id);
            return NULL;
        }
        numa_bitmask_setbit(bm, (unsigned)kernel_id);
        /* maxnode counts bits, and the kernel reads one fewer than it is given. */
        long r = mbind(p, n, MPOL_BIND, bm->maskp, bm->size + 1, 0);
        int e = errno;
        numa_bitmask_free(bm);
        if (r != 0) {
            munmap(p, n);
            snprintf(err, errlen, "mbind(MPOL_BIND) to node %d: %s", kernel_id, strerror(e));
            return NULL;
        }
    }
    return p;
}

void nb_buf_unmap(void *p, size_t n)
{
    if (p) munmap(p, n);
}

void nb_place_query(void *p, size_t n, int expected, struct nb_place *out)
{
    memset(out, 0, sizeof *out);
    out->expected = expected;
    void *addr[QUERY_BATCH];
    int status[QUERY_BATCH];
    size_t npages = n / SMALL_PAGE;
    for (size_t at = 0; at < npages; at += QUERY_BATCH) {
        size_t cnt = npages - at < QUERY_BATCH ? npages - at : QUERY_BATCH;
        for (size_t i = 0; i < cnt; i++)
            addr[i] = (char *)p + (at + i) * SMALL_PAGE;
        if (move_pages(0, cnt, addr, NULL, status, 0) != 0) {
            out->err = -errno;
            return;
        }
        for (size_t i = 0; i < cnt; i++) {
            out->pages++;
            int st = status[i];
            if (st < 0) {
                out->missing++;
                continue;
            }
            out->on[st < NB_HIST_NODES ? st : NB_HIST_NODES]++;
            if (expected >= 0 && st != expected) out->elsewhere++;
        }
    }
}

long long nb_thp_bytes(const void *p, size_t n)
{
    FILE *f = fopen("/proc/self/smaps", "r");
    if (!f) return -1;
    uintptr_t lo = (uintptr_t)p, hi = lo + n;
    long long total = 0;
    bool inside = false, seen = false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long a, b;
        char c;
        if (sscanf(line, "%lx-%lx %c", &a, &b, &c) == 3 && strchr(line, '-') < strchr(line, ' ')) {
            inside = a < hi && b > lo; /* a mapping header: does it overlap the buffer? */
            continue;
        }
        long long kb;
        if (inside && sscanf(line, "AnonHugePages: %lld kB", &kb) == 1) {
            total += kb << 10;
            seen = true;
        }
    }
    fclose(f);
    return seen ? total : -1;
}

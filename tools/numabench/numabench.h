/* tools/numabench/numabench.h: what the three files of gort-numabench share.
 *
 *   main.c     options, the order of the measurements, the matrices and CSV
 *   topo.c     the nodes (rows: nodes with CPUs; columns: those plus memory-only
 *              nodes), buffers bound to a node, placement checked with move_pages(2)
 *   measure.c  goroutines pinned to a node's CPUs; the pointer chase (latency) and
 *              the streaming read and write loops (bandwidth)
 *
 * Node numbers. With real NUMA (libnuma, GORT_NUMA unset) rows and columns are
 * labelled with the kernel's node ids, the ones numactl and /sys use. With
 * GORT_NUMA=fake:N they are gort's virtual nodes 0..N-1, which split the CPUs of
 * one real node: memory is not bound, and every column's buffer lies on the same
 * real memory (first touched by a thread of the virtual node). With GORT_NUMA=off,
 * or without NUMA support, there is one node holding every CPU.
 */
#ifndef GORT_TOOLS_NUMABENCH_H
#define GORT_TOOLS_NUMABENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kernel-iface/ki.h"

#define NB_MAX_COLS   KI_MAX_NODES
#define NB_HIST_NODES 256 /* kernel nodes counted one by one in a placement histogram */

enum nb_mode {
    NB_REAL, /* the kernel's nodes: memory bound with mbind(MPOL_BIND) */
    NB_FAKE, /* GORT_NUMA=fake:N: virtual nodes over one real node, nothing bound */
    NB_OFF,  /* GORT_NUMA=off, or no NUMA support: one node, nothing bound */
};

/* One node: a column (memory), and a row too when it has CPUs. */
struct nb_node {
    int label;     /* printed id: the kernel's node (NB_REAL) or gort's virtual node */
    int kernel_id; /* node to bind the column's memory to; -1: not bound */
    int ncpus;     /* CPUs that run this row and first-touch this column's memory */
    const int *cpus;
    bool own_cpus; /* false: a node without CPUs of its own, run by the first row's */
    bool mem_only; /* a real node with memory and no CPUs: a column only */
};

struct nb_topo {
    enum nb_mode mode;
    int nrows, ncols; /* rows = node[0..nrows), columns = node[0..ncols) */
    struct nb_node node[NB_MAX_COLS];
    struct ki_numa ki; /* what gort's runtime sees (its CPU lists are ours) */
};

/* Where the pages of a buffer are (move_pages query mode, one entry per 4 KiB). */
struct nb_place {
    int err;                    /* 0, or -errno when move_pages failed outright */
    long pages;                 /* pages asked about */
    long missing;               /* not present or not queryable (status < 0) */
    long elsewhere;             /* present on another node than expected (expected >= 0) */
    long on[NB_HIST_NODES + 1]; /* present pages per kernel node; [NB_HIST_NODES]: higher */
    int expected;               /* kernel node expected, -1: none (memory not bound) */
};

/* ---- topo.c ---------------------------------------------------------------------------- */
/* Rows and columns from GORT_NUMA (as the runtime reads it) and libnuma. 0, or -1 with a
 * message in err. */
int nb_topo_discover(struct nb_topo *t, char *err, size_t errlen);
/* One line saying what the nodes are (fake and off say that nothing is bound). */
void nb_topo_describe(const struct nb_topo *t, char *buf, size_t len);
/* Bytes of the largest CPU cache (the LLC), 0 when unknown. */
size_t nb_llc_bytes(void);
/* Total and free bytes of kernel node k (-1 when unknown). */
void nb_node_size(int k, long long *total, long long *free_bytes);
/* Map n bytes (2 MiB aligned, transparent huge pages asked for) bound to kernel node
 * `kernel_id` (-1: not bound), no page touched yet. NULL with a message on failure. */
void *nb_buf_map(size_t n, int kernel_id, char *err, size_t errlen);
void nb_buf_unmap(void *p, size_t n);
/* Query where the pages of [p, p+n) are. */
void nb_place_query(void *p, size_t n, int expected, struct nb_place *out);
/* Bytes of [p, p+n) backed by transparent huge pages (/proc/self/smaps), -1 unknown. */
long long nb_thp_bytes(const void *p, size_t n);

/* ---- measure.c ------------------------------------------------------------------------- */
/* Run fn(arg, i) for i in 0..n) in n goroutines at once, each locked to its thread and
 * that thread pinned to cpus[i % ncpus] (spread) or to all of cpus; fn runs inside a
 * blocking region (plain C, no gort call that may park). Returns when all are done,
 * with every thread's affinity restored; 0, or -errno when pinning failed. */
int nb_run_pinned(int n, const int *cpus, int ncpus, bool spread, void (*fn)(void *, int),
                  void *arg);

#define NB_CHASE_CHUNK 4096 /* loads per timed chunk of a walk; a multiple of 8 */

/* A random cyclic permutation of the 64-byte lines of a buffer: line i's first word
 * points to the next line of one cycle through all nlines lines. */
struct nb_chase {
    char *base;
    size_t nlines;
    void *cursor; /* where the next walk starts: walks continue the cycle, so a row never
                     revisits lines that an earlier row brought into its caches */
};
/* Write the cycle (first touch of every page) and flush it from the caches. Runs on a
 * pinned thread of the memory's node (nb_run_pinned). */
void nb_chase_build(struct nb_chase *c, uint64_t seed);
/* Walk at most max_steps loads for about budget_ns; the median ns per load over chunks
 * of steps. */
double nb_chase_ns(struct nb_chase *c, uint64_t max_steps, int64_t budget_ns);

/* Streaming bandwidth of nthreads threads pinned to cpus, each over its own slice of
 * [base, base+n), for about budget_ns: GB/s (10^9 bytes/s), or -errno when pinning
 * failed. write: non-temporal stores, else loads. */
double nb_stream_gbps(char *base, size_t n, int nthreads, const int *cpus, int ncpus, bool write,
                      int64_t budget_ns);

int64_t nb_now(void); /* CLOCK_MONOTONIC ns (no gort call: usable in blocking regions) */

#endif

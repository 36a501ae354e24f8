/* kernel-iface/numa.c: the NUMA topology as gort sees it.
 *
 * Nodes are numbered densely 0..nnodes-1 and hold only CPUs this process may
 * run on (sched_getaffinity); nodes without such CPUs are left out. Each node
 * records the kernel's id for ki_mbind_node (kernel_id), since dense numbers
 * and kernel ids differ when a node is skipped. A node may have CPUs but no
 * memory; mbind to it then fails, and callers must cope (-EINVAL).
 * Invariants, for every result of ki_numa_discover:
 *   sum over nodes of ncpus == the number of usable CPUs (ki_cpu_count());
 *   every usable CPU is in exactly one node; node[0].ncpus >= 1;
 *   real => every node's kernel_id >= 0;  !real => every kernel_id == -1.
 * GORT_NUMA:
 *   unset/""  the kernel's nodes (one node, real = false, without NUMA
 *             support in the kernel: numa_available() < 0);
 *   "off"     one node holding every usable CPU, real = false;
 *   "fake:N"  N (1..64) nodes of contiguous, near-equal CPU blocks (sizes
 *             differ by at most one, larger first); nodes past the CPU count
 *             get none (ncpus == 0, cpus == NULL). real = false, fake = true.
 * The cpus arrays are malloc'd and live for the process.
 * Callers: runtime start-up (single-threaded), tests. Not signal-safe.
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <numa.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The usable CPUs in ascending order, into a malloc'd array; returns the
 * count (>= 1) or -errno. */
static int usable_cpus(int **out)
{
    for (int n = 1024; n <= (1 << 20); n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set) return -ENOMEM;
        size_t sz = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(sz, set);
        if (sched_getaffinity(0, sz, set) != 0) {
            int err = errno;
            CPU_FREE(set);
            if (err == EINVAL) continue; /* the kernel's mask is larger: grow */
            return -err;
        }
        int cnt = CPU_COUNT_S(sz, set);
        int *cpus = malloc((size_t)(cnt > 0 ? cnt : 1) * sizeof *cpus);
        if (!cpus) {
            CPU_FREE(set);
            return -ENOMEM;
        }
        int k = 0;
        for (int c = 0; c < n && k < cnt; c++)
            if (CPU_ISSET_S(c, sz, set)) cpus[k++] = c;
        CPU_FREE(set);
        if (k == 0) { /* cannot happen (we are running somewhere); be safe */
            cpus[0] = sched_getcpu() >= 0 ? sched_getcpu() : 0;
            k = 1;
        }
        *out = cpus;
        return k;
    }
    return -EINVAL;
}

static void numa_free_nodes(struct ki_numa *t)
{
    for (int i = 0; i < t->nnodes; i++)
        free(t->node[i].cpus);
    memset(t, 0, sizeof *t);
}

/* Split cpus[0..ncpus) into n contiguous blocks. Takes ownership of cpus. */
static int numa_split(struct ki_numa *t, int *cpus, int ncpus, int n)
{
    int base = ncpus / n, rem = ncpus % n, at = 0;
    t->nnodes = n;
    for (int i = 0; i < n; i++) {
        int cnt = base + (i < rem);
        struct ki_numa_node *nd = &t->node[i];
        nd->kernel_id = -1;
        nd->ncpus = cnt;
        nd->cpus = NULL;
        if (cnt == 0) continue;
        nd->cpus = malloc((size_t)cnt * sizeof *nd->cpus);
        if (!nd->cpus) {
            free(cpus);
            numa_free_nodes(t);
            return -ENOMEM;
        }
        memcpy(nd->cpus, cpus + at, (size_t)cnt * sizeof *cpus);
        at += cnt;
    }
    free(cpus);
    return 0;
}

/* The kernel's nodes, restricted to cpus[]. Takes ownership of cpus. */
static int numa_from_kernel(struct ki_numa *t, int *cpus, int ncpus)
{
    if (numa_available() < 0) return numa_split(t, cpus, ncpus, 1);

    int maxnode = numa_max_node();
    int *owner = malloc((size_t)ncpus * sizeof *owner); /* dense node of cpus[i], or -1 */
    struct bitmask *bm = numa_allocate_cpumask();
    if (!owner || !bm) {
        free(owner);
        if (bm) numa_free_cpumask(bm);
        free(cpus);
        return -ENOMEM;
    }
    for (int i = 0; i < ncpus; i++)
        owner[i] = -1;

    int nn = 0;
    for (int kn = 0; kn <= maxnode; kn++) {
        /* Node ids may have holes; libnuma's answer for a missing node is
         * not to be trusted (older versions warn and report every CPU). */
        if (!numa_bitmask_isbitset(numa_nodes_ptr, (unsigned)kn) || numa_node_to_cpus(kn, bm) != 0)
            continue;
        int hits = 0;
        for (int i = 0; i < ncpus; i++) {
            if (owner[i] < 0 && (unsigned)cpus[i] < bm->size &&
                numa_bitmask_isbitset(bm, (unsigned)cpus[i])) {
                /* More nodes with CPUs than we can number: fold into the last. */
                owner[i] = nn < KI_MAX_NODES ? nn : KI_MAX_NODES - 1;
                hits++;
            }
        }
        if (hits && nn < KI_MAX_NODES) t->node[nn++].kernel_id = kn;
    }
    numa_free_cpumask(bm);

    if (nn == 0) { /* libnuma knows no CPU of ours: treat as one node */
        free(owner);
        return numa_split(t, cpus, ncpus, 1);
    }
    /* A usable CPU no node claims (should not happen) goes to node 0, so the
     * counts still add up to the usable CPUs. */
    for (int i = 0; i < ncpus; i++)
        if (owner[i] < 0) owner[i] = 0;
    for (int i = 0; i < ncpus; i++)
        t->node[owner[i]].ncpus++;
    t->nnodes = nn;
    for (int d = 0; d < nn; d++) {
        struct ki_numa_node *nd = &t->node[d];
        nd->cpus = malloc((size_t)nd->ncpus * sizeof *nd->cpus);
        if (!nd->cpus) {
            free(owner);
            free(cpus);
            numa_free_nodes(t);
            return -ENOMEM;
        }
        nd->ncpus = 0;
    }
    for (int i = 0; i < ncpus; i++) { /* cpus[] is ascending, so each list is */
        struct ki_numa_node *nd = &t->node[owner[i]];
        nd->cpus[nd->ncpus++] = cpus[i];
    }
    free(owner);
    free(cpus);
    /* Every node kept had a CPU of ours, so node[0].ncpus >= 1. */
    t->real = true;
    return 0;
}

static int numa_bad_env(const char *env, char *errbuf, size_t errlen)
{
    if (errbuf && errlen)
        snprintf(errbuf, errlen, "GORT_NUMA=\"%s\": expected \"off\" or \"fake:N\" with N in 1..%d",
                 env, KI_MAX_NODES);
    return -EINVAL;
}

/* Parse "fake:N"; returns N in 1..KI_MAX_NODES, or 0 when malformed. */
static int parse_fake(const char *env)
{
    if (strncmp(env, "fake:", 5) != 0) return 0;
    const char *p = env + 5;
    if (*p < '0' || *p > '9') return 0; /* "fake:", "fake:-1", "fake: 2", "fake:+2" */
    long v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        v = v * 10 + (*p - '0');
        if (v > KI_MAX_NODES) return 0;
    }
    if (*p != '\0' || v < 1) return 0; /* "fake:2x", "fake:0" */
    return (int)v;
}

int ki_numa_discover(struct ki_numa *out, const char *env, char *errbuf, size_t errlen)
{
    if (!out) return -EINVAL;
    memset(out, 0, sizeof *out);
    if (errbuf && errlen) errbuf[0] = '\0';

    enum { AUTO, OFF, FAKE } mode = AUTO;
    int nfake = 0;
    if (env && env[0]) {
        if (strcmp(env, "off") == 0) {
            mode = OFF;
        } else if ((nfake = parse_fake(env)) > 0) {
            mode = FAKE;
        } else {
            return numa_bad_env(env, errbuf, errlen);
        }
    }

    int *cpus = NULL;
    int ncpus = usable_cpus(&cpus);
    if (ncpus < 0) return ncpus;

    switch (mode) {
    case OFF:
        return numa_split(out, cpus, ncpus, 1);
    case FAKE: {
        int r = numa_split(out, cpus, ncpus, nfake);
        out->fake = r == 0;
        return r;
    }
    case AUTO:
    default:
        return numa_from_kernel(out, cpus, ncpus);
    }
}

int ki_numa_node_of_cpu(const struct ki_numa *t, int cpu)
{
    if (!t) return 0;
    for (int n = 0; n < t->nnodes; n++)
        for (int i = 0; i < t->node[n].ncpus; i++)
            if (t->node[n].cpus[i] == cpu) return n;
    return 0;
}

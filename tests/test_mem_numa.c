/* tests/test_mem_numa.c: where the allocator's memory really lies, asked of the kernel
 * with move_pages(2) (query mode: nodes == NULL, status[i] = the node of page i).
 *
 * Issue 7: "on real multi-node machines placement is verified with move_pages". Each
 * case runs this program again (/proc/self/exe --scenario placement) under its own
 * GORT_NUMA. There, twice as many goroutines as Ps allocate objects of five sizes
 * (small to large), write every byte, and keep those whose P's node was the same
 * before and after the call (a goroutine may change P at any call), until every node
 * has NEED_PER_NODE of them (no node keeps more). Then, per object: the heap's node (mem_node_of)
 * must be the P's, and move_pages must find each of its pages present, on:
 *   - the P's node, where the nodes are the kernel's and more than one (mbind at work);
 *   - kernel node 0, on a machine with one node (whatever GORT_NUMA says);
 *   - anywhere, otherwise (fake:N or off on a multi-node machine: nothing is bound).
 * The scenario prints one line per node and a summary, and exits 0 when all holds.
 *
 * Cases: fake:2 (both virtual nodes allocate; here their pages are on node 0), off, and
 * the machine's own nodes, which skips on a single-node machine (like this one). No
 * timing assertions.
 */
#include <errno.h>
#include <limits.h>
#include <numa.h>
#include <numaif.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"
#include "kernel-iface/ki.h"

#include "gort_test.h"

/* internals (mem/mem.h, sched/sched.h), as tests/test_malloc.c declares them */
struct mcache;
int mem_node_of(const void *p);
struct mcache **sched_mcache_slot(int *node);

#define SCENARIO_FLAG  "--scenario"
#define PAGE           4096UL
#define RECS_PER_G     64 /* objects a goroutine keeps, at most */
#define NEED_PER_NODE  24 /* kept objects each node must have */
#define RUN_TIMEOUT_MS 120000

/* ---- the scenario (in the subprocess) ------------------------------------------------ */

static uint64_t all_bits(int n)
{
    return n >= 64 ? ~0ULL : (1ULL << n) - 1;
}

static int cur_node(void)
{
    int node;
    sched_mcache_slot(&node);
    return node;
}

struct rec {
    char *p;
    size_t n;
    int node; /* the P's node during the allocation */
};

struct place {
    struct ki_numa topo;
    int nnodes;
    gort_waitgroup wg;
    int64_t deadline;
    _Atomic int kept[KI_MAX_NODES];
    _Atomic bool enough;
    struct rec (*recs)[RECS_PER_G];
    int *nrecs;
};

static bool all_nodes_enough(struct place *st)
{
    for (int n = 0; n < st->nnodes; n++)
        if (atomic_load(&st->kept[n]) < NEED_PER_NODE) return false;
    return true;
}

struct worker_arg {
    struct place *st;
    int id;
};

static void place_worker(void *arg)
{
    struct worker_arg *a = arg;
    struct place *st = a->st;
    static const size_t sizes[] = {16, 48, 1000, 8192, 40000, 200000};
    int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    for (int k = a->id; st->nrecs[a->id] < RECS_PER_G && !atomic_load(&st->enough); k++) {
        if (gort_now() > st->deadline) break;
        size_t n = sizes[k % nsizes];
        int n1 = cur_node();
        char *p = gort_malloc(n);
        int n2 = cur_node();
        memset(p, 0xa5, n); /* every page of the object present */
        if (n1 == n2 && n1 < st->nnodes && atomic_fetch_add(&st->kept[n1], 1) < NEED_PER_NODE) {
            st->recs[a->id][st->nrecs[a->id]++] = (struct rec){p, n, n1};
            if (all_nodes_enough(st)) atomic_store(&st->enough, true);
        } else {
            if (n1 == n2 && n1 < st->nnodes) atomic_fetch_sub(&st->kept[n1], 1);
            gort_free(p);
        }
        gort_yield(); /* keep every P busy and the goroutines moving between them */
    }
    gort_wg_done(&st->wg);
}

/* The kernel node the pages of gort node n must be on, or -1 (no expectation); *mode
 * names the rule. */
static int expected_node(const struct place *st, int n, const char **mode)
{
    if (st->topo.real && st->topo.nnodes > 1) {
        *mode = "real";
        return st->topo.node[n].kernel_id;
    }
    if (numa_available() < 0 || numa_num_configured_nodes() <= 1) {
        *mode = "single";
        return 0;
    }
    *mode = "unbound";
    return -1;
}

static int scenario_placement(void)
{
    static struct place st;
    char err[256];
    if (ki_numa_discover(&st.topo, getenv("GORT_NUMA"), err, sizeof err) < 0) {
        printf("ki_numa_discover: %s\n", err);
        return 3;
    }
    st.nnodes = st.topo.nnodes;
    int ng = 2 * gort_maxprocs(0);
    st.recs = calloc((size_t)ng, sizeof *st.recs);
    st.nrecs = calloc((size_t)ng, sizeof *st.nrecs);
    struct worker_arg *args = calloc((size_t)ng, sizeof *args);
    if (!st.recs || !st.nrecs || !args) return 3;
    st.deadline = gort_now() + 20 * SEC;
    gort_wg_add(&st.wg, ng);
    for (int i = 0; i < ng; i++) {
        args[i] = (struct worker_arg){&st, i};
        gort_go(place_worker, &args[i]);
    }
    gort_wg_wait(&st.wg);

    /* Every page of every kept object, with the object it belongs to. */
    size_t npages = 0, cap = 1024;
    void **pages = malloc(cap * sizeof *pages);
    int *owner = malloc(cap * sizeof *owner); /* node of the page's object */
    int heapwrong = 0, nrec = 0;
    uint64_t seen = 0; /* bit n: node n kept an object */
    for (int g = 0; g < ng; g++)
        for (int i = 0; i < st.nrecs[g]; i++) {
            struct rec *r = &st.recs[g][i];
            nrec++;
            seen |= 1ULL << r->node;
            if (mem_node_of(r->p) != r->node) heapwrong++;
            uintptr_t first = (uintptr_t)r->p & ~(PAGE - 1);
            uintptr_t last = ((uintptr_t)r->p + r->n - 1) & ~(PAGE - 1);
            for (uintptr_t a = first; a <= last; a += PAGE) {
                if (npages == cap) {
                    cap *= 2;
                    pages = realloc(pages, cap * sizeof *pages);
                    owner = realloc(owner, cap * sizeof *owner);
                }
                if (!pages || !owner) return 3;
                pages[npages] = (void *)a;
                owner[npages++] = r->node;
            }
        }
    int *status = malloc(npages * sizeof *status);
    if (!status) return 3;
    /* A blocking call for the scheduler's sake; errno read before any gort call. */
    gort_blocking_begin();
    long rc = move_pages(0, npages, pages, NULL, status, 0);
    int e = rc ? errno : 0;
    gort_blocking_end();
    if (rc != 0) {
        printf("move_pages: %s\n", strerror(e));
        return 4;
    }
    const char *mode = "";
    long missing = 0, wrong = 0;
    for (int n = 0; n < st.nnodes; n++) {
        int want = expected_node(&st, n, &mode);
        long pn = 0, miss = 0, bad = 0, on0 = 0;
        for (size_t i = 0; i < npages; i++) {
            if (owner[i] != n) continue;
            pn++;
            if (status[i] < 0)
                miss++;
            else if (want >= 0 && status[i] != want)
                bad++;
            if (status[i] == 0) on0++;
        }
        printf("node %d: objects=%d pages=%ld expected_kernel_node=%d missing=%ld wrong=%ld "
               "on_kernel_node0=%ld\n",
               n, atomic_load(&st.kept[n]), pn, want, miss, bad, on0);
        missing += miss;
        wrong += bad;
    }
    printf("mode=%s nodes=%d seen=%llu objects=%d pages=%zu missing=%ld wrong=%ld "
           "heapwrong=%d\n",
           mode, st.nnodes, (unsigned long long)seen, nrec, npages, missing, wrong, heapwrong);
    bool ok = missing == 0 && wrong == 0 && heapwrong == 0 && seen == all_bits(st.nnodes);
    return ok ? 0 : 1;
}

static int scenario_main(int argc, char **argv)
{
    if (argc < 3) return 3;
    if (!strcmp(argv[2], "placement")) return scenario_placement();
    return 3;
}

/* ---- the cases (in the test program) ----------------------------------------------------- */

static void run_placement(const char *const *env, struct run *r)
{
    char *args[] = {(char *)"test_mem_numa", (char *)SCENARIO_FLAG, (char *)"placement", NULL};
    run_prog("/proc/self/exe", args, env, RUN_TIMEOUT_MS, r);
}

static bool single_node_machine(void)
{
    return numa_available() < 0 || numa_num_configured_nodes() <= 1;
}

/* Both virtual nodes' Ps allocate from their own heaps; the kernel finds every page
 * (on node 0 here: one real node). */
static void test_fake2(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_NUMA=fake:2", "GORT_MAXPROCS=4", NULL};
    struct run r;
    run_placement(env, &r);
    CHECK(&r, "fake:2", exited_with(&r, 0));
    CHECK(&r, "fake:2", has(r.out, " nodes=2 seen=3 ") && has(r.out, " missing=0 wrong=0 "));
    if (single_node_machine())
        CHECK(&r, "fake:2", has_line(r.out, "mode=single "));
    else
        print_message("fake:2 on a %d-node machine: pages of virtual nodes are not bound, "
                      "so only their presence was checked\n",
                      numa_num_configured_nodes());
    print_message("%s", r.out);
    run_free(&r);
}

static void test_off(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_NUMA=off", "GORT_MAXPROCS=2", NULL};
    struct run r;
    run_placement(env, &r);
    CHECK(&r, "off", exited_with(&r, 0));
    CHECK(&r, "off", has(r.out, " nodes=1 seen=1 ") && has(r.out, " missing=0 wrong=0 "));
    run_free(&r);
}

/* The machine's own nodes: every page on its P's node. Needs two nodes with CPUs. */
static void test_real_nodes(void **state)
{
    (void)state;
    if (single_node_machine()) {
        print_message("skipped: one NUMA node (numa_num_configured_nodes() = %d): pages "
                      "cannot be on another node than 0 (checked under fake:2)\n",
                      numa_available() < 0 ? 0 : numa_num_configured_nodes());
        skip();
    }
    static struct ki_numa topo;
    char err[256];
    assert_int_equal(ki_numa_discover(&topo, NULL, err, sizeof err), 0);
    if (!topo.real || topo.nnodes < 2) {
        print_message("skipped: %d NUMA nodes, but this process may run on the CPUs of only "
                      "one of them\n",
                      numa_num_configured_nodes());
        skip();
    }
    /* GORT_NUMA empty: the kernel's nodes; default GORT_MAXPROCS: a P per CPU, so every
     * node has Ps (P i takes the node of the i-th CPU). */
    static const char *const env[] = {"GORT_NUMA=", NULL};
    struct run r;
    run_placement(env, &r);
    char seen[64];
    snprintf(seen, sizeof seen, " nodes=%d seen=%llu ", topo.nnodes,
             (unsigned long long)all_bits(topo.nnodes));
    CHECK(&r, "real nodes", exited_with(&r, 0));
    CHECK(&r, "real nodes", has_line(r.out, "mode=real "));
    CHECK(&r, "real nodes", has(r.out, seen) && has(r.out, " missing=0 wrong=0 "));
    print_message("%s", r.out);
    run_free(&r);
}

int main(int argc, char **argv)
{
    if (argc > 2 && !strcmp(argv[1], SCENARIO_FLAG)) {
        setvbuf(stdout, NULL, _IOLBF, 0);
        return gort_main(scenario_main, argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fake2),
        cmocka_unit_test(test_off),
        cmocka_unit_test(test_real_nodes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

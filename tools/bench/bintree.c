/* bintree.c: binary-trees (the Computer Language Benchmarks Game) with explicit frees,
 * for the allocator comparison (alloc.h, tools/bench/allocbench.sh).
 *
 *   bench-bintree [DEPTH [RUNS]]   (default depth 18, 5 runs)
 *
 * One goroutine builds a stretch tree of DEPTH+1 and a long-lived tree of DEPTH, then
 * for d = 4, 6, ..., DEPTH builds and checks 2^(DEPTH-d+4) trees of depth d, freeing
 * each tree node by node. Nodes are 16 bytes (two pointers). Prints the median over
 * RUNS of the whole program's time:
 *   bintree_ms MEDIAN ms
 * and the checksums on stderr. The Go twin (bintree.go) cannot free: it relies on
 * Go's collector instead, so it compares the whole memory management, not malloc/free.
 */
#include <stdint.h>
#include <stdio.h>

#include "alloc.h"
#include "bench.h"

struct node {
    struct node *left, *right;
};

static struct node *make(int d)
{
    struct node *n = bench_malloc(sizeof *n);
    if (d > 0) {
        n->left = make(d - 1);
        n->right = make(d - 1);
    } else {
        n->left = n->right = NULL;
    }
    return n;
}

static long check(const struct node *n)
{
    return 1 + (n->left ? check(n->left) + check(n->right) : 0);
}

static void del(struct node *n)
{
    if (n->left) {
        del(n->left);
        del(n->right);
    }
    bench_free(n);
}

static long run(int max)
{
    long sum = 0;
    struct node *stretch = make(max + 1);
    sum += check(stretch);
    del(stretch);
    struct node *longlived = make(max);
    for (int d = 4; d <= max; d += 2) {
        long iters = 1L << (max - d + 4);
        for (long i = 0; i < iters; i++) {
            struct node *t = make(d);
            sum += check(t);
            del(t);
        }
    }
    sum += check(longlived);
    del(longlived);
    return sum;
}

static int bench_main(int argc, char **argv)
{
    long depth = bench_parse_arg(argc, argv, 1, 18, 24, "[DEPTH in 1..24 [RUNS]]");
    long runs = bench_parse_arg(argc, argv, 2, 5, 100, "[DEPTH in 1..24 [RUNS]]");
    if (depth < 0 || runs < 0) return 2;
    double ms[100];
    long sum = 0;
    for (long r = 0; r < runs; r++) {
        int64_t t0 = gort_now();
        sum = run((int)(depth < 6 ? 6 : depth));
        ms[r] = (double)(gort_now() - t0) / 1e6;
    }
    qsort(ms, (size_t)runs, sizeof ms[0], bench_cmp_double);
    fprintf(stderr, "bintree %s depth %ld: checksum %ld\n", ALLOC_NAME, depth, sum);
    printf("bintree_ms %.1f ms\n", bench_median(ms, runs));
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}

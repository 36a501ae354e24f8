/* blocking: what a blocking region costs around a short system call.
 *
 * Main alone: N getppid system calls bare, then N inside
 * gort_blocking_begin/end; the difference per call is the region's cost.
 * The Go twin compares syscall.RawSyscall (no scheduler involvement) with
 * syscall.Syscall (entersyscall/exitsyscall around it).
 *
 * Output (stdout, same names as blocking.go):
 *   blocking_region_ns  cost of entering and leaving, ns per call
 *   blocking_call_ns    the whole call inside a region, ns
 * Usage: bench-blocking [N]   (default N = 2000000)
 */
#include <stdio.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 2000000L

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 1000000000L);
    if (n < 0) return 2;
    double bare[5], region[5];
    for (int r = 0; r < 5; r++) {
        int64_t t0 = gort_now();
        for (long i = 0; i < n / 5; i++)
            syscall(SYS_getppid);
        int64_t t1 = gort_now();
        for (long i = 0; i < n / 5; i++) {
            gort_blocking_begin();
            syscall(SYS_getppid);
            gort_blocking_end();
        }
        int64_t t2 = gort_now();
        bare[r] = (double)(t1 - t0) / (double)(n / 5);
        region[r] = (double)(t2 - t1) / (double)(n / 5);
    }
    double b = bench_median(bare, 5), g = bench_median(region, 5);
    fprintf(stderr, "blocking: N=%ld, bare getppid %.1f ns\n", n, b);
    printf("blocking_region_ns %.1f ns\n", g - b);
    printf("blocking_call_ns %.1f ns\n", g);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}

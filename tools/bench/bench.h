/* bench.h: helpers shared by the C benchmarks of tools/bench (header-only; each NAME.c
 * includes it and is built on its own into bench-NAME; the Go twins NAME.go stay
 * single-file programs and keep their own copies):
 *   bench_parse_arg, bench_parse_n   positive integer arguments, "usage: ..." on a bad one
 *   bench_warm                       size of an untimed warm-up: N / 10, at least 1
 *   bench_go_n, bench_go_pair        start goroutines, wait on a waitgroup, time it
 *   bench_rss_bytes                  VmRSS from /proc/self/status, in bytes
 *   bench_cmp_double, bench_cmp_i64  qsort comparators (ascending)
 *   bench_median, bench_pct          median / nearest-rank percentile of a sorted array
 * Everything is static and marked unused, so a benchmark includes what it does not call.
 */
#ifndef GORT_TOOLS_BENCH_BENCH_H
#define GORT_TOOLS_BENCH_BENCH_H

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort.h"

/* argv[i] as a long in 1..max (max 0: no upper bound), or def when there is no argv[i].
 * A bad value prints "usage: PROGRAM USAGE" on stderr and returns -1. */
static __attribute__((unused)) long bench_parse_arg(int argc, char **argv, int i, long def,
                                                    long max, const char *usage)
{
    if (argc <= i) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[i], &end, 10);
    if (errno != 0 || end == argv[i] || *end != '\0' || v <= 0 || (max > 0 && v > max)) {
        fprintf(stderr, "usage: %s %s\n", argv[0], usage);
        return -1;
    }
    return v;
}

/* The one optional argument N (argv[1]): bench_parse_arg with the usage "[N > 0]" when max
 * is 0, "[N in 1..max]" otherwise. */
static __attribute__((unused)) long bench_parse_n(int argc, char **argv, long def, long max)
{
    char usage[48];
    if (max > 0)
        snprintf(usage, sizeof usage, "[N in 1..%ld]", max);
    else
        snprintf(usage, sizeof usage, "[N > 0]");
    return bench_parse_arg(argc, argv, 1, def, max, usage);
}

/* Iterations of the untimed warm-up before a run of n: a tenth, at least 1. */
static __attribute__((unused)) long bench_warm(long n)
{
    return n / 10 > 0 ? n / 10 : 1;
}

/* Adds count to *wg, starts count goroutines fn(arg) and waits on *wg; returns the
 * elapsed gort_now() nanoseconds from just before the first start to the end of the wait. */
static __attribute__((unused)) int64_t bench_go_n(gort_waitgroup *wg, long count,
                                                  void (*fn)(void *), void *arg)
{
    gort_wg_add(wg, (int)count);
    int64_t t0 = gort_now();
    for (long i = 0; i < count; i++)
        gort_go(fn, arg);
    gort_wg_wait(wg);
    return gort_now() - t0;
}

/* Adds 2 to *wg, starts first(NULL) then second(NULL) and waits on *wg; returns the elapsed
 * gort_now() nanoseconds, as bench_go_n. */
static __attribute__((unused)) int64_t bench_go_pair(gort_waitgroup *wg, void (*first)(void *),
                                                     void (*second)(void *))
{
    gort_wg_add(wg, 2);
    int64_t t0 = gort_now();
    gort_go(first, NULL);
    gort_go(second, NULL);
    gort_wg_wait(wg);
    return gort_now() - t0;
}

/* VmRSS of this process in bytes, or -1 (with a message on stderr; a missing VmRSS line
 * reads "WHO: no VmRSS in /proc/self/status"). Same method as the Go twins: read the whole
 * of /proc/self/status and parse the "VmRSS:" line (kB). */
static __attribute__((unused)) long long bench_rss_bytes(const char *who)
{
    static char buf[16384];
    int fd = open("/proc/self/status", O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        perror("open /proc/self/status");
        return -1;
    }
    size_t len = 0;
    for (;;) {
        ssize_t r = read(fd, buf + len, sizeof buf - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        len += (size_t)r;
        if (len == sizeof buf - 1) break;
    }
    close(fd);
    buf[len] = '\0';
    const char *p = strstr(buf, "\nVmRSS:");
    if (p == NULL) {
        fprintf(stderr, "%s: no VmRSS in /proc/self/status\n", who);
        return -1;
    }
    return strtoll(p + strlen("\nVmRSS:"), NULL, 10) * 1024;
}

static __attribute__((unused)) int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static __attribute__((unused)) int bench_cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

/* Median of sorted v[0..n), n > 0: the middle one, or the mean of the two middle ones. */
static __attribute__((unused)) double bench_median(const double *v, long n)
{
    return (n % 2) ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* Nearest-rank percentile p of sorted v[0..n), n > 0. */
static __attribute__((unused)) int64_t bench_pct(const int64_t *v, long n, int p)
{
    long k = (n * p + 99) / 100; /* ceil(n * p / 100), 1-based */
    if (k < 1) k = 1;
    return v[k - 1];
}

#endif /* GORT_TOOLS_BENCH_BENCH_H */

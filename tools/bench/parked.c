/* parked: a million goroutines blocked at once.
 *
 * Main reads VmRSS from /proc/self/status, spawns N goroutines that each call
 * gort_wg_done(&started) and then block in gort_wg_wait(&gate) (gate holds a
 * count of 1), waits for `started`, and reads VmRSS again. It then releases
 * the gate with one gort_wg_done and waits for every goroutine to finish
 * (each calls gort_wg_done(&finished) after the gate opens).
 *
 * Output (stdout, same names as parked.go):
 *   parked_spawn_ns       (spawn + all started) / N
 *   parked_rss_per_g      VmRSS delta / N, bytes
 *   parked_rss_kib_per_g  the same in KiB
 *   parked_release_ns     (release gate + all finished) / N
 * Usage: bench-parked [N]   (default N = 1000000)
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort.h"

#define DEFAULT_N 1000000L

static gort_waitgroup started, gate, finished;

static void parked_g(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_wg_wait(&gate);
    gort_wg_done(&finished);
}

/* VmRSS of this process in bytes, or -1. Same method as parked.go: read the
 * whole of /proc/self/status and parse the "VmRSS:" line (kB). */
static long long rss_bytes(void)
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
        fprintf(stderr, "parked: no VmRSS in /proc/self/status\n");
        return -1;
    }
    return strtoll(p + strlen("\nVmRSS:"), NULL, 10) * 1024;
}

static long parse_n(int argc, char **argv, long def)
{
    if (argc < 2) return def;
    char *end;
    errno = 0;
    long v = strtol(argv[1], &end, 10);
    if (errno != 0 || end == argv[1] || *end != '\0' || v <= 0 || v > 100000000L) {
        fprintf(stderr, "usage: %s [N in 1..100000000]\n", argv[0]);
        return -1;
    }
    return v;
}

static int bench_main(int argc, char **argv)
{
    long n = parse_n(argc, argv, DEFAULT_N);
    if (n < 0) return 2;
    fprintf(stderr, "parked: N=%ld, %d processors\n", n, gort_maxprocs(0));

    gort_wg_add(&started, (int)n);
    gort_wg_add(&finished, (int)n);
    gort_wg_add(&gate, 1);

    long long rss0 = rss_bytes();
    int64_t t0 = gort_now();
    for (long i = 0; i < n; i++)
        gort_go(parked_g, NULL);
    gort_wg_wait(&started);
    int64_t t1 = gort_now();
    long long rss1 = rss_bytes();
    if (rss0 < 0 || rss1 < 0) return 1;
    fprintf(stderr, "parked: VmRSS %lld KiB -> %lld KiB, %d goroutines\n", rss0 / 1024, rss1 / 1024,
            gort_num_goroutine());

    int64_t t2 = gort_now();
    gort_wg_done(&gate);
    gort_wg_wait(&finished);
    int64_t t3 = gort_now();

    double per_g = (double)(rss1 - rss0) / (double)n;
    printf("parked_spawn_ns %.1f ns/op\n", (double)(t1 - t0) / (double)n);
    printf("parked_rss_per_g %.0f bytes\n", per_g);
    printf("parked_rss_kib_per_g %.1f KiB\n", per_g / 1024.0);
    printf("parked_release_ns %.1f ns/op\n", (double)(t3 - t2) / (double)n);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}

/* pingpong: round trip of one value between two goroutines over unbuffered
 * channels.
 *
 * The pinger sends i on `ping` and waits for it on `pong`; the ponger
 * receives on `ping` and sends the value back on `pong`. Every round trip is
 * two direct hand-offs, each parking one goroutine and readying the other.
 * Default number of processors. An untimed warm-up of N/10 round trips comes
 * first.
 *
 * Output (stdout, same name as pingpong.go):
 *   pingpong_ns   elapsed / N, ns per round trip
 * Usage: bench-pingpong [N]   (default N = 1000000)
 */
#include <stdint.h>
#include <stdio.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N 1000000L

static struct {
    gort_chan *ping, *pong;
    long n;
    long bad;
    gort_waitgroup wg;
} pp;

static void ponger(void *arg)
{
    (void)arg;
    for (long i = 0; i < pp.n; i++) {
        long v;
        gort_chan_recv(pp.ping, &v);
        gort_chan_send(pp.pong, &v);
    }
    gort_wg_done(&pp.wg);
}

static void pinger(void *arg)
{
    (void)arg;
    for (long i = 0; i < pp.n; i++) {
        long v = i;
        gort_chan_send(pp.ping, &v);
        gort_chan_recv(pp.pong, &v);
        if (v != i) pp.bad++;
    }
    gort_wg_done(&pp.wg);
}

/* n round trips; returns ns per round trip. */
static double run_phase(long n)
{
    pp.ping = gort_chan_make(sizeof(long), 0);
    pp.pong = gort_chan_make(sizeof(long), 0);
    pp.n = n;
    return (double)bench_go_pair(&pp.wg, ponger, pinger) / (double)n;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 0);
    if (n < 0) return 2;
    fprintf(stderr, "pingpong: N=%ld, %d processors\n", n, gort_maxprocs(0));
    run_phase(bench_warm(n));
    double ns = run_phase(n);
    if (pp.bad) {
        fprintf(stderr, "pingpong: %ld values came back wrong\n", pp.bad);
        return 1;
    }
    printf("pingpong_ns %.1f ns/op\n", ns);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}

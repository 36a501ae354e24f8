/* echo: ping-pong of a 64-byte message over 1000 loopback TCP connections in one process.
 *
 * A listener on 127.0.0.1 (free port) and an accept loop that starts one server goroutine
 * per connection, reading into a 4 KiB buffer and writing back what it read until EOF.
 * 1000 client goroutines each dial (gort_dial_tcp, TCP_NODELAY), run an untimed warm-up of
 * R/10 round trips (at least 1), then wait on a gate; main opens it and times how long all
 * clients take to do R round trips each (R = N / 1000, at least 1): write 64 bytes, read until
 * 64 bytes came back (checked). Each round trip's latency (gort_now() around it) is kept.
 * Default number of processors; client and server share them, as on any one-machine test.
 *
 * Output (stdout, same names as echo.go):
 *   echo_rtt_per_s    1000 * R / elapsed, round trips per second (all connections together)
 *   echo_rtt_p50_us   median round-trip latency, us
 *   echo_rtt_p99_us   99th percentile (nearest rank), us
 * Usage: bench-echo [N]   (total round trips, default 200000; a watchdog fails the run with
 * exit 1 and the progress so far if it takes longer than 60 s + 20 us per round trip)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"
#include "gort.h"

#define CONNS         1000
#define MSG           64
#define SRV_BUF       4096
#define DEFAULT_TOTAL 200000L

static struct {
    int lfd, port;
    long rounds, warm;
    int64_t *lat; /* CONNS * rounds: client i's round trips at lat[i * rounds] */
    gort_waitgroup dialed, gate, done, servers;
    _Atomic long errors, bad, progress, accepted;
} eb;

static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[SRV_BUF];
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0) {
            if (n < 0) {
                fprintf(stderr, "echo: server read: %s\n", strerror((int)-n));
                atomic_fetch_add(&eb.errors, 1);
            }
            break;
        }
        ssize_t w = gort_write(fd, buf, (size_t)n);
        if (w < 0) {
            fprintf(stderr, "echo: server write: %s\n", strerror((int)-w));
            atomic_fetch_add(&eb.errors, 1);
            break;
        }
    }
    gort_close(fd);
    gort_wg_done(&eb.servers);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = gort_accept(eb.lfd, NULL, NULL);
        if (fd < 0) {
            if (fd != -EBADF) { /* -EBADF: main closed the listener */
                fprintf(stderr, "echo: accept: %s\n", strerror(-fd));
                atomic_fetch_add(&eb.errors, 1);
            }
            return;
        }
        atomic_fetch_add(&eb.accepted, 1);
        gort_wg_add(&eb.servers, 1);
        gort_go(serve, (void *)(intptr_t)fd);
    }
}

/* One round trip on fd with the message msg; 0, or -1 after counting an error. */
static int round_trip(int fd, const char *msg)
{
    char in[MSG];
    ssize_t w = gort_write(fd, msg, MSG);
    if (w < 0) {
        fprintf(stderr, "echo: client write: %s\n", strerror((int)-w));
        atomic_fetch_add(&eb.errors, 1);
        return -1;
    }
    size_t got = 0;
    while (got < MSG) {
        ssize_t n = gort_read(fd, in + got, MSG - got);
        if (n <= 0) {
            fprintf(stderr, "echo: client read: %s\n", n == 0 ? "EOF" : strerror((int)-n));
            atomic_fetch_add(&eb.errors, 1);
            return -1;
        }
        got += (size_t)n;
    }
    if (memcmp(in, msg, MSG) != 0) atomic_fetch_add(&eb.bad, 1);
    return 0;
}

static void client(void *arg)
{
    long id = (long)(intptr_t)arg;
    int64_t *lat = eb.lat + id * eb.rounds;
    char msg[MSG];
    for (int i = 0; i < MSG; i++)
        msg[i] = (char)('a' + (id + i) % 26);
    int fd = gort_dial_tcp("127.0.0.1", eb.port, 0);
    if (fd < 0) {
        fprintf(stderr, "echo: dial: %s\n", strerror(-fd));
        atomic_fetch_add(&eb.errors, 1);
        gort_wg_done(&eb.dialed);
        gort_wg_done(&eb.done);
        return;
    }
    int ok = 0;
    for (long r = 0; r < eb.warm && ok == 0; r++)
        ok = round_trip(fd, msg);
    gort_wg_done(&eb.dialed);
    gort_wg_wait(&eb.gate);
    for (long r = 0; r < eb.rounds && ok == 0; r++) {
        int64_t t0 = gort_now();
        ok = round_trip(fd, msg);
        lat[r] = gort_now() - t0;
        atomic_fetch_add_explicit(&eb.progress, 1, memory_order_relaxed);
    }
    gort_close(fd);
    gort_wg_done(&eb.done);
}

static void watchdog(void *arg)
{
    int64_t limit = *(int64_t *)arg;
    gort_sleep(limit);
    fprintf(stderr,
            "echo: watchdog: not done after %.0f s: %ld connections accepted, %ld of %ld timed "
            "round trips done, %ld errors, %d goroutines\n",
            (double)limit / 1e9, atomic_load(&eb.accepted), atomic_load(&eb.progress),
            eb.rounds * CONNS, atomic_load(&eb.errors), gort_num_goroutine());
    fflush(stderr);
    _exit(1);
}

static int bench_main(int argc, char **argv)
{
    long total = bench_parse_n(argc, argv, DEFAULT_TOTAL, 1000000000L);
    if (total < 0) return 2;
    eb.rounds = total / CONNS > 0 ? total / CONNS : 1;
    eb.warm = bench_warm(eb.rounds);
    eb.lat = gort_calloc((size_t)(CONNS * eb.rounds), sizeof *eb.lat);

    eb.lfd = gort_listen_tcp("127.0.0.1", 0, 0);
    if (eb.lfd < 0) {
        fprintf(stderr, "echo: listen: %s\n", strerror(-eb.lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    if (getsockname(eb.lfd, (struct sockaddr *)&sa, &salen) != 0) {
        perror("echo: getsockname");
        return 1;
    }
    eb.port = ntohs(sa.sin_port);
    fprintf(stderr,
            "echo: %d connections x %ld round trips of %d bytes, %d processors, poller %s\n", CONNS,
            eb.rounds, MSG, gort_maxprocs(0), gort_poller_name());

    static int64_t limit;
    limit = 60 * 1000000000LL + (int64_t)CONNS * eb.rounds * 20000;
    gort_go(watchdog, &limit);
    gort_go(acceptor, NULL);

    gort_wg_add(&eb.dialed, CONNS);
    gort_wg_add(&eb.done, CONNS);
    gort_wg_add(&eb.gate, 1);
    for (long i = 0; i < CONNS; i++)
        gort_go(client, (void *)(intptr_t)i);
    gort_wg_wait(&eb.dialed);
    int64_t t0 = gort_now();
    gort_wg_done(&eb.gate);
    gort_wg_wait(&eb.done);
    int64_t elapsed = gort_now() - t0;
    gort_close(eb.lfd);
    gort_wg_wait(&eb.servers);

    long errors = atomic_load(&eb.errors), bad = atomic_load(&eb.bad);
    if (errors || bad) {
        fprintf(stderr, "echo: %ld errors, %ld messages came back wrong\n", errors, bad);
        return 1;
    }
    long n = CONNS * eb.rounds;
    qsort(eb.lat, (size_t)n, sizeof *eb.lat, bench_cmp_i64);
    fprintf(stderr, "echo: latency us: p50 %.1f p90 %.1f p99 %.1f p99.9 %.1f max %.1f\n",
            (double)bench_pct(eb.lat, n, 50) / 1e3, (double)bench_pct(eb.lat, n, 90) / 1e3,
            (double)bench_pct(eb.lat, n, 99) / 1e3, (double)eb.lat[n - 1 - n / 1000] / 1e3,
            (double)eb.lat[n - 1] / 1e3);
    printf("echo_rtt_per_s %.0f ops/s\n", (double)n * 1e9 / (double)elapsed);
    printf("echo_rtt_p50_us %.1f us\n", (double)bench_pct(eb.lat, n, 50) / 1e3);
    printf("echo_rtt_p99_us %.1f us\n", (double)bench_pct(eb.lat, n, 99) / 1e3);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(bench_main, argc, argv);
}

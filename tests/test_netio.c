/* tests/test_netio.c: the poller and the I/O API (sched/netpoll.c,
 * sched/netio.c) over loopback and files.
 *
 * The whole program runs twice: first with GORT_POLLER=epoll (main spawns
 * this program again with it set and waits), then with the default poller
 * (io_uring here), so every case covers both.
 *
 * Same harness as the other programs: the cmocka run is the main goroutine,
 * wired to its thread; helpers running in goroutines record what they saw
 * and the test asserts afterwards. Timing: only lower bounds are exact (a
 * deadline never fires early); upper bounds are far above what a loaded
 * 2-core machine needs. Scenarios that change process limits run in their
 * own process (/proc/self/exe --scenario NAME).
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"

#include "gort_test.h"

#define SCENARIO_FLAG "--scenario"

static int64_t cpu_ns(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ((int64_t)ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * SEC +
           ((int64_t)ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * US;
}

static int local_port(int fd)
{
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    if (getsockname(fd, (struct sockaddr *)&sa, &len) < 0) return -1;
    if (sa.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&sa)->sin_port);
    return ntohs(((struct sockaddr_in6 *)&sa)->sin6_port);
}

static void settle(void)
{
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
}

/* A connected pair over loopback: *a from dial, *b from accept. */
static void tcp_pair(int *a, int *b)
{
    int l = gort_listen_tcp("127.0.0.1", 0, 16);
    assert_true(l >= 0);
    int c = gort_dial_tcp("127.0.0.1", local_port(l), 5 * SEC);
    assert_true(c >= 0);
    int s = gort_accept(l, NULL, NULL);
    assert_true(s >= 0);
    assert_int_equal(gort_close(l), 0);
    *a = c;
    *b = s;
}

/* ---- an echo server and many clients ------------------------------------------------ */

static gort_waitgroup echo_wg;
static _Atomic int echo_bad;
static int echo_port;

static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[8192];
    for (;;) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0) break;
        if (gort_write(fd, buf, (size_t)n) != n) break;
    }
    gort_close(fd);
}

static void echo_server(void *arg)
{
    int l = (int)(intptr_t)arg;
    for (;;) {
        int c = gort_accept(l, NULL, NULL);
        if (c < 0) break; /* -EBADF once the test closes l */
        gort_go(echo_conn, (void *)(intptr_t)c);
    }
}

static void echo_client(void *arg)
{
    unsigned seed = (unsigned)(uintptr_t)arg;
    int fd = gort_dial_tcp("localhost", echo_port, 10 * SEC);
    if (fd < 0) {
        atomic_fetch_add(&echo_bad, 1);
        gort_wg_done(&echo_wg);
        return;
    }
    char out[3000], in[3000];
    for (int round = 0; round < 100; round++) {
        size_t n = 1 + (seed = seed * 1103515245 + 12345) % sizeof out;
        for (size_t i = 0; i < n; i++)
            out[i] = (char)(seed >> 8) + (char)i;
        if (gort_write(fd, out, n) != (ssize_t)n) goto bad;
        size_t got = 0;
        while (got < n) {
            ssize_t k = gort_read(fd, in + got, n - got);
            if (k <= 0) goto bad;
            got += (size_t)k;
        }
        if (memcmp(in, out, n)) goto bad;
    }
    gort_close(fd);
    gort_wg_done(&echo_wg);
    return;
bad:
    atomic_fetch_add(&echo_bad, 1);
    gort_close(fd);
    gort_wg_done(&echo_wg);
}

static void test_echo_many_clients(void **state)
{
    (void)state;
    settle();
    int l = gort_listen_tcp(NULL, 0, 0); /* every address, IPv6 taking IPv4 too */
    assert_true(l >= 0);
    echo_port = local_port(l);
    gort_go(echo_server, (void *)(intptr_t)l);
    enum { CLIENTS = 64 };
    atomic_store(&echo_bad, 0);
    gort_wg_add(&echo_wg, CLIENTS);
    for (int i = 0; i < CLIENTS; i++)
        gort_go(echo_client, (void *)(uintptr_t)(i * 7919 + 1));
    assert_true(wg_wait_bounded(&echo_wg));
    assert_int_equal(atomic_load(&echo_bad), 0);
    assert_int_equal(gort_close(l), 0); /* wakes the accept loop with -EBADF */
    settle();
}

/* ---- fairness: no round trip waits behind the others ------------------------------ */

/* FAIR_CONNS connections, each a client goroutine doing FAIR_ROUNDS round trips
 * of 64 bytes against its own echo goroutine: far more runnable goroutines
 * than a local run queue holds, so many wait in the global queue. No round
 * trip may take more than a few times the median one. Seen before the fix (the
 * echo benchmark): the P kept refilling its local queue from its ring while
 * goroutines readied into the global queue waited there (only every 61st pick
 * looks), and sysmon moved a busy P's completions there too: the median round
 * trip took 3 ms and the slowest over a second. Needs 2 * FAIR_CONNS
 * descriptors (the soft limit is raised to the hard one; skipped below). */
enum { FAIR_CONNS = 1000, FAIR_ROUNDS = 40 };
static int64_t fair_rtt[FAIR_CONNS * FAIR_ROUNDS];
static _Atomic int fair_bad;
static int fair_fd[FAIR_CONNS];
static gort_waitgroup fair_wg, fair_gate;

static void fair_client(void *arg)
{
    int i = (int)(intptr_t)arg, fd = fair_fd[i];
    char out[64], in[64];
    memset(out, 'a' + i % 26, sizeof out);
    gort_wg_wait(&fair_gate);
    for (int r = 0; r < FAIR_ROUNDS; r++) {
        int64_t t0 = gort_now();
        if (gort_write(fd, out, sizeof out) != (ssize_t)sizeof out) goto bad;
        size_t got = 0;
        while (got < sizeof in) {
            ssize_t k = gort_read(fd, in + got, sizeof in - got);
            if (k <= 0) goto bad;
            got += (size_t)k;
        }
        if (memcmp(in, out, sizeof in)) goto bad;
        fair_rtt[i * FAIR_ROUNDS + r] = gort_now() - t0;
    }
    gort_close(fd);
    gort_wg_done(&fair_wg);
    return;
bad:
    atomic_fetch_add(&fair_bad, 1);
    gort_close(fd);
    gort_wg_done(&fair_wg);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static void fair_round(int procs)
{
    int old = gort_maxprocs(procs);
    int l = gort_listen_tcp("127.0.0.1", 0, FAIR_CONNS);
    assert_true(l >= 0);
    for (int i = 0; i < FAIR_CONNS; i++) {
        fair_fd[i] = gort_dial_tcp("127.0.0.1", local_port(l), 5 * SEC);
        assert_true(fair_fd[i] >= 0);
        int s = gort_accept(l, NULL, NULL);
        assert_true(s >= 0);
        gort_go(echo_conn, (void *)(intptr_t)s);
    }
    assert_int_equal(gort_close(l), 0);
    atomic_store(&fair_bad, 0);
    gort_wg_add(&fair_wg, FAIR_CONNS);
    gort_wg_add(&fair_gate, 1);
    for (int i = 0; i < FAIR_CONNS; i++)
        gort_go(fair_client, (void *)(intptr_t)i);
    gort_wg_done(&fair_gate);
    assert_true(wg_wait_bounded(&fair_wg));
    assert_int_equal(atomic_load(&fair_bad), 0);
    static int64_t t[FAIR_CONNS * FAIR_ROUNDS];
    memcpy(t, fair_rtt, sizeof t);
    size_t n = FAIR_CONNS * FAIR_ROUNDS;
    qsort(t, n, sizeof t[0], cmp_i64);
    int64_t median = t[n / 2], p99 = t[n * 99 / 100], max = t[n - 1];
    print_message("%d Ps: %d clients x %d round trips: p50 %.2f ms, p99 %.2f, max %.2f\n", procs,
                  FAIR_CONNS, FAIR_ROUNDS, median / 1e6, p99 / 1e6, max / 1e6);
    /* Generous: fair runs have max/median of 2-4; the starving one had 300. */
    assert_true(max <= 10 * median + 100 * MS);
    gort_maxprocs(old);
    settle();
}

static void test_round_trips_fair(void **state)
{
    (void)state;
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur < 2 * FAIR_CONNS + 200) {
        print_message("skipped: needs %d descriptors, RLIMIT_NOFILE allows %lu\n",
                      2 * FAIR_CONNS + 200, (unsigned long)rl.rlim_cur);
        skip();
    }
    settle();
    fair_round(1);
    fair_round(2);
}

/* ---- large transfers: short writes are continued ---------------------------------- */

#define BIG (16 << 20)
static _Atomic int64_t big_read;
static _Atomic uint32_t big_sum;
static gort_waitgroup big_wg;

static uint32_t sum_bytes(uint32_t s, const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        s = s * 31 + p[i];
    return s;
}

static void slow_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    static char buf[1000];
    int64_t total = 0;
    uint32_t s = 0;
    for (int i = 0;; i++) {
        ssize_t n = gort_read(fd, buf, sizeof buf);
        if (n <= 0) break;
        s = sum_bytes(s, (unsigned char *)buf, (size_t)n);
        total += n;
        if (i % 2000 == 0) gort_sleep(MS); /* let the writer's buffer fill */
    }
    atomic_store(&big_read, total);
    atomic_store(&big_sum, s);
    gort_wg_done(&big_wg);
}

static void test_large_write_completes(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    unsigned char *data = malloc(BIG);
    assert_non_null(data);
    for (size_t i = 0; i < BIG; i++)
        data[i] = (unsigned char)(i * 2654435761u >> 13);
    gort_wg_add(&big_wg, 1);
    gort_go(slow_reader, (void *)(intptr_t)b);
    assert_int_equal(gort_write(a, data, BIG), BIG);
    assert_int_equal(gort_shutdown(a, SHUT_WR), 0);
    assert_true(wg_wait_bounded(&big_wg));
    assert_int_equal(atomic_load(&big_read), BIG);
    assert_int_equal(atomic_load(&big_sum), sum_bytes(0, data, BIG));
    free(data);
    gort_close(a);
    gort_close(b);
    settle();
}

/* ---- EOF and reset ------------------------------------------------------------------- */

/* MSG_WAITALL waits for the whole count, also when part of it is already
 * queued when the call starts (the non-blocking first try must not answer). */
static int waitall_fd;

static void waitall_second_half(void *arg)
{
    (void)arg;
    gort_sleep(5 * MS);
    char half[100];
    memset(half, 'b', sizeof half);
    assert_int_equal(gort_write(waitall_fd, half, sizeof half), (ssize_t)sizeof half);
}

static void test_recv_waitall(void **state)
{
    (void)state;
    int a, b;
    tcp_pair(&a, &b);
    char half[100], in[200];
    memset(half, 'a', sizeof half);
    assert_int_equal(gort_write(a, half, sizeof half), (ssize_t)sizeof half);
    gort_sleep(2 * MS); /* the first half is queued at b */
    waitall_fd = a;
    gort_go(waitall_second_half, NULL);
    assert_int_equal(gort_recv(b, in, sizeof in, MSG_WAITALL), (ssize_t)sizeof in);
    assert_int_equal(in[0], 'a');
    assert_int_equal(in[199], 'b');
    gort_close(a);
    gort_close(b);
    settle();
}

static void test_eof_and_reset(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    assert_int_equal(gort_write(a, "hi", 2), 2);
    assert_int_equal(gort_shutdown(a, SHUT_WR), 0);
    char buf[8];
    assert_int_equal(gort_read(b, buf, sizeof buf), 2);
    assert_int_equal(gort_read(b, buf, sizeof buf), 0); /* EOF */
    assert_int_equal(gort_read(b, buf, sizeof buf), 0); /* and again */
    /* The half-closed side can still send. */
    assert_int_equal(gort_send(b, "back", 4, 0), 4);
    assert_int_equal(gort_recv(a, buf, sizeof buf, 0), 4);
    gort_close(a);
    gort_close(b);

    /* Reset: the peer closes with SO_LINGER 0 (an RST). */
    tcp_pair(&a, &b);
    struct linger lg = {1, 0};
    assert_int_equal(setsockopt(a, SOL_SOCKET, SO_LINGER, &lg, sizeof lg), 0);
    assert_int_equal(gort_close(a), 0);
    assert_int_equal(gort_read(b, buf, sizeof buf), -ECONNRESET);
    gort_close(b);
    settle();
}

/* ---- deadlines ------------------------------------------------------------------------ */

static void test_read_deadline(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    char c;
    int64_t t0 = gort_now();
    assert_int_equal(gort_set_read_deadline(b, t0 + 30 * MS), 0);
    assert_int_equal(gort_read(b, &c, 1), -ETIMEDOUT);
    assert_true(gort_now() >= t0 + 30 * MS); /* never early */
    /* Later calls fail at once until the deadline moves. */
    assert_int_equal(gort_read(b, &c, 1), -ETIMEDOUT);
    assert_int_equal(gort_recv(b, &c, 1, 0), -ETIMEDOUT);
    assert_int_equal(gort_accept(b, NULL, NULL), -ETIMEDOUT); /* accepts are reads */
    /* Writes have their own deadline. */
    assert_int_equal(gort_write(b, "x", 1), 1);
    assert_int_equal(gort_read(a, &c, 1), 1);
    assert_int_equal(gort_set_read_deadline(b, 0), 0);
    assert_int_equal(gort_write(a, "y", 1), 1);
    assert_int_equal(gort_read(b, &c, 1), 1);
    assert_int_equal(c, 'y');
    /* A deadline already past fails at once, without waiting. */
    assert_int_equal(gort_set_deadline(b, gort_now() - 1), 0);
    assert_int_equal(gort_read(b, &c, 1), -ETIMEDOUT);
    assert_int_equal(gort_write(b, "z", 1), -ETIMEDOUT);
    gort_close(a);
    gort_close(b);
    settle();
}

static int ext_fd;
static _Atomic int64_t ext_result;
static gort_waitgroup ext_wg;

static void blocked_reader(void *arg)
{
    (void)arg;
    char c = 0;
    ssize_t r = gort_read(ext_fd, &c, 1);
    atomic_store(&ext_result, r == 1 ? c : r);
    gort_wg_done(&ext_wg);
}

/* Go's SetDeadline also moves the deadline of calls already blocked. */
static void test_deadline_moved_while_blocked(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    ext_fd = b;
    atomic_store(&ext_result, 0);
    assert_int_equal(gort_set_read_deadline(b, gort_now() + 60 * MS), 0);
    gort_wg_add(&ext_wg, 1);
    gort_go(blocked_reader, NULL);
    gort_sleep(10 * MS);
    assert_int_equal(gort_set_read_deadline(b, gort_now() + 100 * SEC), 0);
    gort_sleep(150 * MS); /* well past the first deadline */
    assert_int_equal(atomic_load(&ext_result), 0);
    assert_int_equal(gort_write(a, "k", 1), 1);
    assert_true(wg_wait_bounded(&ext_wg));
    assert_int_equal(atomic_load(&ext_result), 'k');

    /* And moving it into the past wakes a blocked call now. */
    atomic_store(&ext_result, 0);
    assert_int_equal(gort_set_read_deadline(b, 0), 0);
    gort_wg_add(&ext_wg, 1);
    gort_go(blocked_reader, NULL);
    gort_sleep(10 * MS);
    assert_int_equal(gort_set_read_deadline(b, gort_now() - 1), 0);
    assert_true(wg_wait_bounded(&ext_wg));
    assert_int_equal(atomic_load(&ext_result), -ETIMEDOUT);
    gort_close(a);
    gort_close(b);
    settle();
}

static void test_write_deadline(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    int small = 4096;
    setsockopt(a, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    size_t n = 64 << 20;
    char *buf = calloc(1, n);
    assert_non_null(buf);
    int64_t t0 = gort_now();
    assert_int_equal(gort_set_write_deadline(a, t0 + 50 * MS), 0);
    /* Nobody reads b: the write blocks once the buffers are full. */
    assert_int_equal(gort_write(a, buf, n), -ETIMEDOUT);
    assert_true(gort_now() >= t0 + 50 * MS);
    free(buf);
    gort_close(a);
    gort_close(b);
    settle();
}

static void test_accept_deadline(void **state)
{
    (void)state;
    settle();
    int l = gort_listen_tcp("127.0.0.1", 0, 4);
    assert_true(l >= 0);
    int64_t t0 = gort_now();
    assert_int_equal(gort_set_deadline(l, t0 + 30 * MS), 0);
    assert_int_equal(gort_accept(l, NULL, NULL), -ETIMEDOUT);
    assert_true(gort_now() >= t0 + 30 * MS);
    gort_close(l);
    settle();
}

/* A full accept queue drops SYNs, so a further connect hangs until its
 * timeout (no route to a black-hole address is needed). */
static void test_connect_timeout(void **state)
{
    (void)state;
    settle();
    int l = gort_listen_tcp("127.0.0.1", 0, 1);
    assert_true(l >= 0);
    int port = local_port(l);
    int fill[16], nfill = 0, r = 0;
    int64_t t0 = 0;
    for (; nfill < 16; nfill++) {
        t0 = gort_now();
        r = gort_dial_tcp("127.0.0.1", port, 100 * MS);
        if (r < 0) break;
        fill[nfill] = r;
    }
    if (r >= 0) skip(); /* this kernel accepted everything (no backlog limit) */
    assert_int_equal(r, -ETIMEDOUT);
    assert_true(gort_now() >= t0 + 100 * MS);
    for (int i = 0; i < nfill; i++)
        gort_close(fill[i]);
    gort_close(l);
    settle();
}

/* ---- close wakes blocked calls ----------------------------------------------------------------
 */

static int close_fd;
static _Atomic int close_r1, close_r2;
static gort_waitgroup close_wg;

static void close_reader(void *arg)
{
    (void)arg;
    char c;
    atomic_store(&close_r1, (int)gort_read(close_fd, &c, 1));
    gort_wg_done(&close_wg);
}

static void close_acceptor(void *arg)
{
    atomic_store(&close_r2, gort_accept((int)(intptr_t)arg, NULL, NULL));
    gort_wg_done(&close_wg);
}

static void test_close_wakes_blocked(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    int l = gort_listen_tcp("127.0.0.1", 0, 4);
    assert_true(l >= 0);
    close_fd = b;
    atomic_store(&close_r1, 1);
    atomic_store(&close_r2, 1);
    gort_wg_add(&close_wg, 2);
    gort_go(close_reader, NULL);
    gort_go(close_acceptor, (void *)(intptr_t)l);
    gort_sleep(20 * MS); /* both blocked */
    assert_int_equal(atomic_load(&close_r1), 1);
    assert_int_equal(gort_close(b), 0);
    assert_int_equal(gort_close(l), 0);
    assert_true(wg_wait_bounded(&close_wg));
    assert_int_equal(atomic_load(&close_r1), -EBADF);
    assert_int_equal(atomic_load(&close_r2), -EBADF);
    assert_int_equal(gort_close(b), -EBADF); /* closed already */
    char c;
    assert_int_equal(gort_read(b, &c, 1), -EBADF);
    gort_close(a);
    settle();
}

/* ---- files and pipes ---------------------------------------------------------------------------
 */

static void test_file_roundtrip(void **state)
{
    (void)state;
    settle();
    char path[] = "/tmp/gort-netio-XXXXXX";
    int tmp = mkstemp(path);
    assert_true(tmp >= 0);
    close(tmp);
    int fd = gort_open(path, O_RDWR | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    enum { N = 1 << 20 };
    char *w = malloc(N), *r = malloc(N);
    assert_non_null(w);
    assert_non_null(r);
    for (int i = 0; i < N; i++)
        w[i] = (char)(i * 7 + (i >> 9));
    assert_int_equal(gort_pwrite(fd, w, N, 4096), N);
    assert_int_equal(gort_fsync(fd), 0);
    memset(r, 0, N);
    assert_int_equal(gort_pread(fd, r, N, 4096), N);
    assert_memory_equal(r, w, N);
    /* Sequential read/write use and move the file position. */
    assert_int_equal(gort_write(fd, "head", 4), 4);
    assert_int_equal(lseek(fd, 0, SEEK_CUR), 4);
    assert_int_equal(lseek(fd, 0, SEEK_SET), 0);
    char h[4];
    assert_int_equal(gort_read(fd, h, 4), 4);
    assert_memory_equal(h, "head", 4);
    /* Past the end: 0. Regular files ignore deadlines. */
    assert_int_equal(gort_pread(fd, r, 10, 4096 + N), 0);
    assert_int_equal(gort_set_deadline(fd, gort_now() - 1), 0);
    assert_int_equal(gort_pread(fd, r, 4, 4096), 4);
    assert_int_equal(gort_close(fd), 0);
    assert_int_equal(gort_open("/nonexistent/dir/x", O_RDONLY, 0), -ENOENT);
    unlink(path);
    free(w);
    free(r);
    settle();
}

static int pipe_w;
static void pipe_writer(void *arg)
{
    (void)arg;
    gort_sleep(20 * MS);
    gort_write(pipe_w, "pipe!", 5);
}

static void test_nonblocking_pipe(void **state)
{
    (void)state;
    settle();
    int p[2];
    assert_int_equal(pipe2(p, O_NONBLOCK | O_CLOEXEC), 0);
    pipe_w = p[1];
    gort_go(pipe_writer, NULL);
    char buf[8];
    assert_int_equal(gort_read(p[0], buf, sizeof buf), 5); /* waits, no -EAGAIN */
    assert_memory_equal(buf, "pipe!", 5);
    assert_int_equal(gort_recv(p[0], buf, 1, 0), -ENOTSOCK);
    gort_close(p[1]);
    assert_int_equal(gort_read(p[0], buf, sizeof buf), 0);
    gort_close(p[0]);
    settle();
}

/* ---- bad arguments
 * -------------------------------------------------------------------------------- */

static void test_bad_arguments(void **state)
{
    (void)state;
    settle();
    char c;
    assert_int_equal(gort_read(-1, &c, 1), -EBADF);
    assert_int_equal(gort_write(-5, &c, 1), -EBADF);
    assert_int_equal(gort_close(-1), -EBADF);
    assert_int_equal(gort_set_deadline(-1, 0), -EBADF);
    int p[2];
    assert_int_equal(pipe(p), 0);
    assert_int_equal(gort_read(p[0], NULL, 1), -EINVAL);
    assert_int_equal(gort_read(p[0], NULL, 0), 0); /* n 0: returns at once */
    assert_int_equal(gort_pread(p[0], &c, 1, -1), -EINVAL);
    assert_int_equal(gort_pread(p[0], &c, 1, 0), -ESPIPE);
    close(p[0]);
    close(p[1]);
    assert_int_equal(gort_read(p[0], &c, 1), -EBADF); /* closed behind gort's back */
    assert_int_equal(gort_set_deadline(p[0], 1), -EBADF);
    assert_int_equal(gort_listen_tcp("127.0.0.1", 70000, 1), -EINVAL);
    assert_true(gort_listen_tcp("no-such-host.invalid", 0, 1) < 0);
    /* A port nobody listens on: refused. */
    int l = gort_listen_tcp("127.0.0.1", 0, 1);
    int port = local_port(l);
    gort_close(l);
    assert_int_equal(gort_dial_tcp("127.0.0.1", port, SEC), -ECONNREFUSED);
    assert_int_equal(gort_accept(-1, NULL, NULL), -EBADF);
    assert_int_equal(pipe(p), 0);
    assert_int_equal(gort_accept(p[0], NULL, NULL), -ENOTSOCK);
    close(p[0]);
    close(p[1]);
    struct sockaddr_in sa;
    assert_int_equal(gort_accept(3, (struct sockaddr *)&sa, NULL), -EINVAL);
    settle();
}

/* ---- an idle server costs nothing
 * ------------------------------------------------------------------- */

static void idle_reader(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char c;
    gort_read(fd, &c, 1);
}

static void test_idle_connections_no_cpu(void **state)
{
    (void)state;
    settle();
    enum { N = 100 };
    int a[N], b[N];
    for (int i = 0; i < N; i++) {
        tcp_pair(&a[i], &b[i]);
        gort_go(idle_reader, (void *)(intptr_t)b[i]);
    }
    gort_sleep(20 * MS);
    int64_t c0 = cpu_ns(), t0 = gort_now();
    gort_sleep(500 * MS);
    int64_t c1 = cpu_ns(), t1 = gort_now();
    print_message("%d idle connections: %.1f ms CPU over %.1f ms (%s)\n", N, (c1 - c0) / 1e6,
                  (t1 - t0) / 1e6, gort_poller_name());
    assert_true(c1 - c0 < 100 * MS);
    for (int i = 0; i < N; i++) {
        gort_close(a[i]); /* EOF wakes the reader */
    }
    assert_true(WAIT_FOR(gort_num_goroutine() == 1));
    for (int i = 0; i < N; i++)
        gort_close(b[i]);
    settle();
}

/* ---- calls outside goroutines
 * ------------------------------------------------------------------------ */

static int foreign_fd;
static ssize_t foreign_r;
static void *foreign_thread(void *arg)
{
    (void)arg;
    char buf[8];
    foreign_r = gort_read(foreign_fd, buf, sizeof buf); /* a thread gort did not make */
    return NULL;
}

static void test_foreign_thread(void **state)
{
    (void)state;
    settle();
    int a, b;
    tcp_pair(&a, &b);
    foreign_fd = b;
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, foreign_thread, NULL), 0);
    gort_sleep(10 * MS);
    assert_int_equal(gort_write(a, "abc", 3), 3);
    gort_blocking_begin();
    pthread_join(t, NULL);
    gort_blocking_end();
    assert_int_equal(foreign_r, 3);
    gort_close(a);
    gort_close(b);
    settle();
}

/* ---- accept under EMFILE backs off (own process: it lowers RLIMIT_NOFILE) ---------- */

static int scenario_emfile(void)
{
    int l = gort_listen_tcp("127.0.0.1", 0, 16);
    if (l < 0) return 10;
    int port = local_port(l);
    int c1 = socket(AF_INET, SOCK_STREAM, 0), c2 = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(c1, (struct sockaddr *)&sa, sizeof sa) < 0) return 11;
    if (connect(c2, (struct sockaddr *)&sa, sizeof sa) < 0) return 12;
    /* Use up every descriptor but none. */
    int spare = dup(0);
    struct rlimit old, rl;
    if (getrlimit(RLIMIT_NOFILE, &old) < 0) return 13;
    rl = old;
    rl.rlim_cur = (rlim_t)spare + 1; /* the soft limit only: it is restored below */
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return 13;
    int64_t c0 = cpu_ns(), t0 = gort_now();
    int64_t dl = t0 + 300 * MS;
    gort_set_deadline(l, dl);
    int r = gort_accept(l, NULL, NULL); /* EMFILE: backs off until the deadline */
    int64_t c1t = cpu_ns(), t1 = gort_now();
    printf("emfile: accept %d after %.1f ms, %.1f ms CPU\n", r, (t1 - t0) / 1e6, (c1t - c0) / 1e6);
    if (r != -ETIMEDOUT) return 14;
    if (t1 < dl) return 15;
    if (c1t - c0 > 150 * MS) return 16; /* it spun */
    gort_set_deadline(l, 0);
    close(spare); /* one descriptor free: the next accept works */
    r = gort_accept(l, NULL, NULL);
    if (r < 0) return 17;
    setrlimit(RLIMIT_NOFILE, &old); /* exit-time tools (LeakSanitizer) need descriptors */
    return 0;
}

static void test_accept_emfile_backoff(void **state)
{
    (void)state;
    char *argv[] = {"/proc/self/exe", SCENARIO_FLAG, "emfile", NULL};
    struct run r;
    run_prog_blocking("/proc/self/exe", argv, NULL, 20000, &r);
    CHECK(&r, "emfile", exited_with(&r, 0));
    run_free(&r);
}

/* ---- poller choice
 * ---------------------------------------------------------------------------------- */

static void test_poller_named(void **state)
{
    (void)state;
    const char *env = getenv("GORT_POLLER");
    const char *name = gort_poller_name();
    if (env && !strcmp(env, "epoll"))
        assert_string_equal(name, "epoll");
    else
        assert_true(!strcmp(name, "io_uring") || !strcmp(name, "epoll"));
    print_message("poller: %s\n", name);
}

static int epoll_status; /* the epoll pass's exit status */

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poller_named),
        cmocka_unit_test(test_echo_many_clients),
        cmocka_unit_test(test_round_trips_fair),
        cmocka_unit_test(test_large_write_completes),
        cmocka_unit_test(test_eof_and_reset),
        cmocka_unit_test(test_recv_waitall),
        cmocka_unit_test(test_read_deadline),
        cmocka_unit_test(test_deadline_moved_while_blocked),
        cmocka_unit_test(test_write_deadline),
        cmocka_unit_test(test_accept_deadline),
        cmocka_unit_test(test_connect_timeout),
        cmocka_unit_test(test_close_wakes_blocked),
        cmocka_unit_test(test_file_roundtrip),
        cmocka_unit_test(test_nonblocking_pipe),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_idle_connections_no_cpu),
        cmocka_unit_test(test_foreign_thread),
        cmocka_unit_test(test_accept_emfile_backoff),
    };
    int r = cmocka_run_group_tests(tests, NULL, NULL);
    return r ? r : epoll_status;
}

static int scenario_main(int argc, char **argv)
{
    (void)argc;
    if (!strcmp(argv[2], "emfile")) return scenario_emfile();
    fprintf(stderr, "unknown scenario %s\n", argv[2]);
    return 99;
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return gort_main(scenario_main, argc, argv);
    if (!getenv("GORT_POLLER")) {
        /* First the whole suite on the epoll poller, then on the default. */
        printf("[ -------- ] test_netio with GORT_POLLER=epoll\n");
        fflush(stdout);
        pid_t pid = fork();
        if (pid < 0) return 1;
        if (pid == 0) {
            setenv("GORT_POLLER", "epoll", 1);
            execv("/proc/self/exe", argv);
            _exit(127);
        }
        int ws;
        while (waitpid(pid, &ws, 0) < 0 && errno == EINTR) {
        }
        epoll_status = WIFEXITED(ws) ? WEXITSTATUS(ws) : 128 + WTERMSIG(ws);
        printf("[ -------- ] test_netio with the default poller\n");
        fflush(stdout);
    }
    return gort_main(run, argc, argv);
}

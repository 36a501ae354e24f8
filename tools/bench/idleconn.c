/* idleconn: memory per idle TCP connection on the server side.
 *
 * The measured process listens on 127.0.0.1 (free port); an accept loop starts one goroutine
 * per connection, which gort_mallocs a 4 KiB read buffer and blocks in gort_read on it (as a
 * server waiting for a request does) until EOF. The client ends live in a helper process,
 * this same binary re-executed as `bench-idleconn --client PORT N`: plain blocking code
 * without gort that opens N connections, only holds their descriptors, prints "ready" on its
 * stdout (a pipe to us) and exits when its stdin (another pipe) reaches EOF. Why a helper: N
 * connections in one process need 2N descriptors, and RLIMIT_NOFILE's hard limit (which only
 * a privileged process may raise) is often 20000 or less; client ends that only hold a
 * descriptor cost kernel memory, which VmRSS does not count, so where they live changes
 * nothing in the figure.
 *
 * Order: raise RLIMIT_NOFILE's soft limit to the hard one (fail clearly if it is below
 * N + 256); listen; warm up (64 connections dialed in-process, each served once, all closed);
 * read VmRSS; start the helper; wait for "ready", for N accepted connections and N server
 * goroutines about to block, then 200 ms for them all to park; read VmRSS again; close the
 * helper's stdin and wait for it and for every server goroutine to finish.
 *
 * Output (stdout, same name as idleconn.go):
 *   idleconn_bytes_per_conn   (VmRSS after - VmRSS before) / N, bytes
 * Usage: bench-idleconn [N]   (default N = 10000 connections)
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench.h"
#include "gort.h"

#define DEFAULT_N  10000L
#define READ_BUF   4096
#define WARM_CONNS 64
#define FD_SLACK   256
#define WAIT_NS    (60 * 1000000000LL) /* for the helper and the accepts */

extern char **environ;

static struct {
    int lfd, port;
    gort_waitgroup servers;
    _Atomic long accepted, reading, errors;
} ic;

/* Raise the soft RLIMIT_NOFILE to the hard limit; returns the resulting soft limit, or -1. */
static long raise_nofile(const char *who)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) {
        fprintf(stderr, "%s: getrlimit(RLIMIT_NOFILE): %s\n", who, strerror(errno));
        return -1;
    }
    if (rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
            fprintf(stderr, "%s: setrlimit(RLIMIT_NOFILE, %llu): %s\n", who,
                    (unsigned long long)rl.rlim_max, strerror(errno));
            return -1;
        }
    }
    return rl.rlim_cur > (rlim_t)LONG_MAX ? LONG_MAX : (long)rl.rlim_cur;
}

/* ---- the helper: client ends, plain blocking code (no gort) ---- */

static int client_main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: %s --client PORT N\n", argv[0]);
        return 2;
    }
    int port = atoi(argv[2]);
    long n = atol(argv[3]);
    long lim = raise_nofile("idleconn client");
    if (lim < 0) return 1;
    if (lim < n + FD_SLACK) {
        fprintf(stderr, "idleconn client: RLIMIT_NOFILE %ld < %ld\n", lim, n + FD_SLACK);
        return 1;
    }
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    for (long i = 0; i < n; i++) {
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            fprintf(stderr, "idleconn client: connection %ld: %s\n", i, strerror(errno));
            return 1;
        }
    }
    if (write(1, "ready\n", 6) != 6) return 1;
    char c;
    while (read(0, &c, 1) > 0) {
    }
    return 0; /* exiting closes every connection */
}

/* ---- the measured process ---- */

static void serve(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char *buf = gort_malloc(READ_BUF);
    atomic_fetch_add(&ic.reading, 1);
    for (;;) {
        ssize_t n = gort_read(fd, buf, READ_BUF);
        if (n == 0) break;
        if (n < 0) {
            if (n != -ECONNRESET) {
                fprintf(stderr, "idleconn: server read: %s\n", strerror((int)-n));
                atomic_fetch_add(&ic.errors, 1);
            }
            break;
        }
        if (gort_write(fd, buf, (size_t)n) < 0) break; /* the warm-up's one message */
    }
    gort_free(buf);
    gort_close(fd);
    gort_wg_done(&ic.servers);
}

static void acceptor(void *arg)
{
    (void)arg;
    for (;;) {
        int fd = gort_accept(ic.lfd, NULL, NULL);
        if (fd < 0) {
            if (fd != -EBADF) { /* -EBADF: main closed the listener */
                fprintf(stderr, "idleconn: accept: %s\n", strerror(-fd));
                atomic_fetch_add(&ic.errors, 1);
            }
            return;
        }
        gort_wg_add(&ic.servers, 1);
        atomic_fetch_add(&ic.accepted, 1);
        gort_go(serve, (void *)(intptr_t)fd);
    }
}

/* WARM_CONNS connections dialed here, each echoed once, then all closed and served out. */
static int warm_up(void)
{
    static int fds[WARM_CONNS];
    for (int i = 0; i < WARM_CONNS; i++) {
        char c = 'w';
        fds[i] = gort_dial_tcp("127.0.0.1", ic.port, 0);
        if (fds[i] < 0 || gort_write(fds[i], &c, 1) != 1 || gort_read(fds[i], &c, 1) != 1) {
            fprintf(stderr, "idleconn: warm-up connection %d failed\n", i);
            return -1;
        }
    }
    for (int i = 0; i < WARM_CONNS; i++)
        gort_close(fds[i]);
    gort_wg_wait(&ic.servers);
    atomic_store(&ic.accepted, 0);
    atomic_store(&ic.reading, 0);
    return 0;
}

/* Waits up to WAIT_NS for the helper's "ready" on fd (in a blocking region); 0 or -1. */
static int wait_ready(int fd)
{
    char buf[16];
    size_t got = 0;
    int rc = -1;
    gort_blocking_begin();
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    while (got < 6 && poll(&pfd, 1, (int)(WAIT_NS / 1000000)) == 1) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) break;
        got += (size_t)r;
    }
    if (got >= 6 && memcmp(buf, "ready\n", 6) == 0) rc = 0;
    gort_blocking_end();
    return rc;
}

static int bench_main(int argc, char **argv)
{
    long n = bench_parse_n(argc, argv, DEFAULT_N, 1000000L);
    if (n < 0) return 2;
    long lim = raise_nofile("idleconn");
    if (lim < 0) return 1;
    if (lim < n + FD_SLACK) {
        fprintf(stderr,
                "idleconn: RLIMIT_NOFILE hard limit is %ld; %ld connections need at least %ld "
                "descriptors (N + %d). Raise it (as root: ulimit -Hn %ld) or pass a smaller N.\n",
                lim, n, n + FD_SLACK, FD_SLACK, n + FD_SLACK);
        return 1;
    }

    ic.lfd = gort_listen_tcp("127.0.0.1", 0, 0);
    if (ic.lfd < 0) {
        fprintf(stderr, "idleconn: listen: %s\n", strerror(-ic.lfd));
        return 1;
    }
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    if (getsockname(ic.lfd, (struct sockaddr *)&sa, &salen) != 0) {
        perror("idleconn: getsockname");
        return 1;
    }
    ic.port = ntohs(sa.sin_port);
    fprintf(stderr, "idleconn: N=%ld, RLIMIT_NOFILE %ld, %d processors, poller %s\n", n, lim,
            gort_maxprocs(0), gort_poller_name());
    gort_go(acceptor, NULL);
    if (warm_up() != 0) return 1;

    long long rss0 = bench_rss_bytes("idleconn");
    if (rss0 < 0) return 1;

    int to_child[2], from_child[2];
    if (pipe2(to_child, O_CLOEXEC) != 0 || pipe2(from_child, O_CLOEXEC) != 0) {
        perror("idleconn: pipe2");
        return 1;
    }
    char portstr[16], nstr[24];
    snprintf(portstr, sizeof portstr, "%d", ic.port);
    snprintf(nstr, sizeof nstr, "%ld", n);
    char *cargv[] = {argv[0], "--client", portstr, nstr, NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, to_child[0], 0);
    posix_spawn_file_actions_adddup2(&fa, from_child[1], 1);
    pid_t pid;
    int err = posix_spawn(&pid, "/proc/self/exe", &fa, NULL, cargv, environ);
    posix_spawn_file_actions_destroy(&fa);
    close(to_child[0]);
    close(from_child[1]);
    if (err != 0) {
        fprintf(stderr, "idleconn: spawning the client helper: %s\n", strerror(err));
        return 1;
    }

    int rc = 0;
    int64_t t0 = gort_now();
    if (wait_ready(from_child[0]) != 0) {
        fprintf(stderr, "idleconn: the client helper failed or was not ready within %lld s\n",
                WAIT_NS / 1000000000LL);
        rc = 1;
    }
    while (rc == 0 && atomic_load(&ic.reading) < n) {
        if (gort_now() - t0 > WAIT_NS || atomic_load(&ic.errors)) {
            fprintf(stderr, "idleconn: only %ld connections accepted, %ld reading, %ld errors\n",
                    atomic_load(&ic.accepted), atomic_load(&ic.reading), atomic_load(&ic.errors));
            rc = 1;
        }
        gort_sleep(1000000);
    }
    long long rss1 = -1;
    if (rc == 0) {
        int64_t t1 = gort_now();
        gort_sleep(200000000); /* let the last ones park */
        rss1 = bench_rss_bytes("idleconn");
        if (rss1 < 0) rc = 1;
        fprintf(stderr,
                "idleconn: %ld connections up in %.0f ms; VmRSS %lld KiB -> %lld KiB, %d "
                "goroutines\n",
                n, (double)(t1 - t0) / 1e6, rss0 / 1024, rss1 / 1024, gort_num_goroutine());
    }

    close(to_child[1]); /* the helper exits, closing its ends: every server read sees EOF */
    int wst = 0;
    gort_blocking_begin();
    pid_t w = waitpid(pid, &wst, 0);
    gort_blocking_end();
    close(from_child[0]);
    if (w != pid || !WIFEXITED(wst) || WEXITSTATUS(wst) != 0) {
        fprintf(stderr, "idleconn: the client helper failed (status %#x)\n", wst);
        rc = 1;
    }
    if (rc != 0) return rc; /* server goroutines may still be blocked: do not wait */
    gort_wg_wait(&ic.servers);
    gort_close(ic.lfd);
    if (atomic_load(&ic.errors)) return 1;

    printf("idleconn_bytes_per_conn %.0f bytes\n", (double)(rss1 - rss0) / (double)n);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "--client") == 0) return client_main(argc, argv);
    return gort_main(bench_main, argc, argv);
}

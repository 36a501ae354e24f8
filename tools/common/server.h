/* tools/common/server.h: what gort's example servers (gort-echo, gort-httpd) share: argument
 * parsing, the listener, the accept loop with a goroutine per connection, the registry of live
 * connections, and clean shutdown on SIGINT/SIGTERM. Header only (the build makes one program
 * per tools/<dir>; a .c here would become a program of its own); every function is used by
 * each server.
 *
 * Shutdown protocol (gort's Ms unblock every signal, so a signal may land on any thread, in
 * the middle of any goroutine):
 *   1. the handler (async-signal-safe) writes one byte to a non-blocking self-pipe;
 *      SA_RESETHAND: a second signal kills the process the default way;
 *   2. srv_watch, a goroutine blocked in gort_read on the pipe, sets srv.stopping, then closes
 *      the listener with gort_close, which wakes gort_accept with -EBADF;
 *   3. the accept loop sees an error with stopping set and returns; any later error would too
 *      (the descriptor number may already be reused by then, so the error code tells nothing);
 *   4. srv_drain shuts down reading on every live connection (their blocked reads return 0,
 *      they finish the batch they are on and close) and waits up to SRV_DRAIN_NS for them;
 *   5. main prints its one-line summary and returns 0.
 * Step 2 sets stopping before closing: dropped, step 3 could take the wake-up for a failure.
 *
 * Registry: srv.conns, a list under srv.mu, so that step 4 can reach every connection. A
 * connection leaves it (srv_conn_end) before its descriptor is closed, so step 4 never shuts
 * down a descriptor number that a newer connection or file now holds.
 * Counts: each connection counts its own work in conn.count (written only by its goroutine,
 * relaxed atomics so the summary may read it live); srv_conn_end adds it to srv.done.
 */
#ifndef GORT_TOOLS_SERVER_H
#define GORT_TOOLS_SERVER_H

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gort.h"

#define SRV_SEC      1000000000LL
#define SRV_DRAIN_NS (2 * SRV_SEC) /* how long shutdown waits for live connections */

/* One live connection; each server embeds it first in its own connection struct. */
struct srv_conn {
    int fd;
    int64_t deadline;             /* set on fd (gort_now() clock; 0: none); its goroutine only */
    _Atomic uint64_t count;       /* requests or bytes served; stored only by its goroutine */
    struct srv_conn *prev, *next; /* srv.conns, under srv.mu */
    struct srv *srv;
};

struct srv {
    /* options (main, before gort_main) */
    const char *prog;   /* "gort-httpd" */
    const char *usage;  /* --help text */
    const char *addr;   /* -a; NULL: every address */
    int port;           /* -p; -1 until given */
    int64_t timeout_ns; /* -t; 0: none */
    const char *dir;    /* -d (servers that take it) */
    /* running */
    int lfd;                /* the listener */
    int sigpipe[2];         /* self-pipe: [0] read by srv_watch, [1] written by the handler */
    atomic_bool stopping;   /* set by srv_watch before it closes lfd (step 2) */
    uint64_t accepted;      /* connections accepted; the accept loop's goroutine only */
    _Atomic uint64_t done;  /* counts of ended connections */
    gort_mutex mu;          /* protects conns */
    struct srv_conn *conns; /* live connections */
    gort_waitgroup live;    /* one per live connection */
};

static struct srv srv_global; /* one server per process: the signal handler needs to find it */

static void srv_usage_exit(const struct srv *s, int status)
{
    fputs(s->usage, status ? stderr : stdout);
    exit(status);
}

static void srv_bad_arg(const struct srv *s, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: ", s->prog);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(see %s --help)\n", s->prog);
    exit(2);
}

/* A decimal integer in [lo, hi], the whole string, else -1. */
static long srv_number(const char *s, long lo, long hi)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (!*s || *end || errno || v < lo || v > hi) return -1;
    return v;
}

/* Parse -p PORT, -a ADDR, -t SECONDS, -d DIR (when with_dir), -h/--help; on --help print the
 * usage and exit 0, on a bad argument say what is wrong and exit 2. */
static struct srv *srv_parse_args(int argc, char **argv, const char *prog, const char *usage,
                                  bool with_dir, long default_timeout_s)
{
    struct srv *s = &srv_global;
    s->prog = prog;
    s->usage = usage;
    s->port = -1;
    s->lfd = -1;
    s->timeout_ns = default_timeout_s * SRV_SEC;
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},    {"addr", required_argument, NULL, 'a'},
        {"timeout", required_argument, NULL, 't'}, {"dir", required_argument, NULL, 'd'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, with_dir ? ":p:a:t:d:h" : ":p:a:t:h", longopts, NULL)) !=
           -1) {
        long v;
        switch (c) {
        case 'p':
            if ((v = srv_number(optarg, 0, 65535)) < 0)
                srv_bad_arg(s, "bad port \"%s\": expected an integer from 0 to 65535", optarg);
            s->port = (int)v;
            break;
        case 'a':
            if (!*optarg) srv_bad_arg(s, "empty address%s", "");
            s->addr = optarg;
            break;
        case 't':
            if ((v = srv_number(optarg, 0, 31536000)) < 0)
                srv_bad_arg(s, "bad timeout \"%s\": expected whole seconds from 0 to 31536000",
                            optarg);
            s->timeout_ns = v * SRV_SEC;
            break;
        case 'd':
            if (!with_dir) srv_bad_arg(s, "unknown option -%s", "d");
            s->dir = optarg;
            break;
        case 'h':
            srv_usage_exit(s, 0);
            break;
        case ':':
            srv_bad_arg(s, "option %s needs an argument", argv[optind - 1]);
            break;
        default:
            srv_bad_arg(s, "unknown option %s", argv[optind - 1]);
        }
    }
    if (optind < argc) srv_bad_arg(s, "unexpected argument \"%s\"", argv[optind]);
    if (s->port < 0) srv_bad_arg(s, "missing -p PORT%s", "");
    return s;
}

/* Listen and say where ("PROG: listening on 127.0.0.1:8080"): tests start servers on port 0 and
 * read the port from this line. 0, or 1 after printing why not. */
static int srv_listen(struct srv *s)
{
    s->lfd = gort_listen_tcp(s->addr, s->port, 0);
    if (s->lfd < 0) {
        fprintf(stderr, "%s: listen on %s:%d: %s\n", s->prog, s->addr ? s->addr : "*", s->port,
                strerror(-s->lfd));
        return 1;
    }
    struct sockaddr_storage ss;
    socklen_t sl = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = s->port;
    if (getsockname(s->lfd, (struct sockaddr *)&ss, &sl) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *in = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
            port = ntohs(in->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
            port = ntohs(in6->sin6_port);
        }
    }
    fprintf(stderr, "%s: listening on %s%s%s:%d\n", s->prog, ss.ss_family == AF_INET6 ? "[" : "",
            host, ss.ss_family == AF_INET6 ? "]" : "", port);
    return 0;
}

/* Step 1: async-signal-safe; errno is saved (the interrupted code may be reading it). */
static void srv_on_signal(int sig)
{
    (void)sig;
    int saved = errno;
    char b = 1;
    ssize_t n = write(srv_global.sigpipe[1], &b, 1); /* full pipe: a byte is already there */
    (void)n;
    errno = saved;
}

/* Step 2. */
static void srv_watch(void *arg)
{
    struct srv *s = arg;
    char b;
    ssize_t n;
    while ((n = gort_read(s->sigpipe[0], &b, 1)) < 0 && n == -EAGAIN) {
    }
    if (n != 1) {
        fprintf(stderr, "%s: signal pipe: %s\n", s->prog, n < 0 ? strerror((int)-n) : "closed");
        return;
    }
    atomic_store_explicit(&s->stopping, true, memory_order_release); /* pairs with the acquire
                                                                        in srv_accept_loop */
    gort_close(s->lfd);
}

/* Install the handlers and start srv_watch; SIGPIPE is ignored (a peer that closes early must
 * not kill the server). 0, or 1 after printing why not. */
static int srv_watch_signals(struct srv *s)
{
    if (pipe2(s->sigpipe, O_NONBLOCK | O_CLOEXEC) != 0) {
        fprintf(stderr, "%s: pipe: %s\n", s->prog, strerror(errno));
        return 1;
    }
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = srv_on_signal;
    sa.sa_flags = SA_RESTART | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    struct sigaction ign;
    memset(&ign, 0, sizeof ign);
    ign.sa_handler = SIG_IGN;
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0 ||
        sigaction(SIGPIPE, &ign, NULL) != 0) {
        fprintf(stderr, "%s: sigaction: %s\n", s->prog, strerror(errno));
        return 1;
    }
    gort_go(srv_watch, s);
    return 0;
}

/* Accept until shutdown (step 3): for each connection, new_conn(fd) makes the server's
 * connection struct (NULL: out of memory, the connection is dropped), which is registered and
 * served by serve in a goroutine of its own. 0 after a shutdown, 1 after printing a failure. */
static int srv_accept_loop(struct srv *s, struct srv_conn *(*new_conn)(int fd),
                           void (*serve)(void *))
{
    for (;;) {
        int fd = gort_accept(s->lfd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load_explicit(&s->stopping, memory_order_acquire)) return 0;
            if (fd == -ECONNABORTED || fd == -EPROTO || fd == -EPERM || fd == -EINTR) continue;
            if (fd == -ENOBUFS || fd == -ENOMEM) {
                gort_sleep(10 * 1000000LL);
                continue;
            }
            fprintf(stderr, "%s: accept: %s\n", s->prog, strerror(-fd));
            return 1;
        }
        struct srv_conn *c = new_conn(fd);
        if (!c) {
            gort_close(fd);
            continue;
        }
        c->fd = fd;
        c->deadline = 0;
        c->srv = s;
        atomic_init(&c->count, 0);
        c->prev = NULL;
        gort_mutex_lock(&s->mu);
        c->next = s->conns;
        if (s->conns) s->conns->prev = c;
        s->conns = c;
        gort_mutex_unlock(&s->mu);
        s->accepted++;
        gort_wg_add(&s->live, 1);
        gort_go(serve, c);
    }
}

/* Move c's deadline to now + the timeout (-t) before a read or write. Refreshed only once the
 * time gained reaches a quarter of the timeout (at most 1 s), not a call per read: an idle
 * connection is closed after between 3/4 of the timeout (the timeout less 1 s when longer
 * than 4 s) and all of it. */
static inline void srv_refresh_deadline(struct srv_conn *c)
{
    int64_t timeout = c->srv->timeout_ns;
    if (!timeout) return;
    int64_t now = gort_now();
    int64_t step = timeout < 4 * SRV_SEC ? timeout / 4 : SRV_SEC;
    if (now + timeout - c->deadline >= step) {
        c->deadline = now + timeout;
        gort_set_deadline(c->fd, c->deadline);
    }
}

/* Add n to c's count (c's goroutine only: a plain load and store, no locked instruction). */
static inline void srv_count(struct srv_conn *c, uint64_t n)
{
    atomic_store_explicit(&c->count, atomic_load_explicit(&c->count, memory_order_relaxed) + n,
                          memory_order_relaxed);
}

/* End a connection (its goroutine, last): unregister, close its descriptor, count it. The
 * caller frees its struct afterwards. */
static void srv_conn_end(struct srv_conn *c)
{
    struct srv *s = c->srv;
    gort_mutex_lock(&s->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next) c->next->prev = c->prev;
    /* inside the lock: srv_drain sums done and the list under it, and sees c once */
    atomic_fetch_add_explicit(&s->done, atomic_load_explicit(&c->count, memory_order_relaxed),
                              memory_order_relaxed);
    gort_mutex_unlock(&s->mu);
    gort_close(c->fd);
    gort_wg_done(&s->live);
}

static void srv_wait_live(void *arg)
{
    void **a = arg;
    gort_wg_wait(a[0]);
    gort_chan_close(a[1]);
}

/* Step 4. Returns how many connections were still open when the wait ended, and in *count the
 * total of every connection's count (ended or not). */
static uint64_t srv_drain(struct srv *s, uint64_t *count)
{
    gort_mutex_lock(&s->mu);
    for (struct srv_conn *c = s->conns; c; c = c->next)
        gort_shutdown(c->fd, SHUT_RD);
    gort_mutex_unlock(&s->mu);

    static void *args[2];
    args[0] = &s->live;
    args[1] = gort_chan_make(0, 0);
    gort_go(srv_wait_live, args);
    gort_case cases[] = {GORT_RECV(args[1], NULL, NULL),
                         GORT_RECV(gort_after(SRV_DRAIN_NS), NULL, NULL)};
    gort_select(cases, 2, true);

    uint64_t open = 0;
    gort_mutex_lock(&s->mu);
    *count = atomic_load_explicit(&s->done, memory_order_relaxed);
    for (struct srv_conn *c = s->conns; c; c = c->next, open++)
        *count += atomic_load_explicit(&c->count, memory_order_relaxed);
    gort_mutex_unlock(&s->mu);
    return open;
}

#endif /* GORT_TOOLS_SERVER_H */

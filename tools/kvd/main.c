/* tools/kvd/main.c: gort-kvd, an in-memory key-value server speaking RESP2
 * (the redis protocol), one goroutine per connection.
 *
 *   gort-kvd [-p PORT] [-a ADDR]
 *
 * A connection's goroutine reads into its buffer, runs every complete
 * command found there (pipelining) and writes the whole batch's replies with
 * one gort_write (resp.h, cmd.h). Keys live in the sharded store (store.h);
 * a background goroutine expires keys with a deadline that nobody reads.
 *
 * Shutdown: SIGINT and SIGTERM are caught by a handler that writes a byte to
 * a self-pipe (gort's threads unblock all signals, so the handler may run on
 * any of them; a write is async-signal-safe). A goroutine blocked in
 * gort_read on the pipe then closes the listener with gort_close, which wakes
 * gort_accept with -EBADF, and main returns 0: the process exits, dropping
 * the connections, as redis does without persistence. A second signal (the
 * handler is reset by the first) kills the process the default way.
 *
 * Writes "listening on ADDR:PORT" to stderr once it accepts connections
 * (PORT is the one bound, so -p 0 works for tests).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include "gort.h"

#include "cmd.h"
#include "resp.h"
#include "store.h"

#define DEFAULT_PORT 6379
#define DEFAULT_ADDR "127.0.0.1"
#define BACKLOG      511 /* redis's tcp-backlog */

static const char usage[] =
    "usage: gort-kvd [-p PORT] [-a ADDR]\n"
    "An in-memory key-value server speaking RESP2 (redis-cli and redis-benchmark work\n"
    "against it), one goroutine per connection.\n"
    "\n"
    "  -p, --port PORT   TCP port, 0-65535 (default 6379; 0 picks a free one)\n"
    "  -a, --addr ADDR   address or host name to listen on (default 127.0.0.1;\n"
    "                    '*' for every address)\n"
    "  -h, --help        this text\n"
    "\n"
    "Commands: PING ECHO GET SET (EX PX EXAT PXAT KEEPTTL NX XX GET) DEL EXISTS INCR DECR\n"
    "INCRBY DECRBY MGET MSET TTL PTTL DBSIZE FLUSHALL SELECT QUIT COMMAND CONFIG-GET INFO.\n"
    "Prints \"listening on ADDR:PORT\" to stderr when ready; SIGINT or SIGTERM stops it\n"
    "(exit status 0). Processors: GORT_MAXPROCS.\n";

static kv_store *store;
static int listen_fd = -1;
static int sig_pipe[2] = {-1, -1};
static atomic_bool stopping;

/* ---- connections ------------------------------------------------------------------------ */

typedef struct client {
    int fd;
    resp_conn rc;
} client;

/* Write the batch's replies; false when the connection is gone. */
static bool flush(client *cl)
{
    ssize_t n = gort_write(cl->fd, cl->rc.wbuf, cl->rc.wlen);
    cl->rc.wlen = 0;
    return n >= 0;
}

static void serve(void *arg)
{
    client *cl = arg;
    resp_conn *c = &cl->rc;
    for (;;) {
        size_t room = resp_read_room(c);
        if (!room) break; /* a command past RESP_QUERY_MAX: drop the client, as redis */
        ssize_t n = gort_read(cl->fd, c->rbuf + c->rend, room);
        if (n <= 0) break; /* EOF, reset, or the server closing it */
        c->rend += (size_t)n;
        int r;
        while ((r = kvd_process(c, store)) == KVD_FLUSH)
            if (!flush(cl)) goto out;
        if (c->wlen && !flush(cl)) break;
        if (r == KVD_CLOSE) break;
        resp_shrink(c);
    }
out:
    gort_close(cl->fd);
    resp_destroy(c);
    gort_free(cl);
}

/* ---- shutdown --------------------------------------------------------------------------- */

static void on_signal(int sig)
{
    int saved = errno;
    char b = (char)sig;
    if (write(sig_pipe[1], &b, 1) < 0) {
        /* the pipe is full: a byte is already waiting */
    }
    errno = saved;
}

static void signal_watcher(void *arg)
{
    (void)arg;
    char b;
    ssize_t n;
    while ((n = gort_read(sig_pipe[0], &b, 1)) == -EINTR) {
    }
    if (n <= 0) {
        fprintf(stderr,
                "gort-kvd: reading the signal pipe: %s; SIGINT/SIGTERM will not stop "
                "the server cleanly\n",
                n == 0 ? "end of file" : strerror((int)-n));
        return;
    }
    atomic_store_explicit(&stopping, true, memory_order_release); /* read by the accept loop
                                                                     after -EBADF */
    gort_close(listen_fd);
}

static int install_signals(void)
{
    if (pipe2(sig_pipe, O_NONBLOCK | O_CLOEXEC) != 0) return -errno;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_RESTART | SA_RESETHAND; /* a second signal kills the default way */
    if (sigaction(SIGINT, &sa, NULL) != 0 || sigaction(SIGTERM, &sa, NULL) != 0) return -errno;
    return 0;
}

/* ---- main ------------------------------------------------------------------------------- */

static int bad_usage(const char *fmt, const char *arg)
{
    fprintf(stderr, "gort-kvd: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\nTry 'gort-kvd --help' for more information.\n");
    return 2;
}

static void print_listening(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    char host[INET6_ADDRSTRLEN] = "?";
    int port = -1;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0) {
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
    bool v6 = strchr(host, ':') != NULL;
    fprintf(stderr, "listening on %s%s%s:%d\n", v6 ? "[" : "", host, v6 ? "]" : "", port);
}

static int real_main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"port", required_argument, NULL, 'p'},
        {"addr", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *addr = DEFAULT_ADDR;
    int port = DEFAULT_PORT;
    opterr = 0; /* our own messages */
    int opt;
    while ((opt = getopt_long(argc, argv, ":p:a:h", longopts, NULL)) != -1) {
        switch (opt) {
        case 'p': {
            char *end;
            errno = 0;
            long v = strtol(optarg, &end, 10);
            if (errno || end == optarg || *end || v < 0 || v > 65535)
                return bad_usage("invalid port '%s' (expected 0 to 65535)", optarg);
            port = (int)v;
            break;
        }
        case 'a':
            if (strcmp(optarg, "*") == 0) optarg = "";
            addr = optarg;
            break;
        case 'h':
            fputs(usage, stdout);
            return 0;
        case ':':
            return bad_usage("option '%s' needs an argument", argv[optind - 1]);
        default: {
            char shortopt[3] = {'-', (char)optopt, 0};
            return bad_usage("unknown option '%s'", optopt ? shortopt : argv[optind - 1]);
        }
        }
    }
    if (optind < argc) return bad_usage("unexpected argument '%s'", argv[optind]);

    signal(SIGPIPE, SIG_IGN); /* a peer gone mid-write is an error return, not a death */
    uint64_t seed;
    if (getrandom(&seed, sizeof seed, GRND_NONBLOCK) != sizeof seed)
        seed = (uint64_t)gort_now() ^ ((uint64_t)getpid() << 32);
    store = kv_store_new(seed);

    listen_fd = gort_listen_tcp(addr, port, BACKLOG);
    if (listen_fd < 0) {
        fprintf(stderr, "gort-kvd: listen on %s:%d: %s\n", *addr ? addr : "*", port,
                strerror(-listen_fd));
        return 1;
    }
    int rc = install_signals();
    if (rc < 0) {
        fprintf(stderr, "gort-kvd: installing signal handlers: %s\n", strerror(-rc));
        return 1;
    }
    gort_go(signal_watcher, NULL);
    gort_go(kv_expirer, store);
    print_listening(listen_fd);

    for (;;) {
        int fd = gort_accept(listen_fd, NULL, NULL);
        if (fd < 0) {
            if (atomic_load_explicit(&stopping, memory_order_acquire)) break;
            if (fd == -ECONNABORTED || fd == -EINTR || fd == -EPROTO || fd == -EAGAIN) continue;
            fprintf(stderr, "gort-kvd: accept: %s\n", strerror(-fd));
            if (fd == -EBADF || fd == -EINVAL || fd == -ENOTSOCK) return 1;
            gort_sleep(10 * 1000 * 1000LL); /* ENOBUFS, ENOMEM...: let it pass */
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        client *cl = gort_malloc(sizeof *cl);
        cl->fd = fd;
        resp_init(&cl->rc);
        gort_go(serve, cl);
    }
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(real_main, argc, argv);
}

/* tools/echo/main.c: gort-echo, a TCP echo server on gort: one goroutine per connection, each
 * reading into its own fixed buffer and writing back what it read (gort_write writes it all),
 * until the peer closes, an error, or the idle timeout (-t).
 *
 * Memory per connection is bounded whatever the peer does: the connection struct with its
 * ECHO_BUF-byte buffer (one gort_malloc per connection) and the goroutine's stack. A peer that
 * sends without reading blocks its own goroutine in gort_write, and so stops its reads: TCP
 * flow control pushes back on it, nothing queues in the server.
 * Scaffolding (arguments, listener, signals, shutdown): tools/common/server.h.
 */
#include <stdio.h>

#include "gort.h"
#include "tools/common/server.h"

#define ECHO_BUF (16 * 1024 - 64)

struct econn {
    struct srv_conn sc; /* first: server.h's view */
    char buf[ECHO_BUF];
};
_Static_assert(sizeof(struct econn) <= 16 * 1024, "one 16 KiB size class per connection");

static const char usage[] =
    "usage: gort-echo -p PORT [-a ADDR] [-t SECONDS]\n"
    "TCP echo server on gort: every byte a client sends is sent back to it.\n"
    "\n"
    "  -p, --port PORT        TCP port to listen on (0: any free port; the port is printed)\n"
    "  -a, --addr ADDR        address to listen on (default: every address)\n"
    "  -t, --timeout SECONDS  close a connection idle this long (default 0: never)\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Prints \"gort-echo: listening on ADDR:PORT\" to stderr once ready; stops on SIGINT or\n"
    "SIGTERM (a second one kills it), printing a one-line summary.\n";

static struct srv_conn *new_conn(int fd)
{
    (void)fd;
    struct econn *c = gort_malloc(sizeof *c);
    return c ? &c->sc : NULL;
}

static void serve(void *arg)
{
    struct econn *c = arg;
    int fd = c->sc.fd;
    for (;;) {
        srv_refresh_deadline(&c->sc);
        ssize_t n = gort_read(fd, c->buf, sizeof c->buf);
        if (n <= 0) break;
        if (gort_write(fd, c->buf, (size_t)n) < 0) break;
        srv_count(&c->sc, (uint64_t)n);
    }
    srv_conn_end(&c->sc);
    gort_free(c);
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct srv *s = &srv_global;
    if (srv_listen(s) || srv_watch_signals(s)) return 1;
    int rc = srv_accept_loop(s, new_conn, serve);
    uint64_t bytes;
    uint64_t open = srv_drain(s, &bytes);
    fprintf(stderr, "%s: shut down: %llu connections, %llu bytes echoed", s->prog,
            (unsigned long long)s->accepted, (unsigned long long)bytes);
    if (open) fprintf(stderr, ", %llu still open", (unsigned long long)open);
    fputc('\n', stderr);
    return rc;
}

int main(int argc, char **argv)
{
    srv_parse_args(argc, argv, "gort-echo", usage, false, 0);
    return gort_main(run, argc, argv);
}

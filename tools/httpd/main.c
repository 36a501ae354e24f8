/* tools/httpd/main.c: gort-httpd, an HTTP/1.1 server on gort: one goroutine per connection,
 * keep-alive and pipelining; "Hello, World!" on every path, or the files under -d DIR.
 *
 * Per connection, one loop (serve):
 *   1. parse every complete request the read buffer holds (http.c), appending each response
 *      to the write buffer in request order (a full write buffer is written out early);
 *   2. write the batch with one gort_write;
 *   3. move the unparsed tail to the buffer's start, read more, go to 1.
 * Request bodies are discarded as they stream through (Content-Length or chunked), never
 * kept: a request with a body keeps its head at the front of the read buffer, body bytes
 * read after it are dropped, and the request is answered once its body is through (so a bad
 * or oversized chunked body is answered with its error, never with a 200 first).
 * Invariants: rpos <= rlen <= RBUF; between batches rpos == 0 and rlen < HTTP_MAX_HEAD (an
 * incomplete head; one that reaches HTTP_MAX_HEAD is a 431/414 instead), or, while a body is
 * pending, rlen == hend <= HTTP_MAX_HEAD; either way RBUF > HTTP_MAX_HEAD leaves room to
 * read. wlen <= WBUF. Memory per connection is fixed: one gort_malloc of struct hconn (32 KiB) at
 * accept, nothing per request, whatever the client sends.
 * Errors (400, 413, 414, 417, 431, 501, 505) are answered with "Connection: close", then the
 * connection closes the way nginx's lingering close does (linger_close): shut down writing,
 * read and drop what the client still sends for up to LINGER_NS, then close, so a client
 * still sending its request reads the answer instead of a reset.
 * Timeouts (-t, default 60 s): the deadline on the descriptor is refreshed before reads and
 * writes, at most once a second (srv_refresh_deadline: a call per batch would cost more than
 * the deadline is worth), so a connection idle, stalled mid-request or not reading its
 * responses for the timeout (less up to 1 s) is closed.
 * Date: kept per connection and reformatted when the second changes (no lock, no shared
 * cache line; a clock read per batch through the vDSO).
 * Files: the path is percent-decoded, cut into segments and refused if any is ".." (http.c);
 * then openat2(RESOLVE_BENEATH) relative to the root's descriptor refuses whatever still
 * leads out of it (symlinks, absolute links) in the kernel, race-free. Kernels without
 * openat2 get a realpath() prefix check instead. Opening a file is a syscall in a blocking
 * region; reading it is gort_pread through the poller.
 * Rejected: sendfile (gort has no sendfile yet; pread + write through the poller costs one
 * copy), a shared Date cache (needs a lock or a seqlock for a string that changes once a
 * second), per-request allocation of anything.
 */
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "gort.h"
#include "http.h"
#include "tools/common/server.h"

#define RBUF      (16 * 1024)
#define WBUF      (16 * 1024 - 256)
#define LINGER_NS (2 * SRV_SEC)
_Static_assert(RBUF > HTTP_MAX_HEAD, "an incomplete head must leave room to read more");

struct hconn {
    struct srv_conn sc;  /* first: server.h's view */
    uint32_t rpos, rlen; /* unparsed bytes: rbuf[rpos, rlen) */
    uint32_t wlen;       /* pending responses: wbuf[0, wlen) */
    bool pending;        /* req's body is being discarded; its head is rbuf[0, hend) */
    uint32_t hend;
    struct http_request req;
    uint64_t body_left;     /* req's Content-Length bytes still to discard */
    struct http_chunked ck; /* req's chunked body so far */
    int64_t date_sec;       /* the second date was formatted for */
    char date[HTTP_DATE_LEN];
    char rbuf[RBUF];
    char wbuf[WBUF];
};
_Static_assert(sizeof(struct hconn) <= 32 * 1024, "one 32 KiB size class per connection");

static int root_fd = -1;         /* -d DIR, O_PATH */
static char root_real[PATH_MAX]; /* its realpath, for kernels without openat2 */
static atomic_bool no_openat2;   /* openat2 is missing: use the realpath check */

static const char usage[] =
    "usage: gort-httpd -p PORT [-a ADDR] [-d DIR] [-t SECONDS]\n"
    "HTTP/1.1 server on gort with keep-alive and pipelining. Answers \"Hello, World!\" on every\n"
    "path, or serves the files under DIR (GET and HEAD; index.html for directories; no path\n"
    "leads out of DIR).\n"
    "\n"
    "  -p, --port PORT        TCP port to listen on (0: any free port; the port is printed)\n"
    "  -a, --addr ADDR        address to listen on (default: every address)\n"
    "  -d, --dir DIR          serve the files under DIR\n"
    "  -t, --timeout SECONDS  close a connection idle (or stalled) this long (default 60;\n"
    "                         0: never)\n"
    "  -h, --help             print this help and exit\n"
    "\n"
    "Limits: request head 8 KiB (431), request body 1 MiB (413; bodies are read and dropped).\n"
    "Prints \"gort-httpd: listening on ADDR:PORT\" to stderr once ready; stops on SIGINT or\n"
    "SIGTERM (a second one kills it), printing a one-line summary.\n";

/* ---- output ---------------------------------------------------------------------------- */

static inline char *put(char *p, const char *s, size_t n)
{
    memcpy(p, s, n);
    return p + n;
}
#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v)
{
    char tmp[20];
    int n = 0;
    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10));
    while (n)
        *p++ = tmp[--n];
    return p;
}

static void refresh_date(struct hconn *c)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != c->date_sec) {
        c->date_sec = ts.tv_sec;
        http_format_date(ts.tv_sec, c->date);
    }
}

/* Write the pending responses; false when the connection failed. */
static bool flush(struct hconn *c)
{
    if (!c->wlen) return true;
    srv_refresh_deadline(&c->sc);
    ssize_t n = gort_write(c->sc.fd, c->wbuf, c->wlen);
    c->wlen = 0;
    return n >= 0;
}

/* Room for n more bytes of responses (n <= WBUF), writing out what is pending if needed;
 * NULL when that write failed. */
static char *reserve(struct hconn *c, size_t n)
{
    if (c->wlen + n > WBUF && !flush(c)) return NULL;
    return c->wbuf + c->wlen;
}

/* Status line and the headers every response has. */
static char *put_head(struct hconn *c, char *p, int status)
{
    if (status == 200) {
        p = PUTS(p, "HTTP/1.1 200 OK\r\nServer: gort\r\nDate: ");
    } else {
        p = PUTS(p, "HTTP/1.1 ");
        p = put_u64(p, (uint64_t)status);
        *p++ = ' ';
        const char *reason = http_reason(status);
        p = put(p, reason, strlen(reason));
        p = PUTS(p, "\r\nServer: gort\r\nDate: ");
    }
    p = put(p, c->date, HTTP_DATE_LEN);
    return PUTS(p, "\r\n");
}

static char *put_connection(char *p, const struct http_request *r, bool keep)
{
    if (!keep) return PUTS(p, "Connection: close\r\n");
    if (r && r->minor == 0) return PUTS(p, "Connection: keep-alive\r\n");
    return p;
}

/* A short text answer: "404 Not Found\n". r: the request (NULL when it did not parse);
 * extra: more header lines (CRLF-terminated) or "". False when the connection failed. */
static bool respond_status(struct hconn *c, const struct http_request *r, int status, bool keep,
                           const char *extra, size_t extra_len)
{
    char *p = reserve(c, 512 + extra_len);
    if (!p) return false;
    char *start = p;
    const char *reason = http_reason(status);
    size_t body = 3 + 1 + strlen(reason) + 1;
    p = put_head(c, p, status);
    p = PUTS(p, "Content-Type: text/plain; charset=utf-8\r\nContent-Length: ");
    p = put_u64(p, body);
    p = PUTS(p, "\r\n");
    p = put_connection(p, r, keep);
    p = put(p, extra, extra_len);
    p = PUTS(p, "\r\n");
    if (!r || r->method != HTTP_HEAD) {
        p = put_u64(p, (uint64_t)status);
        *p++ = ' ';
        p = put(p, reason, strlen(reason));
        *p++ = '\n';
    }
    c->wlen += (uint32_t)(p - start);
    return true;
}

static bool respond_hello(struct hconn *c, const struct http_request *r)
{
    char *p = reserve(c, 256);
    if (!p) return false;
    char *start = p;
    p = put_head(c, p, 200);
    p = PUTS(p, "Content-Type: text/plain\r\nContent-Length: 13\r\n");
    p = put_connection(p, r, r->keep_alive);
    p = PUTS(p, "\r\n");
    if (r->method != HTTP_HEAD) p = PUTS(p, "Hello, World!");
    c->wlen += (uint32_t)(p - start);
    return true;
}

/* ---- files ------------------------------------------------------------------------------ */

/* Open rel (relative, no ".." segment) under the root; the descriptor or -errno (-EXDEV or
 * -ELOOP when it leads out). Blocking: call inside a blocking region. */
static int open_beneath(const char *rel)
{
    int flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY; /* O_NONBLOCK: a FIFO must not
                                                                 block the open */
    if (!atomic_load_explicit(&no_openat2, memory_order_relaxed)) {
        struct open_how how = {.flags = (uint64_t)flags,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, root_fd, rel, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != ENOSYS && errno != EPERM) return -errno;
        atomic_store_explicit(&no_openat2, true, memory_order_relaxed);
    }
    char full[PATH_MAX], real[PATH_MAX];
    size_t rl = strlen(root_real);
    if ((size_t)snprintf(full, sizeof full, "%s/%s", root_real, rel) >= sizeof full)
        return -ENAMETOOLONG;
    if (!realpath(full, real)) return -errno;
    if (strncmp(real, root_real, rl) != 0 || (real[rl] != '/' && real[rl] != 0)) return -EXDEV;
    int fd = open(real, flags);
    return fd >= 0 ? fd : -errno;
}

/* open_beneath and fstat, in a blocking region; the descriptor or -errno. */
static int open_file(const char *rel, struct stat *st)
{
    gort_blocking_begin();
    int fd = open_beneath(rel);
    if (fd >= 0 && fstat(fd, st) != 0) {
        int e = errno;
        close(fd);
        fd = -e;
    }
    gort_blocking_end();
    return fd;
}

static int status_of_errno(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
        return 404;
    case EXDEV:
    case ELOOP:
    case EACCES:
    case EPERM:
        return 403;
    case ENAMETOOLONG:
        return 414;
    case EMFILE:
    case ENFILE:
    case ENOMEM:
        return 503;
    }
    return 500;
}

/* Send size bytes of fd after the header already in wbuf; false when the connection must
 * close (the peer failed, or the file shrank under us: its promised length cannot be met). */
static bool send_file_body(struct hconn *c, int fd, uint64_t size)
{
    uint64_t off = 0;
    while (off < size) {
        if (c->wlen == WBUF && !flush(c)) return false;
        size_t room = WBUF - c->wlen;
        size_t want = size - off < room ? (size_t)(size - off) : room;
        ssize_t n = gort_pread(fd, c->wbuf + c->wlen, want, (off_t)off);
        if (n <= 0) return false;
        c->wlen += (uint32_t)n;
        off += (uint64_t)n;
    }
    return true;
}

static bool respond_file(struct hconn *c, const struct http_request *r)
{
    if (r->method != HTTP_GET && r->method != HTTP_HEAD) {
        static const char allow[] = "Allow: GET, HEAD\r\n";
        return respond_status(c, r, 405, r->keep_alive, allow, sizeof allow - 1);
    }
    char path[HTTP_MAX_PATH + sizeof "/index.html"];
    bool slash;
    int n = http_path_decode(r->target, r->target_len, path, HTTP_MAX_PATH, &slash);
    if (n < 0) return respond_status(c, r, -n, r->keep_alive, "", 0);
    struct stat st;
    int fd = open_file(path, &st);
    if (fd >= 0 && S_ISDIR(st.st_mode)) {
        close(fd);
        if (!slash && !(n == 1 && path[0] == '.')) { /* "/sub" -> "/sub/": relative links work */
            char loc[HTTP_MAX_HEAD + 32], *p = PUTS(loc, "Location: ");
            const char *t = r->target, *q = memchr(t, '?', r->target_len);
            size_t tl = q ? (size_t)(q - t) : r->target_len;
            p = put(p, t, tl);
            p = PUTS(p, "/\r\n");
            return respond_status(c, r, 301, r->keep_alive, loc, (size_t)(p - loc));
        }
        memcpy(path + n, "/index.html", sizeof "/index.html");
        fd = open_file(path, &st);
        if (fd == -ENOENT) fd = -EACCES; /* a directory without an index: 403, as nginx */
    }
    if (fd < 0) return respond_status(c, r, status_of_errno(-fd), r->keep_alive, "", 0);
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return respond_status(c, r, 403, r->keep_alive, "", 0);
    }
    bool ok = false;
    char *p = reserve(c, 512);
    if (p) {
        char *start = p;
        const char *type = http_mime_type(path, strlen(path));
        p = put_head(c, p, 200);
        p = PUTS(p, "Content-Type: ");
        p = put(p, type, strlen(type));
        p = PUTS(p, "\r\nContent-Length: ");
        p = put_u64(p, (uint64_t)st.st_size);
        p = PUTS(p, "\r\n");
        p = put_connection(p, r, r->keep_alive);
        p = PUTS(p, "\r\n");
        c->wlen += (uint32_t)(p - start);
        ok = r->method == HTTP_HEAD || send_file_body(c, fd, (uint64_t)st.st_size);
    }
    gort_close(fd);
    return ok;
}

/* ---- connections ------------------------------------------------------------------------ */

/* Close the way nginx's lingering close does: the client may still be sending the request we
 * refused; closing with unread bytes would send a reset that can destroy our answer before
 * the client reads it. */
static void linger_close(struct hconn *c)
{
    int fd = c->sc.fd;
    if (gort_shutdown(fd, SHUT_WR) == 0) {
        gort_set_deadline(fd, gort_now() + LINGER_NS);
        uint64_t dropped = 0;
        ssize_t n;
        while (dropped < 64u * HTTP_MAX_BODY && (n = gort_read(fd, c->rbuf, RBUF)) > 0)
            dropped += (uint64_t)n;
    }
}

static bool respond(struct hconn *c, const struct http_request *r)
{
    return root_fd >= 0 ? respond_file(c, r) : respond_hello(c, r);
}

/* Discard what rbuf[hend, rlen) holds of the pending request's body, keeping its head and
 * moving what follows the body up to hend. 1: the body ended; 0: read more (rlen == hend);
 * -1: a bad chunked body (answered; close after lingering). */
static int discard_body(struct hconn *c)
{
    size_t avail = c->rlen - c->hend, used;
    int rc;
    if (!c->req.chunked) {
        used = avail < c->body_left ? avail : (size_t)c->body_left;
        c->body_left -= used;
        rc = c->body_left == 0;
    } else {
        rc = http_chunked_skip(&c->ck, c->rbuf + c->hend, avail, &used);
        if (rc < 0) {
            respond_status(c, NULL, -rc, false, "", 0);
            return -1;
        }
    }
    memmove(c->rbuf + c->hend, c->rbuf + c->hend + used, avail - used);
    c->rlen -= (uint32_t)used;
    return rc;
}

/* Steps 1 and 2 for what rbuf holds, then the compaction of step 3. 1: read more; 0: close
 * now; -1: close after lingering. */
static int process(struct hconn *c)
{
    uint64_t served = 0;
    int next = 1;
    refresh_date(c);
    for (;;) {
        struct http_request req;
        const struct http_request *r = &req;
        if (c->pending) {
            int rc = discard_body(c);
            if (rc < 0) {
                next = -1;
                break;
            }
            if (rc == 0) break;
            c->pending = false;
            c->rpos = c->hend; /* what followed the body */
            r = &c->req;
        } else {
            if (c->rpos == c->rlen) break;
            int n = http_parse_request(c->rbuf + c->rpos, c->rlen - c->rpos, &req);
            if (n == 0) break;
            if (n < 0) {
                respond_status(c, NULL, -n, false, "", 0);
                next = -1;
                break;
            }
            if (req.content_length || req.chunked) {
                /* answered once its body is through (a bad or oversized chunked body gets its
                 * error instead of a 200); meanwhile its head waits at the front of rbuf */
                memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
                req.target -= c->rpos;
                c->rlen -= c->rpos;
                c->rpos = 0;
                c->hend = (uint32_t)n;
                c->req = req;
                c->body_left = req.content_length;
                memset(&c->ck, 0, sizeof c->ck);
                c->pending = true;
                if (req.expect_continue) {
                    char *p = reserve(c, 32);
                    if (!p) return 0;
                    c->wlen += (uint32_t)(PUTS(p, "HTTP/1.1 100 Continue\r\n\r\n") - p);
                }
                continue;
            }
            c->rpos += (uint32_t)n;
        }
        served++;
        if (!respond(c, r)) return 0;
        if (!r->keep_alive) {
            next = c->rpos < c->rlen ? -1 : 0; /* unread requests: linger, no reset */
            break;
        }
    }
    srv_count(&c->sc, served);
    if (!flush(c)) return 0;
    if (!c->pending) {
        memmove(c->rbuf, c->rbuf + c->rpos, c->rlen - c->rpos);
        c->rlen -= c->rpos;
        c->rpos = 0;
    }
    return next;
}

static struct srv_conn *new_conn(int fd)
{
    (void)fd;
    struct hconn *c = gort_malloc(sizeof *c);
    if (!c) return NULL;
    c->rpos = c->rlen = c->wlen = 0;
    c->pending = false;
    c->body_left = 0;
    c->date_sec = -1;
    return &c->sc;
}

static void serve(void *arg)
{
    struct hconn *c = arg;
    for (;;) {
        int next = process(c);
        if (next <= 0) {
            if (next < 0) linger_close(c);
            break;
        }
        srv_refresh_deadline(&c->sc);
        ssize_t n = gort_read(c->sc.fd, c->rbuf + c->rlen, RBUF - c->rlen);
        if (n <= 0) break; /* EOF, error, or the deadline: close without a word, as nginx */
        c->rlen += (uint32_t)n;
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
    uint64_t requests;
    uint64_t open = srv_drain(s, &requests);
    fprintf(stderr, "%s: shut down: %llu connections, %llu requests", s->prog,
            (unsigned long long)s->accepted, (unsigned long long)requests);
    if (open) fprintf(stderr, ", %llu connections still open", (unsigned long long)open);
    fputc('\n', stderr);
    return rc;
}

int main(int argc, char **argv)
{
    struct srv *s = srv_parse_args(argc, argv, "gort-httpd", usage, true, 60);
    if (s->dir) {
        root_fd = open(s->dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root_fd < 0 || !realpath(s->dir, root_real)) {
            fprintf(stderr, "%s: -d %s: %s\n", s->prog, s->dir, strerror(errno));
            return 2;
        }
    }
    return gort_main(run, argc, argv);
}

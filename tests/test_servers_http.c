/* tests/test_servers_http.c: the example servers gort-echo and gort-httpd (tools/echo,
 * tools/httpd) driven from outside, as their users drive them.
 *
 * Each case starts a server as a subprocess on port 0 with -a 127.0.0.1 (the binaries are
 * found next to this program: build/tests/test_x -> build/bin/gort-x, so the sanitizer build
 * tests its own servers), reads the port from its "listening on" line, talks to it over
 * loopback with plain blocking sockets (this process runs no gort code), then stops it with
 * SIGTERM or SIGINT and expects exit status 0 and the summary line. Every socket has a 10 s
 * receive/send timeout and every wait is bounded, so a server that hangs fails the case
 * instead of hanging the suite; the teardown kills a server a failed case left behind.
 * No timing assertions: the idle-timeout case only expects the server to close the
 * connection before the 10 s socket timeout.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort_test.h"

#define WAIT_MS 10000 /* bound on every wait for a server */

static char bin_dir[PATH_MAX - 64]; /* build/bin of this build */

/* ---- servers as subprocesses ------------------------------------------------------------- */

struct server {
    const char *prog;
    pid_t pid;
    int errfd; /* its stderr */
    int port;
    char err[16384]; /* what it printed to stderr */
    size_t errlen;
};

#define MAX_SERVERS 4
static struct server *running[MAX_SERVERS]; /* for the teardown */

static void prog_path(const char *prog, char path[PATH_MAX])
{
    snprintf(path, PATH_MAX, "%s/%s", bin_dir, prog);
}

/* Read what the server printed, waiting up to ms; false at EOF. */
static bool read_err(struct server *s, int ms)
{
    struct pollfd p = {.fd = s->errfd, .events = POLLIN};
    if (poll(&p, 1, ms) <= 0) return true;
    if (s->errlen + 1 >= sizeof s->err) s->errlen = 0; /* keep the tail */
    ssize_t n = read(s->errfd, s->err + s->errlen, sizeof s->err - 1 - s->errlen);
    if (n <= 0) return false;
    s->errlen += (size_t)n;
    s->err[s->errlen] = 0;
    return true;
}

/* Start prog with "-p 0 -a 127.0.0.1" and args (NULL-terminated) and wait for its port. */
static void start_server(struct server *s, const char *prog, const char *const *args)
{
    memset(s, 0, sizeof *s);
    s->prog = prog;
    char path[PATH_MAX];
    prog_path(prog, path);
    char *argv[32] = {path, "-p", "0", "-a", "127.0.0.1"};
    int argc = 5;
    for (int i = 0; args && args[i] && argc < 31; i++)
        argv[argc++] = (char *)args[i];
    argv[argc] = NULL;

    int pe[2];
    assert_int_equal(pipe2(pe, O_CLOEXEC), 0);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    sigset_t dfl;
    sigemptyset(&dfl);
    sigaddset(&dfl, SIGPIPE); /* this program ignores it; the server must start with default */
    posix_spawnattr_setsigdefault(&attr, &dfl);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    int rc = posix_spawn(&s->pid, path, &fa, &attr, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pe[1]);
    if (rc != 0) fail_msg("could not start %s: %s (build with make)", path, strerror(rc));
    s->errfd = pe[0];
    for (int i = 0; i < MAX_SERVERS; i++)
        if (!running[i]) {
            running[i] = s;
            break;
        }

    int64_t deadline = now_ms() + WAIT_MS;
    const char *l;
    while (!(l = strstr(s->err, "listening on ")) || !strchr(l, '\n')) {
        if (now_ms() > deadline || !read_err(s, 100))
            fail_msg("%s did not say where it listens; stderr:\n%s", prog, s->err);
    }
    const char *colon = strrchr(l, ':'); /* the last ':' of the line: after the address */
    for (const char *c = l; *c != '\n'; c++)
        if (*c == ':') colon = c;
    s->port = atoi(colon + 1);
    assert_true(s->port > 0 && s->port < 65536);
}

/* Stop the server with sig; expect exit status 0 and the summary line. */
static void stop_server(struct server *s, int sig)
{
    assert_int_equal(kill(s->pid, sig), 0);
    int64_t deadline = now_ms() + WAIT_MS;
    while (now_ms() < deadline && read_err(s, 100)) {
    }
    int wstatus = 0;
    int ended = waitpid_bounded(s->pid, now_ms() + WAIT_MS, &wstatus);
    for (int i = 0; i < MAX_SERVERS; i++)
        if (running[i] == s) running[i] = NULL;
    close(s->errfd);
    if (ended != 1 || !WIFEXITED(wstatus) || WEXITSTATUS(wstatus) != 0)
        fail_msg("%s after signal %d: %s %d; stderr:\n%s", s->prog, sig,
                 ended != 1           ? "did not exit, killed"
                 : WIFEXITED(wstatus) ? "exit status"
                                      : "killed by signal",
                 WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : WTERMSIG(wstatus), s->err);
    if (!strstr(s->err, ": shut down: "))
        fail_msg("%s printed no summary; stderr:\n%s", s->prog, s->err);
}

static int kill_servers(void **state)
{
    (void)state;
    for (int i = 0; i < MAX_SERVERS; i++) {
        struct server *s = running[i];
        if (!s) continue;
        kill(s->pid, SIGKILL);
        int ws;
        waitpid_bounded(s->pid, now_ms() + WAIT_MS, &ws);
        close(s->errfd);
        running[i] = NULL;
    }
    return 0;
}

/* ---- clients ------------------------------------------------------------------------------ */

static int dial(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct timeval tv = {WAIT_MS / 1000, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0)
        fail_msg("connect to port %d: %s", port, strerror(errno));
    return fd;
}

static void send_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            fail_msg("send \"%.40s\"...: %s", (const char *)buf, w < 0 ? strerror(errno) : "0");
        p += w;
        n -= (size_t)w;
    }
}

static void send_str(int fd, const char *s)
{
    send_all(fd, s, strlen(s));
}

/* A connection with a receive buffer (responses may arrive together). */
struct client {
    int fd;
    char *buf;
    size_t len, cap;
};

static void client_open(struct client *c, int port)
{
    memset(c, 0, sizeof *c);
    c->fd = dial(port);
    c->cap = 1 << 16;
    c->buf = malloc(c->cap);
    assert_non_null(c->buf);
}

static void client_close(struct client *c)
{
    close(c->fd);
    free(c->buf);
    c->buf = NULL;
}

/* Read more into c->buf: bytes read, 0 at EOF, -1 on error (errno). */
static ssize_t client_fill(struct client *c)
{
    if (c->len == c->cap) {
        c->cap *= 2;
        c->buf = realloc(c->buf, c->cap);
        assert_non_null(c->buf);
    }
    ssize_t n;
    while ((n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0)) < 0 && errno == EINTR) {
    }
    if (n > 0) c->len += (size_t)n;
    return n;
}

/* Expect the server to close: EOF (or a reset) with nothing more sent. */
static void expect_eof(struct client *c, const char *what)
{
    ssize_t n = client_fill(c);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
        fail_msg("%s: the server did not close the connection", what);
    if (n > 0) fail_msg("%s: more bytes after the last response: %.*s", what, (int)n, c->buf);
    if (n < 0 && errno != ECONNRESET) fail_msg("%s: recv: %s", what, strerror(errno));
}

struct resp {
    int status;
    long content_length; /* -1: none */
    char connection[64];
    char content_type[128];
    char location[256];
    bool has_date;
    char *body; /* NUL-terminated copy */
    size_t body_len;
};

static void resp_free(struct resp *r)
{
    free(r->body);
    r->body = NULL;
}

static void header_value(const char *line, const char *name, char *out, size_t outsz)
{
    size_t n = strlen(name);
    if (strncasecmp(line, name, n) != 0 || line[n] != ':') return;
    const char *v = line + n + 1;
    while (*v == ' ')
        v++;
    size_t l = strcspn(v, "\r\n");
    if (l >= outsz) l = outsz - 1;
    memcpy(out, v, l);
    out[l] = 0;
}

/* Read one response (skipping 100 Continue); head: it answers a HEAD request (no body). */
static void read_resp(struct client *c, bool head, struct resp *r)
{
    memset(r, 0, sizeof *r);
    for (;;) {
        char *end;
        while (!(end = memmem(c->buf, c->len, "\r\n\r\n", 4))) {
            ssize_t n = client_fill(c);
            if (n <= 0)
                fail_msg("response: %s after %zu bytes: %.300s", n == 0 ? "EOF" : strerror(errno),
                         c->len, c->len ? c->buf : "");
        }
        size_t hlen = (size_t)(end - c->buf) + 4;
        char *h = malloc(hlen + 1);
        assert_non_null(h);
        memcpy(h, c->buf, hlen);
        h[hlen] = 0;
        if (sscanf(h, "HTTP/1.1 %d ", &r->status) != 1) fail_msg("bad status line: %.200s", h);
        char cl[32] = "";
        for (char *l = strstr(h, "\r\n") + 2; *l && *l != '\r'; l = strstr(l, "\r\n") + 2) {
            header_value(l, "Content-Length", cl, sizeof cl);
            header_value(l, "Connection", r->connection, sizeof r->connection);
            header_value(l, "Content-Type", r->content_type, sizeof r->content_type);
            header_value(l, "Location", r->location, sizeof r->location);
            if (!strncasecmp(l, "Date:", 5)) r->has_date = true;
        }
        free(h);
        memmove(c->buf, c->buf + hlen, c->len - hlen);
        c->len -= hlen;
        if (r->status == 100) continue;
        r->content_length = *cl ? atol(cl) : -1;
        size_t blen = head || r->content_length < 0 ? 0 : (size_t)r->content_length;
        while (c->len < blen) {
            ssize_t n = client_fill(c);
            if (n <= 0)
                fail_msg("body: %s after %zu of %zu bytes", n == 0 ? "EOF" : strerror(errno),
                         c->len, blen);
        }
        r->body = malloc(blen + 1);
        assert_non_null(r->body);
        memcpy(r->body, c->buf, blen);
        r->body[blen] = 0;
        r->body_len = blen;
        memmove(c->buf, c->buf + blen, c->len - blen);
        c->len -= blen;
        return;
    }
}

/* One request on c, one response; returns the status (r filled, free with resp_free). */
static int roundtrip(struct client *c, const char *req, struct resp *r)
{
    send_str(c->fd, req);
    read_resp(c, strncmp(req, "HEAD ", 5) == 0, r);
    return r->status;
}

/* ---- gort-echo ----------------------------------------------------------------------------- */

static void test_echo_large(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-echo", NULL);
    enum { N = 1 << 20 };
    unsigned char *out = malloc(N), *in = malloc(N);
    assert_non_null(out);
    assert_non_null(in);
    uint32_t x = 12345;
    for (size_t i = 0; i < N; i++) {
        x = x * 1103515245 + 12345;
        out[i] = (unsigned char)(x >> 16);
    }
    int fd = dial(s.port);
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    size_t sent = 0, got = 0;
    while (got < N) { /* send and receive together: the echo flows back while we send */
        struct pollfd p = {.fd = fd, .events = POLLIN | (sent < N ? POLLOUT : 0)};
        int n = poll(&p, 1, WAIT_MS);
        if (n == 0) fail_msg("echo stalled: sent %zu, received %zu", sent, got);
        assert_true(n > 0);
        if (p.revents & POLLOUT) {
            ssize_t w = send(fd, out + sent, N - sent < 65536 ? N - sent : 65536, MSG_NOSIGNAL);
            if (w > 0) sent += (size_t)w;
        }
        if (p.revents & (POLLIN | POLLHUP | POLLERR)) {
            ssize_t r = recv(fd, in + got, N - got, 0);
            if (r == 0) fail_msg("EOF after %zu bytes", got);
            if (r > 0) got += (size_t)r;
        }
    }
    assert_memory_equal(in, out, N);
    close(fd);
    free(out);
    free(in);
    stop_server(&s, SIGTERM);
    assert_non_null(strstr(s.err, "1 connections, 1048576 bytes echoed"));
}

static void test_echo_many_clients(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-echo", NULL);
    enum { C = 200, ROUNDS = 3 };
    int fds[C];
    for (int i = 0; i < C; i++)
        fds[i] = dial(s.port);
    size_t total = 0;
    for (int round = 0; round < ROUNDS; round++) {
        char msg[64];
        for (int i = 0; i < C; i++) { /* all of them in flight at once */
            int n = snprintf(msg, sizeof msg, "client %d round %d\n", i, round);
            send_all(fds[i], msg, (size_t)n);
            total += (size_t)n;
        }
        for (int i = C - 1; i >= 0; i--) {
            int n = snprintf(msg, sizeof msg, "client %d round %d\n", i, round);
            char got[64];
            size_t have = 0;
            while (have < (size_t)n) {
                ssize_t r = recv(fds[i], got + have, (size_t)n - have, 0);
                if (r <= 0) fail_msg("client %d: %s", i, r ? strerror(errno) : "EOF");
                have += (size_t)r;
            }
            assert_memory_equal(got, msg, (size_t)n);
        }
    }
    for (int i = 0; i < C; i++)
        close(fds[i]);
    stop_server(&s, SIGINT);
    char want[96];
    snprintf(want, sizeof want, "%d connections, %zu bytes echoed", C, total);
    if (!strstr(s.err, want)) fail_msg("want \"%s\" in:\n%s", want, s.err);
}

/* ---- arguments ------------------------------------------------------------------------------ */

static void check_args(const char *prog, const char *const *args, int status, const char *out,
                       const char *err)
{
    char path[PATH_MAX];
    prog_path(prog, path);
    char *argv[8] = {path};
    int n = 1;
    while (args[n - 1])
        argv[n] = (char *)args[n - 1], n++;
    argv[n] = NULL;
    struct run r;
    run_prog(path, argv, NULL, WAIT_MS, &r);
    char scenario[128];
    snprintf(scenario, sizeof scenario, "%s %s %s", prog, args[0] ? args[0] : "",
             args[0] && args[1] ? args[1] : "");
    CHECK(&r, scenario, exited_with(&r, status));
    if (out) CHECK(&r, scenario, has(r.out, out));
    if (err) CHECK(&r, scenario, has(r.err, err));
    run_free(&r);
}

static void test_arguments(void **state)
{
    (void)state;
    static const char *progs[] = {"gort-echo", "gort-httpd"};
    for (int i = 0; i < 2; i++) {
        const char *p = progs[i];
        char usage[64];
        snprintf(usage, sizeof usage, "usage: %s -p PORT", p);
        check_args(p, (const char *[]){"--help", NULL}, 0, usage, NULL);
        check_args(p, (const char *[]){"-h", NULL}, 0, usage, NULL);
        check_args(p, (const char *[]){"-p", "0", "--help", NULL}, 0, usage, NULL);
        check_args(p, (const char *[]){NULL}, 2, NULL, "missing -p PORT");
        check_args(p, (const char *[]){"-p", "x", NULL}, 2, NULL, "bad port \"x\"");
        check_args(p, (const char *[]){"-p", "65536", NULL}, 2, NULL, "bad port");
        check_args(p, (const char *[]){"-p", "-1", NULL}, 2, NULL, "bad port");
        check_args(p, (const char *[]){"-p", NULL}, 2, NULL, "option -p needs an argument");
        check_args(p, (const char *[]){"-p", "0", "-x", NULL}, 2, NULL, "unknown option -x");
        check_args(p, (const char *[]){"-p", "0", "--nope", NULL}, 2, NULL, "unknown option");
        check_args(p, (const char *[]){"-p", "0", "extra", NULL}, 2, NULL, "unexpected argument");
        check_args(p, (const char *[]){"-p", "0", "-t", "soon", NULL}, 2, NULL, "bad timeout");
        /* TEST-NET-1: not an address of this machine; fails at once, no name lookup */
        check_args(p, (const char *[]){"-p", "0", "-a", "192.0.2.1", NULL}, 1, NULL,
                   "listen on 192.0.2.1:0: ");
    }
    check_args("gort-echo", (const char *[]){"-p", "0", "-d", "/", NULL}, 2, NULL,
               "unknown option -d");
    check_args("gort-httpd", (const char *[]){"-p", "0", "-d", "/no/such/dir", NULL}, 2, NULL,
               "-d /no/such/dir: No such file or directory");
}

/* ---- gort-httpd: hello ---------------------------------------------------------------------- */

static void expect_hello(const struct resp *r, const char *what)
{
    if (r->status != 200 || r->content_length != 13 || strcmp(r->body, "Hello, World!") != 0 ||
        strcmp(r->content_type, "text/plain") != 0 || !r->has_date)
        fail_msg("%s: status %d, length %ld, type \"%s\", body \"%s\"", what, r->status,
                 r->content_length, r->content_type, r->body ? r->body : "");
}

static void test_http_hello(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-httpd", NULL);
    struct client c;
    client_open(&c, s.port);
    struct resp r;
    roundtrip(&c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    expect_hello(&r, "GET /");
    assert_string_equal(r.connection, "");
    resp_free(&r);
    roundtrip(&c, "GET /any/path.html?q=1 HTTP/1.1\r\nHost: x\r\nUser-Agent: t\r\n\r\n", &r);
    expect_hello(&r, "GET /any/path");
    resp_free(&r);
    roundtrip(&c, "HEAD / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, 13);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);
    /* bodies of acceptable size are read and dropped, on the same connection */
    static char post[200 * 1024];
    int n = snprintf(post, sizeof post, "POST /f HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                     150 * 1024);
    memset(post + n, 'p', 150 * 1024);
    send_all(c.fd, post, (size_t)n + 150 * 1024);
    read_resp(&c, false, &r);
    expect_hello(&r, "POST with a 150 KiB body");
    resp_free(&r);
    roundtrip(&c,
              "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
              "4\r\nWiki\r\n5;x=y\r\npedia\r\n0\r\nT: v\r\n\r\n",
              &r);
    expect_hello(&r, "POST chunked");
    resp_free(&r);
    /* Expect: 100-continue gets its interim answer, then the final one */
    send_str(c.fd,
             "PUT /u HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n");
    char interim[26];
    size_t have = 0;
    while (have < sizeof interim - 1) {
        if (c.len == 0) assert_true(client_fill(&c) > 0);
        size_t take = c.len < sizeof interim - 1 - have ? c.len : sizeof interim - 1 - have;
        memcpy(interim + have, c.buf, take);
        memmove(c.buf, c.buf + take, c.len - take);
        c.len -= take;
        have += take;
    }
    interim[have] = 0;
    assert_string_equal(interim, "HTTP/1.1 100 Continue\r\n\r\n");
    send_str(c.fd, "abc");
    read_resp(&c, false, &r);
    expect_hello(&r, "PUT after 100 Continue");
    resp_free(&r);
    client_close(&c);
    stop_server(&s, SIGTERM);
    assert_non_null(strstr(s.err, "1 connections, 6 requests"));
}

static void test_http_keep_alive_and_close(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-httpd", NULL);
    struct client c;
    struct resp r;
    client_open(&c, s.port);
    for (int i = 0; i < 50; i++) {
        roundtrip(&c, "GET /k HTTP/1.1\r\nHost: x\r\n\r\n", &r);
        expect_hello(&r, "keep-alive");
        resp_free(&r);
    }
    roundtrip(&c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", &r);
    expect_hello(&r, "Connection: close");
    assert_string_equal(r.connection, "close");
    resp_free(&r);
    expect_eof(&c, "after Connection: close");
    client_close(&c);

    /* HTTP/1.0: closes unless keep-alive was asked for */
    client_open(&c, s.port);
    roundtrip(&c, "GET / HTTP/1.0\r\n\r\n", &r);
    expect_hello(&r, "HTTP/1.0");
    assert_string_equal(r.connection, "close");
    resp_free(&r);
    expect_eof(&c, "after an HTTP/1.0 request");
    client_close(&c);
    client_open(&c, s.port);
    for (int i = 0; i < 3; i++) {
        roundtrip(&c, "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r);
        expect_hello(&r, "HTTP/1.0 keep-alive");
        assert_string_equal(r.connection, "keep-alive");
        resp_free(&r);
    }
    client_close(&c);

    /* a request in pieces, with pauses between them */
    client_open(&c, s.port);
    const char *req = "GET /slow HTTP/1.1\r\nHost: x\r\nX-Long: abcdefghij\r\n\r\n";
    for (size_t i = 0, len = strlen(req); i < len; i += 7) {
        send_all(c.fd, req + i, len - i < 7 ? len - i : 7);
        struct timespec ts = {0, 2000000};
        nanosleep(&ts, NULL);
    }
    read_resp(&c, false, &r);
    expect_hello(&r, "request in pieces");
    resp_free(&r);
    client_close(&c);
    stop_server(&s, SIGINT);
}

static void test_http_pipelining(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-httpd", NULL);
    struct client c;
    client_open(&c, s.port);
    enum { N = 100 };
    char *batch = malloc(N * 64);
    assert_non_null(batch);
    size_t len = 0;
    for (int i = 0; i < N; i++)
        len += (size_t)sprintf(batch + len,
                               i % 10 == 9 ? "HEAD /%d HTTP/1.1\r\nHost: x\r\n\r\n"
                                           : "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n",
                               i);
    for (int round = 0; round < 3; round++) { /* one write each time */
        send_all(c.fd, batch, len);
        for (int i = 0; i < N; i++) {
            struct resp r;
            read_resp(&c, i % 10 == 9, &r);
            if (i % 10 == 9) {
                assert_int_equal(r.status, 200);
                assert_int_equal(r.body_len, 0);
            } else {
                expect_hello(&r, "pipelined");
            }
            resp_free(&r);
        }
        assert_int_equal(c.len, 0);
    }
    /* a pipelined batch whose last request closes: all answered, then EOF */
    send_str(c.fd, "GET /1 HTTP/1.1\r\nHost: x\r\n\r\nGET /2 HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /3 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    for (int i = 0; i < 3; i++) {
        struct resp r;
        read_resp(&c, false, &r);
        expect_hello(&r, "pipelined, then close");
        resp_free(&r);
    }
    expect_eof(&c, "after the closing request of a batch");
    client_close(&c);
    free(batch);
    stop_server(&s, SIGTERM);
    assert_non_null(strstr(s.err, "1 connections, 303 requests"));
}

/* ---- gort-httpd: errors ------------------------------------------------------------------- */

/* Send req (len bytes; 0: strlen) on a new connection; expect status, "Connection: close", EOF. */
static void expect_error(int port, const char *req, size_t len, int status)
{
    struct client c;
    client_open(&c, port);
    send_all(c.fd, req, len ? len : strlen(req));
    struct resp r;
    read_resp(&c, false, &r);
    if (r.status != status || strcmp(r.connection, "close") != 0)
        fail_msg("%.60s...: status %d (want %d), Connection \"%s\"", req, r.status, status,
                 r.connection);
    assert_int_equal(r.content_length, (long)r.body_len);
    assert_int_equal(atoi(r.body), status);
    resp_free(&r);
    char what[80];
    snprintf(what, sizeof what, "after a %d", status);
    expect_eof(&c, what);
    client_close(&c);
}

static void test_http_errors(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-httpd", NULL);
    expect_error(s.port, "GARBAGE\r\n\r\n", 0, 400);
    expect_error(s.port, "GET / HTTP/1.1\r\nHost x\r\n\r\n", 0, 400);
    expect_error(s.port, "GET / HTTP/1.1\r\nHost : x\r\n\r\n", 0, 400);
    expect_error(s.port, "GET / HTTP/1.1\r\n\r\n", 0, 400); /* no Host */
    expect_error(s.port, "GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n", 0, 400);
    expect_error(s.port,
                 "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n"
                 "Transfer-Encoding: chunked\r\n\r\n",
                 0, 400);
    expect_error(s.port,
                 "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                 "zz\r\n",
                 0, 400);
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    expect_error(s.port, nul, sizeof nul - 1, 400);
    expect_error(s.port, "BREW /pot HTTP/1.1\r\nHost: x\r\n\r\n", 0, 501);
    expect_error(s.port, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n", 0, 501);
    expect_error(s.port, "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 0, 505);
    expect_error(s.port, "GET / HTTP/0.9\r\n\r\n", 0, 505);
    expect_error(s.port, "POST / HTTP/1.1\r\nHost: x\r\nExpect: tea\r\n\r\n", 0, 417);
    expect_error(s.port, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1048577\r\n\r\n", 0, 413);

    static char big[3 << 20];
    /* 413 while the client is still sending its 2 MiB body: the answer is read, not reset */
    int n = snprintf(big, sizeof big, "PUT / HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n",
                     2 << 20);
    memset(big + n, 'b', 2 << 20);
    expect_error(s.port, big, (size_t)n + (2 << 20), 413);
    /* a chunked body over the limit */
    n = snprintf(big, sizeof big,
                 "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n100001\r\n");
    expect_error(s.port, big, (size_t)n, 413);
    /* headers over 8 KiB: 431; then 3 MiB without a line end: still 431, no growth */
    n = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nHost: x\r\nX-Big: ");
    memset(big + n, 'h', 10000);
    memcpy(big + n + 10000, "\r\n\r\n", 4);
    expect_error(s.port, big, (size_t)n + 10004, 431);
    memset(big + n, 'h', sizeof big - (size_t)n);
    expect_error(s.port, big, sizeof big, 431);
    /* a request line over 8 KiB: 414 */
    memcpy(big, "GET /", 5);
    memset(big + 5, 'u', 10000);
    memcpy(big + 10005, " HTTP/1.1\r\nHost: x\r\n\r\n", 23);
    expect_error(s.port, big, 10028, 414);

    /* an error after good pipelined requests: those are answered first */
    struct client c;
    client_open(&c, s.port);
    send_str(c.fd, "GET / HTTP/1.1\r\nHost: x\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\nBAD\r\n\r\n");
    struct resp r;
    for (int i = 0; i < 2; i++) {
        read_resp(&c, false, &r);
        expect_hello(&r, "before the bad request");
        resp_free(&r);
    }
    read_resp(&c, false, &r);
    assert_int_equal(r.status, 400);
    resp_free(&r);
    expect_eof(&c, "after the bad request");
    client_close(&c);

    /* still serving */
    client_open(&c, s.port);
    roundtrip(&c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    expect_hello(&r, "after the errors");
    resp_free(&r);
    client_close(&c);
    stop_server(&s, SIGTERM);
}

static void test_http_idle_timeout(void **state)
{
    (void)state;
    struct server s;
    start_server(&s, "gort-httpd", (const char *[]){"-t", "1", NULL});
    struct client idle, partial, used;
    client_open(&idle, s.port);
    client_open(&partial, s.port);
    client_open(&used, s.port);
    send_str(partial.fd, "GET / HTTP/1.1\r\nHost:");
    struct resp r;
    roundtrip(&used, "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    expect_hello(&r, "before going idle");
    resp_free(&r);
    /* each is closed by the server within the socket's 10 s receive timeout */
    expect_eof(&idle, "a connection that never sent anything");
    expect_eof(&partial, "a connection stalled in a request");
    expect_eof(&used, "a connection idle after a request");
    client_close(&idle);
    client_close(&partial);
    client_close(&used);
    stop_server(&s, SIGTERM);

    struct server e;
    start_server(&e, "gort-echo", (const char *[]){"-t", "1", NULL});
    struct client ec;
    client_open(&ec, e.port);
    char b;
    send_str(ec.fd, "e");
    assert_int_equal(recv(ec.fd, &b, 1, 0), 1);
    expect_eof(&ec, "an idle echo connection");
    client_close(&ec);
    stop_server(&e, SIGTERM);
}

static void test_shutdown_with_open_connections(void **state)
{
    (void)state;
    static const char *progs[] = {"gort-httpd", "gort-echo"};
    for (int k = 0; k < 2; k++) {
        struct server s;
        start_server(&s, progs[k], NULL);
        struct client c[4];
        for (int i = 0; i < 4; i++)
            client_open(&c[i], s.port);
        for (int i = 0; i < 4; i++) { /* a round trip each: all four are accepted */
            if (k == 0) {
                struct resp r;
                roundtrip(&c[i], "GET / HTTP/1.1\r\nHost: x\r\n\r\n", &r);
                expect_hello(&r, "before shutdown");
                resp_free(&r);
            } else {
                char b;
                send_str(c[i].fd, "x");
                assert_int_equal(recv(c[i].fd, &b, 1, 0), 1);
            }
        }
        if (k == 0) send_str(c[1].fd, "GET / HTTP/1.1\r\n"); /* one mid-request */
        stop_server(&s, k ? SIGINT : SIGTERM);
        for (int i = 0; i < 4; i++) {
            expect_eof(&c[i], "a connection open at shutdown");
            client_close(&c[i]);
        }
        assert_non_null(strstr(s.err, "4 connections"));
        assert_null(strstr(s.err, "still open"));
    }
}

/* ---- gort-httpd: files -------------------------------------------------------------------- */

static char tmp_top[256]; /* holds root/ and secret.txt, outside root */
static char tmp_root[300];

static void write_file(const char *rel, const char *data, size_t len)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tmp_top, rel);
    int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, data, len), (ssize_t)len);
    close(fd);
}

static void make_dir(const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tmp_top, rel);
    assert_int_equal(mkdir(p, 0755), 0);
}

static void make_link(const char *target, const char *rel)
{
    char p[PATH_MAX];
    snprintf(p, sizeof p, "%s/%s", tmp_top, rel);
    assert_int_equal(symlink(target, p), 0);
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(p);
}

static char big_file[300 * 1024 + 7];

static int files_setup(void **state)
{
    (void)state;
    snprintf(tmp_top, sizeof tmp_top, "/tmp/gort-httpd-test-XXXXXX");
    if (!mkdtemp(tmp_top)) return -1;
    snprintf(tmp_root, sizeof tmp_root, "%s/root", tmp_top);
    return 0;
}

static int files_teardown(void **state)
{
    kill_servers(state);
    if (tmp_top[0]) nftw(tmp_top, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    return 0;
}

static void expect_file(struct client *c, const char *path, const char *body, size_t len,
                        const char *type)
{
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path);
    struct resp r;
    roundtrip(c, req, &r);
    if (r.status != 200 || r.body_len != len || memcmp(r.body, body, len) != 0)
        fail_msg("GET %s: status %d, %zu bytes (want 200, %zu bytes)", path, r.status, r.body_len,
                 len);
    if (type) assert_string_equal(r.content_type, type);
    resp_free(&r);
}

static void expect_status(struct client *c, const char *method, const char *path, int status)
{
    char req[512];
    snprintf(req, sizeof req, "%s %s HTTP/1.1\r\nHost: x\r\n\r\n", method, path);
    struct resp r;
    roundtrip(c, req, &r);
    if (r.status != status) fail_msg("%s %s: status %d, want %d", method, path, r.status, status);
    if (strstr(r.body, "SECRET")) fail_msg("%s %s: leaked the file outside the root", method, path);
    assert_string_equal(r.connection, ""); /* these keep the connection */
    resp_free(&r);
}

static void test_http_files(void **state)
{
    (void)state;
    make_dir("root");
    make_dir("root/sub");
    make_dir("root/noindex");
    write_file("secret.txt", "SECRET\n", 7);
    write_file("root/index.html", "<h1>hi</h1>\n", 12);
    write_file("root/a.txt", "hello file\n", 11);
    write_file("root/sub/b.json", "{\"b\":1}", 7);
    write_file("root/sub/index.html", "sub index", 9);
    write_file("root/empty", "", 0);
    write_file("root/sp ace.txt", "space", 5);
    for (size_t i = 0; i < sizeof big_file; i++)
        big_file[i] = (char)('a' + i * 7 % 26);
    write_file("root/big.bin", big_file, sizeof big_file);
    make_link("a.txt", "root/link_in");
    make_link("../secret.txt", "root/link_out");
    make_link("sub/../../secret.txt", "root/link_out2");
    char abs[PATH_MAX + 16];
    snprintf(abs, sizeof abs, "%s/secret.txt", tmp_top);
    make_link(abs, "root/link_abs");
    make_link("..", "root/up");
    char fifo[PATH_MAX + 16];
    snprintf(fifo, sizeof fifo, "%s/root/fifo", tmp_top);
    assert_int_equal(mkfifo(fifo, 0644), 0);

    struct server s;
    start_server(&s, "gort-httpd", (const char *[]){"-d", tmp_root, NULL});
    struct client c;
    client_open(&c, s.port);
    expect_file(&c, "/", "<h1>hi</h1>\n", 12, "text/html; charset=utf-8");
    expect_file(&c, "/index.html", "<h1>hi</h1>\n", 12, NULL);
    expect_file(&c, "/a.txt", "hello file\n", 11, "text/plain; charset=utf-8");
    expect_file(&c, "/a.txt?v=2#x", "hello file\n", 11, NULL);
    expect_file(&c, "//./a.txt", "hello file\n", 11, NULL);
    expect_file(&c, "/%61.txt", "hello file\n", 11, NULL);
    expect_file(&c, "/sp%20ace.txt", "space", 5, NULL);
    expect_file(&c, "/sub/b.json", "{\"b\":1}", 7, "application/json");
    expect_file(&c, "/sub/", "sub index", 9, NULL);
    expect_file(&c, "/empty", "", 0, "application/octet-stream");
    expect_file(&c, "/big.bin", big_file, sizeof big_file, NULL);
    expect_file(&c, "/link_in", "hello file\n", 11, NULL);
    expect_file(&c, "http://x/a.txt", "hello file\n", 11, NULL);

    struct resp r;
    roundtrip(&c, "HEAD /big.bin HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.content_length, sizeof big_file);
    assert_int_equal(r.body_len, 0);
    resp_free(&r);
    roundtrip(&c, "GET /sub?x=1 HTTP/1.1\r\nHost: x\r\n\r\n", &r);
    assert_int_equal(r.status, 301);
    assert_string_equal(r.location, "/sub/");
    resp_free(&r);

    expect_status(&c, "GET", "/missing", 404);
    expect_status(&c, "GET", "/sub/missing.txt", 404);
    expect_status(&c, "GET", "/a.txt/x", 404);
    expect_status(&c, "GET", "/noindex/", 403);
    expect_status(&c, "GET", "/fifo", 403);
    expect_status(&c, "HEAD", "/missing", 404);
    expect_status(&c, "POST", "/a.txt", 405);
    expect_status(&c, "DELETE", "/a.txt", 405);
    /* escapes: none reaches secret.txt */
    expect_status(&c, "GET", "/../secret.txt", 403);
    expect_status(&c, "GET", "/sub/../../secret.txt", 403);
    expect_status(&c, "GET", "/%2e%2e/secret.txt", 403);
    expect_status(&c, "GET", "/%2E%2E%2Fsecret.txt", 403);
    expect_status(&c, "GET", "/sub/..%2f..%2fsecret.txt", 403);
    expect_status(&c, "GET", "/.%2e/secret.txt", 403);
    expect_status(&c, "GET", "/link_out", 403);
    expect_status(&c, "GET", "/link_out2", 403);
    expect_status(&c, "GET", "/link_abs", 403);
    expect_status(&c, "GET", "/up/secret.txt", 403);
    expect_status(&c, "GET", "/up/root/a.txt", 403);
    expect_status(&c, "GET", "http://x/../secret.txt", 403);
    expect_status(&c, "GET", "/a%00.txt", 400);
    expect_status(&c, "GET", "/a%zz", 400);

    /* pipelined, the big file in the middle; then HEAD; all in one write */
    send_str(c.fd, "GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /missing HTTP/1.1\r\nHost: x\r\n\r\n"
                   "HEAD /a.txt HTTP/1.1\r\nHost: x\r\n\r\n"
                   "GET /sub/b.json HTTP/1.1\r\nHost: x\r\n\r\n");
    read_resp(&c, false, &r);
    assert_string_equal(r.body, "hello file\n");
    resp_free(&r);
    read_resp(&c, false, &r);
    assert_int_equal(r.body_len, sizeof big_file);
    assert_memory_equal(r.body, big_file, sizeof big_file);
    resp_free(&r);
    read_resp(&c, false, &r);
    assert_int_equal(r.status, 404);
    resp_free(&r);
    read_resp(&c, true, &r);
    assert_int_equal(r.content_length, 11);
    resp_free(&r);
    read_resp(&c, false, &r);
    assert_string_equal(r.body, "{\"b\":1}");
    resp_free(&r);
    client_close(&c);
    stop_server(&s, SIGTERM);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    char self[PATH_MAX - 128];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    for (int i = 0; i < 2; i++) { /* BUILD/tests/test_servers_http -> BUILD */
        char *slash = strrchr(self, '/');
        if (!slash) return -1;
        *slash = 0;
    }
    snprintf(bin_dir, sizeof bin_dir, "%s/bin", self);
    static const char *progs[] = {"gort-echo", "gort-httpd"};
    for (int i = 0; i < 2; i++) {
        char p[PATH_MAX];
        prog_path(progs[i], p);
        if (access(p, X_OK) != 0) {
            print_error("%s: not found or not executable (build with make)\n", p);
            return -1;
        }
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_arguments, kill_servers),
        cmocka_unit_test_teardown(test_echo_large, kill_servers),
        cmocka_unit_test_teardown(test_echo_many_clients, kill_servers),
        cmocka_unit_test_teardown(test_http_hello, kill_servers),
        cmocka_unit_test_teardown(test_http_keep_alive_and_close, kill_servers),
        cmocka_unit_test_teardown(test_http_pipelining, kill_servers),
        cmocka_unit_test_teardown(test_http_errors, kill_servers),
        cmocka_unit_test_teardown(test_http_idle_timeout, kill_servers),
        cmocka_unit_test_teardown(test_shutdown_with_open_connections, kill_servers),
        cmocka_unit_test_setup_teardown(test_http_files, files_setup, files_teardown),
    };
    return cmocka_run_group_tests(tests, group_setup, NULL);
}

/* tests/test_servers_kvd.c: gort-kvd (build/bin/gort-kvd, found next to
 * this program's directory: build/tests/.. /bin) as a real server, driven
 * over loopback with plain blocking sockets.
 *
 * One server (started on port 0; the port is read from its "listening on"
 * line) serves most tests; each test uses its own key prefix, and only the
 * command tour flushes. Covered: every command and its errors, 1000 commands
 * pipelined in one write, a value of 4 MiB, expiry (lazy and by the
 * background goroutine: PX 50, then polled until gone, bounded), every
 * protocol error (reply, then the connection is closed), oversized and
 * unterminated input, 64 concurrent clients plus 200 connections open at
 * once, clean exit 0 on SIGTERM and SIGINT with clients connected, the
 * command line (--help, bad arguments, port in use), the epoll poller
 * (GORT_POLLER=epoll), and redis-cli / redis-benchmark when installed
 * (skipped otherwise).
 *
 * Every wait is bounded (socket timeouts of 10 s, polls up to 15 s); nothing
 * asserts timing. Not a gort program: the client side is plain threads.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <cmocka.h>

#include "gort_test.h"

#define IO_TIMEOUT_S 10

/* ---- the server process ------------------------------------------------------------- */

struct server {
    pid_t pid;
    int port;
    int errfd; /* its stderr (and stdout) */
};

static struct server main_srv;
static char kvd_bin[PATH_MAX];

/* build/tests/test_servers_kvd -> build/bin/gort-kvd (also build-asan) */
static int find_kvd(void)
{
    char self[PATH_MAX - 32];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(self, '/');
        if (!slash) return -1;
        *slash = 0;
    }
    snprintf(kvd_bin, sizeof kvd_bin, "%s/bin/gort-kvd", self);
    if (access(kvd_bin, X_OK) != 0) {
        print_error("%s not found or not executable (build with make)\n", kvd_bin);
        return -1;
    }
    return 0;
}

/* Start gort-kvd -p 0 with env overrides ("NAME=VALUE", NULL-terminated, may
 * be NULL); false (and a message) when it did not come up within 10 s. */
static bool server_start(struct server *s, const char *const *env)
{
    memset(s, 0, sizeof *s);
    s->pid = -1;
    s->errfd = -1;
    int pe[2];
    if (pipe2(pe, O_CLOEXEC) != 0) return false;
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    char *argv[] = {kvd_bin, "-p", "0", NULL};
    char **envp = environ_with(env);
    int rc = envp ? posix_spawn(&s->pid, kvd_bin, &fa, &attr, argv, envp) : ENOMEM;
    free(envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(pe[1]);
    if (rc != 0) {
        close(pe[0]);
        print_error("spawning %s: %s\n", kvd_bin, strerror(rc));
        return false;
    }
    s->errfd = pe[0];
    char buf[512];
    size_t len = 0;
    int64_t deadline = now_ms() + 10000;
    while (len < sizeof buf - 1) {
        struct pollfd p = {.fd = s->errfd, .events = POLLIN};
        int left = (int)(deadline - now_ms());
        if (left <= 0 || poll(&p, 1, left) <= 0) break;
        ssize_t n = read(s->errfd, buf + len, 1); /* a byte at a time: stop at the line */
        if (n <= 0) break;
        len += (size_t)n;
        buf[len] = 0;
        if (buf[len - 1] == '\n') {
            const char *l = strstr(buf, "listening on ");
            const char *colon = l ? strrchr(l, ':') : NULL;
            if (colon) {
                s->port = atoi(colon + 1);
                return s->port > 0;
            }
        }
    }
    buf[len] = 0;
    print_error("gort-kvd did not say it is listening; it wrote: %s\n", buf);
    kill(s->pid, SIGKILL);
    int st;
    waitpid_bounded(s->pid, now_ms() + 10000, &st);
    close(s->errfd);
    s->pid = -1;
    return false;
}

/* Send sig and wait (bounded) for the exit: its wait status, or -1 when it
 * had to be killed. */
static int server_stop(struct server *s, int sig)
{
    if (s->pid <= 0) return -1;
    kill(s->pid, sig);
    int st = 0;
    int ended = waitpid_bounded(s->pid, now_ms() + 15000, &st);
    close(s->errfd);
    s->pid = -1;
    return ended == 1 ? st : -1;
}

/* ---- a client --------------------------------------------------------------------- */

/* No cmocka assertion in these: they also run on client threads. */
static int cl_open(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct timeval tv = {IO_TIMEOUT_S, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static bool cl_send(int fd, const void *p, size_t n)
{
    const char *b = p;
    while (n) {
        ssize_t w = send(fd, b, n, MSG_NOSIGNAL);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return false;
        b += w;
        n -= (size_t)w;
    }
    return true;
}

/* Read exactly n bytes into buf; the count read (short at EOF, error or
 * timeout). */
static size_t cl_read(int fd, char *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    return got;
}

/* Did the server close the connection (EOF or reset, within the timeout)? */
static bool cl_closed(int fd)
{
    char b;
    for (;;) {
        ssize_t r = recv(fd, &b, 1, 0);
        if (r < 0 && errno == EINTR) continue;
        return r == 0 || (r < 0 && errno == ECONNRESET);
    }
}

/* Read exactly the n bytes of want, and fail the test showing both unless
 * they match. */
static void expect_n(int fd, const char *what, const char *want, size_t n)
{
    char *got = malloc(n + 1);
    assert_non_null(got);
    size_t g = cl_read(fd, got, n);
    got[g] = 0;
    if (g != n || memcmp(got, want, n) != 0) {
        print_error("after %.200s\nwant (%zu bytes): %.500s\ngot  (%zu bytes): %.500s\n", what, n,
                    want, g, got);
        free(got);
        fail();
    }
    free(got);
}

static void roundtrip_n(int fd, const char *req, size_t rn, const char *want, size_t wn)
{
    assert_true(cl_send(fd, req, rn));
    expect_n(fd, req, want, wn);
}
#define ROUNDTRIP(fd, req, want) roundtrip_n((fd), (req), strlen(req), (want), strlen(want))
/* literals that hold NUL bytes */
#define ROUNDTRIP_BIN(fd, req, want) \
    roundtrip_n((fd), (req), sizeof(req) - 1, (want), sizeof(want) - 1)

/* ---- tests ------------------------------------------------------------------------- */

static void test_commands(void **state)
{
    (void)state;
    int fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    ROUNDTRIP(fd, "FLUSHALL\r\n", "+OK\r\n");
    ROUNDTRIP(fd, "*1\r\n$4\r\nPING\r\n", "+PONG\r\n");
    ROUNDTRIP(fd, "PING hello\r\n", "$5\r\nhello\r\n");
    ROUNDTRIP(fd, "ECHO \"two words\"\r\n", "$9\r\ntwo words\r\n");
    ROUNDTRIP_BIN(fd, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nv\r\nx\0\r\n", "+OK\r\n");
    ROUNDTRIP_BIN(fd, "GET k\r\n", "$5\r\nv\r\nx\0\r\n");
    ROUNDTRIP(fd, "GET nokey\r\n", "$-1\r\n");
    ROUNDTRIP(fd, "SET k v NX\r\n", "$-1\r\n");
    ROUNDTRIP(fd, "SET k2 v XX\r\n", "$-1\r\n");
    ROUNDTRIP_BIN(fd, "SET k w XX GET\r\n", "$5\r\nv\r\nx\0\r\n");
    ROUNDTRIP(fd, "SET k v EX 100\r\n", "+OK\r\n");
    ROUNDTRIP(fd, "TTL k\r\n", ":100\r\n");
    ROUNDTRIP(fd, "SET k v PX 0\r\n", "-ERR invalid expire time in 'set' command\r\n");
    ROUNDTRIP(fd, "SET k v EX x\r\n", "-ERR value is not an integer or out of range\r\n");
    ROUNDTRIP(fd, "SET k v NX XX\r\n", "-ERR syntax error\r\n");
    ROUNDTRIP(fd, "MSET a 1 b 2 c 3\r\n", "+OK\r\n");
    ROUNDTRIP(fd, "MGET a b nokey c\r\n", "*4\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n$1\r\n3\r\n");
    ROUNDTRIP(fd, "EXISTS a b nokey a\r\n", ":3\r\n");
    ROUNDTRIP(fd, "DEL a nokey b\r\n", ":2\r\n");
    ROUNDTRIP(fd, "INCR n\r\n", ":1\r\n");
    ROUNDTRIP(fd, "INCRBY n 41\r\n", ":42\r\n");
    ROUNDTRIP(fd, "DECR n\r\n", ":41\r\n");
    ROUNDTRIP(fd, "INCR k\r\n", "-ERR value is not an integer or out of range\r\n");
    ROUNDTRIP(fd, "DBSIZE\r\n", ":3\r\n");
    ROUNDTRIP(fd, "COMMAND\r\n", "*0\r\n");
    ROUNDTRIP(fd, "COMMAND DOCS\r\n", "*0\r\n");
    ROUNDTRIP(fd, "CONFIG GET save\r\n", "*2\r\n$4\r\nsave\r\n$0\r\n\r\n");
    ROUNDTRIP(fd, "SELECT 0\r\n", "+OK\r\n");
    ROUNDTRIP(fd, "get\r\n", "-ERR wrong number of arguments for 'get' command\r\n");
    ROUNDTRIP(fd, "foo bar\r\n",
              "-ERR unknown command 'foo', with args beginning with: 'bar' \r\n");
    ROUNDTRIP(fd, "FLUSHALL\r\n", "+OK\r\n");
    ROUNDTRIP(fd, "DBSIZE\r\n", ":0\r\n");
    ROUNDTRIP(fd, "QUIT\r\n", "+OK\r\n");
    assert_true(cl_closed(fd));
    close(fd);
}

/* 1000 commands in one write: the replies arrive complete and in order. */
static void run_pipeline(int port)
{
    enum { N = 1000 };
    size_t cap = N * 64, n = 0, wcap = N * 64, wn = 0;
    char *req = malloc(cap), *want = malloc(wcap);
    assert_non_null(req);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        if (i % 2 == 0) {
            n += (size_t)snprintf(req + n, cap - n, "SET pipe:%d %d\r\n", i / 2, i);
            wn += (size_t)snprintf(want + wn, wcap - wn, "+OK\r\n");
        } else {
            char v[16];
            int vl = snprintf(v, sizeof v, "%d", i - 1);
            n += (size_t)snprintf(req + n, cap - n, "*2\r\n$3\r\nGET\r\n$%d\r\npipe:%d\r\n",
                                  snprintf(NULL, 0, "pipe:%d", i / 2), i / 2);
            wn += (size_t)snprintf(want + wn, wcap - wn, "$%d\r\n%s\r\n", vl, v);
        }
    }
    int fd = cl_open(port);
    assert_true(fd >= 0);
    assert_true(cl_send(fd, req, n));
    expect_n(fd, "1000 pipelined commands", want, wn);
    close(fd);
    free(req);
    free(want);
}

static void test_pipeline_1000(void **state)
{
    (void)state;
    run_pipeline(main_srv.port);
}

/* A 4 MiB value in, out, and the server still answers small requests. */
static void test_big_value(void **state)
{
    (void)state;
    size_t vn = 4 << 20;
    char *req = malloc(vn + 128), *want = malloc(vn + 64);
    assert_non_null(req);
    assert_non_null(want);
    int h = snprintf(req, 128, "*3\r\n$3\r\nSET\r\n$7\r\nbig:val\r\n$%zu\r\n", vn);
    for (size_t i = 0; i < vn; i++)
        req[h + i] = (char)('A' + i % 23);
    memcpy(req + h + vn, "\r\n", 2);
    int fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    roundtrip_n(fd, req, (size_t)h + vn + 2, "+OK\r\n", 5);
    int wh = snprintf(want, 64, "$%zu\r\n", vn);
    memcpy(want + wh, req + h, vn);
    memcpy(want + wh + vn, "\r\n", 2);
    roundtrip_n(fd, "GET big:val\r\n", 13, want, (size_t)wh + vn + 2);
    ROUNDTRIP(fd, "DEL big:val\r\nPING\r\n", ":1\r\n+PONG\r\n");
    close(fd);
    free(req);
    free(want);
}

static int64_t dbsize(int fd)
{
    char buf[64];
    if (!cl_send(fd, "DBSIZE\r\n", 8)) return -1;
    size_t n = 0;
    while (n < sizeof buf - 1 && cl_read(fd, buf + n, 1) == 1)
        if (buf[n++] == '\n') break;
    buf[n] = 0;
    return buf[0] == ':' ? atoll(buf + 1) : -1;
}

/* PX 50: read until it is gone (lazy expiry); 200 more that nobody reads
 * must be reclaimed by the background goroutine (DBSIZE falls back). */
static void test_expiry(void **state)
{
    (void)state;
    int fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    ROUNDTRIP(fd, "SET exp:a v PX 50\r\n", "+OK\r\n");
    bool gone = false;
    for (int64_t deadline = now_ms() + 15000; !gone && now_ms() < deadline;) {
        char buf[16] = {0};
        assert_true(cl_send(fd, "GET exp:a\r\n", 11));
        assert_int_equal(cl_read(fd, buf, 5), 5);
        if (strcmp(buf, "$-1\r\n") == 0) {
            gone = true;
        } else {
            assert_string_equal(buf, "$1\r\nv");
            assert_int_equal(cl_read(fd, buf, 2), 2);
            usleep(5000);
        }
    }
    assert_true(gone);
    ROUNDTRIP(fd, "EXISTS exp:a\r\n", ":0\r\n");

    int64_t base = dbsize(fd);
    assert_true(base >= 0);
    char cmd[64];
    for (int i = 0; i < 200; i++) {
        snprintf(cmd, sizeof cmd, "SET exp:b%d v PX 50\r\n", i);
        ROUNDTRIP(fd, cmd, "+OK\r\n");
    }
    assert_int_equal(dbsize(fd), base + 200);
    int64_t n = base + 200;
    for (int64_t deadline = now_ms() + 15000; n != base && now_ms() < deadline;) {
        usleep(20000);
        n = dbsize(fd);
    }
    assert_int_equal(n, base);
    close(fd);
}

/* Each malformed request on a fresh connection: a command before it is
 * answered, then the error, then the server closes the connection. */
static void test_protocol_errors(void **state)
{
    (void)state;
    static const struct {
        const char *req;
        const char *reply;
    } cases[] = {
        {"*abc\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
        {"*3000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n"},
        {"*1\r\nxyz\r\n", "-ERR Protocol error: expected '$', got 'x'\r\n"},
        {"*1\r\n$x\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"*1\r\n$-5\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n"},
        {"SET a \"b\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int fd = cl_open(main_srv.port);
        assert_true(fd >= 0);
        char req[128], want[128];
        snprintf(req, sizeof req, "PING\r\n%sPING\r\n", cases[i].req);
        snprintf(want, sizeof want, "+PONG\r\n%s", cases[i].reply);
        ROUNDTRIP(fd, req, want);
        if (!cl_closed(fd)) fail_msg("connection left open after %s", cases[i].req);
        close(fd);
    }
}

/* Requests that never end: refused once past 64 KiB, connection closed. */
static void test_unterminated_input(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        const char *reply;
    } cases[] = {
        {"GET ", "-ERR Protocol error: too big inline request\r\n"},
        {"*", "-ERR Protocol error: too big mbulk count string\r\n"},
        {"*2\r\n$3\r\nGET\r\n$", "-ERR Protocol error: too big bulk count string\r\n"},
    };
    size_t n = 100 * 1024;
    char *junk = malloc(n);
    assert_non_null(junk);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t pn = strlen(cases[i].prefix);
        memcpy(junk, cases[i].prefix, pn);
        memset(junk + pn, '7', n - pn);
        int fd = cl_open(main_srv.port);
        assert_true(fd >= 0);
        cl_send(fd, junk, n); /* may fail part way: the server closes once it has seen enough */
        expect_n(fd, cases[i].prefix, cases[i].reply, strlen(cases[i].reply));
        assert_true(cl_closed(fd));
        close(fd);
    }
    free(junk);
    /* a command cut short by the client going away harms nobody */
    int fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    assert_true(cl_send(fd, "*2\r\n$3\r\nGET\r\n$100000\r\nabc", 26));
    close(fd);
    fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    ROUNDTRIP(fd, "PING\r\n", "+PONG\r\n");
    close(fd);
}

/* ---- many clients -------------------------------------------------------------------- */

enum { CLIENTS = 64, ROUNDS = 100 };

struct client_arg {
    int id, port;
    int errors;
};

static void *client_thread(void *p)
{
    struct client_arg *a = p;
    int fd = cl_open(a->port);
    if (fd < 0) {
        a->errors++;
        return NULL;
    }
    char req[256], want[256], got[256];
    for (int i = 0; i < ROUNDS && !a->errors; i++) {
        int rn = snprintf(req, sizeof req, "INCR many:ctr\r\nSET many:%d %d\r\nGET many:%d\r\n",
                          a->id, i, a->id);
        int vl = snprintf(NULL, 0, "%d", i);
        int wn = snprintf(want, sizeof want, "+OK\r\n$%d\r\n%d\r\n", vl, i);
        if (!cl_send(fd, req, (size_t)rn)) {
            a->errors++;
            break;
        }
        /* ":N\r\n" with N unknown (others increment too), then the rest */
        size_t n = 0;
        while (n < sizeof got - 1 && cl_read(fd, got + n, 1) == 1)
            if (got[n++] == '\n') break;
        if (n < 4 || got[0] != ':') a->errors++;
        if (cl_read(fd, got, (size_t)wn) != (size_t)wn || memcmp(got, want, (size_t)wn) != 0)
            a->errors++;
    }
    close(fd);
    return NULL;
}

static void test_many_clients(void **state)
{
    (void)state;
    /* 200 connections open at once, each answered */
    enum { IDLE = 200 };
    int fds[IDLE];
    for (int i = 0; i < IDLE; i++) {
        fds[i] = cl_open(main_srv.port);
        assert_true(fds[i] >= 0);
    }
    for (int i = IDLE - 1; i >= 0; i--)
        ROUNDTRIP(fds[i], "PING\r\n", "+PONG\r\n");
    /* 64 clients at work meanwhile */
    pthread_t th[CLIENTS];
    struct client_arg args[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        args[i] = (struct client_arg){i, main_srv.port, 0};
        assert_int_equal(pthread_create(&th[i], NULL, client_thread, &args[i]), 0);
    }
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(th[i], NULL);
        if (args[i].errors) fail_msg("client %d saw %d wrong replies", i, args[i].errors);
    }
    for (int i = 0; i < IDLE; i++)
        close(fds[i]);
    int fd = cl_open(main_srv.port);
    assert_true(fd >= 0);
    char want[32];
    snprintf(want, sizeof want, "$4\r\n%d\r\n", CLIENTS * ROUNDS);
    ROUNDTRIP(fd, "GET many:ctr\r\n", want);
    close(fd);
}

/* ---- process behaviour ------------------------------------------------------------- */

static void check_clean_exit(int sig, const char *const *env)
{
    struct server s;
    assert_true(server_start(&s, env));
    int idle = cl_open(s.port), busy = cl_open(s.port);
    assert_true(idle >= 0 && busy >= 0);
    ROUNDTRIP(busy, "SET x 1\r\nGET x\r\n", "+OK\r\n$1\r\n1\r\n");
    assert_true(cl_send(busy, "*3\r\n$3\r\nSET\r\n", 13)); /* a command in progress */
    int st = server_stop(&s, sig);
    if (st < 0) fail_msg("gort-kvd did not exit after signal %d (killed)", sig);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("gort-kvd after signal %d: %s %d, want exit status 0", sig,
                 WIFEXITED(st) ? "exit status" : "killed by signal",
                 WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
    close(idle);
    close(busy);
}

static void test_sigterm_exits_0(void **state)
{
    (void)state;
    check_clean_exit(SIGTERM, NULL);
}

static void test_sigint_exits_0(void **state)
{
    (void)state;
    check_clean_exit(SIGINT, NULL);
}

/* The same server on the epoll fallback poller. */
static void test_epoll_poller(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_POLLER=epoll", NULL};
    struct server s;
    assert_true(server_start(&s, env));
    run_pipeline(s.port);
    int fd = cl_open(s.port);
    assert_true(fd >= 0);
    ROUNDTRIP(fd, "PING\r\n*1\r\nx\r\n", "+PONG\r\n-ERR Protocol error: expected '$', got 'x'\r\n");
    assert_true(cl_closed(fd));
    close(fd);
    int st = server_stop(&s, SIGTERM);
    assert_true(st >= 0 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

static void test_command_line(void **state)
{
    (void)state;
    struct run r;
    char *help[] = {kvd_bin, "--help", NULL};
    run_prog(kvd_bin, help, NULL, 10000, &r);
    CHECK(&r, "--help", exited_with(&r, 0) && has(r.out, "usage: gort-kvd"));
    run_free(&r);
    char *h[] = {kvd_bin, "-h", NULL};
    run_prog(kvd_bin, h, NULL, 10000, &r);
    CHECK(&r, "-h", exited_with(&r, 0) && has(r.out, "usage: gort-kvd"));
    run_free(&r);
    static const struct {
        const char *a1, *a2, *msg;
    } bad[] = {
        {"-p", "abc", "invalid port 'abc'"}, {"-p", "70000", "invalid port '70000'"},
        {"-p", "", "invalid port ''"},       {"-x", NULL, "unknown option '-x'"},
        {"-p", NULL, "needs an argument"},   {"extra", NULL, "unexpected argument 'extra'"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char *argv[] = {kvd_bin, (char *)bad[i].a1, (char *)bad[i].a2, NULL};
        run_prog(kvd_bin, argv, NULL, 10000, &r);
        CHECK(&r, bad[i].a1, exited_with(&r, 2) && has(r.err, bad[i].msg));
        run_free(&r);
    }
    /* the port of the running server is taken */
    char port[16];
    snprintf(port, sizeof port, "%d", main_srv.port);
    char *busy[] = {kvd_bin, "-p", port, NULL};
    run_prog(kvd_bin, busy, NULL, 10000, &r);
    CHECK(&r, "port in use", exited_with(&r, 1) && has(r.err, "Address already in use"));
    run_free(&r);
}

/* Where is program name on PATH? false when it is not installed. */
static bool on_path(const char *name, char out[PATH_MAX])
{
    const char *path = getenv("PATH");
    if (!path) path = "/usr/bin:/bin";
    while (*path) {
        const char *end = strchr(path, ':');
        size_t n = end ? (size_t)(end - path) : strlen(path);
        if (n && n < PATH_MAX - 64) {
            snprintf(out, PATH_MAX, "%.*s/%s", (int)n, path, name);
            if (access(out, X_OK) == 0) return true;
        }
        path += n + (end ? 1 : 0);
    }
    return false;
}

static void test_redis_cli(void **state)
{
    (void)state;
    char cli[PATH_MAX];
    if (!on_path("redis-cli", cli)) {
        print_message("redis-cli not installed (apt-get install redis-tools): skipped\n");
        skip();
    }
    char port[16];
    snprintf(port, sizeof port, "%d", main_srv.port);
    struct run r;
    char *set[] = {cli, "-p", port, "set", "cli:k", "hello world", NULL};
    run_prog(cli, set, NULL, 10000, &r);
    CHECK(&r, "redis-cli set", exited_with(&r, 0) && strcmp(r.out, "OK\n") == 0);
    run_free(&r);
    char *get[] = {cli, "-p", port, "get", "cli:k", NULL};
    run_prog(cli, get, NULL, 10000, &r);
    CHECK(&r, "redis-cli get", exited_with(&r, 0) && strcmp(r.out, "hello world\n") == 0);
    run_free(&r);
    char *incr[] = {cli, "-p", port, "incr", "cli:n", NULL};
    run_prog(cli, incr, NULL, 10000, &r);
    CHECK(&r, "redis-cli incr", exited_with(&r, 0) && strcmp(r.out, "1\n") == 0);
    run_free(&r);
}

static void test_redis_benchmark(void **state)
{
    (void)state;
    char bench[PATH_MAX];
    if (!on_path("redis-benchmark", bench)) {
        print_message("redis-benchmark not installed (apt-get install redis-tools): skipped\n");
        skip();
    }
    char port[16];
    snprintf(port, sizeof port, "%d", main_srv.port);
    struct run r;
    char *argv[] = {bench, "-p", port, "-t", "set,get", "-n", "2000",
                    "-c",  "8",  "-P", "4",  "-q",      NULL};
    run_prog(bench, argv, NULL, 60000, &r);
    CHECK(&r, "redis-benchmark",
          exited_with(&r, 0) && has(r.out, "SET: ") && has(r.out, "GET: ") &&
              !has(r.err, "WARNING"));
    run_free(&r);
}

static int group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN);
    if (find_kvd() != 0) return -1;
    return server_start(&main_srv, NULL) ? 0 : -1;
}

static int group_teardown(void **state)
{
    (void)state;
    int st = server_stop(&main_srv, SIGTERM);
    if (st < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
        print_error("gort-kvd did not exit 0 on SIGTERM (wait status %d)\n", st);
        return -1;
    }
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),        cmocka_unit_test(test_pipeline_1000),
        cmocka_unit_test(test_big_value),       cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_protocol_errors), cmocka_unit_test(test_unterminated_input),
        cmocka_unit_test(test_many_clients),    cmocka_unit_test(test_redis_cli),
        cmocka_unit_test(test_redis_benchmark), cmocka_unit_test(test_command_line),
        cmocka_unit_test(test_epoll_poller),    cmocka_unit_test(test_sigterm_exits_0),
        cmocka_unit_test(test_sigint_exits_0),
    };
    const char *filter = getenv("TEST_FILTER");
    if (filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}

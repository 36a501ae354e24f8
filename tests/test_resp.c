/* tests/test_resp.c: gort-kvd's RESP2 parser, store and commands
 * (tools/kvd/resp.c, store.c, cmd.c, compiled in here), without sockets.
 *
 * Bytes are fed to a resp_conn the way main.c's connection loop does
 * (resp_read_room, append, kvd_process until it stops asking for a flush,
 * take the replies, resp_shrink), in one piece and again split into 1- and
 * 7-byte reads: the replies must be the same bytes every time, which checks
 * that the parser resumes correctly at every possible split point.
 *
 * Expected replies were taken from redis-server 7.0 for the same input
 * (error words, nil forms, integer parsing), except where gort-kvd differs
 * on purpose (one database; multibulk counts over 1M are refused).
 *
 * Harness: the cmocka run is the main goroutine, wired to its thread (cmocka
 * keeps its state in __thread variables). No timing assertions: expiry is
 * polled with a generous bound.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../tools/kvd/resp.c"
#include "../tools/kvd/store.c"
#include "../tools/kvd/cmd.c"

#include "gort_test.h"

static kv_store *S;

/* ---- feeding bytes ---------------------------------------------------------------- */

typedef struct out {
    char *p;
    size_t n, cap;
} out_t;

static void take(resp_conn *c, out_t *o)
{
    if (o->n + c->wlen + 1 > o->cap) {
        o->cap = (o->n + c->wlen + 1) * 2;
        o->p = realloc(o->p, o->cap);
        assert_non_null(o->p);
    }
    memcpy(o->p + o->n, c->wbuf, c->wlen);
    o->n += c->wlen;
    o->p[o->n] = 0;
    c->wlen = 0;
}

/* Feed data[0..n) to c in reads of at most chunk bytes, as main.c's loop
 * does; replies go to o. Returns the last kvd_process status, or -1 when
 * resp_read_room refused (query limit). */
static int feed(resp_conn *c, const char *data, size_t n, size_t chunk, out_t *o)
{
    size_t off = 0;
    int r = KVD_MORE;
    while (off < n) {
        size_t room = resp_read_room(c);
        if (!room) return -1;
        size_t k = n - off;
        if (k > chunk) k = chunk;
        if (k > room) k = room;
        memcpy(c->rbuf + c->rend, data + off, k);
        c->rend += k;
        off += k;
        while ((r = kvd_process(c, S)) == KVD_FLUSH)
            take(c, o);
        take(c, o);
        if (r == KVD_CLOSE) return r;
        resp_shrink(c);
    }
    return r;
}

/* Run input on a fresh connection (and an empty store) in one read, then in
 * 1- and 7-byte reads; each time the replies must be exactly want and the
 * connection closed (after a protocol error or QUIT) iff closes. */
static void expect_n(const char *input, size_t n, const char *want, size_t wn, bool closes)
{
    static const size_t chunks[] = {SIZE_MAX, 1, 7};
    for (size_t i = 0; i < sizeof chunks / sizeof chunks[0]; i++) {
        kv_flush(S);
        resp_conn c;
        resp_init(&c);
        out_t o = {0};
        int r = feed(&c, input, n, chunks[i], &o);
        if (o.n != wn || memcmp(o.p ? o.p : "", want, wn) != 0 || (r == KVD_CLOSE) != closes) {
            print_error("input (%zu-byte reads): %.300s\nwant (close %d): %.600s\ngot  (close %d): "
                        "%.600s\n",
                        chunks[i], input, closes, want, r == KVD_CLOSE, o.p ? o.p : "");
            fail();
        }
        free(o.p);
        resp_destroy(&c);
    }
}
#define EXPECT(in, want)       expect_n((in), sizeof(in) - 1, (want), sizeof(want) - 1, false)
#define EXPECT_CLOSE(in, want) expect_n((in), sizeof(in) - 1, (want), sizeof(want) - 1, true)

/* ---- parser ------------------------------------------------------------------------- */

static void test_str2ll(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        bool ok;
        long long v;
    } cases[] = {
        {"0", true, 0},
        {"1", true, 1},
        {"-1", true, -1},
        {"123456789", true, 123456789},
        {"9223372036854775807", true, INT64_MAX},
        {"-9223372036854775808", true, INT64_MIN},
        {"9223372036854775808", false, 0},
        {"-9223372036854775809", false, 0},
        {"18446744073709551616", false, 0},
        {"", false, 0},
        {"-", false, 0},
        {"-0", false, 0},
        {"01", false, 0},
        {"+1", false, 0},
        {" 1", false, 0},
        {"1 ", false, 0},
        {"1a", false, 0},
        {"000000000000000000001", false, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        long long v = 42;
        bool ok = resp_str2ll(cases[i].s, strlen(cases[i].s), &v);
        if (ok != cases[i].ok || (ok && v != cases[i].v))
            fail_msg("str2ll(\"%s\"): ok %d v %lld", cases[i].s, ok, v);
    }
}

/* Parse one command from input[0..n); argv must be the NULL-terminated want
 * (lens: their lengths, NULL for strlen). */
static void expect_argv_n(const char *input, size_t n, const char *const *want, const size_t *lens)
{
    resp_conn c;
    resp_init(&c);
    size_t room = resp_read_room(&c);
    assert_true(room >= n);
    memcpy(c.rbuf, input, n);
    c.rend = n;
    assert_int_equal(resp_next(&c), RESP_CMD);
    size_t k = 0;
    while (want[k])
        k++;
    assert_int_equal(c.argc, k);
    for (size_t i = 0; i < k; i++) {
        size_t len = lens ? lens[i] : strlen(want[i]);
        if (c.argv[i].len != len || memcmp(c.argv[i].p, want[i], len) != 0)
            fail_msg("%s: argument %zu is '%.*s', want '%s'", input, i, (int)c.argv[i].len,
                     c.argv[i].p, want[i]);
    }
    resp_destroy(&c);
}
#define expect_argv(in, ...) expect_argv_n((in), sizeof(in) - 1, __VA_ARGS__)

static void test_inline_split(void **state)
{
    (void)state;
    expect_argv("set a b\r\n", (const char *[]){"set", "a", "b", NULL}, NULL);
    expect_argv("  set   a\tb  \n", (const char *[]){"set", "a", "b", NULL}, NULL);
    expect_argv("set \"a b\" 'c d'\r\n", (const char *[]){"set", "a b", "c d", NULL}, NULL);
    expect_argv("set \"\\x41\\x4g\\n\\r\\t\\b\\a\\\\\\\"\" x\r\n",
                (const char *[]){"set", "Ax4g\n\r\t\b\a\\\"", "x", NULL}, NULL);
    expect_argv("set 'it\\'s' '\\n'\r\n", (const char *[]){"set", "it's", "\\n", NULL}, NULL);
    expect_argv("set a\"b c\" d\r\n", (const char *[]){"set", "ab c", "d", NULL}, NULL);
    expect_argv("echo \"\"\r\n", (const char *[]){"echo", "", NULL}, (const size_t[]){4, 0});
}

static void test_multibulk_argv(void **state)
{
    (void)state;
    expect_argv("*3\r\n$3\r\nSET\r\n$5\r\na\r\nb\0\r\n$0\r\n\r\n",
                (const char *[]){"SET", "a\r\nb", "", NULL}, (const size_t[]){3, 5, 0});
}

static void test_inline_and_empty(void **state)
{
    (void)state;
    EXPECT("PING\r\nping hello\r\nPING a b\r\n",
           "+PONG\r\n$5\r\nhello\r\n-ERR wrong number of arguments for 'ping' command\r\n");
    EXPECT("\r\n\r\n\n  \r\n*0\r\n*-1\r\nPING\r\n", "+PONG\r\n");
    EXPECT("PING\nPING\n", "+PONG\r\n+PONG\r\n");
    EXPECT("set q \"a\\x41\\x4g\\t\\\\b\"\r\nget q\r\n", "+OK\r\n$8\r\naAx4g\t\\b\r\n");
    EXPECT("set q 'it\\'s'\r\nget q\r\n", "+OK\r\n$4\r\nit's\r\n");
    EXPECT("set q a\"b c\"\r\nget q\r\n", "+OK\r\n$4\r\nab c\r\n");
    /* a NUL ends an inline line, as in redis (which reads it as a C string) */
    EXPECT("echo a\0b c\r\nPING\r\n", "$1\r\na\r\n+PONG\r\n");
}

static void test_protocol_errors(void **state)
{
    (void)state;
    EXPECT_CLOSE("PING\r\n*abc\r\nPING\r\n",
                 "+PONG\r\n-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT_CLOSE("*2000000\r\n", "-ERR Protocol error: invalid multibulk length\r\n");
    EXPECT_CLOSE("*1\r\nfoo\r\nPING\r\n", "-ERR Protocol error: expected '$', got 'f'\r\n");
    EXPECT_CLOSE("*1\r\n\r\n", "-ERR Protocol error: expected '$', got ' '\r\n");
    EXPECT_CLOSE("*1\r\n$-1\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT_CLOSE("*1\r\n$abc\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT_CLOSE("*1\r\n$600000000\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT_CLOSE("*1\r\n$536870913\r\n", "-ERR Protocol error: invalid bulk length\r\n");
    EXPECT_CLOSE("set a \"unbalanced\r\nPING\r\n",
                 "-ERR Protocol error: unbalanced quotes in request\r\n");
    EXPECT_CLOSE("set a 'x'y\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    EXPECT_CLOSE("set a \"x\"y\r\n", "-ERR Protocol error: unbalanced quotes in request\r\n");
    EXPECT_CLOSE("QUIT\r\nPING\r\n", "+OK\r\n");
    /* a command cut short is simply incomplete */
    EXPECT("*1\r\n$4\r\nPING\r\n*1\r\n$4\r\nPI", "+PONG\r\n");
    /* the bulk's trailing two bytes are skipped unchecked, as redis does */
    EXPECT("*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", "+PONG\r\n+PONG\r\n");
}

/* Header lines and inline requests without an end: refused past 64 KiB, and
 * the buffer stays bounded meanwhile. */
static void test_unterminated_lines_bounded(void **state)
{
    (void)state;
    static const struct {
        const char *prefix;
        const char *reply;
    } cases[] = {
        {"", "-ERR Protocol error: too big inline request\r\n"},
        {"*", "-ERR Protocol error: too big mbulk count string\r\n"},
        {"*1\r\n$", "-ERR Protocol error: too big bulk count string\r\n"},
    };
    size_t n = 200 * 1024;
    char *junk = malloc(n);
    assert_non_null(junk);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t pn = strlen(cases[i].prefix);
        memcpy(junk, cases[i].prefix, pn);
        memset(junk + pn, '1', n - pn);
        resp_conn c;
        resp_init(&c);
        out_t o = {0};
        int r = feed(&c, junk, n, 4096, &o);
        assert_int_equal(r, KVD_CLOSE);
        assert_string_equal(o.p, cases[i].reply);
        assert_true(c.rcap <= 2 * RESP_INLINE_MAX);
        free(o.p);
        resp_destroy(&c);
    }
    free(junk);
}

/* Many commands in one read, replies in order; and the same fed a byte at a
 * time. */
static void test_pipeline(void **state)
{
    (void)state;
    enum { N = 1000 };
    size_t cap = N * 64, n = 0, wcap = N * 64, wn = 0;
    char *in = malloc(cap), *want = malloc(wcap);
    assert_non_null(in);
    assert_non_null(want);
    for (int i = 0; i < N; i++) {
        char key[16], val[16];
        int kl = snprintf(key, sizeof key, "key%d", i), vl = snprintf(val, sizeof val, "v%d", i);
        if (i % 2)
            n += (size_t)snprintf(in + n, cap - n, "*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n%s\r\n",
                                  kl, key, vl, val);
        else
            n += (size_t)snprintf(in + n, cap - n, "SET %s %s\r\n", key, val);
        wn += (size_t)snprintf(want + wn, wcap - wn, "+OK\r\n");
    }
    for (int i = 0; i < N; i++) {
        n += (size_t)snprintf(in + n, cap - n, "GET key%d\r\n", i);
        wn += (size_t)snprintf(want + wn, wcap - wn, "$%d\r\nv%d\r\n", snprintf(NULL, 0, "v%d", i),
                               i);
    }
    n += (size_t)snprintf(in + n, cap - n, "DBSIZE\r\n");
    wn += (size_t)snprintf(want + wn, wcap - wn, ":%d\r\n", N);
    expect_n(in, n, want, wn, false);
    free(in);
    free(want);
}

/* ---- commands ------------------------------------------------------------------------ */

static void test_set_options(void **state)
{
    (void)state;
    EXPECT("GET nokey\r\nSET k v\r\nSET k v NX\r\nSET k w XX\r\nGET k\r\nSET k2 v XX\r\n"
           "SET k v NX XX\r\nSET k v EX\r\nSET k v EX 0\r\nSET k v EX abc\r\n"
           "SET k v EX 9223372036854775807\r\nSET k v PX 9223372036854775807\r\n"
           "SET k v KEEPTTL EX 10\r\nSET k v EX 10 EX 20\r\nSET k new GET\r\nSET nk new GET\r\n"
           "SET k x NX GET\r\nSET k v EXAT 1\r\nGET k\r\n",
           "$-1\r\n+OK\r\n$-1\r\n+OK\r\n$1\r\nw\r\n$-1\r\n-ERR syntax error\r\n"
           "-ERR syntax error\r\n-ERR invalid expire time in 'set' command\r\n"
           "-ERR value is not an integer or out of range\r\n"
           "-ERR invalid expire time in 'set' command\r\n"
           "-ERR invalid expire time in 'set' command\r\n-ERR syntax error\r\n+OK\r\n"
           "$1\r\nv\r\n$-1\r\n$3\r\nnew\r\n+OK\r\n$-1\r\n");
    EXPECT("SET k v EX 100\r\nTTL k\r\nPTTL nokey\r\nSET k v KEEPTTL\r\nTTL k\r\nSET k v\r\n"
           "TTL k\r\nSET k v foo\r\nset k v px 100000 xx\r\nTTL k\r\n",
           "+OK\r\n:100\r\n:-2\r\n+OK\r\n:100\r\n+OK\r\n:-1\r\n-ERR syntax error\r\n+OK\r\n"
           ":100\r\n");
}

static void test_incr(void **state)
{
    (void)state;
    EXPECT("INCR c\r\nDECR c\r\nINCRBY c 10\r\nDECRBY c 3\r\nSET c abc\r\nINCR c\r\n"
           "SET c 9223372036854775807\r\nINCR c\r\nSET c -9223372036854775808\r\nDECR c\r\n"
           "SET c 01\r\nINCR c\r\nDECRBY c -9223372036854775808\r\nINCRBY c x\r\n",
           ":1\r\n:0\r\n:10\r\n:7\r\n+OK\r\n"
           "-ERR value is not an integer or out of range\r\n+OK\r\n"
           "-ERR increment or decrement would overflow\r\n+OK\r\n"
           "-ERR increment or decrement would overflow\r\n+OK\r\n"
           "-ERR value is not an integer or out of range\r\n-ERR decrement would overflow\r\n"
           "-ERR value is not an integer or out of range\r\n");
    EXPECT("SET c 41 EX 100\r\nINCR c\r\nTTL c\r\nGET c\r\n", "+OK\r\n:42\r\n:100\r\n$2\r\n42\r\n");
}

static void test_keys(void **state)
{
    (void)state;
    EXPECT("MSET a 1 b 2\r\nMSET a\r\nMSET a 1 b\r\nMGET a b c\r\nMGET\r\nDEL a c\r\nDEL\r\n"
           "EXISTS a b b c\r\nDBSIZE\r\nDBSIZE x\r\nFLUSHALL ASYNC\r\nFLUSHALL x\r\n"
           "FLUSHALL SYNC x\r\nDBSIZE\r\nMSET x 1\r\nFLUSHALL\r\nEXISTS x\r\n",
           "+OK\r\n-ERR wrong number of arguments for 'mset' command\r\n"
           "-ERR wrong number of arguments for 'mset' command\r\n"
           "*3\r\n$1\r\n1\r\n$1\r\n2\r\n$-1\r\n"
           "-ERR wrong number of arguments for 'mget' command\r\n:1\r\n"
           "-ERR wrong number of arguments for 'del' command\r\n:2\r\n:1\r\n"
           "-ERR wrong number of arguments for 'dbsize' command\r\n+OK\r\n"
           "-ERR syntax error\r\n-ERR syntax error\r\n:0\r\n+OK\r\n+OK\r\n:0\r\n");
}

static void test_server_commands(void **state)
{
    (void)state;
    EXPECT("ECHO\r\nECHO hi\r\necho hi there\r\nget\r\nGET a b\r\nINCR\r\n",
           "-ERR wrong number of arguments for 'echo' command\r\n$2\r\nhi\r\n"
           "-ERR wrong number of arguments for 'echo' command\r\n"
           "-ERR wrong number of arguments for 'get' command\r\n"
           "-ERR wrong number of arguments for 'get' command\r\n"
           "-ERR wrong number of arguments for 'incr' command\r\n");
    EXPECT("COMMAND COUNT x\r\nCOMMAND FOO\r\nCONFIG\r\nCONFIG GET\r\nCONFIG FOO\r\n"
           "CONFIG GET appendonly\r\nCONFIG GET save\r\nSELECT 0\r\nSELECT 1\r\nSELECT x\r\n"
           "COMMAND\r\nCOMMAND DOCS\r\nCOMMAND INFO get\r\n",
           "-ERR wrong number of arguments for 'command|count' command\r\n"
           "-ERR unknown subcommand 'FOO'. Try COMMAND HELP.\r\n"
           "-ERR wrong number of arguments for 'config' command\r\n"
           "-ERR wrong number of arguments for 'config|get' command\r\n"
           "-ERR unknown subcommand 'FOO'. Try CONFIG HELP.\r\n"
           "*2\r\n$10\r\nappendonly\r\n$2\r\nno\r\n*2\r\n$4\r\nsave\r\n$0\r\n\r\n+OK\r\n"
           "-ERR DB index is out of range\r\n-ERR value is not an integer or out of range\r\n"
           "*0\r\n*0\r\n*1\r\n*-1\r\n");
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    feed(&c, "COMMAND COUNT\r\n", 15, SIZE_MAX, &o);
    char want[32];
    snprintf(want, sizeof want, ":%d\r\n", kvd_command_count());
    assert_string_equal(o.p, want);
    o.n = 0;
    feed(&c, "SET i v EX 100\r\nINFO\r\n", 22, SIZE_MAX, &o);
    assert_memory_equal(o.p, "+OK\r\n$", 6);
    assert_non_null(strstr(o.p, "redis_version:"));
    assert_non_null(strstr(o.p, "db0:keys=1,expires=1,"));
    free(o.p);
    resp_destroy(&c);
}

static void test_unknown_command(void **state)
{
    (void)state;
    EXPECT("foo\r\nfoo a b\r\n",
           "-ERR unknown command 'foo', with args beginning with: \r\n"
           "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n");
    /* CR and LF in the echoed arguments become spaces; a NUL ends one */
    EXPECT("foo 'a\rb' \"c\\nd\"\r\n*2\r\n$3\r\nfoo\r\n$3\r\na\0b\r\n",
           "-ERR unknown command 'foo', with args beginning with: 'a b' 'c d' \r\n"
           "-ERR unknown command 'foo', with args beginning with: 'a' \r\n");
    /* the argument part stops growing at 128 bytes, the name is cut at 128 */
    EXPECT("foo arg0 arg1 arg2 arg3 arg4 arg5 arg6 arg7 arg8 arg9 arg10 arg11 arg12 arg13 "
           "arg14 arg15 arg16 arg17 arg18 arg19\r\n",
           "-ERR unknown command 'foo', with args beginning with: 'arg0' 'arg1' 'arg2' 'arg3' "
           "'arg4' 'arg5' 'arg6' 'arg7' 'arg8' 'arg9' 'arg10' 'arg11' 'arg12' 'arg13' "
           "'arg14' 'arg15' 'arg16' 'ar' \r\n");
    char in[400], want[600];
    memset(in, 'f', 140);
    in[140] = ' ';
    memset(in + 141, 'x', 140);
    memcpy(in + 281, "\r\n", 3);
    int n = snprintf(want, sizeof want,
                     "-ERR unknown command '%.128s', with args beginning with: '%.128s' \r\n", in,
                     in + 141);
    expect_n(in, 283, want, (size_t)n, false);
}

/* ---- buffers -------------------------------------------------------------------------- */

/* A 1 MiB value in and out: the input buffer grows to about the command's
 * size, then both buffers shrink back; in reads of 16 KiB and of 1000. */
static void test_big_value(void **state)
{
    (void)state;
    size_t vn = 1 << 20;
    size_t cap = vn + 256;
    char *in = malloc(cap);
    assert_non_null(in);
    int h = snprintf(in, cap, "*3\r\n$3\r\nSET\r\n$3\r\nbig\r\n$%zu\r\n", vn);
    for (size_t i = 0; i < vn; i++)
        in[h + i] = (char)('a' + i % 26);
    size_t n = (size_t)h + vn;
    n += (size_t)snprintf(in + n, cap - n, "\r\nGET big\r\nPING\r\n");
    size_t chunks[] = {16384, 1000};
    for (int t = 0; t < 2; t++) {
        kv_flush(S);
        resp_conn c;
        resp_init(&c);
        out_t o = {0};
        assert_int_equal(feed(&c, in, n, chunks[t], &o), KVD_MORE);
        char head[32];
        int hn = snprintf(head, sizeof head, "+OK\r\n$%zu\r\n", vn);
        assert_int_equal(o.n, (size_t)hn + vn + 2 + 7);
        assert_memory_equal(o.p, head, (size_t)hn);
        assert_memory_equal(o.p + hn, in + h, vn);
        assert_memory_equal(o.p + hn + vn, "\r\n+PONG\r\n", 9);
        assert_int_equal(c.rcap, RESP_IOBUF);
        assert_true(c.wcap <= RESP_KEEP_MAX);
        free(o.p);
        resp_destroy(&c);
    }
    free(in);
}

/* Replies past RESP_WFLUSH are handed out mid-batch (KVD_FLUSH), and the
 * output buffer does not grow with the pipeline. */
static void test_output_flushes(void **state)
{
    (void)state;
    kv_flush(S);
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    char val[10000];
    memset(val, 'v', sizeof val);
    char set[10100];
    int sn = snprintf(set, sizeof set, "SET k %.*s\r\n", (int)sizeof val, val);
    feed(&c, set, (size_t)sn, SIZE_MAX, &o);
    assert_string_equal(o.p, "+OK\r\n");
    o.n = 0;
    enum { N = 200 };
    size_t room = resp_read_room(&c);
    assert_true(room >= N * 7);
    for (int i = 0; i < N; i++) {
        memcpy(c.rbuf + c.rend, "GET k\r\n", 7);
        c.rend += 7;
    }
    int flushes = 0, r;
    while ((r = kvd_process(&c, S)) == KVD_FLUSH) {
        assert_true(c.wlen < RESP_WFLUSH + sizeof val + 64);
        take(&c, &o);
        flushes++;
    }
    take(&c, &o);
    assert_int_equal(r, KVD_MORE);
    assert_true((size_t)flushes >= N * sizeof val / (RESP_WFLUSH + sizeof val + 64));
    assert_int_equal(o.n, N * (sizeof val + 10));
    free(o.p);
    resp_destroy(&c);
}

/* A command in progress that would pass RESP_QUERY_MAX: the connection is
 * to be dropped (resp_read_room gives no room). The state is set up by hand:
 * the check comes before any memory is touched. */
static void test_query_limit(void **state)
{
    (void)state;
    resp_conn c;
    resp_init(&c);
    size_t rend = c.rend, scan = c.scan;
    c.rend = c.scan = (size_t)(RESP_QUERY_MAX - RESP_BULK_MAX + 1000);
    c.mbulk = 1;
    c.bulk = RESP_BULK_MAX;
    assert_int_equal(resp_read_room(&c), 0);
    c.rend = rend;
    c.scan = scan;
    c.mbulk = 0;
    c.bulk = -1;
    resp_destroy(&c);
}

/* ---- store ------------------------------------------------------------------------------ */

static uint64_t buckets_total(kv_store *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < KV_SHARDS; i++)
        n += s->shards[i].mask + 1;
    return n;
}

/* Tables grow with their keys and shrink back when they go. */
static void test_store_grow_shrink(void **state)
{
    (void)state;
    kv_store *s = kv_store_new(12345);
    enum { N = 100000 };
    char key[32];
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key:%d", i);
        uint64_t h = kv_hash(s->seed, key, (size_t)n);
        kv_shard *sh = kv_shard_of(s, h);
        gort_mutex_lock(&sh->mu);
        kv_entry **l = kv_find_locked(sh, h, key, (size_t)n);
        assert_null(l);
        kv_put_locked(sh, l, h, key, (size_t)n, key, (size_t)n, 0);
        gort_mutex_unlock(&sh->mu);
    }
    assert_int_equal(kv_count(s), N);
    assert_true(buckets_total(s) >= N / 2);
    for (unsigned i = 0; i < KV_SHARDS; i++) /* load stays <= 2 after inserts */
        assert_true(s->shards[i].count <= 2 * ((uint64_t)s->shards[i].mask + 1));
    for (int i = 0; i < N; i++) {
        int n = snprintf(key, sizeof key, "key:%d", i);
        uint64_t h = kv_hash(s->seed, key, (size_t)n);
        kv_shard *sh = kv_shard_of(s, h);
        gort_mutex_lock(&sh->mu);
        kv_entry **l = kv_find_locked(sh, h, key, (size_t)n);
        assert_non_null(l);
        assert_int_equal((*l)->vlen, (size_t)n);
        assert_memory_equal(kv_val(*l), key, (size_t)n);
        kv_del_locked(sh, l);
        gort_mutex_unlock(&sh->mu);
    }
    assert_int_equal(kv_count(s), 0);
    assert_int_equal(buckets_total(s), (uint64_t)KV_SHARDS * KV_MIN_BUCKETS);
    kv_store_free(s);
}

/* The top bits pick the shard: keys spread over all of them. */
static void test_hash_spreads(void **state)
{
    (void)state;
    static unsigned hits[KV_SHARDS];
    memset(hits, 0, sizeof hits);
    char key[32];
    for (unsigned i = 0; i < 64 * KV_SHARDS; i++) {
        int n = snprintf(key, sizeof key, "k%u", i);
        hits[kv_hash(7, key, (size_t)n) >> (64 - KV_SHARD_BITS)]++;
    }
    for (unsigned i = 0; i < KV_SHARDS; i++)
        assert_true(hits[i] > 16 && hits[i] < 160);
    /* every length class of the hash, and the seed matters */
    char buf[64];
    memset(buf, 'x', sizeof buf);
    for (size_t n = 0; n < sizeof buf; n++)
        assert_true(kv_hash(1, buf, n) != kv_hash(2, buf, n));
}

static bool get_is_nil(const char *key)
{
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    char cmd[64];
    int n = snprintf(cmd, sizeof cmd, "GET %s\r\n", key);
    feed(&c, cmd, (size_t)n, SIZE_MAX, &o);
    bool nil = strcmp(o.p, "$-1\r\n") == 0;
    free(o.p);
    resp_destroy(&c);
    return nil;
}

/* Lazy expiry: a key with PX 20 reads as gone once its time is up. Active
 * expiry: kv_expire_cycle reclaims keys nobody reads (DBSIZE falls). */
static void test_expiry(void **state)
{
    (void)state;
    kv_flush(S);
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    const char *cmds = "SET e v PX 20\r\nGET e\r\nSET keep v\r\n";
    feed(&c, cmds, strlen(cmds), SIZE_MAX, &o);
    assert_string_equal(o.p, "+OK\r\n$1\r\nv\r\n+OK\r\n");
    int64_t deadline = gort_now() + 10 * SEC;
    while (!get_is_nil("e") && gort_now() < deadline)
        gort_sleep(2 * MS);
    assert_true(get_is_nil("e"));
    assert_int_equal(kv_count(S), 1);

    enum { N = 2000 };
    char cmd[64];
    for (int i = 0; i < N; i++) {
        o.n = 0;
        int n = snprintf(cmd, sizeof cmd, "SET t%d v PX %d\r\n", i, 1 + i % 30);
        feed(&c, cmd, (size_t)n, SIZE_MAX, &o);
    }
    assert_int_equal(kv_count(S), N + 1);
    uint64_t deleted = 0;
    deadline = gort_now() + 20 * SEC;
    while (kv_count(S) > 1 && gort_now() < deadline) {
        gort_sleep(5 * MS);
        deleted += kv_expire_cycle(S, 25 * MS);
    }
    assert_int_equal(kv_count(S), 1);
    assert_int_equal(deleted, N);
    for (unsigned i = 0; i < KV_SHARDS; i++)
        assert_int_equal(S->shards[i].nexpires, 0);
    free(o.p);
    resp_destroy(&c);
}

/* Goroutines on every processor INCR one key and SET/GET their own. */
struct incr_arg {
    int id;
    int bad;
    gort_waitgroup *wg;
};

static void incr_worker(void *p)
{
    struct incr_arg *a = p;
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    char cmd[128];
    for (int i = 0; i < 2000; i++) {
        o.n = 0;
        int n = snprintf(cmd, sizeof cmd, "INCR shared\r\nSET own%d %d\r\nGET own%d\r\n", a->id, i,
                         a->id);
        feed(&c, cmd, (size_t)n, SIZE_MAX, &o);
        char want[64];
        snprintf(want, sizeof want, "+OK\r\n$%d\r\n%d\r\n", snprintf(NULL, 0, "%d", i), i);
        const char *rest = o.p ? strchr(o.p, '\n') : NULL;
        if (!o.p || o.p[0] != ':' || !rest || strcmp(rest + 1, want) != 0) a->bad++;
    }
    free(o.p);
    resp_destroy(&c);
    gort_wg_done(a->wg);
}

static void test_concurrent_commands(void **state)
{
    (void)state;
    int old = procs_at_least(2);
    kv_flush(S);
    enum { G = 16 };
    gort_waitgroup wg = {0};
    struct incr_arg args[G];
    gort_wg_add(&wg, G);
    for (int i = 0; i < G; i++) {
        args[i] = (struct incr_arg){i, 0, &wg};
        gort_go(incr_worker, &args[i]);
    }
    assert_true(wg_wait_bounded(&wg));
    for (int i = 0; i < G; i++)
        assert_int_equal(args[i].bad, 0);
    resp_conn c;
    resp_init(&c);
    out_t o = {0};
    feed(&c, "GET shared\r\nDBSIZE\r\n", 20, SIZE_MAX, &o);
    assert_string_equal(o.p, "$5\r\n32000\r\n:17\r\n");
    free(o.p);
    resp_destroy(&c);
    gort_maxprocs(old);
}

static int run(int argc, char **argv)
{
    (void)argc, (void)argv;
    gort_lock_thread();
    S = kv_store_new(0x5eed);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_str2ll),
        cmocka_unit_test(test_inline_split),
        cmocka_unit_test(test_multibulk_argv),
        cmocka_unit_test(test_inline_and_empty),
        cmocka_unit_test(test_protocol_errors),
        cmocka_unit_test(test_unterminated_lines_bounded),
        cmocka_unit_test(test_pipeline),
        cmocka_unit_test(test_set_options),
        cmocka_unit_test(test_incr),
        cmocka_unit_test(test_keys),
        cmocka_unit_test(test_server_commands),
        cmocka_unit_test(test_unknown_command),
        cmocka_unit_test(test_big_value),
        cmocka_unit_test(test_output_flushes),
        cmocka_unit_test(test_query_limit),
        cmocka_unit_test(test_store_grow_shrink),
        cmocka_unit_test(test_hash_spreads),
        cmocka_unit_test(test_expiry),
        cmocka_unit_test(test_concurrent_commands),
    };
    const char *filter = getenv("TEST_FILTER");
    if (filter) cmocka_set_test_filter(filter);
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    kv_store_free(S);
    return rc;
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}

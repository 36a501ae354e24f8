/* tests/test_http_parse.c: gort-httpd's request parser (tools/httpd/http.c) on its own, no I/O:
 * complete, partial and pipelined heads, every error status, the size limits, chunked bodies,
 * percent-decoding and path escapes, MIME types and dates. http.c is compiled into this
 * program (tests link only libgort). Every partial-input case feeds each prefix of a valid
 * request and expects "read more" for all of them, so a parser that answers early fails.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../tools/httpd/http.c"

static int parse(const char *s, struct http_request *r)
{
    return http_parse_request(s, strlen(s), r);
}

/* Status of a one-request head (0 for a success that consumed all of s). */
static int status_of(const char *s)
{
    struct http_request r;
    int n = parse(s, &r);
    if (n > 0) return n == (int)strlen(s) ? 0 : -1;
    return -n;
}

/* ---- complete heads ---------------------------------------------------------------------- */

static void test_simple_get(void **state)
{
    (void)state;
    const char *s = "GET /index.html?x=1 HTTP/1.1\r\nHost: example.com\r\n\r\n";
    struct http_request r;
    assert_int_equal(parse(s, &r), strlen(s));
    assert_int_equal(r.method, HTTP_GET);
    assert_int_equal(r.minor, 1);
    assert_true(r.keep_alive);
    assert_false(r.chunked);
    assert_false(r.expect_continue);
    assert_int_equal(r.content_length, 0);
    assert_int_equal(r.target_len, strlen("/index.html?x=1"));
    assert_memory_equal(r.target, "/index.html?x=1", r.target_len);
    assert_ptr_equal(r.target, s + 4);
}

static void test_methods(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        int method;
    } ms[] = {{"GET", HTTP_GET},    {"HEAD", HTTP_HEAD},     {"POST", HTTP_POST},
              {"PUT", HTTP_PUT},    {"DELETE", HTTP_DELETE}, {"OPTIONS", HTTP_OPTIONS},
              {"PATCH", HTTP_PATCH}};
    for (size_t i = 0; i < sizeof ms / sizeof ms[0]; i++) {
        char buf[128];
        snprintf(buf, sizeof buf, "%s / HTTP/1.1\r\nHost: h\r\n\r\n", ms[i].name);
        struct http_request r;
        assert_int_equal(parse(buf, &r), strlen(buf));
        assert_int_equal(r.method, ms[i].method);
    }
    assert_int_equal(status_of("OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
    assert_int_equal(status_of("GET http://h:80/a?b HTTP/1.1\r\nHost: h\r\n\r\n"), 0);
}

static void test_bare_lf_and_whitespace(void **state)
{
    (void)state;
    struct http_request r;
    const char *s = "GET / HTTP/1.1\nHost: h\nX-A:  v \t\n\n";
    assert_int_equal(parse(s, &r), strlen(s));
    /* headers the server ignores are still checked, and skipped */
    assert_int_equal(status_of("GET / HTTP/1.1\r\nHost: h\r\nX-Empty:\r\nX-B: a\tb \xc3\xa9\r\n"
                               "\r\n"),
                     0);
}

static void test_versions_and_keep_alive(void **state)
{
    (void)state;
    struct http_request r;
    assert_true(parse("GET / HTTP/1.0\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor, 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive);
    assert_true(parse("GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nconnection: Upgrade,  CLOSE\r\n\r\n", &r) > 0);
    assert_false(r.keep_alive);
    assert_true(parse("GET / HTTP/1.1\r\nHost: h\r\nConnection: closed\r\n\r\n", &r) > 0);
    assert_true(r.keep_alive);
    /* a higher minor version of HTTP/1 is read as 1.1 (RFC 9110 6.2) */
    assert_true(parse("GET / HTTP/1.7\r\nHost: h\r\n\r\n", &r) > 0);
    assert_int_equal(r.minor, 1);
}

static void test_bodies(void **state)
{
    (void)state;
    struct http_request r;
    const char *s = "POST /f HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello";
    assert_int_equal(parse(s, &r), strlen(s) - 5);
    assert_int_equal(r.content_length, 5);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048576\r\n"
                      "content-length: 1048576\r\n\r\n",
                      &r) > 0);
    assert_int_equal(r.content_length, HTTP_MAX_BODY);
    assert_true(parse("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: Chunked\r\n"
                      "Expect: 100-continue\r\n\r\n",
                      &r) > 0);
    assert_true(r.chunked);
    assert_true(r.expect_continue);
    assert_int_equal(r.content_length, 0);
}

/* ---- partial and pipelined --------------------------------------------------------------- */

static void test_every_prefix_needs_more(void **state)
{
    (void)state;
    static const char *reqs[] = {
        "GET /a/b?c HTTP/1.1\r\nHost: h\r\nConnection: keep-alive\r\nX: y\r\n\r\n",
        "POST / HTTP/1.0\nContent-Length: 3\n\n",
        "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n",
    };
    for (size_t k = 0; k < sizeof reqs / sizeof reqs[0]; k++) {
        size_t len = strlen(reqs[k]);
        struct http_request r;
        for (size_t i = 0; i < len; i++)
            if (http_parse_request(reqs[k], i, &r) != 0)
                fail_msg("request %zu: prefix of %zu bytes did not ask for more", k, i);
        assert_int_equal(http_parse_request(reqs[k], len, &r), len);
    }
}

static void test_pipelined(void **state)
{
    (void)state;
    char buf[8192];
    size_t len = 0;
    for (int i = 0; i < 100; i++)
        len += (size_t)snprintf(
            buf + len, sizeof buf - len,
            i % 2 ? "GET /%d HTTP/1.1\r\nHost: h\r\n\r\n" : "HEAD /%d HTTP/1.1\nHost: h\n\n", i);
    size_t off = 0;
    for (int i = 0; i < 100; i++) {
        struct http_request r;
        int n = http_parse_request(buf + off, len - off, &r);
        assert_true(n > 0);
        char want[16];
        snprintf(want, sizeof want, "/%d", i);
        assert_int_equal(r.target_len, strlen(want));
        assert_memory_equal(r.target, want, r.target_len);
        assert_int_equal(r.method, i % 2 ? HTTP_GET : HTTP_HEAD);
        off += (size_t)n;
    }
    assert_int_equal(off, len);
    struct http_request r;
    assert_int_equal(http_parse_request(buf + off, 0, &r), 0);
}

/* ---- errors ------------------------------------------------------------------------------ */

static void test_malformed_400(void **state)
{
    (void)state;
    static const char *bad[] = {
        "GARBAGE\r\n\r\n",
        " GET / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET  / HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1 \r\nHost: h\r\n\r\n",
        "GET /\r\n\r\n",
        "GET / http/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.x\r\nHost: h\r\n\r\n",
        "GET / HTTP/11\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.10\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\rHost: h\r\n\r\n",
        "GET a HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET * HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET /a\x01 HTTP/1.1\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost : h\r\n\r\n",
        "GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\x01\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\rX: y\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: h\r\n\rx",
        "GET / HTTP/1.1\r\n\r\n",                       /* 1.1 without Host */
        "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", /* two Hosts */
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -1\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1x\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length:\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
        "Transfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (status_of(bad[i]) != 400)
            fail_msg("case %zu %s: status %d, want 400", i, bad[i], status_of(bad[i]));
    /* a NUL byte, which strlen-based helpers would not see */
    static const char nul[] = "GET / HTTP/1.1\r\nHost: a\0b\r\n\r\n";
    struct http_request r;
    assert_int_equal(http_parse_request(nul, sizeof nul - 1, &r), -400);
}

static void test_errors_are_early(void **state)
{
    (void)state;
    /* the bytes show the error before the head is complete */
    assert_int_equal(status_of("GARBAGE\r\n"), 400);
    assert_int_equal(status_of("GET / HTTP/2.0\r\n"), 505);
    assert_int_equal(status_of("BREW "), 501);
    assert_int_equal(status_of("GET / HTTP/1.1\r\nBad Header"), 400);
}

static void test_other_statuses(void **state)
{
    (void)state;
    assert_int_equal(status_of("BREW /pot HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
    assert_int_equal(status_of("get / HTTP/1.1\r\nHost: h\r\n\r\n"), 501); /* case matters */
    assert_int_equal(status_of("CONNECT h:443 HTTP/1.1\r\nHost: h\r\n\r\n"), 501);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n"),
                     501);
    assert_int_equal(
        status_of("POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"), 501);
    assert_int_equal(status_of("GET / HTTP/2.0\r\nHost: h\r\n\r\n"), 505);
    assert_int_equal(status_of("GET / HTTP/0.9\r\nHost: h\r\n\r\n"), 505);
    assert_int_equal(status_of("GET / HTTP/3.1\r\nHost: h\r\n\r\n"), 505);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 1048577\r\n\r\n"),
                     413);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nContent-Length: "
                               "99999999999999999999999999999999999999\r\n\r\n"),
                     413);
    assert_int_equal(status_of("POST / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n"), 417);
}

static void test_size_limits(void **state)
{
    (void)state;
    static char buf[3 * HTTP_MAX_HEAD];
    struct http_request r;
    /* a head of exactly HTTP_MAX_HEAD bytes parses; one byte more is 431 */
    const char *pre = "GET / HTTP/1.1\r\nHost: h\r\nX-Pad: ";
    size_t pl = strlen(pre);
    size_t pad = HTTP_MAX_HEAD - pl - 4;
    memcpy(buf, pre, pl);
    memset(buf + pl, 'a', pad);
    memcpy(buf + pl + pad, "\r\n\r\n", 4);
    assert_int_equal(http_parse_request(buf, HTTP_MAX_HEAD, &r), HTTP_MAX_HEAD);
    memset(buf + pl, 'a', pad + 1);
    memcpy(buf + pl + pad + 1, "\r\n\r\n", 4);
    assert_int_equal(http_parse_request(buf, HTTP_MAX_HEAD + 1, &r), -431);
    /* an endless header: 431 once HTTP_MAX_HEAD bytes are in, whatever follows */
    memset(buf + pl, 'b', sizeof buf - pl);
    assert_int_equal(http_parse_request(buf, HTTP_MAX_HEAD - 1, &r), 0);
    assert_int_equal(http_parse_request(buf, HTTP_MAX_HEAD, &r), -431);
    assert_int_equal(http_parse_request(buf, sizeof buf, &r), -431);
    /* many small headers */
    size_t n = strlen("GET / HTTP/1.1\r\nHost: h\r\n");
    memcpy(buf, "GET / HTTP/1.1\r\nHost: h\r\n", n);
    while (n + 5 < sizeof buf) {
        memcpy(buf + n, "a:b\r\n", 5);
        n += 5;
    }
    assert_int_equal(http_parse_request(buf, n, &r), -431);
    /* a request line that does not fit: 414 */
    memcpy(buf, "GET /", 5);
    memset(buf + 5, 'x', sizeof buf - 5);
    assert_int_equal(http_parse_request(buf, sizeof buf, &r), -414);
}

/* ---- chunked bodies ---------------------------------------------------------------------- */

/* Feed body in pieces of step bytes; return the status and the bytes used in all. */
static int chunked(const char *body, size_t len, size_t step, size_t *total)
{
    struct http_chunked c = {0};
    *total = 0;
    while (*total < len) {
        size_t n = len - *total < step ? len - *total : step, used = 0;
        int rc = http_chunked_skip(&c, body + *total, n, &used);
        *total += used;
        if (rc != 0) return rc;
        assert_int_equal(used, n);
    }
    return 0;
}

static void test_chunked(void **state)
{
    (void)state;
    const char *body = "5\r\nhello\r\n1a;ext=1\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\n"
                       "Trailer: x\r\n\r\nGET / HTTP/1.1\r\n";
    size_t body_len = strlen(body) - strlen("GET / HTTP/1.1\r\n");
    for (size_t step = 1; step <= strlen(body); step++) {
        size_t total;
        assert_int_equal(chunked(body, strlen(body), step, &total), 1);
        assert_int_equal(total, body_len);
    }
    size_t total;
    assert_int_equal(chunked("0\n\n", 3, 1, &total), 1);
    assert_int_equal(total, 3);
    assert_int_equal(chunked("3\r\nab", 5, 5, &total), 0); /* incomplete: wants more */
    assert_int_equal(chunked("x\r\n", 3, 3, &total), -400);
    assert_int_equal(chunked("3\r\nabcd\r\n", 9, 9, &total), -400);
    assert_int_equal(chunked("100001\r\n", 8, 8, &total), -413);
    assert_int_equal(chunked("fffffffffffffffffffff\r\n", 23, 23, &total), -413);
    /* two chunks under the limit that together exceed it */
    static char big[2 * 1024 * 1024];
    size_t n = (size_t)snprintf(big, sizeof big, "80000\r\n");
    memset(big + n, 'a', 0x80000);
    n += 0x80000;
    n += (size_t)snprintf(big + n, sizeof big - n, "\r\n80001\r\n");
    assert_int_equal(chunked(big, n, 4096, &total), -413);
    /* an endless extension */
    memcpy(big, "1;", 2);
    memset(big + 2, 'e', 100000);
    assert_int_equal(chunked(big, 100002, 100002, &total), -413);
}

/* ---- paths ------------------------------------------------------------------------------- */

static int decode(const char *target, char *out, bool *slash)
{
    return http_path_decode(target, strlen(target), out, HTTP_MAX_PATH, slash);
}

static void expect_path(const char *target, const char *want, bool want_slash)
{
    char out[HTTP_MAX_PATH];
    bool slash;
    int n = decode(target, out, &slash);
    if (n < 0) fail_msg("%s: status %d, want %s", target, -n, want);
    assert_string_equal(out, want);
    assert_int_equal(n, strlen(want));
    assert_int_equal(slash, want_slash);
}

static void expect_refused(const char *target, int status)
{
    char out[HTTP_MAX_PATH];
    bool slash;
    int n = decode(target, out, &slash);
    if (n != -status) fail_msg("%s: got %d (%s), want -%d", target, n, n > 0 ? out : "", status);
}

static void test_paths(void **state)
{
    (void)state;
    expect_path("/", ".", true);
    expect_path("/index.html", "index.html", false);
    expect_path("/a/b/", "a/b", true);
    expect_path("//a///b", "a/b", false);
    expect_path("/./a/./b/.", "a/b", false);
    expect_path("/a%20b%2Fc", "a b/c", false);
    expect_path("/%41%62%63", "Abc", false);
    expect_path("/a?x=../../etc/passwd", "a", false);
    expect_path("/a#frag", "a", false);
    expect_path("/...", "...", false);
    expect_path("/..a/b..", "..a/b..", false);
    expect_path("/a+b", "a+b", false);
    expect_path("/..%5c..%5cetc", "..\\..\\etc", false); /* a backslash is a name byte */
    expect_path("http://host:8080/x/y", "x/y", false);
    expect_path("http://host", ".", false);
}

static void test_path_escapes(void **state)
{
    (void)state;
    expect_refused("/..", 403);
    expect_refused("/../etc/passwd", 403);
    expect_refused("/a/../../etc/passwd", 403);
    expect_refused("/a/..", 403);
    expect_refused("/%2e%2e/etc/passwd", 403);
    expect_refused("/%2E%2E/etc/passwd", 403);
    expect_refused("/.%2e/x", 403);
    expect_refused("/a/..%2f..%2fetc", 403);
    expect_refused("/a/..%2F", 403);
    expect_refused("http://h/../x", 403);
    expect_refused("/a%00b", 400);
    expect_refused("/a%zz", 400);
    expect_refused("/a%2", 400);
    expect_refused("/a%", 400);
    expect_refused("*", 400);
    char big[HTTP_MAX_PATH + 2];
    big[0] = '/';
    memset(big + 1, 'a', HTTP_MAX_PATH);
    big[HTTP_MAX_PATH + 1] = 0;
    expect_refused(big, 414);
}

/* ---- MIME types and dates ---------------------------------------------------------------- */

static void test_mime(void **state)
{
    (void)state;
    assert_string_equal(http_mime_type("index.html", 10), "text/html; charset=utf-8");
    assert_string_equal(http_mime_type("a/B.PNG", 7), "image/png");
    assert_string_equal(http_mime_type("a.tar.gz", 8), "application/gzip");
    assert_string_equal(http_mime_type("noext", 5), "application/octet-stream");
    assert_string_equal(http_mime_type("dir.html/file", 13), "application/octet-stream");
    assert_string_equal(http_mime_type("x.htmlx", 7), "application/octet-stream");
}

static void test_date(void **state)
{
    (void)state;
    char d[HTTP_DATE_LEN + 1] = {0};
    http_format_date(784111777, d); /* RFC 9110's example */
    assert_string_equal(d, "Sun, 06 Nov 1994 08:49:37 GMT");
    http_format_date(0, d);
    assert_string_equal(d, "Thu, 01 Jan 1970 00:00:00 GMT");
    http_format_date(951782400, d); /* a leap day */
    assert_string_equal(d, "Tue, 29 Feb 2000 00:00:00 GMT");
    http_format_date(4102444799LL, d);
    assert_string_equal(d, "Thu, 31 Dec 2099 23:59:59 GMT");
    /* against gmtime_r + strftime over a range of days */
    for (int64_t t = 0; t < 4102444800LL; t += 86400 * 37 + 3631) {
        char want[64];
        time_t tt = (time_t)t;
        struct tm tm;
        gmtime_r(&tt, &tm);
        strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        http_format_date(t, d);
        assert_string_equal(d, want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_simple_get),
        cmocka_unit_test(test_methods),
        cmocka_unit_test(test_bare_lf_and_whitespace),
        cmocka_unit_test(test_versions_and_keep_alive),
        cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_every_prefix_needs_more),
        cmocka_unit_test(test_pipelined),
        cmocka_unit_test(test_malformed_400),
        cmocka_unit_test(test_errors_are_early),
        cmocka_unit_test(test_other_statuses),
        cmocka_unit_test(test_size_limits),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_path_escapes),
        cmocka_unit_test(test_mime),
        cmocka_unit_test(test_date),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

/* tools/kvd/resp.h: RESP2 requests in, replies out, for gort-kvd.
 *
 * One resp_conn per client connection, owned by that connection's goroutine
 * (nothing here is shared, nothing locks). It holds the input buffer, the
 * incremental parser's state, the argument vector of the command just parsed
 * and the output buffer the replies of one batch are built into.
 *
 * Input buffer invariants (offsets into rbuf):
 *     0 <= rpos <= scan <= rend <= rcap
 *     [rpos, rend)  bytes not yet consumed: the command being parsed, then
 *                   whatever the client pipelined after it
 *     [rpos, scan)  the part of the command in progress already parsed
 *                   (header and complete bulk arguments)
 * A complete command's arguments point into [rpos, scan) and stay valid until
 * the next resp_next or resp_read_room call, which consume it (rpos = scan).
 *
 * Parsing follows redis 7's processMultibulkBuffer and processInlineBuffer,
 * with their error words and order of checks: a request starting with '*' is
 * a multibulk array of bulk strings, anything else one inline line split
 * like sdssplitargs (quotes, \xHH escapes), unescaped in place. Empty inline
 * lines and "*0" / "*-1" are skipped. A protocol error appends its
 * "-ERR Protocol error: ..." reply and the connection is to be closed after
 * the replies are written, as redis does.
 *
 * Memory: rbuf is RESP_IOBUF bytes and grows only to what the command in
 * progress needs (its parsed part plus the declared bulk, exactly; header
 * lines are bounded by RESP_INLINE_MAX), and shrinks back when a batch
 * leaves little behind. Limits: a bulk over RESP_BULK_MAX or a multibulk
 * count over RESP_MBULK_MAX is a protocol error; a command whose bytes would
 * exceed RESP_QUERY_MAX closes the connection without a reply (redis's
 * client-query-buffer-limit). So a client that never completes a command
 * holds at most RESP_QUERY_MAX, and in practice what it declared.
 *
 * Rejected: copying each argument out as redis does (a malloc per argument
 * on the hot path); re-parsing an incomplete command from its start on each
 * read (quadratic for a 1M-element command arriving in 16 KiB reads).
 */
#ifndef KVD_RESP_H
#define KVD_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define RESP_IOBUF      (16 * 1024)            /* default input and output buffer */
#define RESP_INLINE_MAX (64 * 1024)            /* redis's PROTO_INLINE_MAX_SIZE */
#define RESP_BULK_MAX   (512LL * 1024 * 1024)  /* redis's proto-max-bulk-len */
#define RESP_MBULK_MAX  (1024 * 1024)          /* arguments per command */
#define RESP_QUERY_MAX  (1024LL * 1024 * 1024) /* bytes of one command in progress */
#define RESP_WFLUSH     (64 * 1024)            /* write out a batch's replies beyond this */
#define RESP_KEEP_MAX   (4 * RESP_IOBUF)       /* larger buffers shrink back after use */

/* An argument: len bytes at p (not NUL-terminated). */
typedef struct resp_str {
    const char *p;
    size_t len;
} resp_str;

typedef struct resp_conn {
    /* input (see the invariants above) */
    char *rbuf;
    size_t rcap, rpos, scan, rend;
    int64_t mbulk; /* arguments still to read of the multibulk in progress; 0: none */
    int64_t bulk;  /* length of the bulk whose data is awaited; -1: its header is */
    bool done;     /* [rpos, scan) is a command handed out: consume it first */
    /* the command: argv[0..argc). While parsing, argv[i].p holds the offset
     * of the argument from rpos; resp_next turns them into pointers. */
    resp_str *argv;
    size_t argc, argcap;
    /* output: replies of the batch so far */
    char *wbuf;
    size_t wlen, wcap;
    bool close; /* close once the replies are written (protocol error, QUIT) */
} resp_conn;

enum {
    RESP_MORE = 0, /* no complete command: read more */
    RESP_CMD = 1,  /* argv[0..argc) is a command (argc >= 1) */
    RESP_ERR = -1, /* protocol error: its reply is in wbuf, close after writing it */
};

void resp_init(resp_conn *c);
void resp_destroy(resp_conn *c);

/* Parse the next command from the input. */
int resp_next(resp_conn *c);

/* Make room to read into rbuf + rend: returns the bytes available there, or
 * 0 when the command in progress would go past RESP_QUERY_MAX (close the
 * connection). Compacts and grows rbuf as the parser state requires. After
 * reading n bytes, add n to rend. */
size_t resp_read_room(resp_conn *c);

/* After a batch's replies were written (wlen reset to 0): give back input
 * and output buffers and argument vectors grown past their usual size. */
void resp_shrink(resp_conn *c);

/* ---- replies ------------------------------------------------------------------------ */

void resp_reserve_slow(resp_conn *c, size_t n);

/* Make room for n more output bytes: one compare on the fast path. */
static inline char *resp_reserve(resp_conn *c, size_t n)
{
    if (__builtin_expect(c->wcap - c->wlen < n, 0)) resp_reserve_slow(c, n);
    return c->wbuf + c->wlen;
}

static inline void resp_add_raw(resp_conn *c, const char *p, size_t n)
{
    char *w = resp_reserve(c, n);
    memcpy(w, p, n);
    c->wlen += n;
}

#define resp_add_lit(c, s) resp_add_raw((c), (s), sizeof(s) - 1)

/* Decimal digits of v into w (at least 20 bytes); returns how many. */
static inline size_t resp_u64toa(char *w, uint64_t v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++)
        w[i] = tmp[n - 1 - i];
    return n;
}

/* prefix, the decimal v, CRLF: ":12\r\n", "*3\r\n", "$5\r\n". */
static inline void resp_add_num(resp_conn *c, char prefix, int64_t v)
{
    char *w = resp_reserve(c, 24);
    size_t n = 0;
    w[n++] = prefix;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        w[n++] = '-';
        u = 0 - u;
    }
    n += resp_u64toa(w + n, u);
    w[n++] = '\r';
    w[n++] = '\n';
    c->wlen += n;
}

static inline void resp_add_int(resp_conn *c, int64_t v)
{
    resp_add_num(c, ':', v);
}

/* A bulk string reply: "$len\r\n" p "\r\n". */
static inline void resp_add_bulk(resp_conn *c, const char *p, size_t n)
{
    char *w = resp_reserve(c, n + 32);
    size_t k = 0;
    w[k++] = '$';
    k += resp_u64toa(w + k, n);
    w[k++] = '\r';
    w[k++] = '\n';
    memcpy(w + k, p, n);
    k += n;
    w[k++] = '\r';
    w[k++] = '\n';
    c->wlen += k;
}

static inline void resp_add_nil(resp_conn *c)
{
    resp_add_lit(c, "$-1\r\n");
}

/* "-ERR " msg "\r\n", with CR and LF in msg turned into spaces (as redis
 * does: arguments echoed in errors must not break the protocol). */
void resp_add_error(resp_conn *c, const char *msg, size_t n);
#define resp_add_error_lit(c, s) resp_add_error((c), (s), sizeof(s) - 1)

/* ---- helpers ------------------------------------------------------------------------ */

/* redis's string2ll: the whole of s[0..n) is a decimal long long, no sign
 * but '-', no leading zeros or spaces, no overflow, fewer than 21 bytes. */
bool resp_str2ll(const char *s, size_t n, long long *out);

/* Case-insensitive compare of an argument with a lower-case literal. */
static inline bool resp_eq(const resp_str *a, const char *lower, size_t n)
{
    if (a->len != n) return false;
    for (size_t i = 0; i < n; i++)
        if ((char)(a->p[i] | (('A' <= a->p[i] && a->p[i] <= 'Z') ? 0x20 : 0)) != lower[i])
            return false;
    return true;
}
#define resp_eq_lit(a, s) resp_eq((a), (s), sizeof(s) - 1)

#endif /* KVD_RESP_H */

/* tools/kvd/resp.c: the RESP2 request parser and the reply buffer of
 * gort-kvd (model, invariants and limits in resp.h).
 *
 * The parser is resumable: a multibulk command keeps its progress (arguments
 * still to read, the length of the bulk being read, where parsing resumes),
 * so each byte is looked at about once however the command is split across
 * reads. Inline commands are found by their newline (the search also resumes)
 * and split in place once the line is complete.
 *
 * Memory comes from gort_malloc: one input buffer, one output buffer and one
 * argument vector per connection, reused for every command.
 */
#include "resp.h"

#include <stdio.h>

#include "gort.h"

void resp_init(resp_conn *c)
{
    memset(c, 0, sizeof *c);
    c->rcap = RESP_IOBUF;
    c->rbuf = gort_malloc(c->rcap);
    c->wcap = RESP_IOBUF;
    c->wbuf = gort_malloc(c->wcap);
    c->argcap = 16;
    c->argv = gort_malloc(c->argcap * sizeof *c->argv);
    c->bulk = -1;
}

void resp_destroy(resp_conn *c)
{
    gort_free(c->rbuf);
    gort_free(c->wbuf);
    gort_free(c->argv);
    memset(c, 0, sizeof *c);
}

/* ---- replies ------------------------------------------------------------------------ */

void resp_reserve_slow(resp_conn *c, size_t n)
{
    size_t cap = c->wcap * 2;
    if (cap < c->wlen + n) cap = c->wlen + n;
    c->wbuf = gort_realloc(c->wbuf, cap);
    c->wcap = cap;
}

void resp_add_error(resp_conn *c, const char *msg, size_t n)
{
    char *w = resp_reserve(c, n + 7);
    memcpy(w, "-ERR ", 5);
    for (size_t i = 0; i < n; i++)
        w[5 + i] = (msg[i] == '\r' || msg[i] == '\n') ? ' ' : msg[i];
    w[5 + n] = '\r';
    w[6 + n] = '\n';
    c->wlen += n + 7;
}

/* ---- helpers ------------------------------------------------------------------------ */

bool resp_str2ll(const char *s, size_t n, long long *out)
{
    if (n == 0 || n >= 21) return false;
    if (n == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    size_t i = 0;
    bool neg = false;
    if (s[0] == '-') {
        neg = true;
        if (++i == n) return false;
    }
    if (s[i] < '1' || s[i] > '9') return false;
    unsigned long long v = (unsigned long long)(s[i++] - '0');
    for (; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return false;
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (~0ULL - d) / 10) return false;
        v = v * 10 + d;
    }
    if (neg) {
        if (v > (unsigned long long)INT64_MAX + 1) return false;
        *out = (long long)(0 - v);
    } else {
        if (v > (unsigned long long)INT64_MAX) return false;
        *out = (long long)v;
    }
    return true;
}

/* ---- parser ------------------------------------------------------------------------- */

static int proto_error(resp_conn *c, const char *msg, size_t n)
{
    resp_add_error(c, msg, n);
    c->close = true;
    return RESP_ERR;
}
#define PROTO_ERROR(c, s) proto_error((c), "Protocol error: " s, sizeof("Protocol error: " s) - 1)

/* Append an argument at offset off (from rpos), len bytes. */
static inline void push_arg(resp_conn *c, size_t off, size_t len)
{
    if (__builtin_expect(c->argc == c->argcap, 0)) {
        c->argcap *= 2;
        c->argv = gort_realloc(c->argv, c->argcap * sizeof *c->argv);
    }
    c->argv[c->argc].p = (const char *)(uintptr_t)off;
    c->argv[c->argc].len = len;
    c->argc++;
}

static inline bool is_hex(char ch)
{
    return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f') || (ch >= 'A' && ch <= 'F');
}

static inline int hex_val(char ch)
{
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    return ch - 'A' + 10;
}

static inline bool is_space(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\v' || ch == '\f';
}

/* sdssplitargs over line[0..n), in place: arguments are pushed as offsets
 * from rpos (line is rbuf + rpos). Unescaping never writes past the byte
 * being read, so the output overwrites only consumed input. As in redis,
 * which reads the line as a C string, a NUL byte ends it. false: unbalanced
 * quotes (or a closing quote not followed by a space). */
static bool split_inline(resp_conn *c, char *line, size_t n)
{
    const char *nul = memchr(line, 0, n);
    if (nul) n = (size_t)(nul - line);
    size_t i = 0, w = 0; /* read and write positions */
    for (;;) {
        while (i < n && is_space(line[i]))
            i++;
        if (i == n) return true;
        size_t start = w;
        bool inq = false, insq = false;
        for (bool done = false; !done;) {
            char ch = i < n ? line[i] : 0;
            if (inq) {
                if (ch == '\\' && i + 3 < n && line[i + 1] == 'x' && is_hex(line[i + 2]) &&
                    is_hex(line[i + 3])) {
                    line[w++] = (char)(hex_val(line[i + 2]) * 16 + hex_val(line[i + 3]));
                    i += 3;
                } else if (ch == '\\' && i + 1 < n) {
                    char e = line[++i];
                    switch (e) {
                    case 'n':
                        e = '\n';
                        break;
                    case 'r':
                        e = '\r';
                        break;
                    case 't':
                        e = '\t';
                        break;
                    case 'b':
                        e = '\b';
                        break;
                    case 'a':
                        e = '\a';
                        break;
                    default:
                        break;
                    }
                    line[w++] = e;
                } else if (ch == '"') {
                    /* the closing quote must be followed by a space or the end */
                    if (i + 1 < n && !is_space(line[i + 1])) return false;
                    done = true;
                } else if (i == n) {
                    return false; /* unterminated quotes */
                } else {
                    line[w++] = ch;
                }
            } else if (insq) {
                if (ch == '\\' && i + 1 < n && line[i + 1] == '\'') {
                    i++;
                    line[w++] = '\'';
                } else if (ch == '\'') {
                    if (i + 1 < n && !is_space(line[i + 1])) return false;
                    done = true;
                } else if (i == n) {
                    return false;
                } else {
                    line[w++] = ch;
                }
            } else {
                switch (ch) {
                case ' ':
                case '\n':
                case '\r':
                case '\t':
                case '\0':
                    done = true;
                    break;
                case '"':
                    inq = true;
                    break;
                case '\'':
                    insq = true;
                    break;
                default:
                    line[w++] = ch;
                    break;
                }
            }
            if (i < n) i++;
        }
        push_arg(c, start, w - start);
    }
}

/* One inline command at rpos: RESP_CMD (argc may be 0: an empty line),
 * RESP_MORE or RESP_ERR. */
static int parse_inline(resp_conn *c)
{
    char *nl = memchr(c->rbuf + c->scan, '\n', c->rend - c->scan);
    if (!nl) {
        if (c->rend - c->rpos > RESP_INLINE_MAX) return PROTO_ERROR(c, "too big inline request");
        c->scan = c->rend; /* the next search starts at the new bytes */
        return RESP_MORE;
    }
    char *line = c->rbuf + c->rpos;
    size_t n = (size_t)(nl - line);
    if (n > 0 && line[n - 1] == '\r') n--;
    c->argc = 0;
    if (!split_inline(c, line, n)) return PROTO_ERROR(c, "unbalanced quotes in request");
    c->scan = (size_t)(nl - c->rbuf) + 1;
    return RESP_CMD;
}

/* The line at s (avail bytes) up to its '\r', which must be followed by one
 * more byte (redis skips it unchecked): its length, or -1 when incomplete. */
static inline ptrdiff_t header_line(const char *s, size_t avail)
{
    const char *cr = memchr(s, '\r', avail);
    if (!cr || (size_t)(cr - s) + 2 > avail) return -1;
    return cr - s;
}

int resp_next(resp_conn *c)
{
    if (c->done) {
        c->done = false;
        c->rpos = c->scan;
    }
    for (;;) {
        if (c->mbulk == 0) {
            /* a new command starts at rpos (scan == rpos, or further into an
             * inline line whose newline has not arrived) */
            if (c->rpos == c->rend) return RESP_MORE;
            if (c->rbuf[c->rpos] != '*') {
                c->argc = 0;
                int r = parse_inline(c);
                if (r != RESP_CMD) return r;
                if (c->argc == 0) { /* empty line: nothing to run */
                    c->rpos = c->scan;
                    continue;
                }
                break;
            }
            const char *s = c->rbuf + c->rpos;
            size_t avail = c->rend - c->rpos;
            ptrdiff_t n = header_line(s, avail);
            if (n < 0) {
                if (avail > RESP_INLINE_MAX && !memchr(s, '\r', avail))
                    return PROTO_ERROR(c, "too big mbulk count string");
                return RESP_MORE;
            }
            long long ll;
            if (!resp_str2ll(s + 1, (size_t)n - 1, &ll) || ll > RESP_MBULK_MAX)
                return PROTO_ERROR(c, "invalid multibulk length");
            c->scan = c->rpos + (size_t)n + 2;
            if (ll <= 0) { /* "*0", "*-1": nothing to run */
                c->rpos = c->scan;
                continue;
            }
            c->mbulk = ll;
            c->bulk = -1;
            c->argc = 0;
        }
        while (c->mbulk > 0) {
            if (c->bulk < 0) {
                const char *s = c->rbuf + c->scan;
                size_t avail = c->rend - c->scan;
                ptrdiff_t n = header_line(s, avail);
                if (n < 0) {
                    if (avail > RESP_INLINE_MAX && !memchr(s, '\r', avail))
                        return PROTO_ERROR(c, "too big bulk count string");
                    return RESP_MORE;
                }
                if (s[0] != '$') {
                    /* "%c" of a NUL ends redis's C-string formatting there */
                    char msg[] = "Protocol error: expected '$', got 'x'";
                    size_t len = sizeof msg - 1;
                    if (s[0] == 0)
                        len -= 2;
                    else
                        msg[len - 2] = s[0];
                    return proto_error(c, msg, len);
                }
                long long ll;
                if (!resp_str2ll(s + 1, (size_t)n - 1, &ll) || ll < 0 || ll > RESP_BULK_MAX)
                    return PROTO_ERROR(c, "invalid bulk length");
                c->bulk = ll;
                c->scan += (size_t)n + 2;
            }
            if (c->rend - c->scan < (size_t)c->bulk + 2) return RESP_MORE;
            push_arg(c, c->scan - c->rpos, (size_t)c->bulk);
            c->scan += (size_t)c->bulk + 2; /* the CRLF is skipped unchecked, as redis does */
            c->bulk = -1;
            c->mbulk--;
        }
        break;
    }
    /* complete: offsets become pointers */
    char *base = c->rbuf + c->rpos;
    for (size_t i = 0; i < c->argc; i++)
        c->argv[i].p = base + (uintptr_t)c->argv[i].p;
    c->done = true;
    return RESP_CMD;
}

/* ---- buffers ------------------------------------------------------------------------ */

size_t resp_read_room(resp_conn *c)
{
    if (c->done) {
        c->done = false;
        c->rpos = c->scan;
    }
    if (c->rpos == c->rend) /* nothing pending: start over at the front */
        c->rpos = c->scan = c->rend = 0;
    size_t pending = c->rend - c->rpos;
    size_t need = RESP_IOBUF / 2; /* the least free space worth a read */
    bool in_bulk = c->mbulk > 0 && c->bulk >= 0;
    if (in_bulk) {
        /* the command so far plus the whole bulk being read */
        size_t want = (c->scan - c->rpos) + (size_t)c->bulk + 2;
        if (want > pending && want - pending > need) need = want - pending;
    }
    if ((long long)(pending + need) > RESP_QUERY_MAX) return 0;
    if (c->rcap - c->rend >= need) return c->rcap - c->rend;
    if (c->rpos > 0) { /* compact: the pending bytes move to the front */
        memmove(c->rbuf, c->rbuf + c->rpos, pending);
        c->scan -= c->rpos;
        c->rend = pending;
        c->rpos = 0;
        if (c->rcap - c->rend >= need) return c->rcap - c->rend;
    }
    /* grow: exactly to the end of a bulk being read, else by half (header
     * lines are bounded by RESP_INLINE_MAX, whole commands by the check above) */
    size_t cap = c->rend + need;
    if (!in_bulk && cap < c->rcap + c->rcap / 2) cap = c->rcap + c->rcap / 2;
    c->rbuf = gort_realloc(c->rbuf, cap);
    c->rcap = cap;
    return c->rcap - c->rend;
}

void resp_shrink(resp_conn *c)
{
    if (c->done) {
        c->done = false;
        c->rpos = c->scan;
    }
    /* (not while a large bulk is being read into the buffer grown for it) */
    bool big_bulk = c->mbulk > 0 && c->bulk > RESP_IOBUF / 2;
    if (c->rcap > RESP_KEEP_MAX && c->rend - c->rpos <= RESP_IOBUF / 2 && !big_bulk) {
        size_t pending = c->rend - c->rpos;
        char *nb = gort_malloc(RESP_IOBUF);
        memcpy(nb, c->rbuf + c->rpos, pending);
        gort_free(c->rbuf);
        c->rbuf = nb;
        c->rcap = RESP_IOBUF;
        c->scan -= c->rpos;
        c->rend = pending;
        c->rpos = 0;
    }
    if (c->wcap > RESP_KEEP_MAX && c->wlen == 0) {
        gort_free(c->wbuf);
        c->wcap = RESP_IOBUF;
        c->wbuf = gort_malloc(c->wcap);
    }
    if (c->argcap > 1024 && c->mbulk == 0) {
        gort_free(c->argv);
        c->argcap = 16;
        c->argv = gort_malloc(c->argcap * sizeof *c->argv);
        c->argc = 0;
    }
}

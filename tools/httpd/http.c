/* tools/httpd/http.c: HTTP/1.1 request heads, chunked bodies, request paths and dates for
 * gort-httpd (the contract is in http.h).
 *
 * http_parse_request is one forward pass over the bytes, never past HTTP_MAX_HEAD of them:
 * the request line, then header lines until the blank line. Each step that runs out of bytes
 * jumps to `more`, which says "read more" unless the limit was reached (then the head is too
 * long). Each step that sees a byte the grammar forbids returns the status at once, so a
 * malformed request is answered without waiting for the rest of it.
 *
 * Per byte the pass does one table lookup (token characters) or one comparison (value
 * characters); the five headers the server acts on are told apart by their name length first.
 */
#include "http.h"

#include <string.h>

/* RFC 9110 tchar: "!#$%&'*+-.^_`|~", digits, letters. */
static const uint8_t http_tchar[256] = {
    ['!'] = 1, ['#'] = 1, ['$'] = 1, ['%'] = 1,         ['&'] = 1,         ['\''] = 1,
    ['*'] = 1, ['+'] = 1, ['-'] = 1, ['.'] = 1,         ['^'] = 1,         ['_'] = 1,
    ['`'] = 1, ['|'] = 1, ['~'] = 1, ['0' ... '9'] = 1, ['A' ... 'Z'] = 1, ['a' ... 'z'] = 1,
};

static inline int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

/* Do the n bytes at s equal the lower-case literal lit, ignoring case? */
static bool eq_ci(const unsigned char *s, size_t n, const char *lit)
{
    size_t i = 0;
    for (; i < n && lit[i]; i++)
        if (lower(s[i]) != lit[i]) return false;
    return i == n && !lit[i];
}

static int method_of(const unsigned char *m, size_t n)
{
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3)) return HTTP_GET;
        if (!memcmp(m, "PUT", 3)) return HTTP_PUT;
        break;
    case 4:
        if (!memcmp(m, "HEAD", 4)) return HTTP_HEAD;
        if (!memcmp(m, "POST", 4)) return HTTP_POST;
        break;
    case 5:
        if (!memcmp(m, "PATCH", 5)) return HTTP_PATCH;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return HTTP_DELETE;
        break;
    case 7:
        if (!memcmp(m, "OPTIONS", 7)) return HTTP_OPTIONS;
        break;
    }
    return -1;
}

static bool is_digit(int c)
{
    return c >= '0' && c <= '9';
}

/* origin-form "/...", absolute-form "scheme://...", or "*" for OPTIONS. */
static bool target_ok(const unsigned char *t, size_t n, int method)
{
    if (t[0] == '/') return true;
    if (n == 1 && t[0] == '*') return method == HTTP_OPTIONS;
    size_t i = 0;
    while (i < n && ((lower(t[i]) >= 'a' && lower(t[i]) <= 'z') || is_digit(t[i]) || t[i] == '+' ||
                     t[i] == '-' || t[i] == '.'))
        i++;
    return i > 0 && n - i > 3 && !memcmp(t + i, "://", 3);
}

/* What the header lines said, beyond struct http_request. */
struct head_state {
    unsigned hosts;  /* Host lines */
    bool have_cl;    /* a Content-Length line was seen */
    bool cl_large;   /* its value exceeds HTTP_MAX_BODY */
    bool have_te;    /* a Transfer-Encoding line was seen */
    bool conn_close; /* Connection: close */
    bool conn_keep;  /* Connection: keep-alive */
};

/* Connection: a comma-separated list of tokens. */
static void connection_tokens(struct head_state *st, const unsigned char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t s = i;
        while (i < n && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
            i++;
        if (eq_ci(v + s, i - s, "close")) st->conn_close = true;
        if (eq_ci(v + s, i - s, "keep-alive")) st->conn_keep = true;
    }
}

/* Act on one header line; 0 or -status. */
static int header(struct http_request *req, struct head_state *st, const unsigned char *name,
                  size_t nlen, const unsigned char *v, size_t vlen)
{
    switch (nlen) {
    case 4:
        if (eq_ci(name, 4, "host")) st->hosts++;
        return 0;
    case 6:
        if (!eq_ci(name, 6, "expect")) return 0;
        if (!eq_ci(v, vlen, "100-continue")) return -417;
        req->expect_continue = true;
        return 0;
    case 10:
        if (eq_ci(name, 10, "connection")) connection_tokens(st, v, vlen);
        return 0;
    case 14: {
        if (!eq_ci(name, 14, "content-length")) return 0;
        if (vlen == 0) return -400;
        uint64_t cl = 0;
        bool large = false;
        for (size_t i = 0; i < vlen; i++) {
            if (!is_digit(v[i])) return -400;
            cl = cl * 10 + (uint64_t)(v[i] - '0');
            if (cl > HTTP_MAX_BODY) { /* stop growing: no overflow however many digits */
                large = true;
                cl = HTTP_MAX_BODY + 1;
            }
        }
        if (st->have_cl && (cl != req->content_length || large != st->cl_large)) return -400;
        st->have_cl = true;
        st->cl_large = large;
        req->content_length = cl;
        return 0;
    }
    case 17:
        if (!eq_ci(name, 17, "transfer-encoding")) return 0;
        if (st->have_te) return -400; /* chunked twice, or chunked then more: never valid */
        if (!eq_ci(v, vlen, "chunked")) return -501;
        st->have_te = true;
        req->chunked = true;
        return 0;
    }
    return 0;
}

int http_parse_request(const char *buf, size_t len, struct http_request *req)
{
    const unsigned char *p = (const unsigned char *)buf;
    const unsigned char *end = p + (len < HTTP_MAX_HEAD ? len : HTTP_MAX_HEAD);
    bool capped = len >= HTTP_MAX_HEAD; /* running out of bytes means the head is too long */
    bool in_line = true;                /* still in the request line */
    struct head_state st = {0};

    memset(req, 0, sizeof *req);

    /* request-line = method SP request-target SP HTTP-version CRLF */
    const unsigned char *m = p;
    while (p < end && http_tchar[*p])
        p++;
    if (p == end) goto more;
    if (*p != ' ' || p == m) return -400;
    int method = method_of(m, (size_t)(p - m));
    if (method < 0) return -501;
    req->method = (uint8_t)method;
    const unsigned char *t = ++p;
    while (p<end && * p> ' ' && *p != 0x7f)
        p++;
    if (p == end) goto more;
    if (*p != ' ' || p == t || !target_ok(t, (size_t)(p - t), method)) return -400;
    req->target = (const char *)t;
    req->target_len = (uint32_t)(p - t);
    p++;
    static const char http_slash[] = "HTTP/";
    for (int i = 0; i < 5; i++, p++) {
        if (p == end) goto more;
        if (*p != (unsigned char)http_slash[i]) return -400;
    }
    if (p == end) goto more;
    if (!is_digit(*p)) return -400;
    int major = *p++ - '0';
    if (p == end) goto more;
    if (*p++ != '.') return -400;
    if (p == end) goto more;
    if (!is_digit(*p)) return -400;
    int minor = *p++ - '0';
    if (p == end) goto more;
    if (*p == '\r') {
        if (++p == end) goto more;
    }
    if (*p++ != '\n') return -400;
    if (major != 1) return -505;
    req->minor = minor > 1 ? 1 : (uint8_t)minor;
    in_line = false;

    /* *(field-name ":" OWS field-value OWS CRLF) CRLF */
    for (;;) {
        if (p == end) goto more;
        if (*p == '\r') {
            if (++p == end) goto more;
            if (*p != '\n') return -400;
        }
        if (*p == '\n') {
            p++;
            break;
        }
        const unsigned char *name = p;
        while (p < end && http_tchar[*p])
            p++;
        if (p == end) goto more;
        /* also refuses obs-fold (a line starting with SP/HT) and whitespace before ':' */
        if (*p != ':' || p == name) return -400;
        size_t nlen = (size_t)(p - name);
        p++;
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        const unsigned char *v = p;
        while (p < end && ((*p >= ' ' && *p != 0x7f) || *p == '\t')) /* VCHAR, obs-text, WSP */
            p++;
        if (p == end) goto more;
        const unsigned char *ve = p;
        if (*p == '\r') {
            if (++p == end) goto more;
        }
        if (*p++ != '\n') return -400;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t'))
            ve--;
        int rc = header(req, &st, name, nlen, v, (size_t)(ve - v));
        if (rc) return rc;
    }

    if (st.have_te && (st.have_cl || req->minor == 0)) return -400;
    if (st.hosts > 1 || (req->minor == 1 && st.hosts == 0)) return -400;
    if (st.cl_large) return -413;
    req->keep_alive = req->minor == 1 ? !st.conn_close : st.conn_keep && !st.conn_close;
    return (int)(p - (const unsigned char *)buf);

more:
    if (capped) return in_line ? -414 : -431;
    return 0;
}

/* ---- chunked bodies ---------------------------------------------------------------------- */

/* chunked-body = *chunk last-chunk trailer-section CRLF
 * chunk = chunk-size [ chunk-ext ] CRLF chunk-data CRLF;  last-chunk = 1*"0" [ chunk-ext ] CRLF */
enum {
    CK_SIZE0,    /* first hex digit of a chunk-size */
    CK_SIZE,     /* more hex digits, or what ends the size */
    CK_EXT,      /* chunk-ext: skipped up to the line end */
    CK_SIZE_LF,  /* LF after the size line's CR */
    CK_DATA,     /* left data bytes */
    CK_DATA_CR,  /* CR (or bare LF) after chunk-data */
    CK_DATA_LF,  /* LF after chunk-data's CR */
    CK_TRAILER0, /* start of a trailer line, or the final blank line */
    CK_TRAILER,  /* inside a trailer line: skipped up to its end */
    CK_END_LF,   /* LF of the final blank line */
};

static int hexval(int c)
{
    if (is_digit(c)) return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

int http_chunked_skip(struct http_chunked *c, const char *buf, size_t len, size_t *used)
{
    const unsigned char *p = (const unsigned char *)buf;
    size_t i = 0;
    while (i < len) {
        if (c->state == CK_DATA) { /* the bulk: skip a run of data bytes at once */
            size_t take = len - i < c->left ? len - i : (size_t)c->left;
            i += take;
            c->left -= take;
            if (c->left == 0) c->state = CK_DATA_CR;
            continue;
        }
        int ch = p[i++];
        if (++c->frame > HTTP_MAX_HEAD * 8) return -413; /* endless extensions or trailers */
        switch (c->state) {
        case CK_SIZE0:
        case CK_SIZE: {
            int h = hexval(ch);
            if (h >= 0) {
                c->left = c->left * 16 + (uint64_t)h;
                if (c->left > HTTP_MAX_BODY) return -413; /* also bounds the digits */
                c->state = CK_SIZE;
                break;
            }
            if (c->state == CK_SIZE0) return -400;
            if (ch == ';' || ch == ' ' || ch == '\t') {
                c->state = CK_EXT;
                break;
            }
            if (ch == '\r') {
                c->state = CK_SIZE_LF;
                break;
            }
            if (ch != '\n') return -400;
            goto size_line_done;
        }
        case CK_EXT:
            if (ch == '\r') c->state = CK_SIZE_LF;
            if (ch == '\n') goto size_line_done;
            if (ch < ' ' && ch != '\t' && ch != '\r') return -400;
            break;
        case CK_SIZE_LF:
            if (ch != '\n') return -400;
size_line_done:
            if (c->left == 0) {
                c->state = CK_TRAILER0;
                break;
            }
            c->data += c->left;
            if (c->data > HTTP_MAX_BODY) return -413;
            c->state = CK_DATA;
            break;
        case CK_DATA_CR:
            if (ch == '\r')
                c->state = CK_DATA_LF;
            else if (ch == '\n')
                c->state = CK_SIZE0;
            else
                return -400;
            break;
        case CK_DATA_LF:
            if (ch != '\n') return -400;
            c->state = CK_SIZE0;
            break;
        case CK_TRAILER0:
            if (ch == '\n') goto done;
            c->state = ch == '\r' ? CK_END_LF : CK_TRAILER;
            break;
        case CK_TRAILER:
            if (ch == '\n') c->state = CK_TRAILER0;
            break;
        case CK_END_LF:
            if (ch != '\n') return -400;
            goto done;
        }
    }
    *used = i;
    return 0;
done:
    *used = i;
    return 1;
}

/* ---- paths ------------------------------------------------------------------------------- */

int http_path_decode(const char *target, size_t len, char *out, size_t outsz, bool *slash)
{
    const char *t = target, *end = target + len;
    *slash = false;
    if (len == 0 || outsz < 2) return -400;
    if (*t != '/') { /* absolute-form: skip "scheme://authority" */
        const char *s = memmem(t, len, "://", 3);
        if (!s) return -400;
        t = memchr(s + 3, '/', (size_t)(end - (s + 3)));
        if (!t) t = end; /* "http://host": the root */
    }
    const char *q = t;
    while (q < end && *q != '?' && *q != '#')
        q++;
    end = q;

    /* 1. percent-decode into out (decoded '/' splits segments too: "..%2f" is caught) */
    size_t n = 0;
    for (const char *s = t; s < end; s++) {
        int c = (unsigned char)*s;
        if (c == '%') {
            int hi = end - s > 2 ? hexval((unsigned char)s[1]) : -1;
            int lo = hi >= 0 ? hexval((unsigned char)s[2]) : -1;
            if (lo < 0) return -400;
            c = hi * 16 + lo;
            s += 2;
            if (c == 0) return -400;
        }
        if (n + 1 >= outsz) return -414;
        out[n++] = (char)c;
    }
    *slash = n > 0 && out[n - 1] == '/';

    /* 2. segments, in place: drop "" and ".", refuse ".." */
    size_t r = 0, w = 0;
    while (r < n) {
        while (r < n && out[r] == '/')
            r++;
        size_t s = r;
        while (r < n && out[r] != '/')
            r++;
        size_t sl = r - s;
        if (sl == 0 || (sl == 1 && out[s] == '.')) continue;
        if (sl == 2 && out[s] == '.' && out[s + 1] == '.') return -403;
        if (w) out[w++] = '/';
        memmove(out + w, out + s, sl);
        w += sl;
    }
    if (w == 0) out[w++] = '.';
    out[w] = 0;
    return (int)w;
}

const char *http_mime_type(const char *path, size_t len)
{
    static const struct {
        const char *ext, *type;
    } types[] = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"txt", "text/plain; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"json", "application/json"},
        {"xml", "application/xml"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"wasm", "application/wasm"},
        {"pdf", "application/pdf"},
        {"gz", "application/gzip"},
        {"zip", "application/zip"},
    };
    size_t i = len;
    while (i > 0 && path[i - 1] != '.' && path[i - 1] != '/')
        i--;
    if (i > 0 && path[i - 1] == '.') {
        for (size_t k = 0; k < sizeof types / sizeof types[0]; k++)
            if (eq_ci((const unsigned char *)path + i, len - i, types[k].ext)) return types[k].type;
    }
    return "application/octet-stream";
}

const char *http_reason(int status)
{
    switch (status) {
    case 100:
        return "Continue";
    case 200:
        return "OK";
    case 301:
        return "Moved Permanently";
    case 400:
        return "Bad Request";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 414:
        return "URI Too Long";
    case 417:
        return "Expectation Failed";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 505:
        return "HTTP Version Not Supported";
    }
    return "Unknown";
}

/* ---- dates ------------------------------------------------------------------------------- */

static void two(char *p, unsigned v)
{
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void http_format_date(int64_t unix_sec, char out[HTTP_DATE_LEN])
{
    static const char wdays[] = "SunMonTueWedThuFriSat";
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    int64_t days = unix_sec / 86400, secs = unix_sec % 86400;
    unsigned wday = (unsigned)((days + 4) % 7); /* 1970-01-01 was a Thursday */
    /* civil_from_days (H. Hinnant): the proleptic Gregorian date of a day count */
    int64_t z = days + 719468;
    int64_t era = z / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t y = (int64_t)yoe + era * 400;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    unsigned d = doy - (153 * mp + 2) / 5 + 1;
    unsigned m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;

    memcpy(out, wdays + 3 * wday, 3);
    memcpy(out + 3, ", ", 2);
    two(out + 5, d);
    out[7] = ' ';
    memcpy(out + 8, months + 3 * (m - 1), 3);
    out[11] = ' ';
    two(out + 12, (unsigned)(y / 100 % 100));
    two(out + 14, (unsigned)(y % 100));
    out[16] = ' ';
    two(out + 17, (unsigned)(secs / 3600));
    out[19] = ':';
    two(out + 20, (unsigned)(secs / 60 % 60));
    out[22] = ':';
    two(out + 23, (unsigned)(secs % 60));
    memcpy(out + 25, " GMT", 4);
}

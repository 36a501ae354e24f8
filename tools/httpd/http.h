/* tools/httpd/http.h: the HTTP/1.1 request parser of gort-httpd (http.c), on its own: no I/O,
 * no allocation, no state between calls beyond what the caller keeps.
 *
 * Model: the server reads into a fixed buffer and calls http_parse_request on the unparsed
 * bytes; a complete head is parsed in one pass and described by pointers into the buffer, a
 * prefix of a head asks for more bytes (0), a bad head gets the status to answer (-status).
 * Bodies are not kept: the caller discards Content-Length bytes itself and chunked bodies
 * through http_chunked_skip. Limits make every input cost bounded memory:
 *   head (request line + headers + blank line) <= HTTP_MAX_HEAD, else 431 (414 when the
 *   request line alone does not fit);  body <= HTTP_MAX_BODY, else 413.
 * Strictness follows RFC 9112: CRLF or bare LF line ends, no whitespace before a header's
 * colon, no obs-fold, no control bytes, Host required in HTTP/1.1, Content-Length and
 * Transfer-Encoding not both (request smuggling), only "chunked" as transfer coding (501).
 * Rejected: a table of headers (the server needs five of them; the rest are checked and
 * skipped, so a request never allocates); incremental parsing state (a partial head is
 * re-parsed from its start when more arrives: bounded by HTTP_MAX_HEAD, and rare). */
#ifndef GORT_HTTPD_HTTP_H
#define GORT_HTTPD_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HTTP_MAX_HEAD 8192      /* bytes of a request head, blank line included */
#define HTTP_MAX_BODY (1 << 20) /* bytes of a request body (discarded) */
#define HTTP_MAX_PATH 4096      /* bytes of a decoded path (http_path_decode) */
#define HTTP_DATE_LEN 29        /* "Sun, 06 Nov 1994 08:49:37 GMT" */

/* Methods the server knows; any other token is answered 501. */
enum http_method {
    HTTP_GET,
    HTTP_HEAD,
    HTTP_POST,
    HTTP_PUT,
    HTTP_DELETE,
    HTTP_OPTIONS,
    HTTP_PATCH
};

/* One parsed request head. Pointers are into the caller's buffer. */
struct http_request {
    const char *target;      /* request-target as sent ("/a?b", "http://h/a", "*") */
    uint32_t target_len;     /* > 0 */
    uint8_t method;          /* enum http_method */
    uint8_t minor;           /* HTTP/1.minor: 0 or 1 (1.2 .. 1.9 are read as 1.1) */
    bool keep_alive;         /* the connection may carry another request after this one */
    bool chunked;            /* Transfer-Encoding: chunked (then content_length == 0) */
    bool expect_continue;    /* Expect: 100-continue */
    uint64_t content_length; /* body bytes that follow the head; <= HTTP_MAX_BODY */
};

/* Parse the request head at the start of buf[0, len).
 * Returns the head's length (> 0; the body, if any, follows it) with *req filled; 0 when buf
 * holds a valid prefix of a head that may still complete within HTTP_MAX_HEAD (read more);
 * -status when the head is invalid: -400 malformed, -413 body over HTTP_MAX_BODY, -414 request
 * line over HTTP_MAX_HEAD, -417 an Expect other than 100-continue, -431 head over
 * HTTP_MAX_HEAD, -501 unknown method or transfer coding, -505 HTTP major version other than 1.
 * Errors are reported as soon as the bytes show them, complete head or not. Reads at most
 * HTTP_MAX_HEAD bytes of buf. */
int http_parse_request(const char *buf, size_t len, struct http_request *req);

/* Discarding a chunked body. Zero-initialise before the body's first byte. */
struct http_chunked {
    uint8_t state;  /* where in the chunk grammar the next byte falls (http.c) */
    uint64_t left;  /* chunk-size being read, then data bytes left in the chunk */
    uint64_t data;  /* data bytes so far: <= HTTP_MAX_BODY */
    uint64_t frame; /* size lines, extensions, trailers so far: <= HTTP_MAX_HEAD * 8 */
};

/* Consume body bytes from buf[0, len); *used says how many belonged to the body.
 * Returns 1 when the body ended (the next request starts at buf + *used), 0 when every byte
 * was consumed and the body goes on, -400 malformed framing, -413 too large. */
int http_chunked_skip(struct http_chunked *c, const char *buf, size_t len, size_t *used);

/* The file path a request-target names, for serving files under a root directory.
 * Takes the path of an origin-form or absolute-form target, drops the query, percent-decodes
 * it, then splits it into segments, drops empty and "." segments and refuses "..". Writes the
 * relative path ("a/b.txt"; "." for the root) NUL-terminated to out[0, outsz) and sets *slash
 * when the path ends with '/'. Returns its length (> 0), or -400 (bad escape, NUL byte, target
 * without a path), -403 (a ".." segment, decoded or not), -414 (longer than outsz - 1). */
int http_path_decode(const char *target, size_t len, char *out, size_t outsz, bool *slash);

/* Content-Type for a file name, from its extension ("application/octet-stream" when unknown). */
const char *http_mime_type(const char *path, size_t len);

/* Reason phrase of a status code ("Not Found"); "Unknown" for codes the server never sends. */
const char *http_reason(int status);

/* IMF-fixdate of a Unix time (seconds >= 0) into out[0, HTTP_DATE_LEN) (no NUL). Pure
 * arithmetic: no locale, no time-zone lock (gmtime_r takes glibc's tz lock). */
void http_format_date(int64_t unix_sec, char out[HTTP_DATE_LEN]);

#endif /* GORT_HTTPD_HTTP_H */

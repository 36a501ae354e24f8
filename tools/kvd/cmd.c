/* tools/kvd/cmd.c: gort-kvd's commands (the string subset of redis 7, with
 * its reply formats and error words), run against the sharded store.
 *
 * A command is looked up in a small table (GET and SET first), its arity
 * checked as redis does (n > 0: exactly n arguments with the name; n < 0: at
 * least -n), then run. Each key operation locks one shard for the lookup and
 * the reply copy, nothing more: no allocation on the GET path, and none on a
 * SET that overwrites a value of similar size. Values over KVD_BIG are copied
 * into their new entry before the shard is locked.
 *
 * Differences from redis, on purpose: one database (SELECT 0 only); MSET,
 * MGET, DEL and EXISTS are atomic per key, not across keys (keys live in
 * different shards under different locks); COMMAND and COMMAND DOCS answer
 * an empty array (enough for redis-cli and redis-benchmark), CONFIG GET knows
 * only what redis-benchmark asks for ("save", "appendonly"), INFO is short.
 */
#include "cmd.h"

#include <limits.h>
#include <stdio.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#define KVD_BIG 4096 /* values larger than this are copied outside the shard lock */

typedef void cmd_fn(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc);

typedef struct cmd_def {
    const char *name; /* lower case, as in redis's error messages */
    size_t len;
    int arity; /* redis's: n > 0 exactly n arguments, n < 0 at least -n */
    cmd_fn *fn;
} cmd_def;

/* ---- replies shared by commands ---------------------------------------------------- */

static void reply_arity(resp_conn *c, const char *fullname)
{
    char msg[128];
    int n = snprintf(msg, sizeof msg, "wrong number of arguments for '%s' command", fullname);
    resp_add_error(c, msg, (size_t)n);
}

#define ERR_NOT_INT  "value is not an integer or out of range"
#define ERR_SYNTAX   "syntax error"
#define ERR_OVERFLOW "increment or decrement would overflow"

/* Bytes of a before its first NUL, at most max (C's "%.*s" of an argument). */
static size_t cstr_len(const resp_str *a, size_t max)
{
    size_t n = a->len < max ? a->len : max;
    const char *nul = memchr(a->p, 0, n);
    return nul ? (size_t)(nul - a->p) : n;
}

static size_t append(char *msg, size_t n, const char *p, size_t len)
{
    memcpy(msg + n, p, len);
    return n + len;
}
#define APPEND_LIT(msg, n, s) append((msg), (n), (s), sizeof(s) - 1)

/* redis 7's "unknown command '%.128s', with args beginning with: " followed
 * by "'%.*s' " per argument while that part is under 128 bytes, each cut to
 * what is left of the 128. */
static void reply_unknown(resp_conn *c, const resp_str *argv, size_t argc)
{
    char msg[512];
    size_t n = APPEND_LIT(msg, 0, "unknown command '");
    n = append(msg, n, argv[0].p, cstr_len(&argv[0], 128));
    n = APPEND_LIT(msg, n, "', with args beginning with: ");
    size_t args = 0;
    for (size_t i = 1; i < argc && args < 128; i++) {
        size_t take = cstr_len(&argv[i], 128 - args);
        n = APPEND_LIT(msg, n, "'");
        n = append(msg, n, argv[i].p, take);
        n = APPEND_LIT(msg, n, "' ");
        args += take + 3;
    }
    resp_add_error(c, msg, n);
}

/* redis 7's "unknown subcommand '%.128s'. Try %s HELP." (name upper case). */
static void reply_unknown_sub(resp_conn *c, const char *upper, const resp_str *sub)
{
    char msg[256];
    size_t n = APPEND_LIT(msg, 0, "unknown subcommand '");
    n = append(msg, n, sub->p, cstr_len(sub, 128));
    n = APPEND_LIT(msg, n, "'. Try ");
    n = append(msg, n, upper, strlen(upper));
    n = APPEND_LIT(msg, n, " HELP.");
    resp_add_error(c, msg, n);
}

/* ---- keys ------------------------------------------------------------------------------ */

typedef struct key_ref {
    const char *p;
    size_t n;
    uint64_t h;
    kv_shard *sh;
} key_ref;

static inline key_ref key_of(kv_store *s, const resp_str *a)
{
    key_ref k = {a->p, a->len, kv_hash(s->seed, a->p, a->len), NULL};
    k.sh = kv_shard_of(s, k.h);
    return k;
}

/* The value of key as a bulk reply, or nil. */
static void get_reply(resp_conn *c, kv_store *s, const resp_str *key)
{
    key_ref k = key_of(s, key);
    gort_mutex_lock(&k.sh->mu);
    kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
    if (l)
        resp_add_bulk(c, kv_val(*l), (*l)->vlen);
    else
        resp_add_nil(c);
    gort_mutex_unlock(&k.sh->mu);
}

static void cmd_get(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    get_reply(c, s, &argv[1]);
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A gort_now() deadline rel_ms milliseconds ahead (rel_ms > 0), saturating. */
static int64_t deadline_in(int64_t rel_ms)
{
    int64_t now = gort_now();
    if (rel_ms > (INT64_MAX - now) / 1000000) return INT64_MAX;
    return now + rel_ms * 1000000;
}

enum {
    SET_NX = 1,
    SET_XX = 2,
    SET_GET = 4,
    SET_KEEPTTL = 8,
    SET_EX = 16,
    SET_PX = 32,
    SET_EXAT = 64,
    SET_PXAT = 128,
};
#define SET_ANY_TTL (SET_EX | SET_PX | SET_EXAT | SET_PXAT)

/* SET key value [NX|XX] [GET] [EX s|PX ms|EXAT ts|PXAT ms-ts|KEEPTTL], with
 * redis 7's option rules (parseExtendedStringArgumentsOrReply) and checks
 * (getExpireMillisecondsOrReply). */
static void cmd_set(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    unsigned flags = 0;
    const resp_str *ttl_arg = NULL;
    for (size_t j = 3; j < argc; j++) {
        const resp_str *o = &argv[j];
        bool has_next = j + 1 < argc;
        if (resp_eq_lit(o, "nx") && !(flags & SET_XX)) {
            flags |= SET_NX;
        } else if (resp_eq_lit(o, "xx") && !(flags & SET_NX)) {
            flags |= SET_XX;
        } else if (resp_eq_lit(o, "get")) {
            flags |= SET_GET;
        } else if (resp_eq_lit(o, "keepttl") && !(flags & SET_ANY_TTL)) {
            flags |= SET_KEEPTTL;
        } else if (resp_eq_lit(o, "ex") && !(flags & (SET_KEEPTTL | (SET_ANY_TTL & ~SET_EX))) &&
                   has_next) {
            flags |= SET_EX;
            ttl_arg = &argv[++j];
        } else if (resp_eq_lit(o, "px") && !(flags & (SET_KEEPTTL | (SET_ANY_TTL & ~SET_PX))) &&
                   has_next) {
            flags |= SET_PX;
            ttl_arg = &argv[++j];
        } else if (resp_eq_lit(o, "exat") && !(flags & (SET_KEEPTTL | (SET_ANY_TTL & ~SET_EXAT))) &&
                   has_next) {
            flags |= SET_EXAT;
            ttl_arg = &argv[++j];
        } else if (resp_eq_lit(o, "pxat") && !(flags & (SET_KEEPTTL | (SET_ANY_TTL & ~SET_PXAT))) &&
                   has_next) {
            flags |= SET_PXAT;
            ttl_arg = &argv[++j];
        } else {
            resp_add_error_lit(c, ERR_SYNTAX);
            return;
        }
    }
    int64_t expire = 0;
    bool already_expired = false;
    if (ttl_arg) {
        long long ms;
        if (!resp_str2ll(ttl_arg->p, ttl_arg->len, &ms)) {
            resp_add_error_lit(c, ERR_NOT_INT);
            return;
        }
        bool secs = flags & (SET_EX | SET_EXAT);
        if (ms <= 0 || (secs && ms > LLONG_MAX / 1000)) goto bad_expire;
        if (secs) ms *= 1000;
        int64_t wall = wall_ms();
        int64_t rel;
        if (flags & (SET_EX | SET_PX)) {
            if (ms > INT64_MAX - wall) goto bad_expire; /* redis: now + ms overflows */
            rel = ms;
        } else {
            rel = ms - wall;
        }
        if (rel <= 0)
            already_expired = true;
        else
            expire = deadline_in(rel);
    }

    key_ref k = key_of(s, &argv[1]);
    const resp_str *v = &argv[2];
    kv_entry *big = NULL, *old = NULL;
    if (v->len > KVD_BIG && !already_expired)
        big = kv_entry_new(k.h, k.p, k.n, v->p, v->len, expire);
    gort_mutex_lock(&k.sh->mu);
    kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
    if (flags & SET_GET) {
        if (l)
            resp_add_bulk(c, kv_val(*l), (*l)->vlen);
        else
            resp_add_nil(c);
    }
    if (((flags & SET_NX) && l) || ((flags & SET_XX) && !l)) {
        gort_mutex_unlock(&k.sh->mu);
        gort_free(big);
        if (!(flags & SET_GET)) resp_add_nil(c);
        return;
    }
    if (l && (flags & SET_KEEPTTL)) expire = (*l)->expire;
    if (already_expired) {
        if (l) kv_del_locked(k.sh, l);
    } else if (big) {
        big->expire = expire;
        old = kv_link_locked(k.sh, l, big);
    } else {
        kv_put_locked(k.sh, l, k.h, k.p, k.n, v->p, v->len, expire);
    }
    gort_mutex_unlock(&k.sh->mu);
    gort_free(old);
    if (!(flags & SET_GET)) resp_add_lit(c, "+OK\r\n");
    return;
bad_expire:
    resp_add_error_lit(c, "invalid expire time in 'set' command");
}

static void cmd_del(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        key_ref k = key_of(s, &argv[i]);
        gort_mutex_lock(&k.sh->mu);
        kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
        if (l) {
            kv_del_locked(k.sh, l);
            n++;
        }
        gort_mutex_unlock(&k.sh->mu);
    }
    resp_add_int(c, n);
}

static void cmd_exists(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    int64_t n = 0;
    for (size_t i = 1; i < argc; i++) {
        key_ref k = key_of(s, &argv[i]);
        gort_mutex_lock(&k.sh->mu);
        n += kv_find_locked(k.sh, k.h, k.p, k.n) != NULL;
        gort_mutex_unlock(&k.sh->mu);
    }
    resp_add_int(c, n);
}

/* INCR, DECR, INCRBY, DECRBY: keeps the key's deadline, as redis does. */
static void incr_by(resp_conn *c, kv_store *s, const resp_str *key, long long by)
{
    key_ref k = key_of(s, key);
    char buf[24];
    gort_mutex_lock(&k.sh->mu);
    kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
    long long v = 0;
    int64_t expire = 0;
    if (l) {
        if (!resp_str2ll(kv_val(*l), (*l)->vlen, &v)) {
            gort_mutex_unlock(&k.sh->mu);
            resp_add_error_lit(c, ERR_NOT_INT);
            return;
        }
        expire = (*l)->expire;
    }
    if ((by < 0 && v < 0 && by < LLONG_MIN - v) || (by > 0 && v > 0 && by > LLONG_MAX - v)) {
        gort_mutex_unlock(&k.sh->mu);
        resp_add_error_lit(c, ERR_OVERFLOW);
        return;
    }
    v += by;
    size_t n = 0;
    uint64_t u = (uint64_t)v;
    if (v < 0) {
        buf[n++] = '-';
        u = 0 - u;
    }
    n += resp_u64toa(buf + n, u);
    kv_put_locked(k.sh, l, k.h, k.p, k.n, buf, n, expire);
    gort_mutex_unlock(&k.sh->mu);
    resp_add_int(c, v);
}

static void cmd_incr(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    incr_by(c, s, &argv[1], 1);
}

static void cmd_decr(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    incr_by(c, s, &argv[1], -1);
}

static void cmd_incrby(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    long long by;
    if (!resp_str2ll(argv[2].p, argv[2].len, &by)) {
        resp_add_error_lit(c, ERR_NOT_INT);
        return;
    }
    incr_by(c, s, &argv[1], by);
}

static void cmd_decrby(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    long long by;
    if (!resp_str2ll(argv[2].p, argv[2].len, &by)) {
        resp_add_error_lit(c, ERR_NOT_INT);
        return;
    }
    if (by == LLONG_MIN) {
        resp_add_error_lit(c, "decrement would overflow");
        return;
    }
    incr_by(c, s, &argv[1], -by);
}

static void cmd_mget(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    resp_add_num(c, '*', (int64_t)argc - 1);
    for (size_t i = 1; i < argc; i++)
        get_reply(c, s, &argv[i]);
}

static void cmd_mset(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    if (argc % 2 == 0) {
        reply_arity(c, "mset");
        return;
    }
    for (size_t i = 1; i + 1 < argc; i += 2) {
        key_ref k = key_of(s, &argv[i]);
        const resp_str *v = &argv[i + 1];
        kv_entry *big = v->len > KVD_BIG ? kv_entry_new(k.h, k.p, k.n, v->p, v->len, 0) : NULL;
        kv_entry *old = NULL;
        gort_mutex_lock(&k.sh->mu);
        kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
        if (big)
            old = kv_link_locked(k.sh, l, big);
        else
            kv_put_locked(k.sh, l, k.h, k.p, k.n, v->p, v->len, 0);
        gort_mutex_unlock(&k.sh->mu);
        gort_free(old);
    }
    resp_add_lit(c, "+OK\r\n");
}

/* TTL and PTTL: -2 no key, -1 no deadline, else what is left (TTL rounds to
 * the nearest second, as redis does). */
static void ttl_of(resp_conn *c, kv_store *s, const resp_str *key, bool ms)
{
    key_ref k = key_of(s, key);
    gort_mutex_lock(&k.sh->mu);
    kv_entry **l = kv_find_locked(k.sh, k.h, k.p, k.n);
    int64_t expire = l ? (*l)->expire : 0;
    gort_mutex_unlock(&k.sh->mu);
    if (!l) {
        resp_add_int(c, -2);
    } else if (!expire) {
        resp_add_int(c, -1);
    } else {
        int64_t left = (expire - gort_now()) / 1000000;
        if (left < 0) left = 0;
        resp_add_int(c, ms ? left : (left + 500) / 1000);
    }
}

static void cmd_ttl(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    ttl_of(c, s, &argv[1], false);
}

static void cmd_pttl(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argc;
    ttl_of(c, s, &argv[1], true);
}

/* ---- server ---------------------------------------------------------------------------- */

static void cmd_ping(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s;
    if (argc > 2)
        reply_arity(c, "ping");
    else if (argc == 2)
        resp_add_bulk(c, argv[1].p, argv[1].len);
    else
        resp_add_lit(c, "+PONG\r\n");
}

static void cmd_echo(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s, (void)argc;
    resp_add_bulk(c, argv[1].p, argv[1].len);
}

static void cmd_dbsize(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argv, (void)argc;
    resp_add_int(c, (int64_t)kv_count(s));
}

static void cmd_flushall(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    if (argc > 2 ||
        (argc == 2 && !resp_eq_lit(&argv[1], "sync") && !resp_eq_lit(&argv[1], "async"))) {
        resp_add_error_lit(c, ERR_SYNTAX);
        return;
    }
    kv_flush(s);
    resp_add_lit(c, "+OK\r\n");
}

static void cmd_select(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s, (void)argc;
    long long id;
    if (!resp_str2ll(argv[1].p, argv[1].len, &id) || id < INT_MIN || id > INT_MAX)
        resp_add_error_lit(c, ERR_NOT_INT);
    else if (id != 0)
        resp_add_error_lit(c, "DB index is out of range");
    else
        resp_add_lit(c, "+OK\r\n");
}

static void cmd_quit(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s, (void)argv, (void)argc;
    resp_add_lit(c, "+OK\r\n");
    c->close = true;
}

/* COMMAND [COUNT | DOCS [name...] | INFO [name...] | LIST] */
static void cmd_command(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s;
    if (argc == 1) {
        resp_add_lit(c, "*0\r\n");
    } else if (resp_eq_lit(&argv[1], "count")) {
        if (argc != 2)
            reply_arity(c, "command|count");
        else
            resp_add_int(c, kvd_command_count());
    } else if (resp_eq_lit(&argv[1], "docs") || resp_eq_lit(&argv[1], "list")) {
        resp_add_lit(c, "*0\r\n");
    } else if (resp_eq_lit(&argv[1], "info")) {
        resp_add_num(c, '*', (int64_t)argc - 2); /* one nil per name: nothing to say */
        for (size_t i = 2; i < argc; i++)
            resp_add_lit(c, "*-1\r\n");
    } else {
        reply_unknown_sub(c, "COMMAND", &argv[1]);
    }
}

/* CONFIG GET parameter...: what redis-benchmark asks before it starts. */
static void cmd_config(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)s;
    static const struct {
        const char *name, *value;
    } known[] = {{"save", ""}, {"appendonly", "no"}, {"databases", "1"}};
    if (!resp_eq_lit(&argv[1], "get")) {
        reply_unknown_sub(c, "CONFIG", &argv[1]);
        return;
    }
    if (argc < 3) {
        reply_arity(c, "config|get");
        return;
    }
    size_t hits = 0;
    for (size_t i = 2; i < argc; i++)
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
            hits += resp_eq(&argv[i], known[j].name, strlen(known[j].name));
    resp_add_num(c, '*', (int64_t)hits * 2);
    for (size_t i = 2; i < argc; i++)
        for (size_t j = 0; j < sizeof known / sizeof known[0]; j++)
            if (resp_eq(&argv[i], known[j].name, strlen(known[j].name))) {
                resp_add_bulk(c, known[j].name, strlen(known[j].name));
                resp_add_bulk(c, known[j].value, strlen(known[j].value));
            }
}

/* INFO [section...]: a short report in redis's format (the version line is
 * what clients that check features read; sections asked for are ignored). */
static void cmd_info(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    (void)argv, (void)argc;
    uint64_t keys = kv_count(s), expires = 0;
    for (unsigned i = 0; i < KV_SHARDS; i++)
        expires += atomic_load_explicit(&s->shards[i].nexpires, memory_order_relaxed);
    char buf[512];
    int n = snprintf(buf, sizeof buf,
                     "# Server\r\nredis_version:7.0.0\r\nredis_mode:standalone\r\n"
                     "server:gort-kvd\r\nprocess_id:%ld\r\n\r\n"
                     "# Keyspace\r\ndb0:keys=%llu,expires=%llu,avg_ttl=0\r\n",
                     (long)getpid(), (unsigned long long)keys, (unsigned long long)expires);
    resp_add_bulk(c, buf, (size_t)n);
}

/* ---- dispatch -------------------------------------------------------------------------- */

#define CMD(name, arity, fn)              \
    {                                     \
        name, sizeof(name) - 1, arity, fn \
    }
static const cmd_def commands[] = {
    CMD("get", 2, cmd_get),          CMD("set", -3, cmd_set),
    CMD("ping", -1, cmd_ping),       CMD("incr", 2, cmd_incr),
    CMD("mget", -2, cmd_mget),       CMD("mset", -3, cmd_mset),
    CMD("del", -2, cmd_del),         CMD("exists", -2, cmd_exists),
    CMD("echo", 2, cmd_echo),        CMD("decr", 2, cmd_decr),
    CMD("incrby", 3, cmd_incrby),    CMD("decrby", 3, cmd_decrby),
    CMD("ttl", 2, cmd_ttl),          CMD("pttl", 2, cmd_pttl),
    CMD("dbsize", 1, cmd_dbsize),    CMD("flushall", -1, cmd_flushall),
    CMD("select", 2, cmd_select),    CMD("quit", -1, cmd_quit),
    CMD("command", -1, cmd_command), CMD("config", -2, cmd_config),
    CMD("info", -1, cmd_info),
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

int kvd_command_count(void)
{
    return (int)NCOMMANDS;
}

void kvd_exec(resp_conn *c, kv_store *s, const resp_str *argv, size_t argc)
{
    for (size_t i = 0; i < NCOMMANDS; i++) {
        const cmd_def *d = &commands[i];
        if (!resp_eq(&argv[0], d->name, d->len)) continue;
        if ((d->arity > 0 && (size_t)d->arity != argc) ||
            (d->arity < 0 && argc < (size_t)-d->arity)) {
            reply_arity(c, d->name);
            return;
        }
        d->fn(c, s, argv, argc);
        return;
    }
    reply_unknown(c, argv, argc);
}

int kvd_process(resp_conn *c, kv_store *s)
{
    for (;;) {
        int r = resp_next(c);
        if (r == RESP_MORE) return KVD_MORE;
        if (r == RESP_ERR) return KVD_CLOSE;
        kvd_exec(c, s, c->argv, c->argc);
        if (c->close) return KVD_CLOSE;
        if (c->wlen >= RESP_WFLUSH) return KVD_FLUSH;
    }
}

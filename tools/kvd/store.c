/* tools/kvd/store.c: the sharded hash table behind gort-kvd (model,
 * invariants and lock order in store.h).
 *
 * Hashing is wyhash-style (64x64->128 multiply, fold): a few ns for the short
 * keys a cache sees, and seeded per process. Tables double when their count
 * passes the bucket count and halve when it falls below an eighth of it, a
 * whole shard at a time under its lock.
 */
#include "store.h"

#include <stdatomic.h>
#include <string.h>

/* ---- hash ----------------------------------------------------------------------------- */

static inline uint64_t rd64(const char *p)
{
    uint64_t v;
    memcpy(&v, p, 8);
    return v;
}

static inline uint64_t rd32(const char *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return v;
}

static inline uint64_t mum(uint64_t a, uint64_t b)
{
    __uint128_t r = (__uint128_t)a * b;
    return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t kv_hash(uint64_t seed, const char *p, size_t n)
{
    const uint64_t s0 = 0xa0761d6478bd642fULL, s1 = 0xe7037ed1a0b428dbULL;
    uint64_t a, b;
    seed ^= mum(seed ^ s0, s1);
    if (n <= 16) {
        if (n >= 4) {
            size_t q = (n >> 3) << 2;
            a = (rd32(p) << 32) | rd32(p + q);
            b = (rd32(p + n - 4) << 32) | rd32(p + n - 4 - q);
        } else if (n > 0) {
            a = ((uint64_t)(uint8_t)p[0] << 16) | ((uint64_t)(uint8_t)p[n >> 1] << 8) |
                (uint8_t)p[n - 1];
            b = 0;
        } else {
            a = b = 0;
        }
    } else {
        size_t i = n;
        while (i > 16) {
            seed = mum(rd64(p) ^ s1, rd64(p + 8) ^ seed);
            p += 16;
            i -= 16;
        }
        a = rd64(p + i - 16);
        b = rd64(p + i - 8);
    }
    return mum(s1 ^ n, mum(a ^ s1, b ^ seed));
}

/* ---- tables --------------------------------------------------------------------------- */

static inline size_t bucket_of(const kv_shard *sh, uint64_t h)
{
    return (size_t)(h & sh->mask);
}

/* Rehash sh into nb buckets (a power of two). sh->mu held. */
static void resize_locked(kv_shard *sh, uint32_t nb)
{
    kv_entry **nbk = gort_calloc(nb, sizeof *nbk);
    uint32_t old = sh->mask + 1;
    for (uint32_t i = 0; i < old; i++) {
        for (kv_entry *e = sh->buckets[i], *next; e; e = next) {
            next = e->next;
            size_t b = (size_t)(e->hash & (nb - 1));
            e->next = nbk[b];
            nbk[b] = e;
        }
    }
    gort_free(sh->buckets);
    sh->buckets = nbk;
    sh->mask = nb - 1;
    sh->cursor &= sh->mask;
}

kv_store *kv_store_new(uint64_t seed)
{
    kv_store *s = gort_aligned_alloc(64, sizeof *s);
    memset(s, 0, sizeof *s);
    s->seed = seed;
    for (unsigned i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        sh->mask = KV_MIN_BUCKETS - 1;
        sh->buckets = gort_calloc(KV_MIN_BUCKETS, sizeof *sh->buckets);
    }
    return s;
}

static void free_chains(kv_entry **buckets, uint32_t nb)
{
    for (uint32_t i = 0; i < nb; i++) {
        for (kv_entry *e = buckets[i], *next; e; e = next) {
            next = e->next;
            gort_free(e);
        }
    }
    gort_free(buckets);
}

void kv_store_free(kv_store *s)
{
    for (unsigned i = 0; i < KV_SHARDS; i++)
        free_chains(s->shards[i].buckets, s->shards[i].mask + 1);
    gort_free(s);
}

static inline void count_add(_Atomic uint64_t *c, int64_t d)
{
    /* only the mutex holder writes: a plain load + store, relaxed, keeps the
     * lock-free readers (DBSIZE) from seeing torn values */
    atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + (uint64_t)d,
                          memory_order_relaxed);
}

void kv_del_locked(kv_shard *sh, kv_entry **link)
{
    kv_entry *e = *link;
    *link = e->next;
    if (e->expire) count_add(&sh->nexpires, -1);
    count_add(&sh->count, -1);
    gort_free(e);
    uint64_t n = atomic_load_explicit(&sh->count, memory_order_relaxed);
    uint32_t nb = sh->mask + 1;
    if (nb > KV_MIN_BUCKETS && n * 8 < nb) {
        uint32_t want = nb / 2;
        while (want > KV_MIN_BUCKETS && n * 4 < want)
            want /= 2;
        resize_locked(sh, want);
    }
}

kv_entry **kv_find_locked(kv_shard *sh, uint64_t h, const char *k, size_t n)
{
    kv_entry **link = &sh->buckets[bucket_of(sh, h)];
    int64_t now = 0;
    for (kv_entry *e; (e = *link) != NULL;) {
        if (e->hash == h && e->klen == n && memcmp(e->data, k, n) == 0) {
            if (e->expire) {
                if (!now) now = gort_now();
                if (e->expire <= now) {
                    kv_del_locked(sh, link);
                    return NULL;
                }
            }
            return link;
        }
        link = &e->next;
    }
    return NULL;
}

static inline size_t entry_size(size_t kn, size_t vn)
{
    return sizeof(kv_entry) + kn + vn;
}

kv_entry *kv_entry_new(uint64_t h, const char *k, size_t kn, const char *v, size_t vn,
                       int64_t expire)
{
    kv_entry *e = gort_malloc(entry_size(kn, vn));
    size_t usable = gort_malloc_usable_size(e) - sizeof(kv_entry) - kn;
    e->next = NULL;
    e->hash = h;
    e->expire = expire;
    e->klen = (uint32_t)kn;
    e->vlen = (uint32_t)vn;
    e->vcap = usable > UINT32_MAX ? UINT32_MAX : (uint32_t)usable;
    memcpy(e->data, k, kn);
    memcpy(e->data + kn, v, vn);
    return e;
}

void kv_set_expire_locked(kv_shard *sh, kv_entry *e, int64_t expire)
{
    if (!e->expire != !expire) count_add(&sh->nexpires, expire ? 1 : -1);
    e->expire = expire;
}

kv_entry *kv_link_locked(kv_shard *sh, kv_entry **link, kv_entry *e)
{
    if (e->expire) count_add(&sh->nexpires, 1);
    if (link) {
        kv_entry *old = *link;
        if (old->expire) count_add(&sh->nexpires, -1);
        e->next = old->next;
        *link = e;
        return old;
    }
    kv_entry **head = &sh->buckets[bucket_of(sh, e->hash)];
    e->next = *head;
    *head = e;
    count_add(&sh->count, 1);
    if (atomic_load_explicit(&sh->count, memory_order_relaxed) > (uint64_t)sh->mask + 1 &&
        sh->mask < (1u << 30))
        resize_locked(sh, (sh->mask + 1) * 2);
    return NULL;
}

kv_entry *kv_put_locked(kv_shard *sh, kv_entry **link, uint64_t h, const char *k, size_t kn,
                        const char *v, size_t vn, int64_t expire)
{
    if (link) {
        kv_entry *e = *link;
        /* in place when it fits and does not waste most of the block */
        if (vn <= e->vcap && (e->vcap <= 64 || vn >= e->vcap / 4)) {
            memcpy(kv_val(e), v, vn);
            e->vlen = (uint32_t)vn;
            kv_set_expire_locked(sh, e, expire);
            return e;
        }
    }
    kv_entry *e = kv_entry_new(h, k, kn, v, vn, expire);
    gort_free(kv_link_locked(sh, link, e));
    return e;
}

/* ---- whole-store operations ----------------------------------------------------------- */

uint64_t kv_count(kv_store *s)
{
    uint64_t n = 0;
    for (unsigned i = 0; i < KV_SHARDS; i++)
        n += atomic_load_explicit(&s->shards[i].count, memory_order_relaxed);
    return n;
}

void kv_flush(kv_store *s)
{
    for (unsigned i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        kv_entry **fresh = gort_calloc(KV_MIN_BUCKETS, sizeof *fresh);
        gort_mutex_lock(&sh->mu);
        kv_entry **old = sh->buckets;
        uint32_t nb = sh->mask + 1;
        sh->buckets = fresh;
        sh->mask = KV_MIN_BUCKETS - 1;
        sh->cursor = 0;
        atomic_store_explicit(&sh->count, 0, memory_order_relaxed);
        atomic_store_explicit(&sh->nexpires, 0, memory_order_relaxed);
        gort_mutex_unlock(&sh->mu);
        free_chains(old, nb); /* outside the lock: others go on meanwhile */
    }
}

enum {
    EXPIRE_BUCKETS = 128, /* buckets looked at per round */
    EXPIRE_KEYS = 20,     /* entries with a deadline looked at per round (redis's 20) */
};

uint64_t kv_expire_cycle(kv_store *s, int64_t budget_ns)
{
    int64_t start = gort_now(), now = start;
    uint64_t deleted = 0;
    for (unsigned i = 0; i < KV_SHARDS; i++) {
        kv_shard *sh = &s->shards[i];
        for (;;) {
            if (!atomic_load_explicit(&sh->nexpires, memory_order_relaxed)) break;
            unsigned sampled = 0, dead = 0;
            gort_mutex_lock(&sh->mu);
            for (unsigned b = 0; b < EXPIRE_BUCKETS && b <= sh->mask && sampled < EXPIRE_KEYS;
                 b++) {
                kv_entry **link = &sh->buckets[sh->cursor];
                for (kv_entry *e; (e = *link) != NULL;) {
                    if (!e->expire) {
                        link = &e->next;
                        continue;
                    }
                    sampled++;
                    if (e->expire <= now) {
                        dead++;
                        uint32_t mask = sh->mask;
                        kv_del_locked(sh, link);
                        if (sh->mask != mask) goto resized; /* the table shrank */
                    } else {
                        link = &e->next;
                    }
                }
                sh->cursor = (sh->cursor + 1) & sh->mask;
            }
resized:
            gort_mutex_unlock(&sh->mu);
            deleted += dead;
            now = gort_now();
            if (dead * 4 <= sampled || now - start > budget_ns) break;
        }
        if (now - start > budget_ns) break;
    }
    return deleted;
}

static bool any_expires(kv_store *s)
{
    for (unsigned i = 0; i < KV_SHARDS; i++)
        if (atomic_load_explicit(&s->shards[i].nexpires, memory_order_relaxed)) return true;
    return false;
}

void kv_expirer(void *arg)
{
    kv_store *s = arg;
    for (;;) {
        /* 10 passes a second while deadlines exist (redis's hz 10), each
         * within 25 ms; once a second otherwise, to stay out of the way */
        gort_sleep(any_expires(s) ? 100 * 1000 * 1000LL : 1000 * 1000 * 1000LL);
        kv_expire_cycle(s, 25 * 1000 * 1000LL);
    }
}

/* tools/kvd/store.h: gort-kvd's keyspace, a sharded hash table of strings.
 *
 * KV_SHARDS shards, each a chained hash table under its own gort_mutex; a
 * key's shard is chosen by the top bits of its hash, its bucket by the low
 * bits. Entries are single gort_malloc blocks holding the key and then the
 * value; a value that still fits its block is overwritten in place, so a SET
 * of an existing key allocates nothing.
 *
 * Invariants, per shard, under its mutex:
 *     count    == entries linked in buckets[0..mask]
 *     nexpires == those entries with expire != 0
 *     mask + 1 is a power of two >= KV_MIN_BUCKETS; count <= 2 * (mask + 1)
 *                 after any insert (the table doubles when count > mask + 1)
 * Expiry: an entry whose expire (gort_now() ns) is <= now is dead. Lookups
 * delete dead entries they meet (redis's lazy expiry); kv_expire_cycle
 * samples the shards for the rest (redis's active expire cycle).
 *
 * Lock order: one shard mutex at a time; nothing else is locked inside.
 * Readers of count for DBSIZE load it without the lock (relaxed: a close
 * snapshot, as redis's DBSIZE under concurrent writers would be).
 *
 * Rejected: one lock per processor with keys owned by processors (every
 * request from a goroutine on another processor would be a hand-off);
 * incremental rehashing as redis does (shards are small, so a doubling stalls
 * only 1/KV_SHARDS of the keyspace, and briefly).
 */
#ifndef KVD_STORE_H
#define KVD_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gort.h"

#define KV_SHARD_BITS  8
#define KV_SHARDS      (1u << KV_SHARD_BITS)
#define KV_MIN_BUCKETS 16u

typedef struct kv_entry {
    struct kv_entry *next; /* bucket chain */
    uint64_t hash;
    int64_t expire; /* gort_now() deadline in ns; 0: none */
    uint32_t klen, vlen;
    uint32_t vcap; /* bytes the block holds for the value */
    char data[];   /* klen key bytes, then vlen value bytes */
} kv_entry;

static inline const char *kv_key(const kv_entry *e)
{
    return e->data;
}

static inline char *kv_val(kv_entry *e)
{
    return e->data + e->klen;
}

typedef struct kv_shard {
    gort_mutex mu;
    uint32_t mask;             /* buckets - 1; under mu */
    kv_entry **buckets;        /* under mu */
    _Atomic uint64_t count;    /* written under mu, read without (DBSIZE) */
    _Atomic uint64_t nexpires; /* written under mu, read without (expire cycle skips) */
    uint32_t cursor;           /* next bucket the expire cycle samples; under mu */
} __attribute__((aligned(64))) kv_shard;

typedef struct kv_store {
    uint64_t seed; /* hash seed, random per process (no hash flooding) */
    kv_shard shards[KV_SHARDS];
} kv_store;

kv_store *kv_store_new(uint64_t seed);
void kv_store_free(kv_store *s); /* no other user may remain */

uint64_t kv_hash(uint64_t seed, const char *k, size_t n);

static inline kv_shard *kv_shard_of(kv_store *s, uint64_t h)
{
    return &s->shards[h >> (64 - KV_SHARD_BITS)];
}

/* The link (bucket slot or a predecessor's next) pointing at the live entry
 * for key k with hash h, or NULL when there is none. A dead entry met on the
 * way is deleted. sh->mu held. */
kv_entry **kv_find_locked(kv_shard *sh, uint64_t h, const char *k, size_t n);

/* Store value v[0..vn) with deadline expire (0: none) for key k (hash h).
 * link: what kv_find_locked returned for it (NULL: the key is absent).
 * Overwrites the value in place when it fits the entry's block. Returns the
 * entry. sh->mu held. */
kv_entry *kv_put_locked(kv_shard *sh, kv_entry **link, uint64_t h, const char *k, size_t kn,
                        const char *v, size_t vn, int64_t expire);

/* A new unlinked entry, to be filled with a large value outside the lock and
 * linked with kv_link_locked. */
kv_entry *kv_entry_new(uint64_t h, const char *k, size_t kn, const char *v, size_t vn,
                       int64_t expire);
/* Link e in place of *link (NULL: e's key is absent). Returns the entry it
 * replaced, for the caller to gort_free after unlocking, or NULL. */
kv_entry *kv_link_locked(kv_shard *sh, kv_entry **link, kv_entry *e);

/* Set e's deadline (0: none), keeping nexpires. sh->mu held. */
void kv_set_expire_locked(kv_shard *sh, kv_entry *e, int64_t expire);

/* Unlink and free the entry at *link. sh->mu held. */
void kv_del_locked(kv_shard *sh, kv_entry **link);

/* Keys stored, dead ones not yet reclaimed included (redis's DBSIZE). */
uint64_t kv_count(kv_store *s);

/* Delete every key. */
void kv_flush(kv_store *s);

/* One active-expiry pass at time now: in each shard holding keys with a
 * deadline, sample buckets from its cursor and delete dead entries, again
 * while more than a quarter of the sampled entries with a deadline were dead
 * and budget_ns (of gort_now() time) lasts. Returns the entries deleted. */
uint64_t kv_expire_cycle(kv_store *s, int64_t budget_ns);

/* The goroutine that runs kv_expire_cycle ten times a second while keys
 * with a deadline exist (arg: the store). Never returns. */
void kv_expirer(void *arg);

#endif /* KVD_STORE_H */

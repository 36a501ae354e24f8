/* tests/test_malloc.c: gort's allocator (mem/) through its public API, plus
 * a few internals declared below (the node of an address, the heap's page
 * counts, the P's node), as Go's export_test.go does.
 *
 * Same harness as the other programs: the cmocka run is the main goroutine,
 * wired to its thread; goroutines record what they saw (counters of
 * mismatches) and the test asserts after waiting for them. Content checks:
 * every object is filled with a pattern derived from its address and size
 * and checked before it is freed, so an object handed out twice, or memory
 * scribbled by the allocator, shows up as a mismatch.
 *
 * Scenarios that must run in their own process (fatal errors, GORT_NUMA=
 * fake:2) run this very program (/proc/self/exe) with --scenario NAME.
 * No timing assertions: the machine is shared and noisy.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"

#include "gort_test.h"

/* internals (mem/mem.h, sched/sched.h) */
struct mcache;
int mem_node_of(const void *p);
void mem_heap_pages(int node, uint64_t *inuse, uint64_t *free, uint64_t *released);
struct mcache **sched_mcache_slot(int *node);

#define SCENARIO_FLAG "--scenario"

/* ---- helpers ------------------------------------------------------------------------ */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint64_t xorshift(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return *s = x;
}

/* Fill/check with a pattern from seed (an object's first address, kept
 * across realloc) and n. */
static void fill_seed(void *p, size_t n, uintptr_t tag)
{
    uint8_t seed = (uint8_t)(tag >> 4) ^ (uint8_t)(tag >> 12);
    uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        b[i] = (uint8_t)(seed + i);
}

static bool check_seed(const void *p, size_t n, uintptr_t tag)
{
    uint8_t seed = (uint8_t)(tag >> 4) ^ (uint8_t)(tag >> 12);
    const uint8_t *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i] != (uint8_t)(seed + i)) return false;
    return true;
}

static void fill(void *p, size_t n)
{
    fill_seed(p, n, (uintptr_t)p);
}

static bool check(const void *p, size_t n)
{
    return check_seed(p, n, (uintptr_t)p);
}

/* A random size: mostly small, sometimes up to 32 KiB, rarely large. */
static size_t rand_size(uint64_t *s)
{
    uint64_t r = xorshift(s);
    switch (r % 16) {
    case 0:
        return (size_t)(r >> 8) % 32768;
    case 1:
        return (size_t)(r >> 8) % (300 << 10);
    default:
        return (size_t)(r >> 8) % 512;
    }
}

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long size = 0, rss = 0;
    if (!f) return -1;
    if (fscanf(f, "%ld %ld", &size, &rss) != 2) rss = -1;
    fclose(f);
    return rss * sysconf(_SC_PAGESIZE);
}

static int cur_node(void)
{
    int node = -1;
    if (!sched_mcache_slot(&node)) return -1;
    return node;
}

/* ---- basics --------------------------------------------------------------------------- */

static void test_sizes_alignment_usable(void **state)
{
    (void)state;
    for (size_t n = 0; n <= 70000; n += n < 600 ? 1 : 97) {
        uint8_t *p = gort_malloc(n);
        assert_non_null(p);
        size_t align = (n <= 8 || (n > 16 && n <= 24)) ? 8 : 16;
        assert_int_equal((uintptr_t)p % align, 0);
        assert_true(gort_malloc_usable_size(p) >= n);
        assert_true(gort_malloc_usable_size(p) <= (n < 1024 ? n + 128 : n + n / 4 + 8192));
        fill(p, gort_malloc_usable_size(p));
        assert_true(check(p, gort_malloc_usable_size(p)));
        gort_free(p);
    }
    gort_free(NULL);
    void *a = gort_malloc(0), *b = gort_malloc(0);
    assert_non_null(a);
    assert_ptr_not_equal(a, b);
    gort_free(a);
    gort_free(b);
}

static void test_calloc_zero_and_overflow(void **state)
{
    (void)state;
    /* dirty some memory first, so calloc must really clear reused blocks */
    for (int r = 0; r < 2; r++) {
        void *v[256];
        for (int i = 0; i < 256; i++) {
            v[i] = gort_malloc((size_t)(i * 13 % 5000));
            memset(v[i], 0xa5, (size_t)(i * 13 % 5000));
        }
        for (int i = 0; i < 256; i++)
            gort_free(v[i]);
        for (int i = 0; i < 256; i++) {
            size_t n = (size_t)(i * 13 % 5000);
            uint8_t *p = gort_calloc(1, n);
            for (size_t k = 0; k < n; k++)
                assert_int_equal(p[k], 0);
            v[i] = p;
        }
        for (int i = 0; i < 256; i++)
            gort_free(v[i]);
    }
    uint8_t *big = gort_calloc(1000, 1000);
    for (size_t k = 0; k < 1000000; k += 4096)
        assert_int_equal(big[k], 0);
    gort_free(big);
    errno = 0;
    assert_null(gort_calloc(SIZE_MAX / 2, 3));
    assert_int_equal(errno, ENOMEM);
    assert_null(gort_calloc((size_t)1 << 33, (size_t)1 << 33));
    errno = 0;
    assert_null(gort_malloc(SIZE_MAX - 100)); /* impossible: NULL, not fatal */
    assert_int_equal(errno, ENOMEM);
}

static void test_realloc_grow_shrink(void **state)
{
    (void)state;
    size_t n = 1;
    uint8_t *p = gort_malloc(n);
    p[0] = 0;
    for (; n < (4 << 20); n = n * 3 / 2 + 1) { /* through every regime: small, large */
        size_t m = n * 3 / 2 + 1;
        p = gort_realloc(p, m);
        for (size_t k = 0; k < n; k += 1 + k / 64)
            assert_int_equal(p[k], (uint8_t)(k * 7));
        for (size_t k = 0; k < m; k++)
            p[k] = (uint8_t)(k * 7);
    }
    for (; n > 1; n /= 3) {
        p = gort_realloc(p, n);
        for (size_t k = 0; k < n; k += 1 + k / 64)
            assert_int_equal(p[k], (uint8_t)(k * 7));
    }
    /* same block when the new size still fits and uses half of it */
    void *q = gort_malloc(1000);
    assert_ptr_equal(gort_realloc(q, 1010), q);
    assert_ptr_equal(gort_realloc(q, 900), q);
    gort_free(q);
    assert_null(gort_realloc(p, 0)); /* frees */
    q = gort_realloc(NULL, 100);
    assert_non_null(q);
    gort_free(q);
}

static void test_aligned_alloc(void **state)
{
    (void)state;
    for (size_t align = 1; align <= (4 << 20); align *= 2)
        for (size_t n = 0; n < 3 * align && n < (8 << 20); n += align / 2 + 7) {
            uint8_t *p = gort_aligned_alloc(align, n);
            assert_non_null(p);
            assert_int_equal((uintptr_t)p % align, 0);
            assert_true(gort_malloc_usable_size(p) >= n);
            memset(p, 1, n);
            gort_free(p);
        }
    errno = 0;
    assert_null(gort_aligned_alloc(24, 100));
    assert_int_equal(errno, EINVAL);
}

static void test_large_objects(void **state)
{
    (void)state;
    size_t sizes[] = {32769, 65536, 100000, 1 << 20, (3 << 20) + 5, 64 << 20, (130 << 20) + 1};
    void *v[7];
    for (int i = 0; i < 7; i++) {
        uint8_t *p = v[i] = gort_malloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 8192, 0);
        assert_true(gort_malloc_usable_size(p) >= sizes[i]);
        p[0] = 1;
        p[sizes[i] - 1] = 2;
    }
    for (int i = 0; i < 7; i++) {
        uint8_t *p = v[i];
        assert_int_equal(p[0], 1);
        assert_int_equal(p[sizes[i] - 1], 2);
        gort_free(p);
    }
    /* freed pages coalesce: a run as large as all of them fits again */
    uint8_t *p = gort_malloc(200 << 20);
    p[(200 << 20) - 1] = 1;
    gort_free(p);
}

static void test_new_zeroed_and_tiny(void **state)
{
    (void)state;
    /* dirty manual memory, then make sure GC objects come back zeroed */
    for (int i = 0; i < 1000; i++) {
        void *q = gort_malloc(64);
        memset(q, 0xff, 64);
        gort_free(q);
    }
    uint8_t *prev = NULL;
    for (int i = 0; i < 20000; i++) {
        size_t n = (size_t)(i % 40) + 1;
        uint8_t *p = i & 1 ? gort_new(n) : gort_new_noscan(n);
        for (size_t k = 0; k < n; k++)
            assert_int_equal(p[k], 0);
        if (n % 8 == 0) assert_int_equal((uintptr_t)p % 8, 0);
        memset(p, 0x5a, n);
        if (prev) assert_int_equal(prev[0], 0x5a); /* tiny objects do not overlap */
        prev = p;
    }
    uint8_t *big = gort_new(1 << 20);
    for (size_t k = 0; k < (1 << 20); k += 512)
        assert_int_equal(big[k], 0);
}

/* ---- memstats ----------------------------------------------------------------------------- */

static void test_memstats_add_up(void **state)
{
    (void)state;
    gort_memstats a, b, c;
    enum { N = 5000 };
    static void *v[N];
    /* Garbage of earlier tests would be swept meanwhile: collect it all,
     * then keep the collector off while counting. */
    gort_gc();
    int pct = gort_gc_percent(-1);
    gort_read_memstats(&a);
    for (int i = 0; i < N; i++)
        v[i] = gort_malloc(100); /* class 112 */
    void *large = gort_malloc(1 << 20);
    gort_read_memstats(&b);
    assert_int_equal(b.heap_objects - a.heap_objects, N + 1);
    assert_int_equal(b.heap_alloc - a.heap_alloc, (uint64_t)N * 112 + (1 << 20));
    assert_int_equal(b.total_alloc - a.total_alloc, (uint64_t)N * 112 + (1 << 20));
    assert_true(b.heap_sys >= b.heap_alloc);
    assert_true(b.sys >= b.heap_sys);
    for (int i = 0; i < N; i++)
        gort_free(v[i]);
    gort_free(large);
    gort_read_memstats(&c);
    assert_int_equal(c.heap_objects, a.heap_objects);
    assert_int_equal(c.heap_alloc, a.heap_alloc);
    assert_int_equal(c.total_alloc, b.total_alloc);
    assert_int_equal(c.num_gc, a.num_gc); /* the collector was off */
    gort_gc_percent(pct);
}

/* ---- torture across Ps, cross-P frees ---------------------------------------------------- */

enum { TORTURE_WORKERS = 6, TORTURE_SLOTS = 512, TORTURE_OPS = 40000 };

struct torture {
    gort_chan *handoff; /* objects passed to another goroutine to check and free */
    gort_waitgroup wg;
    _Atomic int bad;
    _Atomic long ops;
};

struct obj {
    void *p;
    size_t n;
    uintptr_t tag; /* pattern seed: the first address it had */
};

static void torture_worker(void *arg)
{
    struct torture *t = arg;
    uint64_t s = rng_state ^ (uint64_t)gort_self() * 0x2545F4914F6CDD1DULL;
    struct obj slot[TORTURE_SLOTS] = {{0}};
    for (int op = 0; op < TORTURE_OPS; op++) {
        uint64_t r = xorshift(&s);
        struct obj *o = &slot[r % TORTURE_SLOTS];
        if (o->p) {
            if (!check_seed(o->p, o->n, o->tag)) atomic_fetch_add(&t->bad, 1);
            if (r & 0x100) { /* hand it to whoever receives: a free on another P */
                struct obj x = *o;
                gort_case cs[] = {GORT_SEND(t->handoff, &x)};
                if (gort_select(cs, 1, false) < 0) gort_free(o->p);
            } else if (r & 0x200) {
                size_t m = rand_size(&s);
                o->p = gort_realloc(o->p, m);
                if (m && !check_seed(o->p, m < o->n ? m : o->n, o->tag))
                    atomic_fetch_add(&t->bad, 1);
                o->n = m;
                if (m)
                    fill_seed(o->p, m, o->tag);
                else
                    o->p = NULL;
                continue;
            } else {
                gort_free(o->p);
            }
            o->p = NULL;
        } else {
            o->n = rand_size(&s);
            o->p = (r & 0x400) ? gort_calloc(1, o->n) : gort_malloc(o->n);
            o->tag = (uintptr_t)o->p;
            fill_seed(o->p, o->n, o->tag);
        }
        struct obj x;
        gort_case cs[] = {GORT_RECV(t->handoff, &x, NULL)};
        if (gort_select(cs, 1, false) == 0) {
            if (!check_seed(x.p, x.n, x.tag)) atomic_fetch_add(&t->bad, 1);
            gort_free(x.p);
        }
        if (op % 256 == 0) gort_yield();
    }
    for (int i = 0; i < TORTURE_SLOTS; i++)
        if (slot[i].p) {
            if (!check_seed(slot[i].p, slot[i].n, slot[i].tag)) atomic_fetch_add(&t->bad, 1);
            gort_free(slot[i].p);
        }
    atomic_fetch_add(&t->ops, TORTURE_OPS);
    gort_wg_done(&t->wg);
}

static void test_torture_across_ps(void **state)
{
    (void)state;
    int old = procs_at_least(4);
    gort_memstats a, b;
    static struct torture t;
    memset(&t, 0, sizeof t);
    t.handoff = gort_chan_make(sizeof(struct obj), 64);
    gort_gc(); /* as in test_memstats_add_up */
    int pct = gort_gc_percent(-1);
    gort_read_memstats(&a);
    gort_wg_add(&t.wg, TORTURE_WORKERS);
    for (int i = 0; i < TORTURE_WORKERS; i++)
        gort_go(torture_worker, &t);
    assert_true(wg_wait_bounded(&t.wg));
    struct obj x;
    while (gort_chan_len(t.handoff)) {
        gort_chan_recv(t.handoff, &x);
        assert_true(check_seed(x.p, x.n, x.tag));
        gort_free(x.p);
    }
    assert_int_equal(atomic_load(&t.bad), 0);
    assert_int_equal(atomic_load(&t.ops), (long)TORTURE_WORKERS * TORTURE_OPS);
    gort_read_memstats(&b);
    assert_int_equal(b.heap_objects, a.heap_objects);
    assert_int_equal(b.heap_alloc, a.heap_alloc);
    gort_gc_percent(pct);
    gort_maxprocs(old);
}

/* Producer/consumer: every object is freed by another goroutine, most often
 * on another P: remote frees, batched, notified, and reused. */
static void producer(void *arg)
{
    struct torture *t = arg;
    for (int i = 0; i < 100000; i++) {
        struct obj o = {gort_malloc(48 + (size_t)(i % 3) * 16), 48 + (size_t)(i % 3) * 16, 0};
        o.tag = (uintptr_t)o.p;
        fill(o.p, o.n);
        gort_chan_send(t->handoff, &o);
    }
    struct obj end = {NULL, 0, 0};
    gort_chan_send(t->handoff, &end);
    gort_wg_done(&t->wg);
}

static void consumer(void *arg)
{
    struct torture *t = arg;
    struct obj o;
    while (gort_chan_recv(t->handoff, &o) && o.p) {
        if (!check(o.p, o.n)) atomic_fetch_add(&t->bad, 1);
        gort_free(o.p);
    }
    gort_wg_done(&t->wg);
}

static void test_cross_p_free(void **state)
{
    (void)state;
    int old = procs_at_least(2);
    static struct torture t;
    memset(&t, 0, sizeof t);
    t.handoff = gort_chan_make(sizeof(struct obj), 256);
    gort_memstats a, b;
    gort_read_memstats(&a);
    gort_wg_add(&t.wg, 2);
    gort_go(producer, &t);
    gort_go(consumer, &t);
    assert_true(wg_wait_bounded(&t.wg));
    assert_int_equal(atomic_load(&t.bad), 0);
    gort_read_memstats(&b);
    assert_int_equal(b.heap_objects, a.heap_objects);
    /* 100000 objects of <= 80 bytes went through: the heap must have reused
     * freed blocks instead of growing by 8 MB */
    assert_true(b.heap_sys < a.heap_sys + (6 << 20));
    gort_maxprocs(old);
}

/* Full spans emptied by another P's frees come back (mem.h, "Remote-free
 * notification": the credit counts the remote frees down, and the last
 * one of a span on its owner's full list always notifies). One goroutine
 * fills spans of one class to the full list, another frees every object,
 * round after round: were any span stranded on the full list, the heap
 * would grow by a round's worth (1 MiB) each time. */
#define RF_N 4096
static void *rf_objs[RF_N];
static gort_chan *rf_go, *rf_done;

static void rf_freer(void *arg)
{
    (void)arg;
    while (gort_chan_recv(rf_go, NULL)) {
        for (int i = 0; i < RF_N; i++)
            gort_free(rf_objs[i]);
        gort_chan_send(rf_done, NULL);
    }
}

static void test_remote_frees_release_full_spans(void **state)
{
    (void)state;
    int old = procs_at_least(2);
    rf_go = gort_chan_make(0, 0);
    rf_done = gort_chan_make(0, 0);
    gort_go(rf_freer, NULL);
    gort_memstats a, b;
    uint64_t sys0 = 0;
    for (int r = 0; r < 24; r++) {
        for (int i = 0; i < RF_N; i++) {
            rf_objs[i] = gort_malloc(256);
            memset(rf_objs[i], r, 256);
        }
        if (r == 3) { /* the first rounds set the level */
            gort_read_memstats(&a);
            sys0 = a.heap_sys;
        }
        gort_chan_send(rf_go, NULL);
        gort_chan_recv(rf_done, NULL);
    }
    gort_chan_close(rf_go);
    gort_read_memstats(&b);
    assert_true(b.heap_sys < sys0 + (4 << 20));
    gort_maxprocs(old);
}

/* ---- threads without a P ------------------------------------------------------------------ */

static void *foreign_thread(void *arg)
{
    void **from_p = arg;
    uint64_t s = 12345;
    int bad = 0;
    for (int r = 0; r < 200; r++) {
        void *v[64];
        size_t n[64];
        for (int i = 0; i < 64; i++) {
            n[i] = rand_size(&s);
            v[i] = gort_malloc(n[i]);
            fill(v[i], n[i]);
        }
        for (int i = 0; i < 64; i++) {
            bad += !check(v[i], n[i]);
            gort_free(v[i]);
        }
    }
    for (int i = 0; i < 1000; i++)
        gort_free(from_p[i]); /* objects of a P, freed by a thread without one */
    void *tiny = gort_new_noscan(3);
    bad += ((uint8_t *)tiny)[0] != 0;
    return (void *)(intptr_t)bad;
}

static void test_foreign_thread(void **state)
{
    (void)state;
    gort_memstats a, b;
    gort_read_memstats(&a);
    static void *objs[1000];
    for (int i = 0; i < 1000; i++)
        objs[i] = gort_malloc((size_t)(i % 200));
    pthread_t th;
    void *ret;
    assert_int_equal(pthread_create(&th, NULL, foreign_thread, objs), 0);
    gort_blocking_begin();
    pthread_join(th, &ret);
    gort_blocking_end();
    assert_int_equal((intptr_t)ret, 0);
    gort_read_memstats(&b);
    /* everything freed except the one tiny block */
    assert_int_equal(b.heap_objects, a.heap_objects + 1);
}

/* inside a blocking region the goroutine holds no P: the fallback cache */
static void test_blocking_region_alloc(void **state)
{
    (void)state;
    gort_blocking_begin();
    void *v[100];
    for (int i = 0; i < 100; i++) {
        v[i] = gort_malloc((size_t)i * 10);
        fill(v[i], (size_t)i * 10);
    }
    gort_blocking_end();
    for (int i = 0; i < 100; i++) {
        assert_true(check(v[i], (size_t)i * 10));
        gort_free(v[i]);
    }
}

/* ---- memory returns to the kernel ---------------------------------------------------------- */

/* Runs with GORT_MAXPROCS=1 (its own process): blocks freed by one P into
 * another P's spans wait for the owner's next slow path (mem/mem.h), and an
 * idle P has none; with one P every free is the owner's. */
static int scenario_rss(void)
{
    enum { SMALL = 200000, LARGE = 256 };
    static void *small[SMALL], *large[LARGE];
    long before = rss_bytes();
    for (int i = 0; i < SMALL; i++) { /* ~ 100 MB of small objects */
        small[i] = gort_malloc(500);
        memset(small[i], 1, 500);
    }
    for (int i = 0; i < LARGE; i++) { /* + 128 MB of large ones */
        large[i] = gort_malloc(512 << 10);
        memset(large[i], 1, 512 << 10);
    }
    long peak = rss_bytes();
    for (int i = 0; i < SMALL; i++)
        gort_free(small[i]);
    for (int i = 0; i < LARGE; i++)
        gort_free(large[i]);
    uint64_t released = gort_free_os_memory();
    long after = rss_bytes();
    gort_memstats ms;
    gort_read_memstats(&ms);
    printf("rss before %ld MB, peak %ld MB, after %ld MB; released %lu MB, heap_sys %lu MB\n",
           before >> 20, peak >> 20, after >> 20, (unsigned long)(released >> 20),
           (unsigned long)(ms.heap_sys >> 20));
    int bad = 0;
    if (peak - before < (200 << 20)) bad |= 1;
    if (released < (200 << 20)) bad |= 2;
    if (after - before > (peak - before) / 8) bad |= 4;
    if (ms.heap_sys > (16 << 20) + ms.heap_alloc) bad |= 8;
    if (gort_heap_released() < released) bad |= 16;
    printf("bad=%d\n", bad);
    return bad;
}

/* ---- subprocess scenarios ------------------------------------------------------------------ */

/* GORT_NUMA=fake:2: every allocation of a P comes from its node's heap, and
 * objects stay on their node whoever frees them. Four goroutines on four Ps
 * (two per node) allocate, and pass half their objects to the next one to
 * free. The P can change between two calls (preemption), so an allocation
 * counts only when the node read before and after it agrees. */
struct numa_state {
    gort_waitgroup wg;
    gort_chan *ch[4];
    _Atomic int nodes_seen, bad, checked;
};

struct numa_arg {
    struct numa_state *st;
    int id;
};

static void numa_worker(void *arg)
{
    struct numa_arg *a = arg;
    struct numa_state *st = a->st;
    enum { N = 2000 };
    void *v[N];
    int node[N];
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < N; i++) {
            int n1 = cur_node();
            v[i] = gort_malloc((size_t)(i % 700) + (i % 97 == 0 ? 40000 : 0));
            int n2 = cur_node();
            node[i] = mem_node_of(v[i]);
            if (n1 == n2) {
                if (node[i] != n1) atomic_fetch_add(&st->bad, 1);
                atomic_fetch_add(&st->checked, 1);
                atomic_fetch_or(&st->nodes_seen, 1 << n1);
            }
        }
        for (int i = 0; i < N; i++) {
            if (i & 1) {
                gort_case cs[] = {GORT_SEND(st->ch[(a->id + 1) % 4], &v[i])};
                if (gort_select(cs, 1, false) == 0) continue;
            }
            if (mem_node_of(v[i]) != node[i]) atomic_fetch_add(&st->bad, 1);
            gort_free(v[i]);
        }
        void *p;
        while (gort_chan_len(st->ch[a->id])) {
            gort_chan_recv(st->ch[a->id], &p);
            int before = mem_node_of(p);
            gort_free(p); /* often from the other node */
            if (before < 0) atomic_fetch_add(&st->bad, 1);
        }
        gort_yield();
    }
    gort_wg_done(&st->wg);
}

static int scenario_numa(void)
{
    static struct numa_state st;
    static struct numa_arg args[4];
    for (int i = 0; i < 4; i++)
        st.ch[i] = gort_chan_make(sizeof(void *), 1024);
    gort_wg_add(&st.wg, 4);
    for (int i = 0; i < 4; i++) {
        args[i] = (struct numa_arg){&st, i};
        gort_go(numa_worker, &args[i]);
    }
    gort_wg_wait(&st.wg);
    void *p;
    for (int i = 0; i < 4; i++)
        while (gort_chan_len(st.ch[i])) {
            gort_chan_recv(st.ch[i], &p);
            gort_free(p);
        }
    gort_memstats ms;
    gort_read_memstats(&ms);
    uint64_t in0, f0, r0, in1, f1, r1;
    mem_heap_pages(0, &in0, &f0, &r0);
    mem_heap_pages(1, &in1, &f1, &r1);
    int nodes = atomic_load(&st.nodes_seen);
    printf("nodes_seen=%d bad=%d checked=%d objects=%lu heap0=%lu heap1=%lu\n", nodes,
           atomic_load(&st.bad), atomic_load(&st.checked), (unsigned long)ms.heap_objects,
           (unsigned long)(in0 + f0), (unsigned long)(in1 + f1));
    /* both nodes allocated, both heaps exist */
    return atomic_load(&st.bad) || nodes != 3 || !(in0 + f0) || !(in1 + f1);
}

/* 1 when the OS page holding p is resident (mincore), 0 when not. */
static int page_resident(const void *p)
{
    unsigned char v = 0;
    uintptr_t pg = (uintptr_t)p & ~(uintptr_t)4095;
    if (mincore((void *)pg, 4096, &v)) return -1;
    return v & 1;
}

static int scenario_main(int argc, char **argv)
{
    if (argc < 3) return 3;
    const char *s = argv[2];
    if (!strcmp(s, "numa")) return scenario_numa();
    if (!strcmp(s, "rss")) return scenario_rss();
    if (!strcmp(s, "double-free")) {
        void *p = gort_malloc(100);
        gort_free(p);
        gort_free(p);
    } else if (!strcmp(s, "double-free-list-end")) {
        /* the second of a span's two objects, freed twice: its link is
         * the list's end (blk_end, mem.h "Double frees"), not a block */
        void *p = gort_malloc(12000), *q = gort_malloc(12000);
        (void)p;
        gort_free(q);
        gort_free(q);
    } else if (!strcmp(s, "double-free-fresh")) {
        /* 4 KiB blocks from a fresh span are handed out untouched (mcache.c
         * take): neither allocating them nor allocating their neighbours
         * makes their pages resident, and a double free of one is still
         * caught (its first word was already 0, as an allocated block's). */
        char *p = gort_malloc(4096), *q = gort_malloc(4096), *r = gort_malloc(4096);
        int before = page_resident(p) + page_resident(q) + page_resident(r);
        p[100] = 1;
        printf("fresh: resident_before=%d p=%d q=%d r=%d\n", before, page_resident(p),
               page_resident(q), page_resident(r));
        fflush(stdout);
        gort_free(q);
        gort_free(q);
    } else if (!strcmp(s, "double-free-large")) {
        void *p = gort_malloc(1 << 20);
        gort_free(p);
        gort_free(p);
    } else if (!strcmp(s, "foreign-pointer")) {
        void *p = malloc(100);
        gort_free(p);
    } else if (!strcmp(s, "stack-pointer")) {
        int x;
        gort_free(&x);
    } else if (!strcmp(s, "interior-pointer")) {
        char *p = gort_malloc(100);
        gort_free(p + 16);
    } else if (!strcmp(s, "free-gc-object")) {
        gort_free(gort_new(64));
    } else if (!strcmp(s, "oom")) {
        struct rlimit rl = {1UL << 30, 1UL << 30};
        setrlimit(RLIMIT_AS, &rl);
        gort_malloc(3UL << 30);
    } else {
        return 3;
    }
    return 0; /* not reached when the allocator does its job */
}

static void run_scenario(const char *name, const char *const *env, struct run *r)
{
    char *args[] = {(char *)"test_malloc", (char *)SCENARIO_FLAG, (char *)name, NULL};
    run_prog_blocking("/proc/self/exe", args, env, 60000, r);
}

static void test_bad_frees_are_fatal(void **state)
{
    (void)state;
    static const struct {
        const char *scenario, *words;
    } cases[] = {
        {"double-free", "double free"},
        {"double-free-list-end", "double free"},
        {"double-free-large", "gort_free("},
        {"foreign-pointer", "not allocated by gort"},
        {"stack-pointer", "not allocated by gort"},
        {"interior-pointer", "middle of an object"},
        {"free-gc-object", "gort_new"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        struct run r;
        run_scenario(cases[i].scenario, NULL, &r);
        CHECK(&r, cases[i].scenario, exited_with(&r, 2));
        CHECK(&r, cases[i].scenario, has(r.err, "fatal error: gort_free("));
        CHECK(&r, cases[i].scenario, has(r.err, cases[i].words));
        run_free(&r);
    }
}

/* Idle buffers cost no memory: a fresh 4 KiB block is not made resident by
 * gort_malloc (nor by allocating its neighbours), writing it makes only its
 * own page resident, and the double-free test still works on such blocks. */
static void test_fresh_blocks_untouched(void **state)
{
    (void)state;
    struct run r;
    run_scenario("double-free-fresh", NULL, &r);
    CHECK(&r, "double-free-fresh", has(r.out, "fresh: resident_before=0 p=1 q=0 r=0"));
    CHECK(&r, "double-free-fresh", exited_with(&r, 2));
    CHECK(&r, "double-free-fresh", has(r.err, "double free"));
    run_free(&r);
}

static void test_out_of_memory_is_fatal(void **state)
{
    (void)state;
#ifdef GORT_SANITIZE
    skip(); /* ASan's shadow memory does not fit under an address-space limit */
#endif
    struct run r;
    run_scenario("oom", NULL, &r);
    CHECK(&r, "oom", exited_with(&r, 2));
    CHECK(&r, "oom", has(r.err, "fatal error: out of memory"));
    CHECK(&r, "oom", has(r.err, "3221225472-byte"));
    run_free(&r);
}

static void test_memory_returns_to_kernel(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    struct run r;
    run_scenario("rss", env, &r);
    CHECK(&r, "rss", exited_with(&r, 0));
    CHECK(&r, "rss", has(r.out, "bad=0"));
    run_free(&r);
}

static void test_numa_fake2_node_local(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_NUMA=fake:2", "GORT_MAXPROCS=4", NULL};
    struct run r;
    run_scenario("numa", env, &r);
    CHECK(&r, "numa", exited_with(&r, 0));
    CHECK(&r, "numa", has(r.out, "nodes_seen=3 bad=0 "));
    run_free(&r);
}

static int run(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    gort_lock_thread();
    rng_state ^= (uint64_t)gort_now();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sizes_alignment_usable),
        cmocka_unit_test(test_calloc_zero_and_overflow),
        cmocka_unit_test(test_realloc_grow_shrink),
        cmocka_unit_test(test_aligned_alloc),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_new_zeroed_and_tiny),
        cmocka_unit_test(test_memstats_add_up),
        cmocka_unit_test(test_remote_frees_release_full_spans),
        cmocka_unit_test(test_torture_across_ps),
        cmocka_unit_test(test_cross_p_free),
        cmocka_unit_test(test_foreign_thread),
        cmocka_unit_test(test_blocking_region_alloc),
        cmocka_unit_test(test_memory_returns_to_kernel),
        cmocka_unit_test(test_bad_frees_are_fatal),
        cmocka_unit_test(test_fresh_blocks_untouched),
        cmocka_unit_test(test_out_of_memory_is_fatal),
        cmocka_unit_test(test_numa_fake2_node_local),
    };
    const char *filter = getenv("TEST_FILTER"); /* e.g. TEST_FILTER='*torture*' */
    if (filter) cmocka_set_test_filter(filter);
    return cmocka_run_group_tests(tests, NULL, NULL);
}

int main(int argc, char **argv)
{
    if (argc > 2 && strcmp(argv[1], SCENARIO_FLAG) == 0)
        return gort_main(scenario_main, argc, argv);
    return gort_main(run, argc, argv);
}

/* tools/numabench/measure.c: goroutines pinned to a node's CPUs, and the three
 * measurements gort-numabench makes from them.
 *
 * Pinning. gort's scheduler may run a goroutine on any thread, and (today) does not
 * keep a thread on its P's node. So each measuring goroutine wires itself to its
 * thread (gort_lock_thread), saves the thread's CPU mask, pins the thread with
 * sched_setaffinity, and runs its C loop inside a blocking region: the loop makes no
 * gort call, sysmon does not preempt it, and its P goes to other goroutines if they
 * wait (so more measuring goroutines than Ps still all run). Afterwards it restores
 * the mask and unwires, so the thread goes back to the pool as it came (a goroutine
 * that exits while wired would take its thread with it).
 *
 * Latency: a dependent pointer chase, each load's address coming from the previous
 * load, over a random cyclic permutation of the buffer's 64-byte lines (Sattolo's
 * algorithm: one cycle through every line). Random order defeats the prefetchers;
 * huge pages (topo.c) keep page walks out of the number; the buffer is flushed from
 * every cache after it is built. Invariant: walks continue the one cycle where the
 * last stopped (nb_chase.cursor), and main.c bounds each walk to a share of the
 * lines, so no row loads a line an earlier row left in its own or a remote cache.
 * Result: the median over chunks of CHASE_CHUNK loads (robust to an interrupt).
 *
 * Bandwidth: n threads each stream over their own contiguous slice of the buffer,
 * wrapping, in steps of at most 256 KiB, until a shared deadline. Reads sum the words
 * with independent vector accumulators; writes use non-temporal stores (movntdq), so
 * they measure writing memory, not read-for-ownership plus write-back. All threads
 * start together (a spin barrier whose last arriver takes the start time); the rate
 * is every byte moved over (last thread's end - start).
 *
 * Rejected: timing each load (the clock costs as much as a load); pthreads of our own
 * (the tool shows what gort goroutines see); one thread pinned per node for the
 * bandwidth (one core cannot saturate a memory controller).
 */
#include <emmintrin.h>
#include <errno.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "gort.h"
#include "tools/numabench/numabench.h"

#define LINE          64
#define CHASE_CHUNK   NB_CHASE_CHUNK
#define CHASE_SAMPLES 4096
#define STREAM_STEP   (256UL << 10)

int64_t nb_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* ---- pinned goroutines ------------------------------------------------------------------ */

struct pin_job {
    void (*fn)(void *, int);
    void *arg;
    int i;
    const int *cpus;
    int ncpus;
    bool spread;
    gort_waitgroup *wg;
    _Atomic int *err; /* first pinning error (-errno), 0 if none */
};

/* The calling thread's CPU mask in a set big enough for the kernel's; NULL when it
 * cannot be read. */
static cpu_set_t *affinity_get(size_t *size)
{
    for (int n = 1024; n <= (1 << 20); n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set) return NULL;
        size_t sz = CPU_ALLOC_SIZE(n);
        if (sched_getaffinity(0, sz, set) == 0) {
            *size = sz;
            return set;
        }
        int e = errno;
        CPU_FREE(set);
        if (e != EINVAL) return NULL; /* EINVAL: the kernel's mask is larger */
    }
    return NULL;
}

/* Pin the calling thread to cpus[0..n); 0 or -errno. */
static int affinity_set(const int *cpus, int n)
{
    int max = 0;
    for (int i = 0; i < n; i++)
        if (cpus[i] > max) max = cpus[i];
    cpu_set_t *set = CPU_ALLOC(max + 1);
    if (!set) return -ENOMEM;
    size_t sz = CPU_ALLOC_SIZE(max + 1);
    CPU_ZERO_S(sz, set);
    for (int i = 0; i < n; i++)
        CPU_SET_S(cpus[i], sz, set);
    int r = sched_setaffinity(0, sz, set) == 0 ? 0 : -errno; /* errno at once: no gort call */
    CPU_FREE(set);
    return r;
}

static void pinned_main(void *a)
{
    struct pin_job *j = a;
    gort_lock_thread(); /* from here to the unlock, this goroutine is this thread */
    size_t oldsz = 0;
    cpu_set_t *old = affinity_get(&oldsz);
    int r = old ? 0 : -EINVAL;
    if (r == 0)
        r = j->spread ? affinity_set(&j->cpus[j->i % j->ncpus], 1)
                      : affinity_set(j->cpus, j->ncpus);
    if (r != 0) {
        int none = 0;
        atomic_compare_exchange_strong(j->err, &none, r);
    }
    /* Run even when pinning failed: fn may be one of n threads meeting at a barrier. */
    gort_blocking_begin();
    j->fn(j->arg, j->i);
    gort_blocking_end();
    if (old) {
        (void)sched_setaffinity(0, oldsz, old);
        CPU_FREE(old);
    }
    gort_unlock_thread();
    gort_wg_done(j->wg);
}

int nb_run_pinned(int n, const int *cpus, int ncpus, bool spread, void (*fn)(void *, int),
                  void *arg)
{
    struct pin_job *jobs = calloc((size_t)n, sizeof *jobs);
    if (!jobs) return -ENOMEM;
    gort_waitgroup wg = {0};
    _Atomic int err = 0;
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++) {
        jobs[i] = (struct pin_job){fn, arg, i, cpus, ncpus, spread, &wg, &err};
        gort_go(pinned_main, &jobs[i]);
    }
    gort_wg_wait(&wg);
    free(jobs);
    return atomic_load(&err);
}

/* ---- latency: the pointer chase ---------------------------------------------------------- */

static uint64_t xorshift64s(uint64_t *s)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1DULL;
}

void nb_chase_build(struct nb_chase *c, uint64_t seed)
{
    char *b = c->base;
    size_t n = c->nlines;
    /* 1. identity (the first touch of every page, by this node's thread) */
    for (size_t i = 0; i < n; i++)
        *(uint64_t *)(b + i * LINE) = i;
    /* 2. Sattolo: for i from n-1 down, swap with j in [0, i); i -> a[i] is one n-cycle */
    uint64_t s = seed | 1;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)(((unsigned __int128)xorshift64s(&s) * i) >> 64);
        uint64_t *pi = (uint64_t *)(b + i * LINE), *pj = (uint64_t *)(b + j * LINE);
        uint64_t t = *pi;
        *pi = *pj;
        *pj = t;
    }
    /* 3. indices to pointers */
    for (size_t i = 0; i < n; i++) {
        uint64_t *w = (uint64_t *)(b + i * LINE);
        *(void **)w = b + *w * LINE;
    }
    /* 4. out of every cache: the first walk must miss like the rest */
    for (size_t i = 0; i < n; i++)
        _mm_clflush(b + i * LINE);
    _mm_mfence();
    c->cursor = b;
}

static __attribute__((noinline)) void *chase_walk(void *p, size_t n)
{
    for (; n >= 8; n -= 8) {
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
        p = *(void **)p;
    }
    return p;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double nb_chase_ns(struct nb_chase *c, uint64_t max_steps, int64_t budget_ns)
{
    static double samples[CHASE_SAMPLES]; /* one walk at a time (main.c runs them in turn) */
    void *p = chase_walk(c->cursor, CHASE_CHUNK); /* warm-up: the code, the TLB */
    uint64_t steps = CHASE_CHUNK;
    int k = 0;
    int64_t start = nb_now();
    while (k < CHASE_SAMPLES && (k == 0 || steps + CHASE_CHUNK <= max_steps)) {
        int64_t t0 = nb_now();
        p = chase_walk(p, CHASE_CHUNK);
        int64_t t1 = nb_now();
        samples[k++] = (double)(t1 - t0) / CHASE_CHUNK;
        steps += CHASE_CHUNK;
        if (t1 - start >= budget_ns && k >= 5) break;
    }
    c->cursor = p;
    qsort(samples, (size_t)k, sizeof samples[0], cmp_double);
    return k % 2 ? samples[k / 2] : (samples[k / 2 - 1] + samples[k / 2]) / 2;
}

/* ---- bandwidth: streaming reads and writes ------------------------------------------------ */

typedef uint64_t v2u64 __attribute__((vector_size(16)));

static uint64_t read_stream(const char *p, size_t n)
{
    const v2u64 *v = (const v2u64 *)p;
    v2u64 a = {0, 0}, b = {0, 0}, c = {0, 0}, d = {0, 0};
    for (size_t i = 0; i < n / sizeof(v2u64); i += 4) { /* one line per iteration */
        a += v[i];
        b += v[i + 1];
        c += v[i + 2];
        d += v[i + 3];
    }
    v2u64 s = a + b + c + d;
    return s[0] + s[1];
}

static void write_stream(char *p, size_t n)
{
    __m128i v = _mm_set1_epi64x(0x5a5a5a5a5a5a5a5aLL);
    for (char *e = p + n; p < e; p += LINE) {
        _mm_stream_si128((__m128i *)p, v);
        _mm_stream_si128((__m128i *)(p + 16), v);
        _mm_stream_si128((__m128i *)(p + 32), v);
        _mm_stream_si128((__m128i *)(p + 48), v);
    }
    _mm_sfence(); /* the streaming stores are weakly ordered: drain them */
}

struct stream_job {
    char *base;
    size_t slice, step;
    int nthreads;
    bool write;
    int64_t budget_ns;
    _Atomic int arrived;
    _Atomic int64_t start; /* 0 until the last thread arrives (release; acquire below) */
    uint64_t *bytes;
    int64_t *end;
    _Atomic uint64_t sink; /* keeps the reads' sums alive */
};

static void stream_worker(void *arg, int i)
{
    struct stream_job *j = arg;
    int64_t start;
    if (atomic_fetch_add(&j->arrived, 1) + 1 == j->nthreads) {
        start = nb_now();
        atomic_store_explicit(&j->start, start, memory_order_release); /* pairs with the
                                                                          acquire below */
    } else {
        unsigned spins = 0;
        while ((start = atomic_load_explicit(&j->start, memory_order_acquire)) == 0) {
            if (++spins < 4096)
                _mm_pause();
            else
                sched_yield(); /* more threads than CPUs: let the late ones arrive */
        }
    }
    char *s = j->base + (size_t)i * j->slice;
    size_t off = 0;
    uint64_t bytes = 0, sum = 0;
    int64_t deadline = start + j->budget_ns, t;
    do {
        if (j->write)
            write_stream(s + off, j->step);
        else
            sum += read_stream(s + off, j->step);
        bytes += j->step;
        off += j->step;
        if (off >= j->slice) off = 0;
        t = nb_now();
    } while (t < deadline);
    j->bytes[i] = bytes;
    j->end[i] = t;
    atomic_fetch_add_explicit(&j->sink, sum, memory_order_relaxed);
}

double nb_stream_gbps(char *base, size_t n, int nthreads, const int *cpus, int ncpus, bool write,
                      int64_t budget_ns)
{
    struct stream_job j = {
        .base = base,
        .nthreads = nthreads,
        .write = write,
        .budget_ns = budget_ns,
        .bytes = calloc((size_t)nthreads, sizeof(uint64_t)),
        .end = calloc((size_t)nthreads, sizeof(int64_t)),
    };
    if (!j.bytes || !j.end) {
        free(j.bytes);
        free(j.end);
        return -ENOMEM;
    }
    /* Slices of whole 4 KiB pages, each a whole number of steps (main.c guarantees at
     * least 64 KiB per thread). */
    j.slice = (n / (size_t)nthreads) & ~(size_t)4095;
    j.step = j.slice < STREAM_STEP ? j.slice : STREAM_STEP;
    if (j.slice == 0) {
        free(j.bytes);
        free(j.end);
        return -EINVAL;
    }
    j.slice -= j.slice % j.step;
    int r = nb_run_pinned(nthreads, cpus, ncpus, true, stream_worker, &j);
    double gbps = r;
    if (r == 0) {
        uint64_t total = 0;
        int64_t last = 0;
        for (int i = 0; i < nthreads; i++) {
            total += j.bytes[i];
            if (j.end[i] > last) last = j.end[i];
        }
        int64_t dt = last - atomic_load(&j.start);
        gbps = dt > 0 ? (double)total / (double)dt : 0; /* bytes per ns == GB/s */
    }
    free(j.bytes);
    free(j.end);
    return gbps;
}

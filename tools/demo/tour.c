/* tools/demo/tour.c: `make demo`, a short tour of what gort does today.
 *
 * Each stop runs a small real workload on the runtime and says what it did,
 * with the numbers it measured. It grows as gort gains channels, timers,
 * I/O and the collector.
 */
#include <arpa/inet.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "gort.h"

static double ms_since(int64_t t0)
{
    return (double)(gort_now() - t0) / 1e6;
}

static long rss_kib(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

/* 1. Many goroutines at once. */
static gort_waitgroup started, gate, finished;

static void parked(void *arg)
{
    (void)arg;
    gort_wg_done(&started);
    gort_wg_wait(&gate);
    gort_wg_done(&finished);
}

static void stop_many(void)
{
    enum { N = 200000 };
    long rss0 = rss_kib();
    int64_t t0 = gort_now();
    gort_wg_add(&started, N);
    gort_wg_add(&gate, 1);
    gort_wg_add(&finished, N);
    for (int i = 0; i < N; i++)
        gort_go(parked, NULL);
    gort_wg_wait(&started);
    double spawn_ms = ms_since(t0);
    long rss1 = rss_kib();
    printf("1. %d goroutines parked at once: spawned in %.0f ms, %d alive, %.1f KiB resident "
           "each\n",
           N, spawn_ms, gort_num_goroutine(), (double)(rss1 - rss0) / N);
    gort_wg_done(&gate);
    gort_wg_wait(&finished);
    printf("   released them all; they finished and their stacks went back to the free lists\n");
}

/* 2. Goroutines move between threads; each sees its own identity. */
static _Atomic long migrations, checks_failed;

static void wanderer(void *arg)
{
    uint64_t me = gort_self();
    long last = syscall(SYS_gettid);
    for (int i = 0; i < 20000; i++) {
        gort_yield();
        long tid = syscall(SYS_gettid);
        if (tid != last) atomic_fetch_add(&migrations, 1), last = tid;
        if (gort_self() != me) atomic_fetch_add(&checks_failed, 1);
    }
    gort_wg_done(arg);
}

static void stop_migration(void)
{
    gort_waitgroup wg = {0};
    int n = 8;
    gort_wg_add(&wg, n);
    for (int i = 0; i < n; i++)
        gort_go(wanderer, &wg);
    gort_wg_wait(&wg);
    printf("2. %d goroutines yielded 20,000 times each on %d processors: %ld thread changes "
           "seen, identity wrong %ld times\n",
           n, gort_maxprocs(0), (long)migrations, (long)checks_failed);
}

/* 3. A goroutine wired to its thread. */
static void wired(void *arg)
{
    gort_lock_thread();
    long tid = syscall(SYS_gettid);
    int same = 0;
    for (int i = 0; i < 1000; i++) {
        gort_yield();
        same += syscall(SYS_gettid) == tid;
    }
    gort_unlock_thread();
    printf("3. a goroutine called gort_lock_thread and yielded 1000 times: it stayed on thread "
           "%ld %d of 1000 times\n",
           tid, same);
    gort_wg_done(arg);
}

/* 4. Blocking C code does not stall other goroutines. */
static _Atomic long progress;
static _Atomic int sleeping_done;

static void sleeper(void *arg)
{
    gort_blocking_begin();
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    gort_blocking_end();
    atomic_store(&sleeping_done, 1);
    gort_wg_done(arg);
}

static void worker(void *arg)
{
    while (!atomic_load(&sleeping_done)) {
        atomic_fetch_add(&progress, 1);
        gort_yield();
    }
    gort_wg_done(arg);
}

/* 5. Yield and spawn costs, measured right here. */
static void yielder(void *arg)
{
    for (int i = 0; i < 1000000; i++)
        gort_yield();
    gort_wg_done(arg);
}

static void nothing(void *arg)
{
    gort_wg_done(arg);
}

/* 6. A prime sieve: a pipeline of goroutines joined by channels. */
static void generate(void *arg)
{
    gort_chan *out = arg;
    for (int i = 2;; i++)
        gort_chan_send(out, &i);
}

struct filter_args {
    gort_chan *in, *out;
    int prime;
};

static void filter(void *arg)
{
    struct filter_args *f = arg;
    int v;
    while (gort_chan_recv(f->in, &v))
        if (v % f->prime != 0) gort_chan_send(f->out, &v);
}

static void stop_sieve(void)
{
    gort_chan *ch = gort_chan_make(sizeof(int), 0);
    gort_go(generate, ch);
    static struct filter_args fs[15];
    printf("6. prime sieve, one goroutine per prime, joined by channels:");
    for (int i = 0; i < 15; i++) {
        int prime;
        gort_chan_recv(ch, &prime);
        printf(" %d", prime);
        fs[i] = (struct filter_args){ch, gort_chan_make(sizeof(int), 0), prime};
        gort_go(filter, &fs[i]);
        ch = fs[i].out;
    }
    printf("\n   (%d goroutines now, blocked in channel operations)\n", gort_num_goroutine());
}

/* 7. select with a timeout; 8. panics recovered; 9. a mutex. */
static void close_twice(void *c)
{
    gort_chan_close(c);
    gort_chan_close(c);
}

static gort_mutex mu;
static long shared_counter;

static void incrementer(void *arg)
{
    for (int i = 0; i < 10000; i++) {
        gort_mutex_lock(&mu);
        shared_counter++;
        gort_mutex_unlock(&mu);
    }
    gort_wg_done(arg);
}

static void stop_select_panic_mutex(void)
{
    gort_chan *never = gort_chan_make(sizeof(int), 0);
    int v;
    int64_t t0 = gort_now();
    gort_case cs[] = {GORT_RECV(never, &v, NULL), GORT_RECV(gort_after(50 * 1000000), NULL, NULL)};
    int which = gort_select(cs, 2, true);
    printf("7. select on a silent channel and gort_after(50 ms): case %d won after %.1f ms\n",
           which, ms_since(t0));
    const char *msg = NULL;
    bool ok = gort_try(close_twice, gort_chan_make(0, 0), &msg);
    printf("8. closing a channel twice panicked and gort_try recovered it: ok=%d, \"%s\"\n", ok,
           msg);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 100);
    for (int i = 0; i < 100; i++)
        gort_go(incrementer, &wg);
    gort_wg_wait(&wg);
    printf("9. 100 goroutines x 10,000 increments under one gort_mutex: counter = %ld\n",
           shared_counter);
}

/* 10. I/O: an echo server and 100 client goroutines over loopback. */
static void echo_conn(void *arg)
{
    int fd = (int)(intptr_t)arg;
    char buf[4096];
    ssize_t n;
    while ((n = gort_read(fd, buf, sizeof buf)) > 0)
        if (gort_write(fd, buf, (size_t)n) < 0) break;
    gort_close(fd);
}

static void echo_server(void *arg)
{
    int l = (int)(intptr_t)arg, c;
    while ((c = gort_accept(l, NULL, NULL)) >= 0)
        gort_go(echo_conn, (void *)(intptr_t)c);
}

static int echo_port;
static _Atomic long echo_trips, echo_errors;

static void echo_client(void *arg)
{
    int fd = gort_dial_tcp("127.0.0.1", echo_port, 5000000000LL);
    if (fd >= 0) {
        char msg[64], back[64];
        memset(msg, 'g', sizeof msg);
        for (int i = 0; i < 200; i++) {
            size_t got = 0;
            if (gort_write(fd, msg, sizeof msg) < 0) break;
            while (got < sizeof back) {
                ssize_t k = gort_read(fd, back + got, sizeof back - got);
                if (k <= 0) break;
                got += (size_t)k;
            }
            if (got != sizeof back || memcmp(msg, back, sizeof back)) break;
            echo_trips++;
        }
        gort_close(fd);
    } else {
        echo_errors++;
    }
    gort_wg_done(arg);
}

static void stop_io(void)
{
    int l = gort_listen_tcp("127.0.0.1", 0, 0);
    if (l < 0) {
        printf("10. I/O: cannot listen on 127.0.0.1 (%s)\n", strerror(-l));
        return;
    }
    struct sockaddr_storage sa;
    socklen_t len = sizeof sa;
    getsockname(l, (struct sockaddr *)&sa, &len);
    echo_port = ntohs(((struct sockaddr_in *)&sa)->sin_port);
    gort_go(echo_server, (void *)(intptr_t)l);
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 100);
    int64_t t0 = gort_now();
    for (int i = 0; i < 100; i++)
        gort_go(echo_client, &wg);
    gort_wg_wait(&wg);
    double ms = ms_since(t0);
    printf("10. I/O through %s: an echo server (a goroutine per connection) and 100 client\n"
           "   goroutines made %ld round trips over loopback in %.0f ms (%.0f per second)\n",
           gort_poller_name(), (long)echo_trips, ms, echo_trips / (ms / 1e3));
    char c;
    int64_t dl = gort_now() + 20 * 1000000;
    int fd = gort_dial_tcp("127.0.0.1", echo_port, 0);
    gort_set_read_deadline(fd, dl);
    ssize_t r = gort_read(fd, &c, 1);
    printf("   a read with a 20 ms deadline on a silent connection: \"%s\" after %.1f ms\n",
           strerror((int)-r), (gort_now() - dl) / 1e6 + 20);
    gort_close(fd);
    gort_close(l); /* wakes the accept loop, which ends */
}

/* 11. The collector: binary trees built and dropped by four goroutines while
 * the collector runs beside them; a finalizer reports an object's end. */
struct tnode {
    struct tnode *left, *right;
};

static struct tnode *tree(int d)
{
    struct tnode *n = gort_new(sizeof *n);
    if (d > 0) {
        GORT_STORE(n->left, tree(d - 1)); /* pointer stores into the heap: the barrier */
        GORT_STORE(n->right, tree(d - 1));
    }
    return n;
}

static long count(const struct tnode *n)
{
    return n ? 1 + count(n->left) + count(n->right) : 0;
}

static _Atomic long nodes_built;

static void tree_builder(void *arg)
{
    for (int i = 0; i < 40; i++)
        atomic_fetch_add(&nodes_built, count(tree(14)));
    gort_wg_done(arg);
}

static _Atomic int finalized;

static void on_final(void *obj, void *arg)
{
    (void)obj, (void)arg;
    atomic_store(&finalized, 1);
}

static void stop_gc(void)
{
    gort_memstats before, after;
    gort_read_memstats(&before);
    gort_set_finalizer(gort_new(64), on_final, NULL); /* unreachable at once */
    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 4);
    int64_t t0 = gort_now();
    for (int i = 0; i < 4; i++)
        gort_go(tree_builder, &wg);
    gort_wg_wait(&wg);
    double ms = ms_since(t0);
    gort_gc();
    for (int i = 0; i < 100 && !atomic_load(&finalized); i++)
        gort_sleep(1000000);
    gort_read_memstats(&after);
    uint64_t cycles = after.num_gc - before.num_gc;
    printf(
        "11. the collector: 4 goroutines built and dropped %ld tree nodes (%.0f MiB) in %.0f ms;\n"
        "   %llu concurrent cycles, longest stop-the-world pause %.0f us; %.1f MiB live after\n"
        "   gort_gc(); a finalizer %s\n",
        (long)nodes_built, nodes_built * 16.0 / (1 << 20), ms, (unsigned long long)cycles,
        after.pause_max_ns / 1e3, after.heap_alloc / (double)(1 << 20),
        atomic_load(&finalized) ? "ran for an object once it was unreachable" : "did not run");
}

static int tour(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    printf("gort tour: Go's runtime as a C library. main is goroutine %" PRIu64
           ", %d processors\n\n",
           gort_self(), gort_maxprocs(0));
    stop_many();

    stop_migration();

    gort_waitgroup wg = {0};
    gort_wg_add(&wg, 1);
    gort_go(wired, &wg);
    gort_wg_wait(&wg);

    gort_wg_add(&wg, 2);
    gort_go(sleeper, &wg);
    gort_go(worker, &wg);
    gort_wg_wait(&wg);
    printf("4. while one goroutine slept 200 ms in blocking C code (gort_blocking_begin/end),\n"
           "   another made %ld steps of progress on the processor it handed over\n",
           (long)progress);

    int old = gort_maxprocs(1);
    gort_wg_add(&wg, 2);
    int64_t t0 = gort_now();
    gort_go(yielder, &wg);
    gort_go(yielder, &wg);
    gort_wg_wait(&wg);
    double yield_ns = (double)(gort_now() - t0) / 2e6;
    gort_maxprocs(old);
    enum { S = 200000 };
    gort_wg_add(&wg, S);
    t0 = gort_now();
    for (int i = 0; i < S; i++)
        gort_go(nothing, &wg);
    gort_wg_wait(&wg);
    double spawn_ns = (double)(gort_now() - t0) / S;
    printf("5. two goroutines yielding to each other on one processor: %.1f ns per switch;\n"
           "   spawning %d goroutines that finish at once: %.0f ns each\n",
           yield_ns, S, spawn_ns);

    stop_sieve();
    stop_select_panic_mutex();
    stop_io();
    stop_gc();

    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("\ndone: %d goroutine(s) left, %.2f s of CPU used. "
           "Run `make bench` to compare with Go.\n",
           gort_num_goroutine(),
           ru.ru_utime.tv_sec + ru.ru_stime.tv_sec +
               (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(tour, argc, argv);
}

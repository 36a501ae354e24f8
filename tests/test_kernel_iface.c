/* tests/test_kernel_iface.c: kernel-iface wrappers against the real kernel.
 *
 * Needs no gort runtime: every test drives ki_* directly. Each test is
 * deterministic and bounded: waits that depend on another thread loop on a
 * condition with a generous deadline (a failure, never a hang), and timing is
 * only ever checked as a lower bound. Guard pages are checked by touching
 * them in a forked child and expecting it to die of SIGSEGV. Tests that need
 * a kernel feature the machine lacks skip with a reason.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "kernel-iface/ki.h"

#define MS  1000000LL
#define SEC 1000000000LL

/* ---- helpers ------------------------------------------------------------ */

/* Wait until *w != 0, sleeping on the futex, for at most 5 s. */
static bool wait_nonzero(_Atomic uint32_t *w)
{
    int64_t deadline = ki_nanotime() + 5 * SEC;
    while (atomic_load_explicit(w, memory_order_acquire) == 0) {
        int64_t left = deadline - ki_nanotime();
        if (left <= 0) return false;
        ki_futex_wait(w, 0, left);
    }
    return true;
}

static void set_and_wake(_Atomic uint32_t *w)
{
    atomic_store_explicit(w, 1, memory_order_release); /* pairs with wait_nonzero's acquire */
    ki_futex_wake(w, INT_MAX);
}

/* Fork a child that writes to p; returns the signal that killed it, or 0 when
 * it exited normally. SIGSEGV goes back to SIG_DFL in the child so that a
 * sanitizer's handler does not turn the fault into an exit code. */
static int child_touch_signal(void *p)
{
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        struct sigaction sa = {0};
        sa.sa_handler = SIG_DFL;
        sigaction(SIGSEGV, &sa, NULL);
        sigaction(SIGBUS, &sa, NULL);
        *(volatile char *)p = 1;
        _exit(0);
    }
    assert_true(pid > 0);
    int st;
    while (waitpid(pid, &st, 0) < 0)
        assert_int_equal(errno, EINTR);
    return WIFSIGNALED(st) ? WTERMSIG(st) : 0;
}

static int maps_lines(void)
{
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

/* ki_numa_discover's cpus arrays are malloc'd to live for the process; the
 * tests discover many times, so they hand them back. */
static void numa_release(struct ki_numa *t)
{
    for (int i = 0; i < t->nnodes; i++)
        free(t->node[i].cpus);
    memset(t, 0, sizeof *t);
}

/* ---- raw syscalls ------------------------------------------------------- */

static void test_syscall_raw(void **state)
{
    (void)state;
    assert_int_equal(ki_syscall6(SYS_getpid, 0, 0, 0, 0, 0, 0), getpid());
    assert_int_equal(ki_gettid(), (pid_t)syscall(SYS_gettid));
    errno = 1234;
    assert_int_equal(ki_syscall6(SYS_close, -1, 0, 0, 0, 0, 0), -EBADF);
    assert_int_equal(errno, 1234); /* never touched */
    assert_int_equal(ki_tgkill(getpid(), ki_gettid(), 0), 0);
    assert_int_equal(ki_tgkill(getpid(), ki_gettid(), 100000), -EINVAL);
}

static void test_write_all_pipe(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    const char msg[] = "hello, gort";
    assert_int_equal(ki_write_all(fds[1], msg, sizeof msg), (ssize_t)sizeof msg);
    char buf[64] = {0};
    assert_int_equal(read(fds[0], buf, sizeof buf), (ssize_t)sizeof msg);
    assert_string_equal(buf, msg);
    assert_int_equal(ki_write_all(fds[1], msg, 0), 0);
    assert_int_equal(ki_write_all(-1, msg, sizeof msg), -EBADF);
    close(fds[0]);
    close(fds[1]);
}

/* A write bigger than the pipe: ki_write_all must block and resume on short
 * writes while a reader thread drains the pipe. */
struct pipe_reader {
    int fd;
    size_t want, got;
    uint64_t sum;
    _Atomic uint32_t done;
};

static void pipe_reader_fn(void *arg)
{
    struct pipe_reader *r = arg;
    unsigned char buf[4096];
    while (r->got < r->want) {
        ssize_t n = read(r->fd, buf, sizeof buf);
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++)
            r->sum += buf[i];
        r->got += (size_t)n;
    }
    set_and_wake(&r->done);
}

static void test_write_all_large(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    size_t n = 512 * 1024;
    unsigned char *buf = malloc(n);
    assert_non_null(buf);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i++) {
        buf[i] = (unsigned char)(i * 7);
        sum += buf[i];
    }
    struct pipe_reader r = {.fd = fds[0], .want = n};
    assert_int_equal(ki_thread_start(pipe_reader_fn, &r, 0), 0);
    assert_int_equal(ki_write_all(fds[1], buf, n), (ssize_t)n);
    assert_true(wait_nonzero(&r.done));
    assert_int_equal(r.got, n);
    assert_int_equal(r.sum, sum);
    free(buf);
    close(fds[0]);
    close(fds[1]);
}

/* ---- futex -------------------------------------------------------------- */

static void test_futex_wait_value_differs(void **state)
{
    (void)state;
    _Atomic uint32_t w = 1;
    assert_int_equal(ki_futex_wait(&w, 0, -1), 0); /* -EAGAIN folded into 0 */
    assert_int_equal(ki_futex_wait(&w, 0, 0), 0);
    assert_int_equal(ki_futex_wake(&w, 1), 0); /* nobody sleeps there */
}

static void test_futex_wait_timeout(void **state)
{
    (void)state;
    _Atomic uint32_t w = 0;
    int64_t t0 = ki_nanotime();
    assert_int_equal(ki_futex_wait(&w, 0, 20 * MS), -ETIMEDOUT);
    assert_true(ki_nanotime() - t0 >= 20 * MS - MS / 2); /* lower bound only */
    assert_int_equal(ki_futex_wait(&w, 0, 0), -ETIMEDOUT);
}

struct waker {
    _Atomic uint32_t word;
    _Atomic uint32_t started;
    pid_t tid;
};

static void waker_fn(void *arg)
{
    struct waker *k = arg;
    k->tid = ki_gettid();
    set_and_wake(&k->started);
    /* Give the main thread a moment to go to sleep so that the wake usually
     * finds a sleeper; correctness does not depend on it. */
    ki_nanosleep(2 * MS);
    set_and_wake(&k->word);
}

static void test_futex_wake_from_thread(void **state)
{
    (void)state;
    struct waker k = {0};
    assert_int_equal(ki_thread_start(waker_fn, &k, 0), 0);
    assert_true(wait_nonzero(&k.word));
    assert_true(atomic_load(&k.started));
    assert_int_not_equal(k.tid, ki_gettid());
}

/* ---- clocks ------------------------------------------------------------- */

static void test_nanotime_monotonic(void **state)
{
    (void)state;
    int64_t prev = ki_nanotime();
    assert_true(prev > 0);
    for (int i = 0; i < 10000; i++) {
        int64_t now = ki_nanotime();
        assert_true(now >= prev);
        prev = now;
    }
    int64_t t0 = ki_nanotime();
    ki_nanosleep(2 * MS);
    assert_true(ki_nanotime() - t0 >= 2 * MS);
    ki_nanosleep(0);
    ki_nanosleep(-5);
    assert_true(ki_walltime() > 1577836800LL * SEC); /* after 2020-01-01 */
    assert_true(ki_thread_cputime() >= 0);
    assert_true(ki_process_cputime() >= ki_thread_cputime() / 2);
}

/* ---- threads ------------------------------------------------------------ */

struct thread_probe {
    void *arg_seen;
    pid_t tid;
    bool all_blocked;
    size_t stack_size;
    _Atomic uint32_t done;
};

static void thread_probe_fn(void *arg)
{
    struct thread_probe *p = arg;
    p->arg_seen = arg;
    p->tid = ki_gettid();
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    /* Every signal a thread can block (glibc keeps its two internal ones,
     * 32 and 33, out of every mask; SIGKILL and SIGSTOP cannot be blocked). */
    p->all_blocked = true;
    for (int s = 1; s <= SIGRTMAX; s++) {
        if (s == SIGKILL || s == SIGSTOP || (s > 31 && s < SIGRTMIN)) continue;
        if (!sigismember(&cur, s)) p->all_blocked = false;
    }
    pthread_attr_t a;
    if (pthread_getattr_np(pthread_self(), &a) == 0) {
        pthread_attr_getstacksize(&a, &p->stack_size);
        pthread_attr_destroy(&a);
    }
    set_and_wake(&p->done);
}

static void test_thread_start(void **state)
{
    (void)state;
    sigset_t before, after;
    pthread_sigmask(SIG_BLOCK, NULL, &before);
    assert_false(sigismember(&before, SIGUSR1));

    struct thread_probe p = {0};
    assert_int_equal(ki_thread_start(thread_probe_fn, &p, 1024 * 1024), 0);
    assert_true(wait_nonzero(&p.done));
    assert_ptr_equal(p.arg_seen, &p);
    assert_int_not_equal(p.tid, ki_gettid());
    assert_true(p.tid > 0);
    assert_true(p.all_blocked);
    assert_true(p.stack_size >= 1024 * 1024);

    pthread_sigmask(SIG_BLOCK, NULL, &after); /* the creator's mask is restored */
    for (int s = 1; s < 32; s++)
        assert_int_equal(sigismember(&before, s), sigismember(&after, s));

    struct thread_probe q = {0};
    assert_int_equal(ki_thread_start(thread_probe_fn, &q, 0), 0); /* default 256 KiB */
    assert_true(wait_nonzero(&q.done));
    assert_true(q.stack_size >= 256 * 1024);
    assert_int_equal(ki_thread_start(NULL, NULL, 0), -EINVAL);
}

static void test_cpu_count(void **state)
{
    (void)state;
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    assert_int_equal(ki_cpu_count(), CPU_COUNT(&set));
    assert_true(ki_cpu_count() >= 1);
}

struct affinity_probe {
    int cpu;
    int ret, count;
    bool has_cpu;
    _Atomic uint32_t done;
};

static void affinity_fn(void *arg)
{
    struct affinity_probe *a = arg;
    a->ret = ki_thread_set_affinity(&a->cpu, 1);
    cpu_set_t set;
    CPU_ZERO(&set);
    sched_getaffinity(0, sizeof set, &set);
    a->count = CPU_COUNT(&set);
    a->has_cpu = CPU_ISSET(a->cpu, &set);
    set_and_wake(&a->done);
}

static void test_thread_set_affinity(void **state)
{
    (void)state;
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    int last = -1;
    for (int c = 0; c < CPU_SETSIZE; c++)
        if (CPU_ISSET(c, &set)) last = c;
    assert_true(last >= 0);
    /* On a thread of its own: pinning the test's main thread would pin every
     * thread started after it. */
    struct affinity_probe a = {.cpu = last};
    assert_int_equal(ki_thread_start(affinity_fn, &a, 0), 0);
    assert_true(wait_nonzero(&a.done));
    assert_int_equal(a.ret, 0);
    assert_int_equal(a.count, 1);
    assert_true(a.has_cpu);
    assert_int_equal(ki_thread_set_affinity(NULL, 0), -EINVAL);
    int bad = -1;
    assert_int_equal(ki_thread_set_affinity(&bad, 1), -EINVAL);
}

/* ---- virtual memory ----------------------------------------------------- */

static void test_mmap_anon(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    int err = 1;
    for (int nohuge = 0; nohuge < 2; nohuge++) {
        unsigned char *p = ki_mmap_anon(n, nohuge, &err);
        assert_non_null(p);
        assert_int_equal(err, 0);
        assert_int_equal((uintptr_t)p % KI_PAGE_SIZE, 0);
        for (size_t i = 0; i < n; i += 512)
            assert_int_equal(p[i], 0);
        memset(p, 0xab, n);
        assert_int_equal(p[n - 1], 0xab);
        assert_int_equal(ki_mdiscard(p, n), 0); /* reads back as zero */
        for (size_t i = 0; i < n; i += 512)
            assert_int_equal(p[i], 0);
        assert_int_equal(ki_munmap(p, n), 0);
    }
    assert_null(ki_mmap_anon(0, false, &err));
    assert_int_equal(err, -EINVAL);
}

static void test_mmap_reserve_commit(void **state)
{
    (void)state;
    size_t n = 16 * KI_PAGE_SIZE;
    int err = 1;
    char *p = ki_mmap_reserve(n, &err);
    assert_non_null(p);
    assert_int_equal(err, 0);
    assert_int_equal(child_touch_signal(p), SIGSEGV); /* reserved: no access */
    assert_int_equal(ki_mcommit(p, 4 * KI_PAGE_SIZE), 0);
    p[0] = 1;
    p[4 * KI_PAGE_SIZE - 1] = 2;
    assert_int_equal(child_touch_signal(p + 4 * KI_PAGE_SIZE), SIGSEGV); /* rest not */
    assert_int_equal(ki_munmap(p, n), 0);
    assert_int_equal(ki_mcommit((void *)1, KI_PAGE_SIZE), -EINVAL);
}

static void test_guard_reported_kind(void **state)
{
    (void)state;
    enum ki_guard_kind k = ki_guard_kind();
    assert_true(k == KI_GUARD_MPROTECT || k == KI_GUARD_MADVISE);
    assert_int_equal(ki_guard_kind(), k); /* probed once, stable */

    char *p = ki_mmap_anon(3 * KI_PAGE_SIZE, true, NULL);
    assert_non_null(p);
    memset(p, 1, 3 * KI_PAGE_SIZE);
    void *r = p + KI_PAGE_SIZE;
    assert_int_equal(ki_guard_install(&r, 1, KI_PAGE_SIZE), 0);
    assert_int_equal(child_touch_signal(p + KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(child_touch_signal(p + 2 * KI_PAGE_SIZE - 1), SIGSEGV);
    assert_int_equal(child_touch_signal(p), 0); /* neighbours untouched */
    assert_int_equal(child_touch_signal(p + 2 * KI_PAGE_SIZE), 0);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[2 * KI_PAGE_SIZE], 1);
    /* A guard survives returning the pages to the kernel. */
    assert_int_equal(ki_mdiscard(p, 3 * KI_PAGE_SIZE), 0);
    assert_int_equal(child_touch_signal(p + KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(ki_munmap(p, 3 * KI_PAGE_SIZE), 0);

    assert_int_equal(ki_guard_install(&r, 0, KI_PAGE_SIZE), 0);
    assert_int_equal(ki_guard_install(&r, 1, 100), -EINVAL);
}

/* MADV_GUARD_INSTALL refuses mlock'd ranges, which drives ki_guard_install
 * down its mprotect fallback, both for one range and for a batch. mlock goes
 * through the raw syscall: AddressSanitizer turns mlock(3) into a no-op. */
static int raw_mlock(void *p, size_t n)
{
    return (int)ki_syscall6(SYS_mlock, (long)p, (long)n, 0, 0, 0, 0);
}

static void test_guard_mprotect_fallback(void **state)
{
    (void)state;
    size_t n = 5 * KI_PAGE_SIZE;
    char *p = ki_mmap_anon(n, true, NULL);
    assert_non_null(p);
    if (raw_mlock(p, n) != 0) {
        ki_munmap(p, n);
        skip(); /* RLIMIT_MEMLOCK too small here */
    }
    int before = maps_lines();
    void *r[2] = {p + KI_PAGE_SIZE, p + 3 * KI_PAGE_SIZE};
    assert_int_equal(ki_guard_install(r, 1, KI_PAGE_SIZE), 0);
    assert_int_equal(ki_guard_install(r + 1, 1, KI_PAGE_SIZE), 0);
    /* mprotect splits the VMA: 5 regions now where there was one. */
    assert_int_equal(maps_lines() - before, 4);
    assert_int_equal(child_touch_signal(p + KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(child_touch_signal(p + 3 * KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(child_touch_signal(p + 2 * KI_PAGE_SIZE), 0);
    ki_munmap(p, n);

    p = ki_mmap_anon(n, true, NULL);
    assert_non_null(p);
    assert_int_equal(raw_mlock(p, n), 0);
    r[0] = p + KI_PAGE_SIZE;
    r[1] = p + 3 * KI_PAGE_SIZE;
    assert_int_equal(ki_guard_install(r, 2, KI_PAGE_SIZE), 0); /* the batch path */
    assert_int_equal(child_touch_signal(p + KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(child_touch_signal(p + 3 * KI_PAGE_SIZE), SIGSEGV);
    assert_int_equal(child_touch_signal(p + 4 * KI_PAGE_SIZE), 0);
    ki_munmap(p, n);
}

static void test_guard_many_ranges(void **state)
{
    (void)state;
    enum { N = 3000 };
    size_t stride = 2 * KI_PAGE_SIZE;
    char *base = ki_mmap_anon(N * stride, true, NULL);
    assert_non_null(base);
    void **r = malloc(N * sizeof *r);
    assert_non_null(r);
    for (int i = 0; i < N; i++)
        r[i] = base + (size_t)i * stride;
    int before = maps_lines();
    assert_int_equal(ki_guard_install((void *const *)r, N, KI_PAGE_SIZE), 0);
    int grown = maps_lines() - before;
    if (ki_guard_kind() == KI_GUARD_MADVISE)
        assert_true(grown < 10); /* one VMA per reservation, guards or not */
    else
        assert_true(grown >= N); /* mprotect: a VMA per guard, at least */
    /* Guards in each batch of 1024, and the pages between them still work. */
    for (int i = 0; i < N; i += 1023)
        assert_int_equal(child_touch_signal(r[i]), SIGSEGV);
    assert_int_equal(child_touch_signal(r[N - 1]), SIGSEGV);
    for (int i = 0; i < N; i++)
        ((char *)r[i])[KI_PAGE_SIZE] = 1;
    assert_int_equal(child_touch_signal((char *)r[N / 2] + KI_PAGE_SIZE), 0);
    free(r);
    assert_int_equal(ki_munmap(base, N * stride), 0);
}

static void test_mbind_node(void **state)
{
    (void)state;
    size_t n = 4 * KI_PAGE_SIZE;
    char *p = ki_mmap_anon(n, true, NULL);
    assert_non_null(p);
    assert_int_equal(ki_mbind_node(p, n, -1), -EINVAL);
    assert_int_equal(ki_mbind_node(p, n, 64), -EINVAL);
    struct ki_numa t;
    char eb[128];
    assert_int_equal(ki_numa_discover(&t, NULL, eb, sizeof eb), 0);
    bool real = t.real;
    int kid = t.node[0].kernel_id;
    numa_release(&t);
    if (!real) {
        ki_munmap(p, n);
        skip(); /* no NUMA support in this kernel */
    }
    int r = ki_mbind_node(p, n, kid);
    if (r == -EPERM || r == -ENOSYS) { /* seccomp-filtered in some containers */
        ki_munmap(p, n);
        skip();
    }
    assert_int_equal(r, 0);
    memset(p, 1, n);
    ki_munmap(p, n);
}

/* ---- signals ------------------------------------------------------------ */

static void test_sigaltstack(void **state)
{
    (void)state;
    stack_t orig, ss;
    assert_int_equal(sigaltstack(NULL, &orig), 0); /* a sanitizer may own one */

    assert_int_equal(ki_sigaltstack_setup(0), 0);
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_false(ss.ss_flags & SS_DISABLE);
    assert_true(ss.ss_size >= 64 * 1024);
    char *sp = ss.ss_sp;
    sp[0] = 1;
    sp[ss.ss_size - 1] = 1;
    assert_int_equal(child_touch_signal(sp - 1), SIGSEGV); /* the guard page */
    assert_int_equal(ki_sigaltstack_setup(16 * 1024), 0);  /* big enough: kept */
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_ptr_equal(ss.ss_sp, sp);
    assert_int_equal(ki_sigaltstack_setup(1 << 20), 0); /* grown: replaced */
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_true(ss.ss_size >= 1 << 20);

    ki_sigaltstack_free();
    assert_int_equal(sigaltstack(NULL, &ss), 0);
    assert_true(ss.ss_flags & SS_DISABLE);
    ki_sigaltstack_free(); /* twice: harmless */

    if (!(orig.ss_flags & SS_DISABLE)) assert_int_equal(sigaltstack(&orig, NULL), 0);
}

static volatile sig_atomic_t handler_ran;
static volatile uintptr_t handler_local_addr;
static volatile sig_atomic_t handler_usr2_blocked, handler_segv_blocked, handler_info_ok;

static void on_usr1(int sig, siginfo_t *info, void *uctx)
{
    (void)uctx;
    volatile char local = 0;
    handler_local_addr = (uintptr_t)&local;
    sigset_t cur;
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    handler_usr2_blocked = sigismember(&cur, SIGUSR2);
    handler_segv_blocked = sigismember(&cur, SIGSEGV) || sigismember(&cur, SIGBUS) ||
                           sigismember(&cur, SIGFPE) || sigismember(&cur, SIGILL) ||
                           sigismember(&cur, SIGTRAP);
    handler_info_ok = sig == SIGUSR1 && info && info->si_signo == SIGUSR1;
    handler_ran = 1;
}

static void test_signal_install_on_altstack(void **state)
{
    (void)state;
    stack_t orig, ss;
    assert_int_equal(sigaltstack(NULL, &orig), 0);
    assert_int_equal(ki_sigaltstack_setup(0), 0);
    assert_int_equal(sigaltstack(NULL, &ss), 0);

    struct sigaction old, cur;
    assert_int_equal(ki_signal_install(SIGUSR1, on_usr1, &old), 0);
    assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
    int want = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    assert_int_equal(cur.sa_flags & want, want);

    handler_ran = 0;
    assert_int_equal(raise(SIGUSR1), 0);
    assert_true(handler_ran);
    assert_true(handler_info_ok);
    assert_true(handler_local_addr >= (uintptr_t)ss.ss_sp);
    assert_true(handler_local_addr < (uintptr_t)ss.ss_sp + ss.ss_size);
    assert_true(handler_usr2_blocked);
    assert_false(handler_segv_blocked);

    /* ki_tgkill to this thread takes the same path. */
    handler_ran = 0;
    assert_int_equal(ki_tgkill(getpid(), ki_gettid(), SIGUSR1), 0);
    assert_true(handler_ran);

    assert_int_equal(ki_signal_restore(SIGUSR1, &old), 0);
    assert_int_equal(sigaction(SIGUSR1, NULL, &cur), 0);
    assert_true(cur.sa_handler == old.sa_handler);
    assert_int_equal(ki_signal_install(SIGKILL, on_usr1, NULL), -EINVAL);

    ki_sigaltstack_free();
    if (!(orig.ss_flags & SS_DISABLE)) assert_int_equal(sigaltstack(&orig, NULL), 0);
}

static void test_signal_masks(void **state)
{
    (void)state;
    sigset_t old, cur;
    assert_int_equal(ki_signals_block_all(&old), 0);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    assert_true(sigismember(&cur, SIGUSR1));
    assert_true(sigismember(&cur, SIGURG));
    assert_int_equal(ki_signals_set_mask(&old), 0);
    pthread_sigmask(SIG_BLOCK, NULL, &cur);
    assert_int_equal(sigismember(&cur, SIGUSR1), sigismember(&old, SIGUSR1));
    assert_int_equal(ki_signals_block_all(NULL), 0);
    assert_int_equal(ki_signals_set_mask(&old), 0);
}

/* ---- NUMA topology ------------------------------------------------------ */

/* The invariants every topology keeps: counts add up to the usable CPUs,
 * each CPU is listed once, lists ascend, node_of_cpu agrees with the lists. */
static void check_topology(const struct ki_numa *t)
{
    assert_true(t->nnodes >= 1 && t->nnodes <= KI_MAX_NODES);
    assert_true(t->node[0].ncpus >= 1);
    int sum = 0;
    cpu_set_t seen;
    CPU_ZERO(&seen);
    for (int n = 0; n < t->nnodes; n++) {
        const struct ki_numa_node *nd = &t->node[n];
        assert_true(nd->ncpus >= 0);
        assert_true(nd->ncpus == 0 || nd->cpus != NULL);
        if (t->real)
            assert_true(nd->kernel_id >= 0);
        else
            assert_int_equal(nd->kernel_id, -1);
        for (int i = 0; i < nd->ncpus; i++) {
            int c = nd->cpus[i];
            assert_true(c >= 0 && c < CPU_SETSIZE);
            assert_false(CPU_ISSET(c, &seen));
            CPU_SET(c, &seen);
            if (i) assert_true(nd->cpus[i - 1] < c);
            assert_int_equal(ki_numa_node_of_cpu(t, c), n);
        }
        sum += nd->ncpus;
    }
    assert_int_equal(sum, ki_cpu_count());
}

static void test_numa_auto(void **state)
{
    (void)state;
    struct ki_numa t;
    char eb[128] = "junk";
    assert_int_equal(ki_numa_discover(&t, NULL, eb, sizeof eb), 0);
    assert_string_equal(eb, "");
    assert_false(t.fake);
    check_topology(&t);
    numa_release(&t);
    assert_int_equal(ki_numa_discover(&t, "", eb, sizeof eb), 0);
    check_topology(&t);
    assert_int_equal(ki_numa_node_of_cpu(&t, 1 << 20), 0); /* unknown CPU */
    numa_release(&t);
}

static void test_numa_off(void **state)
{
    (void)state;
    struct ki_numa t;
    char eb[128];
    assert_int_equal(ki_numa_discover(&t, "off", eb, sizeof eb), 0);
    assert_int_equal(t.nnodes, 1);
    assert_false(t.real);
    assert_false(t.fake);
    assert_int_equal(t.node[0].ncpus, ki_cpu_count());
    check_topology(&t);
    numa_release(&t);
}

static void test_numa_fake(void **state)
{
    (void)state;
    struct ki_numa t;
    char eb[128];
    int ncpu = ki_cpu_count();
    for (int n = 1; n <= KI_MAX_NODES; n++) {
        char env[16];
        snprintf(env, sizeof env, "fake:%d", n);
        assert_int_equal(ki_numa_discover(&t, env, eb, sizeof eb), 0);
        assert_int_equal(t.nnodes, n);
        assert_true(t.fake);
        assert_false(t.real);
        check_topology(&t);
        /* Near-equal contiguous blocks, larger first; the extra nodes when
         * n > ncpu hold nothing. */
        for (int i = 0; i < n; i++) {
            int want = ncpu / n + (i < ncpu % n);
            assert_int_equal(t.node[i].ncpus, want);
            if (want == 0) assert_null(t.node[i].cpus);
            if (i && t.node[i].ncpus && t.node[i - 1].ncpus)
                assert_true(t.node[i - 1].cpus[t.node[i - 1].ncpus - 1] < t.node[i].cpus[0]);
        }
        numa_release(&t);
    }
    assert_int_equal(ki_numa_discover(&t, "fake:2", eb, sizeof eb), 0);
    assert_int_equal(t.nnodes, 2);
    assert_int_equal(t.node[0].ncpus + t.node[1].ncpus, ncpu);
    numa_release(&t);
    assert_int_equal(ki_numa_discover(&t, "fake:64", eb, sizeof eb), 0);
    assert_int_equal(t.nnodes, 64);
    numa_release(&t);
}

static void test_numa_bad_env(void **state)
{
    (void)state;
    static const char *const bad[] = {"fake:",
                                      "fake:0",
                                      "fake:65",
                                      "fake:2x",
                                      "on",
                                      "banana",
                                      "fake:-1",
                                      "fake: 2",
                                      "fake:+2",
                                      "OFF",
                                      "off ",
                                      "fake",
                                      "fake:99999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        struct ki_numa t;
        char eb[160] = "";
        assert_int_equal(ki_numa_discover(&t, bad[i], eb, sizeof eb), -EINVAL);
        assert_non_null(strstr(eb, "GORT_NUMA"));
        assert_non_null(strstr(eb, bad[i]));
    }
    struct ki_numa t;
    char tiny[8];
    assert_int_equal(ki_numa_discover(&t, "banana", tiny, sizeof tiny), -EINVAL);
    assert_int_equal(strlen(tiny), sizeof tiny - 1); /* truncated, terminated */
    assert_int_equal(ki_numa_discover(&t, "banana", NULL, 0), -EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_syscall_raw),
        cmocka_unit_test(test_write_all_pipe),
        cmocka_unit_test(test_write_all_large),
        cmocka_unit_test(test_futex_wait_value_differs),
        cmocka_unit_test(test_futex_wait_timeout),
        cmocka_unit_test(test_futex_wake_from_thread),
        cmocka_unit_test(test_nanotime_monotonic),
        cmocka_unit_test(test_thread_start),
        cmocka_unit_test(test_cpu_count),
        cmocka_unit_test(test_thread_set_affinity),
        cmocka_unit_test(test_mmap_anon),
        cmocka_unit_test(test_mmap_reserve_commit),
        cmocka_unit_test(test_guard_reported_kind),
        cmocka_unit_test(test_guard_mprotect_fallback),
        cmocka_unit_test(test_guard_many_ranges),
        cmocka_unit_test(test_mbind_node),
        cmocka_unit_test(test_sigaltstack),
        cmocka_unit_test(test_signal_install_on_altstack),
        cmocka_unit_test(test_signal_masks),
        cmocka_unit_test(test_numa_auto),
        cmocka_unit_test(test_numa_off),
        cmocka_unit_test(test_numa_fake),
        cmocka_unit_test(test_numa_bad_env),
    };
    return cmocka_run_group_tests_name("kernel_iface", tests, NULL, NULL);
}

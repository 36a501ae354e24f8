/* tests/test_preempt.c: sysmon, SIGURG preemption, blocking regions and
 * stop-the-world while goroutines hog every processor.
 *
 * Each case runs this program again as a subprocess ("--scenario NAME") with
 * its own GORT_* environment, bounded in time: a scenario that cannot make
 * progress without preemption hangs, is killed, and the case fails. The
 * negative case (asyncpreemptoff) shows that the hog scenario really does
 * hang without the signal. No timing is asserted: only that the programs
 * finish and compute what they should.
 */
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort.h"
#include "gort_test.h"

#define RUN_TIMEOUT_MS 60000

void gort__preempt_stats(uint64_t *async, uint64_t *unsafe);
uint64_t gort__preempt_alarms(void);

/* ---- scenarios (in the subprocess) ------------------------------------------------------ */

static volatile int stop;
static volatile uint64_t spins;

/* A loop with no calls at all: only a signal can take the CPU from it. */
static void hog(void *arg)
{
    (void)arg;
    while (!stop)
        spins++;
}

/* Main sleeps 20 times while hogs hold every P. */
static int sc_hog_sleep(void)
{
    int n = gort_maxprocs(0);
    for (int i = 0; i < n; i++)
        gort_go(hog, NULL);
    int64_t worst = 0;
    for (int i = 0; i < 20; i++) {
        int64_t t = gort_now();
        gort_sleep(2 * MS);
        int64_t late = gort_now() - t - 2 * MS;
        if (late > worst) worst = late;
    }
    stop = 1;
    printf("slept 20 times beside %d hogs, worst lateness %.3f ms\n", n, worst / 1e6);
    return 0;
}

/* The same with the preemption alarm watched: once a hog has been
 * preempted, the M that runs it again arms a kernel timer for the sleeper's
 * wake-up, and that timer's signal preempts the hog (whether or not sysmon
 * gets there first, it must win some of the time within 500 sleeps). Prints
 * the count; exits 0 when it is as expected (want_alarms: some, else none). */
static int sc_hog_alarm(bool want_alarms)
{
    int n = gort_maxprocs(0);
    for (int i = 0; i < n; i++)
        gort_go(hog, NULL);
    for (int i = 0; i < 500; i++) {
        gort_sleep(MS);
        if (want_alarms && gort__preempt_alarms() > 0) break;
        if (!want_alarms && i == 50) break;
    }
    stop = 1;
    uint64_t alarms = gort__preempt_alarms();
    printf("hog alarm: %llu preemptions by the alarm beside %d hogs\n", (unsigned long long)alarms,
           n);
    return (alarms > 0) == want_alarms ? 0 : 1;
}

/* A goroutine that spins (so it gets preempted and counts as a hog) and
 * then sleeps in poll() and nanosleep() inside blocking regions: calls the
 * kernel does not restart after a signal. The alarm armed for the hog must
 * not interrupt them. A preemption signal sent just as the region begins
 * can still do so (as in Go), rarely; the alarm without disarming did it to
 * nearly half the calls. Prints the count; exits 0 when at most 8 of 80. */
static int sc_blocking_eintr(void)
{
    int eintr = 0;
    for (int round = 0; round < 40; round++) {
        int64_t end = gort_now() + 25 * MS;
        do { /* mostly in this loop, a safe point, rather than in gort_now */
            for (int k = 0; k < 100000; k++)
                spins++;
        } while (gort_now() < end);
        gort_blocking_begin();
        if (poll(NULL, 0, 30) < 0 && errno == EINTR) eintr++;
        struct timespec ts = {0, 30 * 1000 * 1000};
        if (nanosleep(&ts, NULL) < 0 && errno == EINTR) eintr++;
        gort_blocking_end();
    }
    printf("blocking regions after spinning: %d of 80 sleeps interrupted\n", eintr);
    return eintr <= 8 ? 0 : 1;
}

/* A test-and-set spinlock handed between goroutines on one P. The holder
 * yields while holding it, so the others spin on it with no call in the
 * loop: only preemption gives the holder the CPU back. */
static atomic_int spinlock;
static int guarded;
static gort_waitgroup spin_wg;

static void spin_worker(void *arg)
{
    (void)arg;
    for (int i = 0; i < 20; i++) {
        int zero = 0;
        while (!atomic_compare_exchange_weak(&spinlock, &zero, 1))
            zero = 0;
        guarded++;
        gort_yield(); /* descheduled while holding the lock */
        atomic_store(&spinlock, 0);
    }
    gort_wg_done(&spin_wg);
}

static int sc_spinlock(void)
{
    gort_wg_add(&spin_wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(spin_worker, NULL);
    gort_wg_wait(&spin_wg);
    printf("spinlock: %d\n", guarded);
    return guarded == 80 ? 0 : 1;
}

/* cat, dog, fish with one mutex and a turn counter each goroutine
 * busy-waits on (EXERCISES.md 1b). */
static gort_mutex cdf_mu;
static int cdf_turn;
static char cdf_out[300 * 5 + 1];
static gort_waitgroup cdf_wg;
static const char *const cdf_words[3] = {"cat", "dog", "fish"};

static void cdf_worker(void *arg)
{
    int me = (int)(intptr_t)arg;
    for (int round = 0; round < 100; round++) {
        for (;;) {
            gort_mutex_lock(&cdf_mu);
            if (cdf_turn % 3 == me) {
                strcat(cdf_out, cdf_words[me]);
                strcat(cdf_out, " ");
                cdf_turn++;
                gort_mutex_unlock(&cdf_mu);
                break;
            }
            gort_mutex_unlock(&cdf_mu);
        }
    }
    gort_wg_done(&cdf_wg);
}

static int sc_catdogfish(void)
{
    int64_t t0 = gort_now();
    gort_wg_add(&cdf_wg, 3);
    for (int i = 0; i < 3; i++)
        gort_go(cdf_worker, (void *)(intptr_t)i);
    gort_wg_wait(&cdf_wg);
    char want[sizeof cdf_out] = "";
    for (int i = 0; i < 300; i++) {
        strcat(want, cdf_words[i % 3]);
        strcat(want, " ");
    }
    printf("cat/dog/fish: %d words in %.1f ms\n", cdf_turn, (gort_now() - t0) / 1e6);
    return strcmp(want, cdf_out) == 0 ? 0 : 1;
}

/* libc under constant preemption attempts: malloc, snprintf and stdio in
 * loops beside hogs, with a 50 us time slice. A goroutine stopped inside
 * libc holding a lock would deadlock the next caller on its thread. */
static gort_waitgroup libc_wg;
static atomic_long libc_ops;

static void libc_worker(void *arg)
{
    FILE *f = arg;
    int64_t end = gort_now() + 1500 * MS;
    unsigned seed = 1;
    while (gort_now() < end) {
        for (int i = 0; i < 100; i++) {
            seed = seed * 1103515245 + 12345;
            size_t n = 16 + (seed >> 16) % 4000;
            char *p = malloc(n);
            snprintf(p, n, "%u %zu %f", seed, n, seed / 7.0);
            fprintf(f, "%s\n", p);
            char *q = realloc(p, n * 2);
            free(q);
            atomic_fetch_add(&libc_ops, 1);
        }
    }
    gort_wg_done(&libc_wg);
}

static int sc_libc(void)
{
    FILE *f = fopen("/dev/null", "w");
    if (!f) return 3;
    int n = gort_maxprocs(0);
    for (int i = 0; i < n; i++)
        gort_go(hog, NULL);
    gort_wg_add(&libc_wg, 4);
    for (int i = 0; i < 4; i++)
        gort_go(libc_worker, f);
    gort_wg_wait(&libc_wg);
    stop = 1;
    fclose(f);
    uint64_t async, unsafe;
    gort__preempt_stats(&async, &unsafe);
    printf("libc: %ld operations; %llu preemptions, %llu signals at unsafe points\n",
           atomic_load(&libc_ops), (unsigned long long)async, (unsigned long long)unsafe);
    return async > 0 ? 0 : 1;
}

/* Registers survive preemption: a loop with every general register it may
 * use, the 16 vector registers (256 bits with AVX) and MXCSR holding known
 * values, checked after millions of iterations. */
struct regs {
    uint8_t vec[16][32];
    uint64_t gpr[8]; /* r8..r15 */
    uint32_t mxcsr;
};

__asm__(".text\n"
        ".globl regs_spin_sse\n"
        "regs_spin_sse:\n" /* (iters, const struct regs *in, struct regs *out) */
        "  push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
        "  sub $8, %rsp\n"
        "  stmxcsr (%rsp)\n"
        "  ldmxcsr 576(%rsi)\n"
        "  movdqu 0(%rsi), %xmm0;  movdqu 32(%rsi), %xmm1;  movdqu 64(%rsi), %xmm2\n"
        "  movdqu 96(%rsi), %xmm3; movdqu 128(%rsi), %xmm4; movdqu 160(%rsi), %xmm5\n"
        "  movdqu 192(%rsi), %xmm6; movdqu 224(%rsi), %xmm7; movdqu 256(%rsi), %xmm8\n"
        "  movdqu 288(%rsi), %xmm9; movdqu 320(%rsi), %xmm10; movdqu 352(%rsi), %xmm11\n"
        "  movdqu 384(%rsi), %xmm12; movdqu 416(%rsi), %xmm13; movdqu 448(%rsi), %xmm14\n"
        "  movdqu 480(%rsi), %xmm15\n"
        "  mov 512(%rsi), %r8; mov 520(%rsi), %r9; mov 528(%rsi), %r10; mov 536(%rsi), %r11\n"
        "  mov 544(%rsi), %r12; mov 552(%rsi), %r13; mov 560(%rsi), %r14; mov 568(%rsi), %r15\n"
        "1: dec %rdi\n"
        "  jnz 1b\n"
        "  movdqu %xmm0, 0(%rdx);  movdqu %xmm1, 32(%rdx);  movdqu %xmm2, 64(%rdx)\n"
        "  movdqu %xmm3, 96(%rdx); movdqu %xmm4, 128(%rdx); movdqu %xmm5, 160(%rdx)\n"
        "  movdqu %xmm6, 192(%rdx); movdqu %xmm7, 224(%rdx); movdqu %xmm8, 256(%rdx)\n"
        "  movdqu %xmm9, 288(%rdx); movdqu %xmm10, 320(%rdx); movdqu %xmm11, 352(%rdx)\n"
        "  movdqu %xmm12, 384(%rdx); movdqu %xmm13, 416(%rdx); movdqu %xmm14, 448(%rdx)\n"
        "  movdqu %xmm15, 480(%rdx)\n"
        "  mov %r8, 512(%rdx); mov %r9, 520(%rdx); mov %r10, 528(%rdx); mov %r11, 536(%rdx)\n"
        "  mov %r12, 544(%rdx); mov %r13, 552(%rdx); mov %r14, 560(%rdx); mov %r15, 568(%rdx)\n"
        "  stmxcsr 576(%rdx)\n"
        "  ldmxcsr (%rsp)\n"
        "  add $8, %rsp\n"
        "  pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
        "  ret\n"
        ".globl regs_spin_avx\n"
        "regs_spin_avx:\n"
        "  vmovdqu 0(%rsi), %ymm0;  vmovdqu 32(%rsi), %ymm1;  vmovdqu 64(%rsi), %ymm2\n"
        "  vmovdqu 96(%rsi), %ymm3; vmovdqu 128(%rsi), %ymm4; vmovdqu 160(%rsi), %ymm5\n"
        "  vmovdqu 192(%rsi), %ymm6; vmovdqu 224(%rsi), %ymm7; vmovdqu 256(%rsi), %ymm8\n"
        "  vmovdqu 288(%rsi), %ymm9; vmovdqu 320(%rsi), %ymm10; vmovdqu 352(%rsi), %ymm11\n"
        "  vmovdqu 384(%rsi), %ymm12; vmovdqu 416(%rsi), %ymm13; vmovdqu 448(%rsi), %ymm14\n"
        "  vmovdqu 480(%rsi), %ymm15\n"
        "1: dec %rdi\n"
        "  jnz 1b\n"
        "  vmovdqu %ymm0, 0(%rdx);  vmovdqu %ymm1, 32(%rdx);  vmovdqu %ymm2, 64(%rdx)\n"
        "  vmovdqu %ymm3, 96(%rdx); vmovdqu %ymm4, 128(%rdx); vmovdqu %ymm5, 160(%rdx)\n"
        "  vmovdqu %ymm6, 192(%rdx); vmovdqu %ymm7, 224(%rdx); vmovdqu %ymm8, 256(%rdx)\n"
        "  vmovdqu %ymm9, 288(%rdx); vmovdqu %ymm10, 320(%rdx); vmovdqu %ymm11, 352(%rdx)\n"
        "  vmovdqu %ymm12, 384(%rdx); vmovdqu %ymm13, 416(%rdx); vmovdqu %ymm14, 448(%rdx)\n"
        "  vmovdqu %ymm15, 480(%rdx)\n"
        "  vzeroupper\n"
        "  ret\n"
        /* A leaf that keeps 16 words in its red zone (below rsp) across a
         * long loop and returns how many changed. */
        ".globl redzone_spin\n"
        "redzone_spin:\n" /* (iters) */
        "  xor %eax, %eax\n"
        "  mov $0x5a5a000000000000, %rcx\n"
        "  mov $16, %edx\n"
        "2: mov %rcx, -136(%rsp,%rdx,8)\n"
        "  inc %rcx\n"
        "  dec %edx\n"
        "  jnz 2b\n"
        "1: dec %rdi\n"
        "  jnz 1b\n"
        "  mov $0x5a5a000000000000, %rcx\n"
        "  mov $16, %edx\n"
        "3: cmp %rcx, -136(%rsp,%rdx,8)\n"
        "  je 4f\n"
        "  inc %eax\n"
        "4: inc %rcx\n"
        "  dec %edx\n"
        "  jnz 3b\n"
        "  ret\n");
void regs_spin_sse(long iters, const struct regs *in, struct regs *out);
void regs_spin_avx(long iters, const struct regs *in, struct regs *out);
int redzone_spin(long iters);

static atomic_int reg_errors, reg_runs;
static gort_waitgroup reg_wg;

static void regs_worker(void *arg)
{
    int id = (int)(intptr_t)arg;
    bool avx = __builtin_cpu_supports("avx");
    for (int round = 0; round < 6; round++) {
        struct regs in, out;
        memset(&out, 0, sizeof out);
        for (size_t i = 0; i < sizeof in.vec; i++)
            ((uint8_t *)in.vec)[i] = (uint8_t)(i * 7 + id * 13 + round);
        for (int i = 0; i < 8; i++)
            in.gpr[i] = 0x1000000000000000ULL * (uint64_t)(i + 1) + (uint64_t)(id * 100 + round);
        in.mxcsr = 0x1f80 | (3u << 13); /* round toward zero */
        regs_spin_sse(30 * 1000 * 1000, &in, &out);
        for (int k = 0; k < 16; k++)
            if (memcmp(in.vec[k], out.vec[k], 16)) atomic_fetch_add(&reg_errors, 1);
        if (memcmp(in.gpr, out.gpr, sizeof in.gpr) || out.mxcsr != in.mxcsr)
            atomic_fetch_add(&reg_errors, 1);
        if (avx) {
            memset(&out, 0, sizeof out);
            regs_spin_avx(30 * 1000 * 1000, &in, &out);
            if (memcmp(in.vec, out.vec, sizeof in.vec)) atomic_fetch_add(&reg_errors, 1);
        }
        if (redzone_spin(30 * 1000 * 1000) != 0) atomic_fetch_add(&reg_errors, 1);
        atomic_fetch_add(&reg_runs, 1);
    }
    gort_wg_done(&reg_wg);
}

static int sc_registers(void)
{
    int n = 3 * gort_maxprocs(0);
    gort_wg_add(&reg_wg, n);
    for (int i = 0; i < n; i++)
        gort_go(regs_worker, (void *)(intptr_t)i);
    gort_wg_wait(&reg_wg);
    uint64_t async, unsafe;
    gort__preempt_stats(&async, &unsafe);
    printf("registers: %d runs, %d errors, %llu preemptions\n", atomic_load(&reg_runs),
           atomic_load(&reg_errors), (unsigned long long)async);
    return atomic_load(&reg_errors) == 0 && async > 0 ? 0 : 1;
}

/* Goroutines blocked in plain read() inside blocking regions do not stop
 * the others: with one P, main keeps computing and sleeping while they
 * wait, and they all return once written to. */
static int pipes[8][2];
static atomic_int readers_done;

static void pipe_reader(void *arg)
{
    int i = (int)(intptr_t)arg;
    char c;
    gort_blocking_begin();
    ssize_t r;
    while ((r = read(pipes[i][0], &c, 1)) < 0 && errno == EINTR) {
    }
    gort_blocking_end();
    if (r == 1 && c == 'x') atomic_fetch_add(&readers_done, 1);
}

static atomic_int ticks;
static void ticker_g(void *arg)
{
    (void)arg;
    for (int i = 0; i < 50; i++) {
        atomic_fetch_add(&ticks, 1);
        gort_yield();
    }
}

static int sc_blocking_read(void)
{
    for (int i = 0; i < 8; i++) {
        if (pipe(pipes[i]) != 0) return 3;
        gort_go(pipe_reader, (void *)(intptr_t)i);
    }
    gort_sleep(20 * MS); /* the readers are in read() now */
    for (int i = 0; i < 4; i++)
        gort_go(ticker_g, NULL);
    for (int i = 0; i < 100 && atomic_load(&ticks) < 200; i++)
        gort_sleep(MS);
    int t = atomic_load(&ticks);
    for (int i = 0; i < 8; i++)
        if (write(pipes[i][1], "x", 1) != 1) return 3;
    for (int i = 0; i < 1000 && atomic_load(&readers_done) < 8; i++)
        gort_sleep(MS);
    printf("blocking read: %d ticks while 8 readers blocked, %d readers done\n", t,
           atomic_load(&readers_done));
    return t == 200 && atomic_load(&readers_done) == 8 ? 0 : 1;
}

/* Stop-the-world with every P hogged: gort_maxprocs changes the number of
 * Ps back and forth while hogs and counting goroutines run, and no
 * goroutine is lost. */
static atomic_long counted;
static gort_waitgroup count_wg;

static void counter_g(void *arg)
{
    (void)arg;
    for (int i = 0; i < 200; i++) {
        for (volatile int k = 0; k < 20000; k++) {
        }
        atomic_fetch_add(&counted, 1);
        if (i % 10 == 0) gort_yield();
    }
    gort_wg_done(&count_wg);
}

static int sc_stw_hogged(void)
{
    int n0 = gort_maxprocs(0);
    for (int i = 0; i < 4; i++)
        gort_go(hog, NULL);
    gort_wg_add(&count_wg, 16);
    for (int i = 0; i < 16; i++)
        gort_go(counter_g, NULL);
    int64_t worst = 0;
    for (int i = 0; i < 40; i++) {
        int64_t t = gort_now();
        gort_maxprocs(i % 2 ? 2 : 1);
        int64_t d = gort_now() - t;
        if (d > worst) worst = d;
    }
    gort_maxprocs(n0 > 1 ? n0 : 2);
    gort_wg_wait(&count_wg);
    stop = 1;
    printf("stw: 40 processor changes beside 4 hogs, slowest %.3f ms; %ld of 3200 counted\n",
           worst / 1e6, atomic_load(&counted));
    return atomic_load(&counted) == 3200 ? 0 : 1;
}

/* A SIGURG handler the program installs, before gort_main ("before") or
 * while running ("after"), receives the signals sent to the process, and
 * preemption keeps working. */
static atomic_int user_urgs;
static void user_urg_handler(int sig)
{
    (void)sig;
    atomic_fetch_add(&user_urgs, 1);
}

static int sc_user_sigurg(bool after)
{
    if (after) {
        struct sigaction sa = {0};
        sa.sa_handler = user_urg_handler;
        sigaction(SIGURG, &sa, NULL);
        gort_sleep(30 * MS); /* sysmon puts gort's handler back in front */
    }
    gort_go(hog, NULL);
    for (int i = 0; i < 10; i++) {
        int before = atomic_load(&user_urgs);
        kill(getpid(), SIGURG);
        for (int k = 0; k < 1000 && atomic_load(&user_urgs) == before; k++)
            gort_sleep(MS); /* needs preemption: the hog holds the only P */
    }
    stop = 1;
    printf("user SIGURG handler: %d of 10 signals\n", atomic_load(&user_urgs));
    return atomic_load(&user_urgs) >= 10 ? 0 : 1;
}

static const char *scenario_name;

static int scenario_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    const char *s = scenario_name;
    if (!strcmp(s, "hog_sleep")) return sc_hog_sleep();
    if (!strcmp(s, "hog_alarm")) return sc_hog_alarm(true);
    if (!strcmp(s, "hog_no_alarm")) return sc_hog_alarm(false);
    if (!strcmp(s, "blocking_eintr")) return sc_blocking_eintr();
    if (!strcmp(s, "spinlock")) return sc_spinlock();
    if (!strcmp(s, "catdogfish")) return sc_catdogfish();
    if (!strcmp(s, "libc")) return sc_libc();
    if (!strcmp(s, "registers")) return sc_registers();
    if (!strcmp(s, "blocking_read")) return sc_blocking_read();
    if (!strcmp(s, "stw_hogged")) return sc_stw_hogged();
    if (!strcmp(s, "sigurg_before")) return sc_user_sigurg(false);
    if (!strcmp(s, "sigurg_after")) return sc_user_sigurg(true);
    fprintf(stderr, "unknown scenario %s\n", s);
    return 4;
}

/* ---- cases (in the test program) ------------------------------------------------------------ */

static void run_scenario(const char *name, const char *const *env, int timeout_ms, struct run *r)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    assert_true(n > 0);
    self[n] = 0;
    char *argv[] = {self, "--scenario", (char *)name, NULL};
    run_prog(self, argv, env, timeout_ms, r);
}

static void expect_ok(const char *name, const char *const *env)
{
    struct run r;
    run_scenario(name, env, RUN_TIMEOUT_MS, &r);
    CHECK(&r, name, exited_with(&r, 0));
    print_message("%s", r.out);
    run_free(&r);
}

static void test_hog_cannot_keep_main_asleep(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    expect_ok("hog_sleep", env);
    static const char *const env2[] = {"GORT_MAXPROCS=2", NULL};
    expect_ok("hog_sleep", env2);
}

/* The same program without the signal never gets main back: the case above
 * can fail. */
static void test_hog_hangs_without_async_preemption(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", "GORT_DEBUG=asyncpreemptoff=1", NULL};
    struct run r;
    run_scenario("hog_sleep", env, 1500, &r);
    CHECK(&r, "hog_sleep with asyncpreemptoff", r.timed_out);
    run_free(&r);
}

/* The alarm preempts hogs on time; GORT_DEBUG=preemptalarmoff=1 leaves
 * it to sysmon, which still wakes the sleeper. */
static void test_preemption_alarm(void **state)
{
    (void)state;
    static const char *const env1[] = {"GORT_MAXPROCS=1", NULL};
    expect_ok("hog_alarm", env1);
    static const char *const env2[] = {"GORT_MAXPROCS=2", NULL};
    expect_ok("hog_alarm", env2);
    static const char *const off[] = {"GORT_MAXPROCS=2", "GORT_DEBUG=preemptalarmoff=1", NULL};
    expect_ok("hog_no_alarm", off);
    /* and it never interrupts the system calls of a blocking region */
    expect_ok("blocking_eintr", env1);
}

static void test_spinlock_one_p(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    expect_ok("spinlock", env);
}

/* Each hand-off waits for the spinning goroutines' slices to end: with the
 * default 10 ms slice the 300 words take about 5 s (Go 1.19: about 6 s);
 * a 1 ms slice keeps the suite short. */
static void test_catdogfish_busy_wait_one_p(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", "GORT_TIMESLICE=1ms", NULL};
    expect_ok("catdogfish", env);
}

static void test_libc_under_constant_preemption(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=2", "GORT_TIMESLICE=50us", NULL};
    expect_ok("libc", env);
}

static void test_registers_survive(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=2", "GORT_TIMESLICE=100us", NULL};
    expect_ok("registers", env);
}

static void test_blocking_read_does_not_stop_others(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    expect_ok("blocking_read", env);
}

static void test_stw_with_every_p_hogged(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=2", NULL};
    expect_ok("stw_hogged", env);
}

static void test_user_sigurg_handler(void **state)
{
    (void)state;
    static const char *const env[] = {"GORT_MAXPROCS=1", NULL};
    expect_ok("sigurg_after", env);
    expect_ok("sigurg_before", env);
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "--scenario")) {
        scenario_name = argv[2];
        if (!strcmp(argv[2], "sigurg_before")) {
            struct sigaction sa = {0};
            sa.sa_handler = user_urg_handler;
            sigaction(SIGURG, &sa, NULL);
        }
        setvbuf(stdout, NULL, _IOLBF, 0);
        return gort_main(scenario_main, argc, argv);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hog_cannot_keep_main_asleep),
        cmocka_unit_test(test_hog_hangs_without_async_preemption),
        cmocka_unit_test(test_preemption_alarm),
        cmocka_unit_test(test_spinlock_one_p),
        cmocka_unit_test(test_catdogfish_busy_wait_one_p),
        cmocka_unit_test(test_libc_under_constant_preemption),
        cmocka_unit_test(test_registers_survive),
        cmocka_unit_test(test_blocking_read_does_not_stop_others),
        cmocka_unit_test(test_stw_with_every_p_hogged),
        cmocka_unit_test(test_user_sigurg_handler),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}

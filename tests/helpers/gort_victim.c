/* tests/helpers/gort_victim.c: a program that fails (or succeeds) on purpose,
 * for tests/test_fatal.c, which runs it as a subprocess and checks its exit
 * status and output.
 *
 *   gort_victim SCENARIO
 *
 * Each scenario runs inside gort_main:
 *   overflow        a spawned goroutine prints its id, then recurses until its
 *                   stack overflows ("fatal error: stack overflow", exit 2)
 *   overflow-main   the main goroutine (id 1) does the same
 *   deadlock        main waits on a WaitGroup nobody will ever Done
 *   deadlock-child  main spawns a goroutine that prints its id and waits
 *                   forever, then waits too
 *   deadlock-locked main wires itself to its thread (gort_lock_thread), then
 *                   waits forever
 *   locked-wakeup   main wires itself to its thread, then waits for a goroutine
 *                   that calls Done: must finish normally (exit 0)
 *   blocking-wakeup main waits for a goroutine that spends 100 ms in a
 *                   blocking region first: no deadlock may be reported
 *   goexit-main     main spawns 3 goroutines that print a line each after a few
 *                   yields, then calls gort_exit: they finish, then the program
 *                   dies with "no goroutines (main called gort_exit) - deadlock!"
 *   goexit-main-blocked  main spawns a goroutine that waits forever, then calls
 *                   gort_exit: "all goroutines are asleep - deadlock!"
 *   panic           a spawned goroutine prints its id, then calls
 *                   gort_panic("boom %d", 42)
 *   negative-wg     gort_wg_done on a zero WaitGroup
 *   exit-code       main returns 7 while another goroutine blocks forever
 *   stdout-flush    printf without newline or fflush, then return 0
 *   sleep200        200 ms of nanosleep inside gort_blocking_begin/end
 *   ok              return 0
 * An unknown scenario exits with status 100.
 */
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <unistd.h>
#include <string.h>
#include <time.h>

#include "gort.h"

/* Never set: keeps the compiler from proving the recursion infinite. */
static volatile int stop_recursion;

static __attribute__((noinline)) int recurse(int depth)
{
    volatile char buf[512];
    buf[0] = (char)depth;
    buf[sizeof buf - 1] = (char)depth;
    if (stop_recursion) return buf[0];
    /* Using buf after the call rules out a tail call. */
    return recurse(depth + 1) + buf[sizeof buf - 1];
}

static gort_waitgroup forever; /* Add(1), never Done */
static gort_waitgroup forever2;

static void overflow_child(void *arg)
{
    (void)arg;
    printf("%llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    recurse(0);
}

static void wait_forever(void *arg)
{
    gort_wg_wait(arg);
}

static void print_id_wait_forever(void *arg)
{
    printf("%llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    gort_wg_wait(arg);
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

static void done(void *arg)
{
    gort_wg_done(arg);
}

static void blocking_then_done(void *arg)
{
    gort_blocking_begin();
    sleep_ms(100);
    gort_blocking_end();
    gort_wg_done(arg);
}

static void goexit_child(void *arg)
{
    int i = (int)(intptr_t)arg;
    for (int k = 0; k < 5; k++)
        gort_yield();
    printf("goexit-child %d done\n", i);
}

static void panic_child(void *arg)
{
    (void)arg;
    printf("%llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    gort_panic("boom %d", 42);
}

static void send_forever(void *c)
{
    int v = 1;
    gort_chan_send(c, &v);
}

static void lock_and_exit(void *arg)
{
    (void)arg;
    gort_lock_thread();
    for (int i = 0; i < 100; i++)
        gort_yield();
}

static int run(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: gort_victim SCENARIO\n");
        return 100;
    }
    const char *s = argv[1];
    gort_wg_add(&forever, 1);
    gort_wg_add(&forever2, 1);

    if (!strcmp(s, "overflow")) {
        gort_go(overflow_child, NULL);
        gort_wg_wait(&forever);
    } else if (!strcmp(s, "overflow-main")) {
        printf("%llu\n", (unsigned long long)gort_self());
        fflush(stdout);
        recurse(0);
    } else if (!strcmp(s, "deadlock")) {
        gort_wg_wait(&forever);
    } else if (!strcmp(s, "deadlock-child")) {
        gort_go(print_id_wait_forever, &forever);
        gort_wg_wait(&forever2);
    } else if (!strcmp(s, "deadlock-locked")) {
        gort_lock_thread();
        gort_wg_wait(&forever);
    } else if (!strcmp(s, "sigquit")) {
        /* A leaked goroutine blocked on a send with no receiver, then Ctrl-\ */
        gort_chan *c = gort_chan_make(sizeof(int), 0);
        gort_go(send_forever, c);
        for (int i = 0; i < 100; i++)
            gort_yield();
        printf("goroutines %d\n", gort_num_goroutine());
        fflush(stdout);
        kill(getpid(), SIGQUIT);
        for (;;)
            gort_yield();
    } else if (!strcmp(s, "deadlock-locked-exit")) {
        /* A goroutine exits while wired: its thread ends (mexit), after
         * main is already asleep; that thread was the last one running.
         * Main wires itself first so the exiting goroutine cannot be on the
         * main thread (which never exits). */
        gort_lock_thread();
        gort_go(lock_and_exit, NULL);
        gort_wg_wait(&forever);
    } else if (!strcmp(s, "locked-wakeup")) {
        gort_waitgroup wg = {0};
        gort_lock_thread();
        for (int round = 0; round < 10; round++) {
            gort_wg_add(&wg, 1);
            gort_go(done, &wg);
            gort_wg_wait(&wg);
        }
        gort_unlock_thread();
        printf("locked-wakeup: done\n");
        return 0;
    } else if (!strcmp(s, "blocking-wakeup")) {
        gort_waitgroup wg = {0};
        gort_wg_add(&wg, 1);
        gort_go(blocking_then_done, &wg);
        gort_wg_wait(&wg);
        printf("blocking-wakeup: done\n");
        return 0;
    } else if (!strcmp(s, "goexit-main")) {
        for (int i = 0; i < 3; i++)
            gort_go(goexit_child, (void *)(intptr_t)i);
        gort_exit();
    } else if (!strcmp(s, "goexit-main-blocked")) {
        gort_go(wait_forever, &forever);
        gort_exit();
    } else if (!strcmp(s, "panic")) {
        gort_go(panic_child, NULL);
        gort_wg_wait(&forever);
    } else if (!strcmp(s, "negative-wg")) {
        gort_waitgroup wg = {0};
        gort_wg_done(&wg);
        printf("negative-wg: gort_wg_done returned\n");
        return 0;
    } else if (!strcmp(s, "exit-code")) {
        gort_go(wait_forever, &forever);
        gort_yield(); /* let it block first */
        return 7;
    } else if (!strcmp(s, "stdout-flush")) {
        printf("stdout-flush: no newline");
        printf(", still buffered");
        return 0;
    } else if (!strcmp(s, "sleep200")) {
        gort_blocking_begin();
        sleep_ms(200);
        gort_blocking_end();
        return 0;
    } else if (!strcmp(s, "ok")) {
        printf("ok\n");
        return 0;
    } else {
        fprintf(stderr, "gort_victim: unknown scenario \"%s\"\n", s);
        return 100;
    }
    fprintf(stderr, "gort_victim: scenario \"%s\" returned\n", s);
    return 101;
}

int main(int argc, char **argv)
{
    return gort_main(run, argc, argv);
}

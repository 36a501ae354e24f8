/* tests/helpers/chan_victim.c: channel programs that fail (or leak) on
 * purpose, for tests/test_chan.c, which runs this as a subprocess and checks
 * its exit status and output. Each scenario is the C twin of a small Go
 * program; Go 1.19's behaviour is given with it.
 *
 *   chan_victim SCENARIO
 *
 *   one-send-too-many  the broken cat/dog/fish: three goroutines receive a
 *                      counter 100 times each over one unbuffered channel
 *                      (printing "WORD N" per receive); main sends 301 times.
 *                      The 301st send has no receiver: "fatal error: all
 *                      goroutines are asleep - deadlock!", "goroutine 1 [chan
 *                      send]:", exit 2, exactly 300 lines on stdout.
 *   child-panic        inside a gort_try body, main spawns a child that prints
 *                      its id and panics "child boom", then waits forever. The
 *                      parent's gort_try must not catch it: "panic: child
 *                      boom", "goroutine ID [running]:", exit 2, and never the
 *                      "recovered" line.
 *   select-forever     gort_select(NULL, 0, true) in main, nobody else: "fatal
 *                      error: all goroutines are asleep - deadlock!",
 *                      "goroutine 1 [select (no cases)]:", exit 2.
 *   leak               a goroutine blocks forever sending on a channel nobody
 *                      receives from; main prints "goroutines N" with
 *                      gort_num_goroutine() (2) and returns 0: exit 0.
 * An unknown scenario exits with status 100.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "gort.h"

/* ---- one-send-too-many ------------------------------------------------------ */

static gort_chan *counter;
static const char *const words[3] = {"cat", "dog", "fish"};

static void word_receiver(void *arg)
{
    const char *word = arg;
    for (int r = 0; r < 100; r++) {
        int n;
        gort_chan_recv(counter, &n);
        printf("%s %d\n", word, n);
        fflush(stdout); /* the process dies with the last send */
    }
}

static int one_send_too_many(void)
{
    counter = gort_chan_make(sizeof(int), 0);
    for (int w = 0; w < 3; w++)
        gort_go(word_receiver, (void *)words[w]);
    for (int n = 0; n <= 300; n++) /* 301 sends, 300 receives */
        gort_chan_send(counter, &n);
    printf("unreachable\n");
    return 0;
}

/* ---- child-panic ------------------------------------------------------------- */

static void child_panics(void *arg)
{
    (void)arg;
    printf("%llu\n", (unsigned long long)gort_self());
    fflush(stdout);
    gort_panic("child boom");
}

static void parent_body(void *arg)
{
    (void)arg;
    gort_go(child_panics, NULL);
    gort_chan_recv(gort_chan_make(sizeof(int), 0), NULL); /* forever */
}

static int child_panic(void)
{
    const char *msg = NULL;
    bool ok = gort_try(parent_body, NULL, &msg);
    printf("recovered: ok=%d msg=%s\n", ok, msg ? msg : "(none)");
    return 0;
}

/* ---- select-forever ---------------------------------------------------------- */

static int select_forever(void)
{
    gort_select(NULL, 0, true);
    printf("unreachable\n");
    return 0;
}

/* ---- leak -------------------------------------------------------------------- */

static gort_chan *started, *nobody;

static void leaker(void *arg)
{
    (void)arg;
    int v = 1;
    gort_chan_close(started);
    gort_chan_send(nobody, &v); /* blocks forever */
}

static int leak(void)
{
    started = gort_chan_make(0, 0);
    nobody = gort_chan_make(sizeof(int), 0);
    gort_go(leaker, NULL);
    gort_chan_recv(started, NULL);
    /* let it reach the send (it cannot get past it) */
    for (int i = 0; i < 100; i++)
        gort_yield();
    struct timespec ts = {0, 10 * 1000 * 1000};
    gort_blocking_begin();
    nanosleep(&ts, NULL);
    gort_blocking_end();
    printf("goroutines %d\n", gort_num_goroutine());
    return 0;
}

static int victim_main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chan_victim SCENARIO\n");
        return 100;
    }
    const char *s = argv[1];
    if (!strcmp(s, "one-send-too-many")) return one_send_too_many();
    if (!strcmp(s, "child-panic")) return child_panic();
    if (!strcmp(s, "select-forever")) return select_forever();
    if (!strcmp(s, "leak")) return leak();
    fprintf(stderr, "chan_victim: unknown scenario %s\n", s);
    return 100;
}

int main(int argc, char **argv)
{
    return gort_main(victim_main, argc, argv);
}

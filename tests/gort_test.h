/* tests/gort_test.h: helpers shared by the test programs (header only: every
 * helper is static, and marked unused so that a program that needs only some
 * of them still builds with -Wall -Wextra -Werror).
 *
 * Include after <cmocka.h> (the subprocess runner reports with fail_msg and
 * print_error).
 *
 *   - time units (US, MS, SEC in nanoseconds), now_ms();
 *   - for programs whose cmocka run is the main goroutine: nap() (sleep inside
 *     a blocking region), WAIT_FOR(cond) (poll cond for at most 10 s: yield,
 *     nap now and then), wg_wait_bounded(), procs_at_least(), tid();
 *   - a subprocess runner: run_prog() runs a program with this environment
 *     plus "NAME=VALUE" overrides, captures its stdout and stderr through
 *     pipes, kills it after a timeout and reports its exit status or signal
 *     (struct run); run_prog_blocking() is the same from a goroutine (the
 *     wait blocks the thread, not the processor); waitpid_bounded() waits for
 *     a child of one's own with a deadline;
 *   - helper_path(): where a helper program of tests/helpers is
 *     (GORT_TEST_HELPERS, else helpers/ next to this program);
 *   - checking a run: CHECK(r, scenario, cond) fails the test showing what the
 *     program did unless cond holds; exited_with(), has(), has_line().
 */
#ifndef GORT_TEST_H
#define GORT_TEST_H

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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

#include "gort.h"

#define GT_UNUSED __attribute__((unused))

#define US  1000LL
#define MS  1000000LL
#define SEC 1000000000LL

/* ---- time and bounded waits ------------------------------------------------------------ */

GT_UNUSED static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

GT_UNUSED static pid_t tid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

/* Sleep the thread inside a blocking region (the P goes to other work). */
GT_UNUSED static void nap(int64_t ns)
{
    struct timespec ts = {ns / SEC, ns % SEC};
    gort_blocking_begin();
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
    gort_blocking_end();
}

/* Poll cond for up to 10 s, yielding and now and then napping; true when it
 * became true. Usable in goroutines (no assertion inside). */
#define WAIT_FOR(cond)                         \
    ({                                         \
        int64_t dl_ = gort_now() + 10 * SEC;   \
        bool ok_ = true;                       \
        for (unsigned i_ = 0; !(cond); i_++) { \
            if (gort_now() > dl_) {            \
                ok_ = false;                   \
                break;                         \
            }                                  \
            gort_yield();                      \
            if (i_ % 64 == 63) nap(100 * US);  \
        }                                      \
        ok_;                                   \
    })

/* Wait for wg, bounded: the counter must reach zero within WAIT_FOR's bound. */
GT_UNUSED static bool wg_wait_bounded(gort_waitgroup *wg)
{
    if (!WAIT_FOR((__atomic_load_n(&wg->state, __ATOMIC_ACQUIRE) >> 32) == 0)) return false;
    gort_wg_wait(wg);
    return true;
}

/* At least n processors for this test; returns the old count to restore. */
GT_UNUSED static int procs_at_least(int n)
{
    int old = gort_maxprocs(0);
    if (old < n) gort_maxprocs(n);
    return old;
}

/* Reap child pid, polling until deadline (now_ms() time): 1 when it ended
 * in time, its wait status in *wstatus; 0 when it did not (then it is killed
 * with SIGKILL and reaped, *wstatus its status after that); -1 when waitpid
 * failed (errno). No gort call, no assertion: from a goroutine, call it
 * inside a blocking region. */
GT_UNUSED static int waitpid_bounded(pid_t pid, int64_t deadline, int *wstatus)
{
    pid_t w;
    while ((w = waitpid(pid, wstatus, WNOHANG)) == 0) {
        if (now_ms() > deadline) {
            kill(pid, SIGKILL);
            while (waitpid(pid, wstatus, 0) < 0 && errno == EINTR) {
            }
            return 0;
        }
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    return w == pid ? 1 : -1;
}

/* ---- subprocess runner ------------------------------------------------------------------ */

#define CAPTURE_MAX (4 << 20) /* bytes kept per stream */

extern char **environ;

/* What one run of a program did. */
struct run {
    bool exited;    /* exited normally; status is its exit status */
    int status;     /* exit status, or the signal that killed it */
    int wstatus;    /* the raw waitpid status */
    bool timed_out; /* killed after timeout_ms */
    int error;      /* could not run it (errno) */
    int timeout_ms;
    char name[64]; /* the program's name (last part of argv[0]), for reports */
    char *out, *err;
    size_t outlen, errlen;
};

GT_UNUSED static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
    memset(r, 0, sizeof *r);
}

/* Append what fd has to *buf; returns false at EOF or error. */
GT_UNUSED static bool drain(int fd, char **buf, size_t *len, size_t *cap)
{
    char tmp[65536];
    ssize_t n = read(fd, tmp, sizeof tmp);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
    if (n <= 0) return false;
    size_t keep = (size_t)n;
    if (*len + keep > CAPTURE_MAX) keep = CAPTURE_MAX - *len;
    if (*len + keep + 1 > *cap) {
        size_t ncap = (*len + keep + 1) * 2;
        char *nb = realloc(*buf, ncap);
        if (!nb) return false;
        *buf = nb;
        *cap = ncap;
    }
    memcpy(*buf + *len, tmp, keep);
    *len += keep;
    (*buf)[*len] = 0;
    return true;
}

/* Does environ entry e set the variable that override o ("NAME=VALUE") sets? */
GT_UNUSED static bool same_name(const char *e, const char *o)
{
    const char *eq = strchr(o, '=');
    size_t n = eq ? (size_t)(eq - o) : strlen(o);
    return strncmp(e, o, n) == 0 && e[n] == '=';
}

/* This environment with the overrides env ("NAME=VALUE", NULL-terminated,
 * may be NULL) replacing any inherited value; free the array (not the
 * strings). NULL when out of memory. */
GT_UNUSED static char **environ_with(const char *const *env)
{
    size_t nenv = 0, nover = 0;
    while (environ[nenv])
        nenv++;
    while (env && env[nover])
        nover++;
    char **envp = calloc(nenv + nover + 1, sizeof *envp);
    if (!envp) return NULL;
    size_t k = 0;
    for (size_t i = 0; i < nenv; i++) {
        bool replaced = false;
        for (size_t j = 0; j < nover && !replaced; j++)
            replaced = same_name(environ[i], env[j]);
        if (!replaced) envp[k++] = environ[i];
    }
    for (size_t j = 0; j < nover; j++)
        envp[k++] = (char *)env[j];
    envp[k] = NULL;
    return envp;
}

/* The blocking part of run_prog: no gort call, no assertion inside. */
GT_UNUSED static void spawn_and_wait(const char *path, char *const argv[], char *const envp[],
                                     struct run *r)
{
    int po[2] = {-1, -1}, pe[2] = {-1, -1};
    if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
        r->error = errno;
        return;
    }
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, po[1], 1);
    posix_spawn_file_actions_adddup2(&fa, pe[1], 2);
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawn(&pid, path, &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(po[1]);
    close(pe[1]);
    if (rc != 0) {
        r->error = rc;
        close(po[0]);
        close(pe[0]);
        return;
    }
    size_t ocap = 0, ecap = 0;
    struct pollfd fds[2] = {{.fd = po[0], .events = POLLIN}, {.fd = pe[0], .events = POLLIN}};
    int64_t deadline = now_ms() + r->timeout_ms;
    while (fds[0].fd >= 0 || fds[1].fd >= 0) {
        int64_t left = deadline - now_ms();
        if (left <= 0) {
            r->timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        int n = poll(fds, 2, (int)left);
        if (n < 0 && errno != EINTR) break;
        for (int i = 0; i < 2 && n > 0; i++) {
            if (fds[i].fd < 0 || !fds[i].revents) continue;
            bool more = i == 0 ? drain(fds[i].fd, &r->out, &r->outlen, &ocap)
                               : drain(fds[i].fd, &r->err, &r->errlen, &ecap);
            if (!more) {
                close(fds[i].fd);
                fds[i].fd = -1;
            }
        }
    }
    for (int i = 0; i < 2; i++)
        if (fds[i].fd >= 0) close(fds[i].fd);
    /* Both pipes are closed once the process is gone; wait, still bounded. */
    int ended = waitpid_bounded(pid, deadline, &r->wstatus);
    if (ended < 0) {
        r->error = errno ? errno : ECHILD;
        return;
    }
    if (!ended) r->timed_out = true;
    if (WIFEXITED(r->wstatus)) {
        r->exited = true;
        r->status = WEXITSTATUS(r->wstatus);
    } else if (WIFSIGNALED(r->wstatus)) {
        r->status = WTERMSIG(r->wstatus);
    }
}

GT_UNUSED static void run_prog_(const char *path, char *const argv[], const char *const *env,
                                int timeout_ms, struct run *r, bool blocking)
{
    memset(r, 0, sizeof *r);
    r->timeout_ms = timeout_ms;
    const char *slash = strrchr(argv[0], '/');
    snprintf(r->name, sizeof r->name, "%.63s", slash ? slash + 1 : argv[0]);
    if (blocking) gort_blocking_begin(); /* the wait blocks this thread, not the processor */
    char **envp = environ_with(env);
    if (!envp)
        r->error = ENOMEM;
    else
        spawn_and_wait(path, argv, envp, r);
    free(envp);
    if (blocking) gort_blocking_end();
    if (r->error)
        fail_msg("%s %s: could not run: %s", r->name, argv[1] ? argv[1] : "", strerror(r->error));
    if (!r->out) r->out = calloc(1, 1);
    if (!r->err) r->err = calloc(1, 1);
    assert_non_null(r->out);
    assert_non_null(r->err);
}

/* Run the program at path with argv (argv[0] first, NULL-terminated), this
 * environment plus the overrides env ("NAME=VALUE", NULL-terminated, may be
 * NULL), bounded by timeout_ms (then killed: r->timed_out). Fills r (free
 * with run_free; r->out and r->err are never NULL); fails the test when the
 * program could not be run at all. Not from a goroutine: run_prog_blocking. */
GT_UNUSED static void run_prog(const char *path, char *const argv[], const char *const *env,
                               int timeout_ms, struct run *r)
{
    run_prog_(path, argv, env, timeout_ms, r, false);
}

/* run_prog from a goroutine: the wait blocks this thread, not the processor. */
GT_UNUSED static void run_prog_blocking(const char *path, char *const argv[],
                                        const char *const *env, int timeout_ms, struct run *r)
{
    run_prog_(path, argv, env, timeout_ms, r, true);
}

/* Find helper program name (tests/helpers/NAME): in $GORT_TEST_HELPERS
 * (scripts/run-tests.sh exports it), else in helpers/ next to this program.
 * 0 when path (size PATH_MAX) names an executable; -1, with a message
 * naming the program, when not. */
GT_UNUSED static int helper_path(const char *name, char path[PATH_MAX])
{
    const char *dir = getenv("GORT_TEST_HELPERS");
    if (dir && *dir) {
        if (strlen(dir) > PATH_MAX - 32) return -1;
        snprintf(path, PATH_MAX, "%s/%s", dir, name);
    } else {
        char self[PATH_MAX - 32];
        ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
        if (n <= 0) return -1;
        self[n] = 0;
        char *slash = strrchr(self, '/');
        if (slash) *slash = 0;
        snprintf(path, PATH_MAX, "%s/helpers/%s", self, name);
    }
    if (access(path, X_OK) != 0) {
        print_error("%s: helper %s not found or not executable (build with make; run "
                    "through scripts/run-tests.sh, which sets GORT_TEST_HELPERS)\n",
                    program_invocation_short_name, path);
        return -1;
    }
    return 0;
}

/* ---- checking a run ---------------------------------------------------------------------- */

GT_UNUSED static void dump(const struct run *r, const char *scenario, const char *what)
{
    print_error("%s %s: expected %s\n", r->name, scenario, what);
    if (r->timed_out)
        print_error("  TIMED OUT after %d ms (killed)\n", r->timeout_ms);
    else if (r->exited)
        print_error("  exit status %d\n", r->status);
    else
        print_error("  killed by signal %d\n", r->status);
    print_error("  stdout (%zu bytes):\n%.2000s\n", r->outlen, r->out);
    print_error("  stderr (%zu bytes):\n%.2000s\n", r->errlen, r->err);
}

/* Fail the test, showing what the program did, unless cond holds. */
#define CHECK(r, scenario, cond)                   \
    do {                                           \
        if (!(cond)) {                             \
            dump((r), (scenario), #cond);          \
            fail_msg("%s: %s", (scenario), #cond); \
        }                                          \
    } while (0)

GT_UNUSED static bool exited_with(const struct run *r, int status)
{
    return !r->timed_out && r->exited && r->status == status;
}

GT_UNUSED static bool has(const char *s, const char *needle)
{
    return strstr(s, needle) != NULL;
}

/* Does some line of s start with prefix? */
GT_UNUSED static bool has_line(const char *s, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = s; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL)
        if (strncmp(l, prefix, n) == 0) return true;
    return false;
}

#endif /* GORT_TEST_H */

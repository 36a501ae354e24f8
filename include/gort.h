/* gort.h: Go's runtime as a C library for x86-64 Linux.
 *
 * Goroutines run M:N on OS threads through processors (Go's G/M/P model).
 * Every blocking call parks only the calling goroutine, never its thread.
 *
 * Rules that differ from plain C, because a goroutine may move to another
 * thread at any gort call that can block or yield:
 *   - errno: read it right after the libc call that set it, never across a
 *     gort call (glibc declares __errno_location() const, so the compiler may
 *     reuse the previous thread's errno address). gort's own I/O calls return
 *     -errno instead.
 *   - __thread / thread_local variables are per thread, not per goroutine:
 *     do not keep their address across a gort call, and expect their value to
 *     change. gort_lock_thread() pins a goroutine to its thread when needed.
 *   - Goroutine stacks are fixed-size (GORT_STACK_SIZE, default 64 KiB; the
 *     main goroutine gets 8 MiB). Overflow is caught by a guard page and
 *     reported as "fatal error: stack overflow".
 *
 * Environment: GORT_MAXPROCS, GORT_STACK_SIZE, GORT_NUMA, GORT_DEBUG
 * (README.md documents each). Bad values are rejected with a message naming
 * the variable.
 */
#ifndef GORT_H
#define GORT_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ---- lifecycle ---------------------------------------------------------- */

/* Start the runtime and run main_fn as the main goroutine (id 1). When it
 * returns, the process exits with its value; other goroutines are not waited
 * for (as in Go). Call once, from the process's main thread. */
int gort_main(int (*main_fn)(int, char **), int argc, char **argv);

/* Start fn(arg) in a new goroutine; returns its id. May be called from a
 * thread that gort did not create (the goroutine is queued globally). */
uint64_t gort_go(void (*fn)(void *), void *arg);

/* runtime.Gosched: let other runnable goroutines on this processor run
 * first; the caller is requeued behind them. */
void gort_yield(void);

/* runtime.Goexit: end the calling goroutine. Called from the main goroutine,
 * the program keeps running its other goroutines and dies with a deadlock
 * error once none is left, as Go does. */
_Noreturn void gort_exit(void);

/* runtime.GOMAXPROCS: n > 0 sets the number of processors (stopping the world
 * to do so) and returns the old value; n <= 0 only queries. */
int gort_maxprocs(int n);

int gort_num_goroutine(void); /* goroutines that exist now */
uint64_t gort_self(void);     /* current goroutine id; 0 outside goroutines */

/* runtime.LockOSThread / UnlockOSThread: wire the calling goroutine to its
 * thread (nesting is counted). While wired, the thread runs nothing else. */
void gort_lock_thread(void);
void gort_unlock_thread(void);

/* Around C code that may block its thread (a blocking syscall, a slow
 * library call): the processor is handed to another thread meanwhile so
 * other goroutines keep running. */
void gort_blocking_begin(void);
void gort_blocking_end(void);

/* ---- time --------------------------------------------------------------- */

int64_t gort_now(void); /* monotonic nanoseconds */

/* ---- panics ------------------------------------------------------------- */

/* Print "panic: <message>", the goroutine's backtrace, and exit with
 * status 2. */
_Noreturn void gort_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- sync (the zero value is ready to use) ------------------------------ */

typedef struct gort_waitgroup {
    uint64_t state; /* counter << 32 | waiters; private */
    uint32_t sema;  /* private */
} gort_waitgroup;

/* Add delta (may be negative) to the counter; a negative counter panics with
 * "sync: negative WaitGroup counter". */
void gort_wg_add(gort_waitgroup *wg, int delta);
void gort_wg_done(gort_waitgroup *wg);
/* Block until the counter is zero. The group may be reused once Wait has
 * returned. */
void gort_wg_wait(gort_waitgroup *wg);

#ifdef __cplusplus
}
#endif
#endif

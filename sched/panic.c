/* sched/panic.c: fatal errors, panics and goroutine backtraces.
 *
 * Two kinds of failure, kept apart as in Go: gort__fatal ("fatal error: ...")
 * for runtime bugs and unrecoverable conditions (deadlock, stack overflow,
 * thread exhaustion), never recoverable; and gort_panic ("panic: ...") for
 * a user's misuse or an explicit panic, which gort_try can recover.
 *
 * Panics, defers and recover. Each goroutine keeps a list of deferred calls
 * (newest first) and a chain of try frames, both owned by the goroutine
 * alone (no locks). A try frame lives in gort_try's own stack frame: a
 * jmp_buf and the defer list head at entry (its mark). gort_panic runs the
 * deferred calls newer than the innermost frame's mark, each unlinked before
 * it is called (a deferred call that panics does not run twice), then
 * longjmps to that frame, which returns false. No frame: every deferred call
 * runs, then the process prints the panic and exits 2. The longjmp stays on
 * the goroutine's own stack, though the thread may have changed since
 * setjmp; glibc's jmp_buf holds no thread-specific state beyond registers
 * (its pointer mangling key is process-wide).
 * Rejected: unwinding with libgcc's _Unwind_ForcedUnwind (C code is rarely
 * built with unwind tables for every frame, and nothing needs the frames).
 *
 * Backtraces walk the frame-pointer chain (gort is built with frame
 * pointers; user code should be too, or its frames are skipped), bounded by
 * the stack's limits so a corrupt chain cannot fault. A parked goroutine's
 * chain starts at its saved context (the frame gort__ctx_switch pushed).
 *
 * Output goes through one write per line to fd 2, never stdio: stdio's
 * locks may be held by the goroutine that failed.
 */
#include <dlfcn.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort.h"
#include "sched/sched.h"

#define MAX_FRAMES 64

static void put(int fd, const char *s)
{
    ki_write_all(fd, s, strlen(s));
}

void flush_stdio_best_effort(void)
{
    /* Only streams nobody holds: a goroutine elsewhere may be inside printf. */
    FILE *fs[] = {stdout, stderr};
    for (int i = 0; i < 2; i++) {
        if (ftrylockfile(fs[i]) == 0) {
            fflush_unlocked(fs[i]);
            funlockfile(fs[i]);
        }
    }
}

static char *fmt_hex(char *end, uintptr_t v)
{
    *--end = 0;
    do {
        *--end = "0123456789abcdef"[v & 15];
        v >>= 4;
    } while (v);
    *--end = 'x';
    *--end = '0';
    return end;
}

static void print_frame(int fd, uintptr_t pc, bool signal_safe)
{
    char buf[512];
    char hex[24];
    Dl_info info;
    if (!signal_safe && dladdr((void *)pc, &info) && info.dli_fname) {
        const char *obj = strrchr(info.dli_fname, '/');
        obj = obj ? obj + 1 : info.dli_fname;
        if (info.dli_sname)
            snprintf(buf, sizeof buf, "%s+0x%lx\n\t%s+0x%lx\n", info.dli_sname,
                     (unsigned long)(pc - (uintptr_t)info.dli_saddr), obj,
                     (unsigned long)(pc - (uintptr_t)info.dli_fbase));
        else
            snprintf(buf, sizeof buf, "%s\n\t%s+0x%lx\n", fmt_hex(hex + sizeof hex, pc), obj,
                     (unsigned long)(pc - (uintptr_t)info.dli_fbase));
        put(fd, buf);
        return;
    }
    put(fd, "\t");
    put(fd, fmt_hex(hex + sizeof hex, pc));
    put(fd, "\n");
}

void print_backtrace(int fd, uintptr_t pc, uintptr_t rbp, uintptr_t lo, uintptr_t hi,
                     bool signal_safe)
{
    int n = 0;
    if (pc) print_frame(fd, pc, signal_safe), n++;
    while (rbp >= lo && rbp + 16 <= hi && (rbp & 7) == 0 && n < MAX_FRAMES) {
        uintptr_t *frame = (uintptr_t *)rbp;
        uintptr_t ret = frame[1];
        if (!ret) break;
        /* A return address points after the call: step back into it. */
        print_frame(fd, ret - 1, signal_safe);
        n++;
        if (frame[0] <= rbp) break; /* the chain must go up the stack */
        rbp = frame[0];
    }
    if (n == MAX_FRAMES) put(fd, "...additional frames elided...\n");
}

const char *gstatus_name(uint32_t s)
{
    static const char *const names[] = {"idle",    "runnable", "running",
                                        "syscall", "waiting",  "dead"};
    return s < sizeof names / sizeof *names ? names[s] : "?";
}

const char *waitreason_name(uint32_t w)
{
    static const char *const names[] = {"",
                                        "semacquire",
                                        "sync.WaitGroup.Wait",
                                        "locked thread",
                                        "test wait",
                                        "chan send",
                                        "chan receive",
                                        "chan send (nil chan)",
                                        "chan receive (nil chan)",
                                        "select",
                                        "select (no cases)",
                                        "sync.Mutex.Lock",
                                        "sync.RWMutex.RLock",
                                        "sync.RWMutex.Lock",
                                        "sync.Cond.Wait",
                                        "sleep",
                                        "IO wait",
                                        "finalizer wait",
                                        "GC worker (idle)",
                                        "GC sweep wait"};
    return w < sizeof names / sizeof *names ? names[w] : "?";
}

static void print_g_header(int fd, const struct g *gp, const char *state)
{
    char buf[160];
    snprintf(buf, sizeof buf, "goroutine %llu [%s]:\n", (unsigned long long)gp->goid, state);
    put(fd, buf);
}

void print_current_goroutine(int fd)
{
    struct g *gp = gort_g();
    if (!gp) return;
    put(fd, "\n");
    print_g_header(fd, gp, "running");
    uintptr_t rbp = (uintptr_t)__builtin_frame_address(0);
    print_backtrace(fd, 0, rbp, gp->stack_lo, gp->stack_hi, false);
}

/* Every goroutine but the running one, from its saved context. Only safe
 * when the others are not running (fatal paths with the world idle). */
void print_all_goroutines(int fd)
{
    struct g **gs;
    size_t n = stack_allgs(&gs);
    struct g *self = gort_g();
    for (size_t i = 0; i < n; i++) {
        struct g *gp = gs[i];
        uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
        if (gp == self || st == G_DEAD || st == G_IDLE) continue;
        const char *state = st == G_WAITING ? waitreason_name(gp->waitreason) : gstatus_name(st);
        put(fd, "\n");
        print_g_header(fd, gp, state);
        if ((st == G_WAITING || st == G_RUNNABLE) && gp->sp) {
            uintptr_t *sp = gp->sp; /* the frame gort__ctx_switch pushed */
            print_backtrace(fd, sp[7], sp[6], gp->stack_lo, gp->stack_hi, false);
        }
    }
}

/* One thread reports a fatal error; any other that fails meanwhile waits for
 * the process to end rather than interleave its report. */
static _Atomic int dying;

static void claim_dying(void)
{
    if (atomic_exchange(&dying, 1))
        for (;;)
            pause();
}

static void vfatal(const char *prefix, const char *fmt, va_list ap, bool all)
{
    claim_dying();
    char msg[1024];
    vsnprintf(msg, sizeof msg, fmt, ap);
    flush_stdio_best_effort();
    put(2, prefix);
    put(2, msg);
    put(2, "\n");
    print_current_goroutine(2);
    if (all) print_all_goroutines(2);
}

_Noreturn void gort__fatal(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfatal("fatal error: ", fmt, ap, true);
    va_end(ap);
    _exit(2);
}

struct defer_rec {
    void (*fn)(void *);
    void *arg;
    struct defer_rec *next;
};

struct try_frame {
    jmp_buf jb;
    struct try_frame *prev;
    struct defer_rec *mark;   /* gp->defers when the frame was pushed */
    struct panic_rec *panics; /* gp->panics when the frame was pushed */
};

/* One panic in progress. A panic raised while another unwinds (in a
 * deferred call) stacks on top; a gort_try recovers only the panics raised
 * since it was entered, and an outer panic then goes on unwinding (Go's
 * _panic chain). */
struct panic_rec {
    char *msg;
    struct panic_rec *prev;
};

static struct g *require_g(const char *what)
{
    struct g *gp = gort_g();
    if (!gp) gort__fatal("%s called outside a goroutine", what);
    return gp;
}

void gort_defer(void (*fn)(void *), void *arg)
{
    struct g *gp = require_g("gort_defer");
    if (!fn) gort_panic("gort_defer: nil function");
    /* Manual heap: scanned by the collector, so arg stays alive. */
    struct defer_rec *d = gort_malloc(sizeof *d);
    d->fn = fn;
    GORT_STORE(d->arg, arg);
    d->next = gp->defers;
    gp->defers = d;
}

void run_defers(struct g *gp, struct defer_rec *mark)
{
    while (gp->defers != mark && gp->defers) {
        struct defer_rec *d = gp->defers;
        gp->defers = d->next; /* unlink first: a panicking call must not rerun */
        void (*fn)(void *) = d->fn;
        void *arg = d->arg;
        gort_free(d);
        fn(arg);
        gp = gort_g(); /* the call may have moved us to another thread */
    }
}

bool gort_try(void (*fn)(void *), void *arg, const char **panic_msg)
{
    struct g *gp = require_g("gort_try");
    if (!fn) gort_panic("gort_try: nil function");
    struct try_frame tf;
    tf.prev = gp->trytop;
    tf.mark = gp->defers;
    tf.panics = gp->panics;
    gp->trytop = &tf;
    if (setjmp(tf.jb) == 0) {
        fn(arg);
        gp = gort_g();
        run_defers(gp, tf.mark);
        gp = gort_g();
        gp->trytop = tf.prev;
        return true;
    }
    /* Recovered: gort_panic ran the deferred calls down to our mark. The
     * newest panic is the one we report; panics raised since we were
     * entered (a panic in a deferred call that replaced an earlier one) end
     * here too. Panics older than the frame keep unwinding later. */
    gp = gort_g();
    gp->trytop = tf.prev;
    char *msg = gp->panics->msg;
    while (gp->panics != tf.panics) {
        struct panic_rec *p = gp->panics;
        gp->panics = p->prev;
        if (p->msg != msg) free(p->msg);
        free(p);
    }
    free(gp->recovered);
    gp->recovered = msg;
    if (panic_msg) *panic_msg = msg;
    return false;
}

void panic_state_reset(struct g *gp)
{
    while (gp->panics) {
        struct panic_rec *p = gp->panics;
        gp->panics = p->prev;
        free(p->msg);
        free(p);
    }
    free(gp->recovered);
    gp->recovered = NULL;
}

static void print_panics(const struct panic_rec *p)
{
    /* Oldest first, as Go prints a chain: "panic: A\n\tpanic: B". */
    if (!p) return;
    print_panics(p->prev);
    put(2, p->prev ? "\tpanic: " : "panic: ");
    put(2, p->msg);
    put(2, "\n");
}

_Noreturn void gort_panic(const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    struct g *gp = gort_g();
    if (gp) {
        struct panic_rec *p = malloc(sizeof *p);
        char *text = strdup(msg);
        if (!p || !text) gort__fatal("out of memory (panic: %s)", msg);
        p->msg = text;
        p->prev = gp->panics;
        gp->panics = p;
        struct try_frame *tf = gp->trytop;
        run_defers(gp, tf ? tf->mark : NULL);
        gp = gort_g();
        if (tf) longjmp(tf->jb, 1);
    }
    /* Unrecovered. */
    claim_dying();
    flush_stdio_best_effort();
    if (gp && gp->panics) {
        print_panics(gp->panics);
    } else {
        put(2, "panic: ");
        put(2, msg);
        put(2, "\n");
    }
    print_current_goroutine(2);
    _exit(2);
}

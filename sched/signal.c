/* sched/signal.c: the fault handler that turns a guard-page hit into
 * "fatal error: stack overflow", and the SIGQUIT goroutine dump.
 *
 * SIGSEGV and SIGBUS run on the thread's alternate signal stack (set up for
 * every M by signals_thread_init), since the faulting stack is full. If the
 * fault address lies in a goroutine stack's guard region the handler prints
 * the message, the goroutine id and a raw backtrace using only
 * async-signal-safe calls, and exits with status 2. Any other fault is
 * passed on to the handler that was installed before gort's (ASan's, or the
 * default action, which then dumps core as usual).
 *
 * SIGQUIT (Ctrl-\) prints every goroutine, as Go does: id, state or wait
 * reason, creator, and the backtrace of each goroutine that is not running
 * (from its saved context) and of the one the signal interrupted; then the
 * process exits with status 2. It reads scheduler state without locks
 * (a dump, not a snapshot: a goroutine may change state while printed) and
 * prints raw PCs only, since symbol lookup is not async-signal-safe
 * (`addr2line -e PROG` resolves them). A handler the program installs later
 * replaces this one.
 */
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "sched/sched.h"

static struct sigaction old_segv, old_bus;

static void put(const char *s)
{
    ki_write_all(2, s, strlen(s));
}

static char *fmt_u(char *end, uint64_t v)
{
    *--end = 0;
    do {
        *--end = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return end;
}

static void chain(int sig, siginfo_t *info, void *uctx)
{
    struct sigaction *old = sig == SIGSEGV ? &old_segv : &old_bus;
    if ((old->sa_flags & SA_SIGINFO) && old->sa_sigaction) {
        old->sa_sigaction(sig, info, uctx);
        return;
    }
    if (old->sa_handler != SIG_DFL && old->sa_handler != SIG_IGN) {
        old->sa_handler(sig);
        return;
    }
    /* Default action: reinstall it and return; the faulting instruction runs
     * again and the kernel kills the process with this signal. */
    ki_signal_restore(sig, old);
}

static void fault_handler(int sig, siginfo_t *info, void *uctx)
{
    uintptr_t addr = (uintptr_t)info->si_addr;
    struct m *m = gort_m();
    struct g *gp = m ? m->curg : NULL;
    if (!stack_addr_in_guard(gp, addr)) {
        chain(sig, info, uctx);
        return;
    }
    char num[24];
    bool ours = gp && addr >= gp->guard_lo && addr < gp->stack_lo;
    put("runtime: goroutine stack exceeds ");
    put(fmt_u(num + sizeof num, ours ? gp->stack_hi - gp->stack_lo : cfg.stack_size));
    put("-byte limit\nfatal error: stack overflow\n\n");
    if (ours) {
        put("goroutine ");
        put(fmt_u(num + sizeof num, gp->goid));
        put(" [running]:\n");
        ucontext_t *uc = uctx;
        uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
        uintptr_t rbp = (uintptr_t)uc->uc_mcontext.gregs[REG_RBP];
        print_backtrace(2, pc, rbp, gp->stack_lo, gp->stack_hi, true);
    }
    _exit(2);
}

static void put_g_header(const struct g *gp, const char *state)
{
    char num[24];
    put("\ngoroutine ");
    put(fmt_u(num + sizeof num, gp->goid));
    put(" [");
    put(state);
    put("]:\n");
}

static void quit_handler(int sig, siginfo_t *info, void *uctx)
{
    (void)sig;
    (void)info;
    struct m *self = gort_m();
    struct g *cur = self ? self->curg : NULL;
    char num[24];
    put("SIGQUIT: quit\n");
    if (cur) {
        ucontext_t *uc = uctx;
        put_g_header(cur, "running");
        print_backtrace(2, (uintptr_t)uc->uc_mcontext.gregs[REG_RIP],
                        (uintptr_t)uc->uc_mcontext.gregs[REG_RBP], cur->stack_lo, cur->stack_hi,
                        true);
    }
    struct g **gs;
    size_t n = stack_allgs(&gs);
    for (size_t i = 0; i < n; i++) {
        struct g *gp = gs[i];
        uint32_t st = atomic_load_explicit(&gp->status, memory_order_relaxed);
        if (gp == cur || st == G_DEAD || st == G_IDLE) continue;
        put_g_header(gp, st == G_WAITING ? waitreason_name(gp->waitreason) : gstatus_name(st));
        if (st == G_RUNNING || st == G_SYSCALL) {
            put("\tgoroutine running on other thread; stack unavailable\n");
        } else if (gp->sp) {
            uintptr_t *sp = gp->sp; /* the frame gort__ctx_switch pushed */
            print_backtrace(2, sp[7], sp[6], gp->stack_lo, gp->stack_hi, true);
        }
        if (gp->parent_goid) {
            put("created by goroutine ");
            put(fmt_u(num + sizeof num, gp->parent_goid));
            put("\n");
        }
    }
    _exit(2);
}

void signals_init(void)
{
    ki_signal_install(SIGQUIT, quit_handler, NULL);
    ki_signal_install(SIGSEGV, fault_handler, &old_segv);
    ki_signal_install(SIGBUS, fault_handler, &old_bus);
}

void signals_thread_init(void)
{
    int r = ki_sigaltstack_setup(64 << 10);
    if (r < 0) gort__fatal("sigaltstack: errno %d", -r);
}

/* sched/signal.c: the fault handler that turns a guard-page hit into
 * "fatal error: stack overflow".
 *
 * SIGSEGV and SIGBUS run on the thread's alternate signal stack (set up for
 * every M by signals_thread_init), since the faulting stack is full. If the
 * fault address lies in a goroutine stack's guard region the handler prints
 * the message, the goroutine id and a raw backtrace using only
 * async-signal-safe calls, and exits with status 2. Any other fault is
 * passed on to the handler that was installed before gort's (ASan's, or the
 * default action, which then dumps core as usual).
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

void signals_init(void)
{
    ki_signal_install(SIGSEGV, fault_handler, &old_segv);
    ki_signal_install(SIGBUS, fault_handler, &old_bus);
}

void signals_thread_init(void)
{
    int r = ki_sigaltstack_setup(64 << 10);
    if (r < 0) gort__fatal("sigaltstack: errno %d", -r);
}

/* kernel-iface/signal.c: signal handlers, alternate signal stacks, masks.
 *
 * Handlers are installed with SA_SIGINFO|SA_ONSTACK|SA_RESTART: ONSTACK so a
 * handler never runs on a goroutine's small stack (or on one that just
 * overflowed), RESTART so interrupted system calls resume by themselves where
 * the kernel allows (the wrappers retry EINTR for the rest). While a handler
 * runs every signal is blocked except the synchronous faults (SIGSEGV, SIGBUS,
 * SIGFPE, SIGILL, SIGTRAP): a fault inside a handler with its signal blocked
 * would kill the process silently instead of reaching gort's crash report.
 *
 * Each thread owns at most one alternate stack, mmap'd with a PROT_NONE guard
 * page below it (a handler that overflows faults instead of scribbling over a
 * neighbouring mapping). Invariant: altstack_base != NULL exactly when this
 * thread has a mapping of altstack_len bytes (guard included) that it
 * allocated; it is freed only by the same thread (ki_sigaltstack_free) after
 * the stack has been disabled with SS_DISABLE.
 * Callers: any thread, not from signal handlers.
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mman.h>

#define KI_ALTSTACK_MIN (64UL * 1024)

static __thread void *altstack_base; /* mapping start (the guard page); this thread only */
static __thread size_t altstack_len; /* whole mapping, guard included */

int ki_sigaltstack_setup(size_t size)
{
    if (size < KI_ALTSTACK_MIN) size = KI_ALTSTACK_MIN;
    if (size < (size_t)MINSIGSTKSZ) size = MINSIGSTKSZ;
    size = (size + KI_PAGE_SIZE - 1) & ~(KI_PAGE_SIZE - 1);
    if (altstack_base) {
        if (altstack_len - KI_PAGE_SIZE >= size) return 0; /* the current one is big enough */
        ki_sigaltstack_free();
        if (altstack_base) return -EPERM; /* still running on it: cannot replace it */
    }

    size_t len = size + KI_PAGE_SIZE;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) {
        int err = errno;
        return -err;
    }
    if (mprotect(p, KI_PAGE_SIZE, PROT_NONE) != 0) {
        int err = errno;
        munmap(p, len);
        return -err;
    }
    stack_t ss = {.ss_sp = (char *)p + KI_PAGE_SIZE, .ss_size = size, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int err = errno;
        munmap(p, len);
        return -err;
    }
    altstack_base = p;
    altstack_len = len;
    return 0;
}

void ki_sigaltstack_free(void)
{
    if (!altstack_base) return;
    char *sp = (char *)altstack_base + KI_PAGE_SIZE;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && cur.ss_sp == sp && !(cur.ss_flags & SS_DISABLE)) {
        if (cur.ss_flags & SS_ONSTACK) return; /* running on it (called from a handler): keep it */
        stack_t off = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
        if (sigaltstack(&off, NULL) != 0)
            return; /* the kernel still points at it: leak rather than unmap */
    }
    munmap(altstack_base, altstack_len);
    altstack_base = NULL;
    altstack_len = 0;
}

int ki_signal_install(int sig, ki_sighandler handler, struct sigaction *old)
{
    struct sigaction sa = {0};
    sa.sa_sigaction = handler;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK | SA_RESTART;
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, SIGSEGV);
    sigdelset(&sa.sa_mask, SIGBUS);
    sigdelset(&sa.sa_mask, SIGFPE);
    sigdelset(&sa.sa_mask, SIGILL);
    sigdelset(&sa.sa_mask, SIGTRAP);
    if (sigaction(sig, &sa, old) != 0) {
        int err = errno;
        return -err;
    }
    return 0;
}

int ki_signal_restore(int sig, const struct sigaction *old)
{
    if (!old) return -EINVAL;
    if (sigaction(sig, old, NULL) != 0) {
        int err = errno;
        return -err;
    }
    return 0;
}

int ki_signals_block_all(sigset_t *old)
{
    sigset_t all;
    sigfillset(&all);
    return -pthread_sigmask(SIG_SETMASK, &all, old); /* returns the error number */
}

int ki_signals_set_mask(const sigset_t *mask)
{
    return -pthread_sigmask(SIG_SETMASK, mask, NULL);
}

/* kernel-iface/thread.c: OS threads, CPU counts and affinity.
 *
 * ki_thread_start creates a detached pthread (so glibc's TLS, errno and
 * stdio work on it) that runs fn(arg). Signal protocol, creator side:
 *   1. block every signal on the creating thread, saving its mask;
 *   2. pthread_create: the new thread inherits the all-blocked mask;
 *   3. restore the creator's mask.
 * New thread side: fn starts with everything blocked, sets up its alternate
 * signal stack, then unblocks what it wants. Dropping step 1 lets a handler
 * (SIGURG preemption, SIGPROF) run on the new thread before it has an
 * alternate stack or its M is set up.
 *
 * Invariant: the start record is malloc'd by the creator and freed by the new
 * thread before fn runs (or by the creator when pthread_create fails).
 * Callers: any thread, not signal handlers. Errors come back as -errno
 * (pthread functions return the error number; the sched_* calls' errno is
 * copied into a local at once).
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>

#define KI_THREAD_DEFAULT_STACK (256UL * 1024)

struct ki_thread_start_rec {
    void (*fn)(void *);
    void *arg;
};

static void *ki_thread_trampoline(void *p)
{
    struct ki_thread_start_rec rec = *(struct ki_thread_start_rec *)p;
    free(p);
    rec.fn(rec.arg);
    return NULL;
}

int ki_thread_start(void (*fn)(void *), void *arg, size_t stack_size)
{
    if (!fn) return -EINVAL;
    if (stack_size == 0) stack_size = KI_THREAD_DEFAULT_STACK;
    if (stack_size < (size_t)PTHREAD_STACK_MIN) stack_size = (size_t)PTHREAD_STACK_MIN;
    stack_size = (stack_size + KI_PAGE_SIZE - 1) & ~(KI_PAGE_SIZE - 1);

    struct ki_thread_start_rec *rec = malloc(sizeof *rec);
    if (!rec) return -ENOMEM;
    rec->fn = fn;
    rec->arg = arg;

    pthread_attr_t attr;
    int err = pthread_attr_init(&attr);
    if (err) {
        free(rec);
        return -err;
    }
    err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    if (!err) err = pthread_attr_setstacksize(&attr, stack_size);
    if (err) {
        pthread_attr_destroy(&attr);
        free(rec);
        return -err;
    }

    sigset_t all, old;
    sigfillset(&all);
    err = pthread_sigmask(SIG_SETMASK, &all, &old); /* step 1 */
    if (err) {
        pthread_attr_destroy(&attr);
        free(rec);
        return -err;
    }
    pthread_t t;
    err = pthread_create(&t, &attr, ki_thread_trampoline, rec); /* step 2 */
    pthread_sigmask(SIG_SETMASK, &old, NULL);                   /* step 3 */
    pthread_attr_destroy(&attr);
    if (err) {
        free(rec);
        return -err; /* EAGAIN: the kernel or RLIMIT_NPROC refuses more threads */
    }
    return 0;
}

int ki_cpu_count(void)
{
    /* A cpu_set_t holds 1024 CPUs; grow the set while the kernel's mask is
     * bigger (sched_getaffinity says EINVAL). */
    for (int n = 1024; n <= (1 << 20); n *= 2) {
        cpu_set_t *set = CPU_ALLOC(n);
        if (!set) return 1;
        size_t sz = CPU_ALLOC_SIZE(n);
        CPU_ZERO_S(sz, set);
        if (sched_getaffinity(0, sz, set) == 0) {
            int c = CPU_COUNT_S(sz, set);
            CPU_FREE(set);
            return c > 0 ? c : 1;
        }
        int err = errno;
        CPU_FREE(set);
        if (err != EINVAL) break;
    }
    return 1;
}

int ki_thread_set_affinity(const int *cpus, int ncpus)
{
    if (!cpus || ncpus <= 0) return -EINVAL;
    int max = 0;
    for (int i = 0; i < ncpus; i++) {
        if (cpus[i] < 0) return -EINVAL;
        if (cpus[i] > max) max = cpus[i];
    }
    cpu_set_t *set = CPU_ALLOC(max + 1);
    if (!set) return -ENOMEM;
    size_t sz = CPU_ALLOC_SIZE(max + 1);
    CPU_ZERO_S(sz, set);
    for (int i = 0; i < ncpus; i++)
        CPU_SET_S(cpus[i], sz, set);
    /* pid 0: the calling thread only (sched_setaffinity acts on a tid). */
    int r = sched_setaffinity(0, sz, set);
    int err = r ? errno : 0;
    CPU_FREE(set);
    return -err;
}

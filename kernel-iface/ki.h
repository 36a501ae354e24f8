/* kernel-iface/ki.h: thin, tested wrappers over the Linux interfaces gort uses.
 *
 * Nothing here knows about goroutines, Ms or Ps: these are the kernel's
 * primitives with the sharp edges filed off (EINTR retried, errors returned as
 * -errno, no reliance on the thread-local errno). Scheduling policy lives in
 * sched/.
 *
 * Error convention: functions returning int return >= 0 on success and -errno
 * on failure. None of them may be called from a signal handler unless its
 * comment says "signal-safe".
 */
#ifndef GORT_KI_H
#define GORT_KI_H

#include <signal.h> /* siginfo_t, sigset_t */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define KI_PAGE_SIZE 4096UL

/* ---- raw syscalls (syscall.c) ---------------------------------------- */

/* ki_syscall6 issues a raw syscall and returns the kernel's result (-errno on
 * failure), never touching errno. Signal-safe. */
long ki_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6);
pid_t ki_gettid(void); /* signal-safe */
/* Write all of buf to fd, retrying EINTR and short writes. Signal-safe. */
ssize_t ki_write_all(int fd, const void *buf, size_t n);
int ki_tgkill(pid_t tgid, pid_t tid, int sig); /* signal-safe */

/* ---- futex (futex.c) -------------------------------------------------- */

/* Sleep while *addr == val, at most timeout_ns nanoseconds (< 0: forever).
 * Returns 0 when woken or when *addr != val on entry (-EAGAIN is folded
 * into 0), -ETIMEDOUT on timeout; EINTR is returned as 0 (a spurious wake:
 * callers re-check their condition in a loop anyway). Private futexes only. */
int ki_futex_wait(_Atomic uint32_t *addr, uint32_t val, int64_t timeout_ns);
/* Wake up to n sleepers on addr; returns how many were woken. */
int ki_futex_wake(_Atomic uint32_t *addr, int n);

/* ---- clocks (clock.c) ------------------------------------------------- */

int64_t ki_nanotime(void);        /* CLOCK_MONOTONIC in ns (vDSO); signal-safe */
int64_t ki_walltime(void);        /* CLOCK_REALTIME in ns */
int64_t ki_thread_cputime(void);  /* CLOCK_THREAD_CPUTIME_ID in ns */
int64_t ki_process_cputime(void); /* CLOCK_PROCESS_CPUTIME_ID in ns */
/* Sleep on this thread for ns nanoseconds, resuming after EINTR. */
void ki_nanosleep(int64_t ns);
/* A CLOCK_MONOTONIC POSIX timer that sends signal sig, with si_code SI_TIMER
 * and si_value.sival_ptr = value, to the thread tid alone (SIGEV_THREAD_ID).
 * Stores the kernel's timer id in *id; returns 0 or -errno. Timers are not
 * inherited across fork. */
int ki_thread_timer_create(pid_t tid, int sig, void *value, int *id);
/* Arm timer id to fire once at the absolute CLOCK_MONOTONIC time when_ns
 * (0: disarm). Returns 0 or -errno. */
int ki_thread_timer_set(int id, int64_t when_ns);
void ki_thread_timer_delete(int id);

/* ---- threads (thread.c) ----------------------------------------------- */

/* Start a detached OS thread running fn(arg) with a stack of stack_size bytes
 * (0: a default of 256 KiB), all signals blocked while it starts so that no
 * handler runs before the thread has set up its alternate signal stack
 * (fn unblocks what it wants). Returns 0 or -errno (-EAGAIN when the kernel
 * refuses more threads). */
int ki_thread_start(void (*fn)(void *), void *arg, size_t stack_size);
/* Number of CPUs this process may run on (sched_getaffinity), at least 1. */
int ki_cpu_count(void);
/* Pin the calling thread to the CPUs in the given list; -errno on failure. */
int ki_thread_set_affinity(const int *cpus, int ncpus);

/* ---- signals (signal.c) ----------------------------------------------- */

typedef void (*ki_sighandler)(int sig, siginfo_t *info, void *uctx);
/* Install handler for sig with SA_SIGINFO|SA_ONSTACK|SA_RESTART and every
 * signal blocked while it runs (sa_mask full) except the synchronous
 * faults. The previous action is stored in *old when old != NULL. */
struct sigaction;
int ki_signal_install(int sig, ki_sighandler handler, struct sigaction *old);
/* Restore a saved action (used to chain to or fall back on a previous
 * handler). */
int ki_signal_restore(int sig, const struct sigaction *old);
/* Allocate (mmap, with a guard page below) and install an alternate signal
 * stack of at least size bytes for the calling thread. Returns 0 or -errno.
 * ki_sigaltstack_free releases the calling thread's stack (before it exits). */
int ki_sigaltstack_setup(size_t size);
void ki_sigaltstack_free(void);
/* Block / unblock all signals on the calling thread; the old mask goes to
 * *old (may be NULL). */
int ki_signals_block_all(sigset_t *old);
int ki_signals_set_mask(const sigset_t *mask);

/* ---- virtual memory (vmem.c) ------------------------------------------ */

/* Reserve and commit-on-touch n bytes of private anonymous memory
 * (MAP_NORESERVE: pages cost nothing until touched). Transparent huge pages
 * are disabled on the range when nohuge is true (stacks: one touched byte
 * must not fault in 2 MiB). Returns NULL on failure with *err = -errno. */
void *ki_mmap_anon(size_t n, bool nohuge, int *err);
/* Reserve n bytes of address space with no access (PROT_NONE). */
void *ki_mmap_reserve(size_t n, int *err);
int ki_munmap(void *p, size_t n);
/* Make [p, p+n) readable and writable (commit a reserved range). */
int ki_mcommit(void *p, size_t n);
/* Return pages to the kernel; contents read back as zero afterwards. */
int ki_mdiscard(void *p, size_t n);

/* Guard pages. Lightweight guard regions (MADV_GUARD_INSTALL, Linux 6.13+)
 * do not split the mapping, so a million stacks each with a guard stay one
 * VMA per reservation; older kernels fall back to mprotect(PROT_NONE), which
 * costs two VMAs per guard and so is rationed by the caller.
 *
 * ki_guard_kind() reports what this kernel supports (probed once). */
enum ki_guard_kind { KI_GUARD_NONE, KI_GUARD_MPROTECT, KI_GUARD_MADVISE };
enum ki_guard_kind ki_guard_kind(void);
/* Install guards on n ranges at once: ranges[i] .. ranges[i]+len. Uses one
 * process_madvise call per 1024 ranges where the kernel allows it, otherwise
 * one madvise or mprotect per range. Returns 0 or -errno. */
int ki_guard_install(void *const *ranges, size_t n, size_t len);

/* Bind [p, p+n) to NUMA node `node` (mbind MPOL_BIND); -ENOSYS when the
 * kernel has no NUMA support. */
int ki_mbind_node(void *p, size_t n, int node);

/* ---- NUMA topology (numa.c) ------------------------------------------- */

/* The machine as gort sees it: nodes numbered 0..nnodes-1, each with its
 * CPUs (only CPUs this process may run on). With GORT_NUMA=off there is one
 * node holding every CPU; with GORT_NUMA=fake:N the usable CPUs are split
 * into N virtual nodes of near-equal size (N may exceed the CPU count; the
 * extra nodes then have no CPUs of their own and borrow node 0's), and
 * `real` is false so callers skip mbind. */
#define KI_MAX_NODES 64
struct ki_numa_node {
    int ncpus;
    int *cpus;     /* ncpus entries, ascending; NULL when ncpus == 0 */
    int kernel_id; /* the kernel's node id, the one to pass to ki_mbind_node
                    * (gort numbers nodes densely, the kernel may not); -1
                    * when the node is not the kernel's (off, fake:N, no NUMA) */
};
struct ki_numa {
    int nnodes;
    bool real; /* nodes are the kernel's: mbind node[i].kernel_id */
    bool fake; /* GORT_NUMA=fake:N */
    struct ki_numa_node node[KI_MAX_NODES];
};
/* Fill *out from libnuma and the GORT_NUMA value `env` (NULL or "" means
 * unset). Returns 0, or -EINVAL with a message in errbuf (naming GORT_NUMA)
 * when env is malformed. */
int ki_numa_discover(struct ki_numa *out, const char *env, char *errbuf, size_t errlen);
/* Node of a CPU in *t, or 0 when unknown. */
int ki_numa_node_of_cpu(const struct ki_numa *t, int cpu);

/* ---- io_uring and epoll (uring.c) ------------------------------------- */

struct io_uring;
struct epoll_event;
/* What the kernel's io_uring offers (ki_uring_probe). usable: everything
 * the poller needs is there; otherwise err says why (-EPERM, -ENOSYS: the
 * io_uring_disabled sysctl, a seccomp filter, an old kernel). */
struct ki_uring_features {
    bool usable;
    int err;
    uint32_t features; /* IORING_FEAT_* */
    bool nodrop, fast_poll, sync_cancel, multishot;
    bool op_accept, op_connect, op_recv, op_send, op_openat, op_poll, op_shutdown, op_close;
};
int ki_uring_probe(struct ki_uring_features *f);
/* A ring with sq_entries submission and cq_entries completion slots. */
int ki_uring_init(struct io_uring *r, unsigned sq_entries, unsigned cq_entries);
/* io_uring_enter(2), EINTR retried. Callable by any thread on any ring:
 * the kernel serialises submitters, and takes only SQEs already published
 * (tail stored with release). */
int ki_uring_enter(int fd, unsigned to_submit, unsigned min_complete, unsigned flags);
int ki_eventfd(void); /* non-blocking, close-on-exec */
int ki_epoll_create(void);
int ki_epoll_ctl(int epfd, int op, int fd, uint32_t events, void *data);
/* Wait at most timeout_ns (< 0: forever, 0: poll); returns the number of
 * events, 0 on timeout or EINTR, or -errno. Nanosecond timeouts where the
 * kernel has epoll_pwait2. */
int ki_epoll_wait(int epfd, struct epoll_event *ev, int max, int64_t timeout_ns);

#endif

/* kernel-iface/vmem.c: anonymous memory, guard pages, NUMA binding.
 *
 * Reservations are private anonymous MAP_NORESERVE mappings: address space
 * is free, a page costs memory only once touched, and ki_mdiscard
 * (MADV_DONTNEED) gives it back, reading as zero afterwards.
 *
 * Guard pages, best first:
 *   KI_GUARD_MADVISE   MADV_GUARD_INSTALL (Linux 6.13+) marks page table
 *                      entries so a touch raises SIGSEGV, without splitting the
 *                      VMA: a reservation stays one line of /proc/self/maps
 *                      however many guards it holds, so vm.max_map_count never
 *                      limits the goroutine count. Batched through
 *                      process_madvise (1024 ranges per call) when the kernel
 *                      accepts guard advice there (6.13+ for the caller's own
 *                      process).
 *   KI_GUARD_MPROTECT  mprotect(PROT_NONE): always works, two extra VMAs per
 *                      guard in the middle of a mapping, so callers ration it.
 * Guards survive MADV_DONTNEED; munmap removes them.
 *
 * The probe runs once per process. guard_state protocol:
 *   GS_UNKNOWN --CAS by the first caller--> GS_PROBING --store release--> result
 *   other callers that see GS_PROBING sleep on the futex until the result is
 *   published (the release store pairs with their acquire load).
 * Callers: any thread, not signal handlers (errno is used).
 * Rejected: a pidfd opened once at probe time (after fork it would name the
 * parent, and guards would land in the parent's address space); we open one
 * per ki_guard_install call instead (two cheap syscalls per batch of 1024).
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102 /* Linux 6.13; our kernel headers predate it */
#endif
#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#define KI_MPOL_BIND   2    /* <numaif.h> MPOL_BIND */
#define KI_GUARD_BATCH 1024 /* IOV_MAX: process_madvise's per-call limit */

void *ki_mmap_anon(size_t n, bool nohuge, int *err)
{
    if (n == 0) {
        if (err) *err = -EINVAL;
        return NULL;
    }
    void *p =
        mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        if (err) *err = -e;
        return NULL;
    }
    /* Fails only on kernels without THP (EINVAL), where there is nothing to
     * disable: ignore. */
    if (nohuge) madvise(p, n, MADV_NOHUGEPAGE);
    if (err) *err = 0;
    return p;
}

void *ki_mmap_reserve(size_t n, int *err)
{
    if (n == 0) {
        if (err) *err = -EINVAL;
        return NULL;
    }
    void *p = mmap(NULL, n, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        int e = errno;
        if (err) *err = -e;
        return NULL;
    }
    if (err) *err = 0;
    return p;
}

int ki_munmap(void *p, size_t n)
{
    if (munmap(p, n) != 0) {
        int e = errno;
        return -e;
    }
    return 0;
}

int ki_mcommit(void *p, size_t n)
{
    if (mprotect(p, n, PROT_READ | PROT_WRITE) != 0) {
        int e = errno;
        return -e;
    }
    return 0;
}

/* madvise retrying EINTR (guard installation can be interrupted). */
static int madvise_retry(void *p, size_t n, int advice)
{
    for (;;) {
        if (madvise(p, n, advice) == 0) return 0;
        int e = errno;
        if (e != EINTR) return -e;
    }
}

int ki_mdiscard(void *p, size_t n)
{
    return madvise_retry(p, n, MADV_DONTNEED);
}

/* ---- guard pages ------------------------------------------------------- */

enum {
    GS_UNKNOWN = 0,
    GS_PROBING = 1,
    GS_DONE = 0x10,   /* result published; kind in the low bits */
    GS_BATCH = 0x100, /* process_madvise accepts MADV_GUARD_INSTALL */
};
static _Atomic uint32_t guard_state; /* GS_* ; see the protocol above */

static int pidfd_self(void)
{
    long fd = syscall(SYS_pidfd_open, (long)getpid(), 0L);
    if (fd < 0) {
        int e = errno;
        return -e;
    }
    return (int)fd;
}

/* One process_madvise call; returns bytes advised or -errno. */
static long pmadvise(int pidfd, const struct iovec *iov, size_t n, int advice)
{
    long r = syscall(SYS_process_madvise, (long)pidfd, iov, (long)n, (long)advice, 0L);
    if (r < 0) {
        int e = errno;
        return -e;
    }
    return r;
}

static uint32_t guard_probe(void)
{
    void *p = mmap(NULL, 2 * KI_PAGE_SIZE, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return KI_GUARD_MPROTECT; /* out of memory now; mprotect still works later */
    uint32_t res = KI_GUARD_MPROTECT;
    if (madvise_retry(p, KI_PAGE_SIZE, MADV_GUARD_INSTALL) == 0) {
        res = KI_GUARD_MADVISE;
        int fd = pidfd_self();
        if (fd >= 0) {
            struct iovec iov = {.iov_base = (char *)p + KI_PAGE_SIZE, .iov_len = KI_PAGE_SIZE};
            long r;
            while ((r = pmadvise(fd, &iov, 1, MADV_GUARD_INSTALL)) == -EINTR) {
            }
            if (r == (long)KI_PAGE_SIZE) res |= GS_BATCH;
            close(fd);
        }
    }
    munmap(p, 2 * KI_PAGE_SIZE);
    return res;
}

static uint32_t guard_state_get(void)
{
    uint32_t s = atomic_load_explicit(&guard_state, memory_order_acquire); /* pairs with the
                                                                              release below */
    if (s >= GS_DONE) return s;
    uint32_t expect = GS_UNKNOWN;
    if (atomic_compare_exchange_strong_explicit(&guard_state, &expect, GS_PROBING,
                                                memory_order_acquire, memory_order_acquire)) {
        s = guard_probe() | GS_DONE;
        atomic_store_explicit(&guard_state, s, memory_order_release); /* publishes the result */
        ki_futex_wake(&guard_state, -1);
        return s;
    }
    /* Someone else is probing: sleep until the result is published. */
    while ((s = atomic_load_explicit(&guard_state, memory_order_acquire)) < GS_DONE)
        ki_futex_wait(&guard_state, GS_PROBING, -1);
    return s;
}

enum ki_guard_kind ki_guard_kind(void)
{
    return (enum ki_guard_kind)(guard_state_get() & 0xf);
}

/* Guard ranges one at a time: madvise when the kernel has guard advice (and
 * accepts it for this mapping), else mprotect. */
static int guard_one(void *p, size_t len, bool madv)
{
    if (madv && madvise_retry(p, len, MADV_GUARD_INSTALL) == 0) return 0;
    if (mprotect(p, len, PROT_NONE) != 0) {
        int e = errno;
        return -e;
    }
    return 0;
}

/* Install guards on iov[0..n) with process_madvise, looping over partial
 * results. Returns how many ranges are fully guarded; on failure the rest are
 * left to the caller's per-range fallback. */
static size_t guard_batch(int pidfd, struct iovec *iov, size_t n)
{
    size_t done = 0;
    while (done < n) {
        long r = pmadvise(pidfd, iov + done, n - done, MADV_GUARD_INSTALL);
        if (r == -EINTR) continue;
        if (r <= 0) break; /* error, or no progress: fall back */
        /* r bytes advised, in iovec order: skip the ranges it covered and
         * trim the one it stopped inside. */
        size_t left = (size_t)r;
        while (done < n && left >= iov[done].iov_len) {
            left -= iov[done].iov_len;
            done++;
        }
        if (done < n && left) {
            iov[done].iov_base = (char *)iov[done].iov_base + left;
            iov[done].iov_len -= left;
        }
    }
    return done;
}

int ki_guard_install(void *const *ranges, size_t n, size_t len)
{
    if (n == 0) return 0;
    if (!ranges || len == 0 || (len & (KI_PAGE_SIZE - 1))) return -EINVAL;
    uint32_t s = guard_state_get();
    bool madv = (s & 0xf) == KI_GUARD_MADVISE;
    size_t i = 0;

    if (madv && (s & GS_BATCH) && n > 1) {
        size_t cap = n < KI_GUARD_BATCH ? n : KI_GUARD_BATCH;
        struct iovec *iov = malloc(cap * sizeof *iov);
        int fd = iov ? pidfd_self() : -1;
        if (fd >= 0) {
            while (i < n) {
                size_t cnt = n - i < cap ? n - i : cap;
                for (size_t k = 0; k < cnt; k++) {
                    iov[k].iov_base = ranges[i + k];
                    iov[k].iov_len = len;
                }
                size_t ok = guard_batch(fd, iov, cnt);
                i += ok;
                /* The kernel refused part of the batch: guard the rest one
                 * range at a time below (re-guarding the head of a range the
                 * batch stopped inside is harmless). */
                if (ok < cnt) break;
            }
            close(fd);
        }
        free(iov);
    }
    for (; i < n; i++) {
        int r = guard_one(ranges[i], len, madv);
        if (r) return r;
    }
    return 0;
}

/* ---- NUMA binding ------------------------------------------------------ */

int ki_mbind_node(void *p, size_t n, int node)
{
    if (node < 0 || node >= 64) return -EINVAL;
    unsigned long mask[2] = {1UL << node, 0}; /* the kernel reads maxnode-1 bits */
    for (;;) {
        long r = syscall(SYS_mbind, p, n, (long)KI_MPOL_BIND, mask, 64L + 1, 0L);
        if (r == 0) return 0;
        int e = errno;
        if (e != EINTR) return -e;
    }
}

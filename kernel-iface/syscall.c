/* kernel-iface/syscall.c: raw system calls that never touch errno.
 *
 * ki_syscall6 issues the `syscall` instruction itself (x86-64 ABI: rax = nr,
 * arguments in rdi, rsi, rdx, r10, r8, r9; the kernel clobbers rcx and r11)
 * and returns the kernel's raw result, -4095..-1 meaning -errno. Because no
 * libc wrapper runs, errno is never read or written, so everything here is
 * signal-safe and safe across a goroutine's change of thread.
 *
 * Invariant: no function in this file calls into libc.
 * Callers: anyone, including signal handlers.
 * Rejected: syscall(3) (sets errno, which a handler would have to save and
 * restore, and whose address the compiler may cache across a thread switch).
 */
#include "kernel-iface/ki.h"

#include <errno.h>
#include <sys/syscall.h>

long ki_syscall6(long nr, long a1, long a2, long a3, long a4, long a5, long a6)
{
    register long r10 __asm__("r10") = a4;
    register long r8 __asm__("r8") = a5;
    register long r9 __asm__("r9") = a6;
    long ret;
    /* "memory": the kernel may read or write any buffer passed by pointer. */
    __asm__ volatile("syscall"
                     : "=a"(ret)
                     : "a"(nr), "D"(a1), "S"(a2), "d"(a3), "r"(r10), "r"(r8), "r"(r9)
                     : "rcx", "r11", "memory");
    return ret;
}

pid_t ki_gettid(void)
{
    return (pid_t)ki_syscall6(SYS_gettid, 0, 0, 0, 0, 0, 0);
}

ssize_t ki_write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    size_t done = 0;
    while (done < n) {
        long r = ki_syscall6(SYS_write, fd, (long)(p + done), (long)(n - done), 0, 0, 0);
        if (r == -EINTR) continue;
        if (r < 0) return r;
        if (r == 0) /* write(2) never returns 0 for n > 0; do not spin on it */
            return -EIO;
        done += (size_t)r;
    }
    return (ssize_t)done;
}

int ki_tgkill(pid_t tgid, pid_t tid, int sig)
{
    return (int)ki_syscall6(SYS_tgkill, tgid, tid, sig, 0, 0, 0);
}

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
#include <sys/socket.h>
#include <sys/types.h>

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
 * library call), Go's entersyscall/exitsyscall: entering costs a few
 * stores; if the region lasts longer than a sysmon tick (20 us and up) and
 * other goroutines wait, sysmon hands the processor to another thread.
 * Leaving takes the processor back if it is still free, else an idle one,
 * else the goroutine queues and its thread parks. No gort call that may
 * block is allowed inside. */
void gort_blocking_begin(void);
void gort_blocking_end(void);

/* Preemption. A goroutine that runs longer than GORT_TIMESLICE (10 ms) is
 * stopped by a SIGURG to its thread, but only where it runs code of the
 * executable itself: never inside gort, libc or other shared objects, which
 * may hold locks. Code in a shared object that holds no locks across its
 * own loops can be made preemptible: pass any address inside the object.
 * 0, or -ENOENT when no loaded object contains addr. A program's own
 * SIGURG handler keeps receiving every SIGURG gort did not send. */
int gort_preempt_register(const void *addr);

/* ---- time --------------------------------------------------------------- */

int64_t gort_now(void); /* monotonic nanoseconds */

/* Park the calling goroutine for at least ns nanoseconds (ns <= 0 returns
 * at once). */
void gort_sleep(int64_t ns);

/* time.After: a channel of int64_t (capacity 1) that receives the fire
 * time (gort_now() clock) once, after ns nanoseconds. */
typedef struct gort_chan gort_chan;
gort_chan *gort_after(int64_t ns);

/* time.AfterFunc: after ns nanoseconds, fn(arg) runs in its own goroutine.
 * gort_timer_stop prevents that if it has not happened yet and returns
 * whether it did so (false: already fired or stopped). gort_timer_reset
 * re-arms the timer to fire ns from now and returns whether it had been
 * pending. The timer stays valid after it fires (Go's rules: reset may
 * re-arm it). */
typedef struct gort_timer gort_timer;
gort_timer *gort_timer_after_func(int64_t ns, void (*fn)(void *), void *arg);
bool gort_timer_stop(gort_timer *t);
bool gort_timer_reset(gort_timer *t, int64_t ns);

/* time.NewTicker: its channel (int64_t, capacity 1) receives the time every
 * period nanoseconds; a slow receiver misses ticks rather than queueing them.
 * period <= 0 panics "non-positive interval for gort_ticker_new". */
typedef struct gort_ticker gort_ticker;
gort_ticker *gort_ticker_new(int64_t period);
gort_chan *gort_ticker_chan(gort_ticker *t);
void gort_ticker_stop(gort_ticker *t);

/* ---- panics ------------------------------------------------------------- */

/* Go's panic: run the deferred calls (gort_defer) of the calling goroutine
 * from the newest down to the innermost gort_try, which then returns false
 * with the message (recover). With no gort_try on the goroutine's stack the
 * process prints "panic: <message>", the goroutine's backtrace, and exits
 * with status 2. */
_Noreturn void gort_panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Register fn(arg) to run, newest first, when the innermost enclosing
 * gort_try body ends (returning or panicking), or, outside any gort_try, when
 * the goroutine ends (its function returns, gort_exit, or an unrecovered
 * panic). */
void gort_defer(void (*fn)(void *), void *arg);

/* Run fn(arg). Returns true when it finished; false when it panicked, with
 * the panic message in *panic_msg (may be NULL). The text stays valid until
 * the same goroutine recovers another panic or ends: copy it to keep it
 * longer. Fatal errors ("fatal error: ...") are never recovered. */
bool gort_try(void (*fn)(void *), void *arg, const char **panic_msg);

/* ---- channels ------------------------------------------------------------ */

/* Go's channels, semantics and panics included. A NULL channel blocks
 * forever on send and receive, as Go's nil channel. Elements are copied by
 * value (elem_size bytes, which may be 0). */
typedef struct gort_chan gort_chan;

/* make(chan T, cap). Panics "makechan: size out of range" when elem_size
 * exceeds 64 KiB or the buffer cannot be allocated. */
gort_chan *gort_chan_make(size_t elem_size, size_t cap);
void gort_chan_send(gort_chan *c, const void *elem); /* panics "send on closed channel" */
/* Receive into elem (may be NULL to discard). Returns false once the channel
 * is closed and drained; *elem is then zeroed. */
bool gort_chan_recv(gort_chan *c, void *elem);
void gort_chan_close(gort_chan *c); /* "close of nil channel", "close of closed channel" */
size_t gort_chan_len(gort_chan *c);
size_t gort_chan_cap(gort_chan *c);

/* select. Build the cases with GORT_SEND / GORT_RECV, e.g.
 *     gort_case cs[] = {GORT_RECV(in, &v, &ok), GORT_SEND(out, &w)};
 *     switch (gort_select(cs, 2, true)) { case 0: ...; case 1: ...; }
 * A case on a NULL channel is never ready. Returns the index of the case that
 * ran, or -1 when block is false and none was ready (Go's default). Among
 * ready cases one is chosen uniformly at random. gort_select(NULL, 0, true)
 * blocks forever. */
enum { GORT_CASE_SEND = 1, GORT_CASE_RECV = 2 };
typedef struct gort_case {
    gort_chan *ch;
    int dir; /* GORT_CASE_SEND or GORT_CASE_RECV */
    void *elem;
    bool *ok; /* receive: false when the channel was closed (may be NULL) */
} gort_case;
#define GORT_SEND(ch, elem_ptr)         ((gort_case){(ch), GORT_CASE_SEND, (void *)(elem_ptr), NULL})
#define GORT_RECV(ch, elem_ptr, ok_ptr) ((gort_case){(ch), GORT_CASE_RECV, (elem_ptr), (ok_ptr)})
int gort_select(gort_case *cases, int n, bool block);

/* ---- sync (the zero value of each type is ready to use; fields private) -- */

typedef struct gort_mutex {
    int32_t state;
    uint32_t sema;
} gort_mutex;
void gort_mutex_lock(gort_mutex *m);
/* Unlocking an unlocked mutex is "fatal error: sync: unlock of unlocked
 * mutex" (not recoverable). A mutex is not tied to a goroutine: another one
 * may unlock it. */
void gort_mutex_unlock(gort_mutex *m);
bool gort_mutex_trylock(gort_mutex *m);

typedef struct gort_rwmutex {
    gort_mutex w;         /* held by a pending writer */
    uint32_t writer_sem;  /* writers wait here for readers to finish */
    uint32_t reader_sem;  /* readers wait here for a writer to finish */
    int32_t reader_count; /* readers; negative while a writer is pending */
    int32_t reader_wait;  /* readers the pending writer still waits for */
} gort_rwmutex;
void gort_rwmutex_rlock(gort_rwmutex *rw);
void gort_rwmutex_runlock(gort_rwmutex *rw);
void gort_rwmutex_lock(gort_rwmutex *rw);
void gort_rwmutex_unlock(gort_rwmutex *rw);

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

typedef struct gort_once {
    uint32_t done;
    gort_mutex m;
} gort_once;
/* Run fn(arg) once per gort_once. Concurrent callers wait until it has
 * finished. If fn panics, the once still counts as done and the panic goes on
 * to the caller. */
void gort_once_do(gort_once *o, void (*fn)(void *), void *arg);

typedef struct gort_cond {
    uint32_t wait;   /* next ticket to hand out */
    uint32_t notify; /* next ticket to wake */
    uint32_t lock;
    void *head, *tail;
} gort_cond;
/* Atomically unlock m and park; re-locks m before returning. As in Go,
 * callers re-check their condition in a loop. */
void gort_cond_wait(gort_cond *c, gort_mutex *m);
void gort_cond_signal(gort_cond *c);
void gort_cond_broadcast(gort_cond *c);

/* sync.Pool: a cache of reusable objects, per processor first. Get returns
 * a pooled object or, when empty, new() (or NULL when new is NULL). Objects
 * in the pool may be dropped at any garbage collection (they survive one in
 * a victim cache). */
typedef struct gort_pool {
    void *(*new)(void);
    void *local;    /* private: per-P caches */
    size_t localn;  /* private */
    void *victim;   /* private */
    size_t victimn; /* private */
    void *next;     /* private: list of all pools */
} gort_pool;
void *gort_pool_get(gort_pool *p);
void gort_pool_put(gort_pool *p, void *x);

/* ---- context ------------------------------------------------------------ */

/* Go's context package. Contexts form a tree rooted at the background
 * context: cancelling a context cancels every context derived from it, never
 * its parent. A context is safe to use from any number of goroutines.
 * Derived contexts are heap objects owned by the runtime (reclaimed by the
 * collector once unreachable); cancel a context when its work is done so its
 * timer and its place in the parent's children set are released.
 * A NULL context panics in every call but gort_ctx_errstr. */
typedef struct gort_ctx gort_ctx;

/* context.Background: never cancelled, no deadline, no values. A static
 * singleton. */
gort_ctx *gort_ctx_background(void);

/* context.WithCancel: a child of parent, cancelled by gort_ctx_cancel or
 * when parent is. parent NULL panics "gort_ctx_with_cancel: nil parent". */
gort_ctx *gort_ctx_with_cancel(gort_ctx *parent);

/* context.WithTimeout: gort_ctx_with_deadline(parent, gort_now() + ns). */
gort_ctx *gort_ctx_with_timeout(gort_ctx *parent, int64_t ns);

/* context.WithDeadline: also cancelled, with -ETIMEDOUT, once gort_now()
 * reaches deadline (at once if it already has). When parent's deadline is
 * earlier, this is gort_ctx_with_cancel(parent): the earlier one wins. */
gort_ctx *gort_ctx_with_deadline(gort_ctx *parent, int64_t deadline /* gort_now() clock */);

/* context.WithValue: a child of parent that maps key to val; keys compare as
 * pointers (use the address of a static object of your own). key NULL
 * panics "gort_ctx_with_value: nil key". Cancelling it does nothing: it
 * shares its parent's cancellation. */
gort_ctx *gort_ctx_with_value(gort_ctx *parent, const void *key, void *val);

/* The CancelFunc: cancel c (error -ECANCELED) and every context derived from
 * it. Idempotent; cancelling an already-cancelled (or timed-out) context
 * changes nothing. Does nothing on the background context and on value
 * contexts (cancel the context they were derived from). */
void gort_ctx_cancel(gort_ctx *c);

/* Done: a channel (zero-size elements) closed when c is cancelled; use it in
 * gort_select as GORT_RECV(gort_ctx_done(c), NULL, NULL). The same channel
 * on every call. NULL (never ready) when c can never be cancelled
 * (background, or only value contexts above it). Never close it yourself. */
gort_chan *gort_ctx_done(gort_ctx *c); /* NULL (never ready) for background */

/* Err: 0 while c is live, then why it ended: -ECANCELED (cancelled) or
 * -ETIMEDOUT (deadline exceeded). Once non-zero it never changes, and the
 * done channel is already closed. */
int gort_ctx_err(gort_ctx *c); /* 0, -ECANCELED, -ETIMEDOUT */

/* Go's error words for gort_ctx_err's values: "context canceled", "context
 * deadline exceeded"; "" for 0 (never NULL, so it can be printed
 * directly), "unknown context error" for anything else. */
const char *gort_ctx_errstr(int err); /* "context canceled", "context deadline exceeded" */

/* Value: the value of the nearest context up the chain (c first) made by
 * gort_ctx_with_value with this key; NULL when none. */
void *gort_ctx_value(gort_ctx *c, const void *key);

/* Deadline: true and *deadline (gort_now() clock) when c or an ancestor has
 * one (the earliest on the chain); false and *deadline untouched when none.
 * deadline may be NULL. */
bool gort_ctx_deadline(gort_ctx *c, int64_t *deadline);

/* ==== I/O ===================================================================
 * Network and file I/O through the poller (sched/netpoll.c): one io_uring
 * per processor, or an epoll readiness poller where io_uring is unavailable
 * or GORT_POLLER=epoll is set. A call that cannot complete at once parks the
 * calling goroutine, never its thread.
 *
 * Every call returns a count or a descriptor (>= 0), or -errno (never
 * errno: a goroutine may change threads inside any of them). Called outside
 * a goroutine (no gort_main, a foreign thread, inside
 * gort_blocking_begin/end) they fall back to the plain blocking syscall.
 *
 * Descriptors. Any descriptor may be used; those made by gort_listen_tcp,
 * gort_dial_tcp and gort_accept are close-on-exec and non-blocking (the
 * poller needs that in its epoll mode; use gort_read and friends on them).
 * Close them with gort_close: it wakes goroutines blocked on the descriptor
 * (they return -EBADF) and forgets its deadlines. Closing with plain close()
 * leaves both behind for the next descriptor of that number.
 *
 * Errors beyond the syscalls' own: -ETIMEDOUT once the descriptor's
 * deadline has passed; -EBADF for fd < 0 or a descriptor being closed;
 * -EINVAL for a NULL buffer with n > 0. EINTR never reaches the caller, and
 * gort_write and gort_send write everything unless an error occurs (a short
 * transfer is continued). gort_read, gort_recv and gort_pread return what
 * one transfer gave (0 at end of file), as read(2) does. */

/* Listen on host:port (host NULL, "" or "*": every address; names are
 * resolved; IPv4 or IPv6), SO_REUSEADDR set, backlog <= 0 meaning SOMAXCONN.
 * Returns the listening descriptor. port 0 picks a free port (read it with
 * getsockname). */
int gort_listen_tcp(const char *host, int port, int backlog);
/* Connect to host:port, trying each resolved address in turn (the lookup
 * runs in a blocking region); timeout_ns > 0 bounds the whole call
 * (-ETIMEDOUT). TCP_NODELAY is set, as Go does. Returns the descriptor. */
int gort_dial_tcp(const char *host, int port, int64_t timeout_ns);
/* accept4(2) with SOCK_CLOEXEC | SOCK_NONBLOCK; addr and len may be NULL.
 * Under EMFILE/ENFILE it backs off (parks a few ms, doubling up to 1 s) and
 * retries instead of failing or spinning, as Go's net/http server does;
 * a deadline still ends the wait. */
int gort_accept(int fd, struct sockaddr *addr, socklen_t *len);
/* connect(2) on a socket of the caller's; parks until connected. */
int gort_connect(int fd, const struct sockaddr *addr, socklen_t len);
ssize_t gort_read(int fd, void *buf, size_t n);
ssize_t gort_write(int fd, const void *buf, size_t n);
ssize_t gort_recv(int fd, void *buf, size_t n, int flags);
ssize_t gort_send(int fd, const void *buf, size_t n, int flags);
ssize_t gort_pread(int fd, void *buf, size_t n, off_t off);
ssize_t gort_pwrite(int fd, const void *buf, size_t n, off_t off);
/* open(2) (O_CLOEXEC added); mode is used with O_CREAT / O_TMPFILE. */
int gort_open(const char *path, int flags, mode_t mode);
int gort_fsync(int fd);
int gort_close(int fd);
int gort_shutdown(int fd, int how);
/* Go's SetDeadline: deadline is absolute on the gort_now() clock, 0 clears.
 * Once it has passed, blocked calls on fd return -ETIMEDOUT (their kernel
 * requests are cancelled) and later calls fail at once, until the deadline
 * is moved. The read and write variants set one direction (reads, recvs and
 * accepts; writes, sends and connects). Regular files ignore deadlines. */
int gort_set_deadline(int fd, int64_t deadline);
int gort_set_read_deadline(int fd, int64_t deadline);
int gort_set_write_deadline(int fd, int64_t deadline);
/* Which poller runs: "io_uring" or "epoll" (valid once gort_main runs). */
const char *gort_poller_name(void);

/* ==== memory ================================================================
 * gort's allocator (mem/): Go's design (8 KiB pages, 68 size classes up to
 * 32 KiB, a cache per processor, a central list and a page heap per NUMA
 * node, larger objects straight from the page heap), with explicit frees.
 * Allocation takes no lock on a processor; memory comes from the NUMA node
 * of the processor running the caller, and a free from any thread or node
 * goes back to the node the object came from. Callable from any thread,
 * with or without a processor (foreign threads, before gort_main, inside
 * gort_blocking_begin/end); without one, a per-node cache under a lock is
 * used.
 *
 * Errors: out of memory is fatal ("fatal error: out of memory", after a line
 * naming the request size). A request that no machine can satisfy (more
 * than 64 TiB, or n * size overflowing in gort_calloc) returns NULL with
 * errno ENOMEM, as C allocators do. Freeing a pointer gort did not allocate,
 * a pointer into the middle of an object, an object twice, or an object of
 * gort_new is a fatal error where it can be detected cheaply (a double free
 * is missed once the object has been handed out again).
 */

/* Manual allocation, like malloc/calloc/realloc/free. Blocks are aligned
 * for any type that fits in the request (16 bytes, except 8 for requests of
 * up to 8 and of 17..24 bytes, which no 16-aligned type has). gort_malloc(0)
 * returns a unique pointer. Never collected; with the collector, its contents keep
 * garbage-collected objects alive. */
void *gort_malloc(size_t n);
void *gort_calloc(size_t n, size_t size); /* zeroed; NULL on n * size overflow */
/* p NULL: gort_malloc(n). n 0: frees p and returns NULL (as glibc). Keeps p
 * when the new size still fits its block and uses at least half of it. */
void *gort_realloc(void *p, size_t n);
void gort_free(void *p); /* NULL: nothing */
/* align: a power of two (else NULL, errno EINVAL); any n (C11's multiple-of-
 * align rule is not required). Freed with gort_free. */
void *gort_aligned_alloc(size_t align, size_t n);
/* Bytes usable at p (at least what was asked for); p must be live. */
size_t gort_malloc_usable_size(void *p);

/* Garbage-collected allocation (zeroed); never pass these to gort_free.
 * gort_new's objects are scanned conservatively (any word that points into
 * an object, also into its middle, keeps it alive); gort_new_noscan's hold
 * no pointers (under 16 bytes they share 16-byte blocks: Go's tiny
 * allocator). An object lives while something the collector scans points
 * to it: goroutine stacks and registers, the data and bss of the program
 * and its shared libraries, gort_malloc memory, other live gort_new
 * objects, registered roots. Memory from libc's malloc, thread-local
 * variables and threads gort did not create are not scanned. */
void *gort_new(size_t n);
void *gort_new_noscan(size_t n);

/* The write barrier (Go's compiler emits it; in C it is this macro). The
 * collector marks while the program runs, so while it does, a pointer to a
 * gort_new object stored anywhere but the storing goroutine's own local
 * variables (into gort_new or gort_malloc memory, a global, another
 * goroutine's stack) must be stored with GORT_STORE(lvalue, ptr): it shades
 * the old and the new value (Go's hybrid barrier) and then stores. Storing
 * NULL or a non-gort pointer through it is fine. Plain stores of such pointers are
 * safe only with GORT_DEBUG=gcstoptheworld=1 (the whole mark with the world
 * stopped); GORT_DEBUG=gccheckmark=1 finds missing barriers in tests. */
extern volatile unsigned gort__gc_barrier;
/* The store itself happens inside gort (whose code is never stopped by the
 * preemption signal): a goroutine stopped between the barrier and the
 * store could resume after a new cycle began, and its store would then
 * delete a pointer unseen (Go's compiler makes that sequence non-
 * preemptible for the same reason). A call, a load and a branch when the
 * collector is not marking. */
void gort__store(void **slot, void *ptr);
#define GORT_STORE(lvalue, ptr)                                        \
    do {                                                               \
        __typeof__(lvalue) *gort__slot_ = &(lvalue);                   \
        __typeof__(lvalue) gort__val_ = (ptr);                         \
        gort__store((void **)(void *)gort__slot_, (void *)gort__val_); \
    } while (0)
/* memmove for memory that may hold pointers to gort_new objects (a struct
 * copy, an array shift): the barrier for each word copied over. */
void gort_gc_memmove(void *dst, const void *src, size_t n);

/* runtime.GC(): a full collection; returns once it has been swept. */
void gort_gc(void);
/* debug.SetGCPercent: collect when the heap has grown pct percent over what
 * the last collection found live (default 100, or GORT_GC); -1 turns the
 * collector off (gort_gc still collects). Returns the previous value. */
int gort_gc_percent(int pct);
/* debug.SetMemoryLimit: a soft limit on the runtime's memory (bytes, as
 * memstats.sys counts it); the collector runs more often to stay under it.
 * Negative: only query. INT64_MAX (the default, or GORT_MEMLIMIT): none.
 * Returns the previous limit. */
int64_t gort_gc_memory_limit(int64_t bytes);
/* Extra memory to scan for pointers (memory from libc's malloc or mmap that
 * holds pointers to gort_new objects). Registering the same start again
 * replaces its length; remove by start. */
void gort_gc_add_root(void *start, size_t len);
void gort_gc_remove_root(void *start);
/* runtime.SetFinalizer: once obj (the start of a gort_new object) is found
 * unreachable, fn(obj, arg) runs once on the finalizer goroutine and obj
 * becomes collectable at a later cycle (unless fn made it reachable again).
 * Objects obj points to are kept until fn has run. fn NULL removes it. */
void gort_set_finalizer(void *obj, void (*fn)(void *obj, void *arg), void *arg);

/* runtime.MemStats, the parts C users need; more may follow. Filled now:
 *   heap_alloc    bytes of live objects (size-class bytes; whole pages for
 *                 large objects)
 *   heap_objects  live objects (tiny allocations count per 16-byte block)
 *   total_alloc   bytes ever allocated (heap_alloc's units)
 *   heap_sys      heap pages not returned to the kernel: in use, or free and
 *                 not yet scavenged (grows as pages are first used)
 *   sys           heap_sys plus the allocator's own metadata
 *   num_gc        completed collections; pause_* the stop-the-world pauses
 *                 (each cycle has two; pause_ns[i] their sum for cycle i)
 *   gc_cpu_fraction  share of the CPU time available since start (wall time
 *                 times processors) that the collector used
 * Counts are summed without
 * stopping anything, so under concurrent allocation they are a close
 * snapshot; a processor's batch of frees bound for other processors' spans
 * is counted as freed at once. */
typedef struct gort_memstats {
    uint64_t heap_alloc, heap_sys, heap_objects, total_alloc, sys, num_gc;
    uint64_t pause_total_ns, pause_max_ns, pause_ns[256]; /* ring, last at (num_gc+255)%256 */
    double gc_cpu_fraction;
} gort_memstats;
void gort_read_memstats(gort_memstats *out);

/* debug.FreeOSMemory without the collection: return every free heap page to
 * the kernel now (MADV_DONTNEED) and give back what idle caches hold.
 * Returns the bytes released by this call. The scavenger does the same for
 * pages that stayed free for a while, a bounded amount at a time. */
uint64_t gort_free_os_memory(void);
/* MemStats.HeapReleased: bytes of free heap pages currently returned to the
 * kernel (included in no other figure). */
uint64_t gort_heap_released(void);

#ifdef __cplusplus
}
#endif
#endif

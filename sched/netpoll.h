/* sched/netpoll.h: the poller's interface to the scheduler (proc.c,
 * sysmon.c, timer.c) and to the I/O API (netio.c). See netpoll.c. */
#ifndef GORT_NETPOLL_H
#define GORT_NETPOLL_H

#include "sched/sched.h"

enum netpoll_mode { NETPOLL_NONE, NETPOLL_URING, NETPOLL_EPOLL };

/* One I/O wait of one goroutine: an io_uring request (user_data = the iop)
 * or, in epoll mode, a wait for readiness. Lives on the waiting goroutine's
 * stack, which stays put until the wait ends: the goroutine does not return
 * before its completion has been consumed, even after a cancellation.
 *
 * state: IOP_WAIT (armed) -> IOP_PARKED (the goroutine has switched away;
 * the unlockf CASes it) -> IOP_DONE (exchanged by the completer, which
 * readies the goroutine iff it saw IOP_PARKED). If the completion comes
 * first, the unlockf's CAS fails and the goroutine does not park.
 *
 * stage (io_uring only): IOP_PREP while the SQE is not yet visible to the
 * kernel, IOP_LIVE once it is; a canceller that finds IOP_PREP CASes it to
 * IOP_CANCEL and the owner, failing its own CAS, cancels the request itself
 * right after publishing it (see netpoll.c, "Cancellation"). */
enum { IOP_WAIT, IOP_PARKED, IOP_DONE };
enum { IOP_PREP, IOP_LIVE, IOP_CANCEL };

struct pollring;
struct iop {
    struct g *g;
    _Atomic uint32_t state;
    _Atomic uint32_t stage;
    int32_t res;    /* the CQE's res, or (epoll) 0 ready / -errno; valid at IOP_DONE */
    uint32_t flags; /* the CQE's flags */
    struct pollring *ring;
    struct iop *next, *prev; /* on its fd's list (netio.c), under the fd's lock */
    uint8_t dir;             /* 0 read, 1 write */
    bool linked;             /* on the fd's list */
};

/* ---- set-up and state ---- */
void netpoll_init(void); /* gort_main, before any M but m0 */
enum netpoll_mode netpoll_mode(void);
const char *netpoll_mode_name(void);
/* I/O waits in progress anywhere (a lock-free hint; exact when read under
 * sched.lock by an M going idle, see stopm_netpoll in proc.c). */
bool netpoll_pending(void);

/* ---- scheduler side ---- */
/* The M holding p: submit what p's ring has published and reap its
 * completions (no syscall when there are none to submit); readied
 * goroutines go on p's run queue. Returns how many. */
int netpoll_poll_p(struct p *p);
/* Make the rings of Ps 0..n-1 that do not have one yet (gort_main,
 * gort_maxprocs; any thread). Failures are left for the first I/O. */
void netpoll_rings_ensure(int32_t n);
/* Enter p's ring if it holds published requests not yet submitted (any
 * thread; handoffp, when p goes idle without a scheduler pass). */
void netpoll_flush(struct p *p);
/* An idle M without a P: block until some completion or readiness arrives,
 * until `until` (gort_now clock; 0: no deadline), or until netpoll_break.
 * Readied goroutines go on the global run queue; returns how many. At most
 * one M is inside at a time (the caller made sure, under sched.lock). */
int netpoll_wait(int64_t until);
/* Wake the M inside netpoll_wait, if any (any thread). */
void netpoll_break(void);
/* A timer earlier than the netpoll_wait deadline was added: wake the
 * waiter (true) so that it re-computes its deadline. */
bool netpoll_break_for_timer(int64_t when);
/* sysmon: submit requests published long ago by Ps that have not come back
 * to the scheduler, and reap everything when nobody has for 10 ms. */
void netpoll_sysmon(int64_t now);

/* ---- I/O side (netio.c) ---- */
struct io_uring_sqe;
/* An SQE on the calling goroutine's P's ring for op (user_data set, stage
 * IOP_PREP, state IOP_WAIT). The goroutine must not switch until
 * netpoll_submit. A full SQ is submitted first; NULL, with op->res set,
 * only when the P has no ring and the kernel refuses one (-EMFILE...). */
struct io_uring_sqe *netpoll_sqe(struct iop *op);
/* Publish the SQE to the kernel; enter the ring now when `now` or when
 * many are waiting, else at the next scheduler pass (netpoll_poll_p). */
void netpoll_submit(struct iop *op, bool now);
/* Cancel op's request from any thread (it was seen on an fd's list under
 * that fd's lock). Its CQE still comes, with -ECANCELED or its result. */
void netpoll_cancel(struct iop *op);
/* Park until op is IOP_DONE (returns at once if it already is). */
void iop_wait(struct iop *op, enum waitreason why);
/* Mark op done with res and return its goroutine if it must be readied
 * (it had parked), or NULL. */
struct g *iop_complete(struct iop *op, int32_t res, uint32_t flags);
/* epoll mode: watch fd for readiness (edge-triggered); data is handed back
 * by netpoll_fd_ready. -EPERM for files epoll cannot watch. */
int netpoll_epoll_add(int fd, void *data);
/* epoll mode, implemented by netio.c: fd with data became ready in the
 * directions given (bit 0 read, bit 1 write); queue the goroutines it
 * readies with netpoll_inject; returns how many. */
int netio_ready(void *data, int dirs);
/* epoll mode: count a readiness wait as pending (iop_complete uncounts). */
void netpoll_arm(void);
/* After fork, in the child: the parent's rings and epoll set are shared
 * memory and descriptors; drop them and start afresh. */
void netpoll_fork_child(void);
/* Make gp runnable: on the caller's P when it holds one, else globally. */
void netpoll_inject(struct g *gp);

#endif

/* sync/context.c: Go's context package (context.go, Go 1.19 semantics).
 *
 * The model. Contexts form a tree rooted at the static background context.
 * Three kinds hang below it:
 *   - cancel contexts (with_cancel): own a lock, an error, a done channel and
 *     the set of their cancelable children;
 *   - timer contexts (with_deadline / with_timeout): a cancel context plus a
 *     deadline and a gort_timer whose function cancels with -ETIMEDOUT;
 *   - value contexts (with_value): one immutable key/value pair; they own
 *     no cancellation state and answer done/err from their nearest cancelable
 *     ancestor.
 * Every context records, at creation and for good, its parent, its nearest
 * cancelable ancestor `cparent` (NULL when only value contexts and the
 * background lie above it: then it can never be cancelled from above) and
 * its deadline (the earliest one up the chain, copied down). Value lookup
 * walks the parent chain and needs no lock: those fields never change.
 *
 * Children. A cancelable context c with a cparent p sits on p's children
 * list (intrusive, doubly linked: sib_prev/sib_next) from creation until
 * the first of: p is cancelled (p takes the whole list), or c is cancelled
 * (c unlinks itself). c->linked says which: it, and c's sibling links, are
 * protected by p->mu, not by c->mu. A context is linked at most once and never
 * relinked (cancellation is permanent), so once a cancel has taken c off the
 * list its sibling links belong to that cancel, which reuses them as its work
 * list.
 *
 * Invariants, for a cancelable c (under c->mu):
 *   err != 0  <=>  c has been cancelled; err never changes once set;
 *   err != 0   =>  done != NULL and closed (c's own channel, or the shared
 *                  closed channel when nobody had asked for done before);
 *   err != 0   =>  children is empty, timer is NULL;
 *   c->linked  =>  c->cparent->err == 0 (a cancelled parent keeps no list).
 * Together: once a cancel of p returns, every context created from p or
 * below before that cancel began reports a non-zero err and a closed done
 * channel; a context created from a cancelled p is cancelled before its
 * constructor returns (Go's propagateCancel).
 *
 * Lock order: no two context locks are ever held together. Go's cancel holds
 * the parent's lock while cancelling each child (recursively, so a chain of
 * depth d holds d locks and d stack frames); here a cancel takes the
 * children list under the parent's lock, drops it, and cancels the list one
 * context at a time, appending each one's children to the work list
 * (iterative: deep trees cannot overflow a 64 KiB goroutine stack). Linking
 * (propagate) and unlinking (remove_child) each take only the parent's lock.
 * gort_chan_close, gort_chan_make, gort_once_do (the shared closed channel)
 * and gort_timer_stop/after_func run under a context lock; they take only
 * their own internal locks and never call back into this file (the timer
 * function runs later, in its own goroutine), so no cycle. Waking the done
 * channel's receivers under c->mu (as Go's cancel does under c.mu) keeps
 * "err != 0 => done closed" true for every reader; the receivers need no
 * context lock to proceed (err and done are read lock-free).
 *
 * Who may call what: every public function from any goroutine, concurrently.
 * The timer function (deadline_fired) runs in a goroutine of its own, as
 * Go's time.AfterFunc; it may race with gort_ctx_cancel and with the
 * parent's cancel: whichever sets err first wins, the others do nothing.
 * Nothing here may be called from outside a goroutine (the locks park).
 *
 * Fast paths: gort_ctx_err and gort_ctx_done read err/done with one acquire
 * load each (pairs with the release stores in cancel and in done_slow), no
 * lock: an answer read an instant before a concurrent cancel is as correct
 * as Go's, which takes the lock only to read the same field.
 *
 * Memory: contexts are gort_new objects, reclaimed by the collector; every
 * pointer stored into one goes through GORT_STORE. Nothing here relies on a context
 * staying alive beyond what a reachable pointer already guarantees: a
 * parent's list points at its children, a child at its parent, a pending
 * timer at its context.
 *
 * Rejected:
 *   - Go's map[canceler]bool children set: a hash table per context for
 *     what is a list with O(1) unlink (each child knows its list);
 *   - eager done channels: Go 1.19 made them lazy, most contexts never have
 *     Done called (their users poll Err); the shared closed channel serves
 *     contexts cancelled before anyone asked;
 *   - a goroutine per context watching a foreign parent (Go's fallback for
 *     user-defined Context types): every context here is one of ours.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "gort.h"
#include "sched/sched.h"

enum ctx_kind {
    CTX_BACKGROUND, /* the root: never cancelled */
    CTX_CANCEL,     /* with_cancel */
    CTX_TIMER,      /* with_deadline / with_timeout: CTX_CANCEL plus a timer */
    CTX_VALUE,      /* with_value: a key/value pair, no cancellation state */
};

struct gort_ctx {
    /* Immutable after construction (read without any lock). */
    enum ctx_kind kind;
    bool has_deadline;
    int64_t deadline;  /* the earliest on the chain; valid when has_deadline */
    gort_ctx *parent;  /* NULL only for the background */
    gort_ctx *cparent; /* nearest cancelable ancestor (CTX_CANCEL/CTX_TIMER) or NULL */
    const void *key;   /* CTX_VALUE only */
    void *val;

    /* Cancelable kinds only; under mu unless said otherwise. */
    gort_mutex mu;
    _Atomic int err;           /* 0, -ECANCELED, -ETIMEDOUT: stored under mu (release) */
    _Atomic(gort_chan *) done; /* lazy; stored under mu (release) */
    gort_ctx *children;        /* head of the list of linked children */
    gort_timer *timer;         /* CTX_TIMER: pending timer, NULL once stopped */

    /* Under cparent->mu while linked; once a cancel of cparent has taken c
     * off the list, the links belong to that cancel's work list (see
     * "Children" above). */
    gort_ctx *sib_prev, *sib_next;
    bool linked;
};

static gort_ctx background = {.kind = CTX_BACKGROUND};

static inline bool cancelable(const gort_ctx *c)
{
    return c->kind == CTX_CANCEL || c->kind == CTX_TIMER;
}

/* The context holding c's cancellation state: c itself, or for a value
 * context its nearest cancelable ancestor (NULL: never cancelled). */
static inline gort_ctx *cancel_state(gort_ctx *c)
{
    return cancelable(c) ? c : c->cparent;
}

/* ---- the shared closed channel (Go's closedchan) ----------------------- */

static gort_once closed_once;
static gort_chan *closed_chan; /* written once under closed_once */

static void make_closed_chan(void *arg)
{
    (void)arg;
    gort_chan *ch = gort_chan_make(0, 0);
    gort_chan_close(ch);
    closed_chan = ch;
}

static gort_chan *shared_closed_chan(void)
{
    gort_once_do(&closed_once, make_closed_chan, NULL); /* publishes closed_chan */
    return closed_chan;
}

/* ---- children ------------------------------------------------------------ */

/* p->mu held; c not linked. */
static void link_child_locked(gort_ctx *p, gort_ctx *c)
{
    c->sib_prev = NULL;
    GORT_STORE(c->sib_next, p->children); /* contexts are collected: barriers */
    if (p->children) GORT_STORE(p->children->sib_prev, c);
    GORT_STORE(p->children, c);
    c->linked = true;
}

/* p->mu held; c linked on p. */
static void unlink_child_locked(gort_ctx *p, gort_ctx *c)
{
    if (c->sib_prev)
        GORT_STORE(c->sib_prev->sib_next, c->sib_next);
    else
        GORT_STORE(p->children, c->sib_next);
    if (c->sib_next) GORT_STORE(c->sib_next->sib_prev, c->sib_prev);
    GORT_STORE(c->sib_prev, NULL);
    GORT_STORE(c->sib_next, NULL);
    c->linked = false;
}

/* Go's removeChild: take c off its parent's list if still there. No context
 * lock held by the caller (takes cparent->mu). */
static void remove_child(gort_ctx *c)
{
    gort_ctx *p = c->cparent;
    if (!p) return;
    gort_mutex_lock(&p->mu);
    if (c->linked) unlink_child_locked(p, c);
    gort_mutex_unlock(&p->mu);
}

/* ---- cancel ---------------------------------------------------------------- */

/* Cancel one context: set err, close done, stop the timer and detach its
 * children. Returns the detached children as a list through sib_next (NULL
 * when c was already cancelled). No context lock held by the caller. */
static gort_ctx *cancel_one(gort_ctx *c, int err)
{
    gort_mutex_lock(&c->mu);
    if (atomic_load_explicit(&c->err, memory_order_relaxed) != 0) { /* mu held: relaxed */
        gort_mutex_unlock(&c->mu);
        return NULL; /* already cancelled: idempotent */
    }
    /* err before closing done: a goroutine woken by the close, or one that
     * sees the closed channel, then reads err != 0 (the channel's lock
     * orders it; the release pairs with the acquire in gort_ctx_err). */
    atomic_store_explicit(&c->err, err, memory_order_release);
    gort_chan *d = atomic_load_explicit(&c->done, memory_order_relaxed);
    if (d)
        gort_chan_close(d);
    else
        atomic_store_explicit(&c->done, shared_closed_chan(), memory_order_release);
    if (c->timer) {
        gort_timer_stop(c->timer); /* false when deadline_fired already runs: it will
                                      find err set and do nothing */
        GORT_STORE(c->timer, NULL);
    }
    gort_ctx *list = c->children;
    for (gort_ctx *k = list; k; k = k->sib_next)
        k->linked = false; /* the links are ours now (see "Children") */
    GORT_STORE(c->children, NULL);
    gort_mutex_unlock(&c->mu);
    return list;
}

/* Cancel c and, breadth-first, everything below it, with err. remove: also
 * take c off its parent's list (a direct cancel or the timer; a cancel
 * coming from the parent has already detached it). No context lock held. */
static void cancel(gort_ctx *c, bool remove, int err)
{
    gort_ctx *work = cancel_one(c, err);
    if (remove) remove_child(c);
    while (work) {
        gort_ctx *k = work;
        work = k->sib_next;
        k->sib_next = k->sib_prev = NULL;
        gort_ctx *kids = cancel_one(k, err);
        if (kids) { /* push k's children in front of the rest */
            gort_ctx *last = kids;
            while (last->sib_next)
                last = last->sib_next;
            last->sib_next = work;
            work = kids;
        }
    }
}

/* Go's propagateCancel: arrange for c (new, not yet published) to be
 * cancelled with its cparent. No context lock held. */
static void propagate_cancel(gort_ctx *c)
{
    gort_ctx *p = c->cparent;
    if (!p) return; /* nothing above can be cancelled */
    gort_mutex_lock(&p->mu);
    int perr = atomic_load_explicit(&p->err, memory_order_relaxed); /* mu held */
    if (perr == 0) link_child_locked(p, c);
    gort_mutex_unlock(&p->mu);
    if (perr != 0) cancel(c, false, perr); /* parent already cancelled */
}

/* ---- construction ----------------------------------------------------------- */

static gort_ctx *new_ctx(gort_ctx *parent, enum ctx_kind kind)
{
    gort_ctx *c = gort_new(sizeof *c);
    c->kind = kind;
    GORT_STORE(c->parent, parent);
    GORT_STORE(c->cparent, cancel_state(parent));
    c->has_deadline = parent->has_deadline;
    c->deadline = parent->deadline;
    return c;
}

gort_ctx *gort_ctx_background(void)
{
    return &background;
}

gort_ctx *gort_ctx_with_cancel(gort_ctx *parent)
{
    if (!parent) gort_panic("gort_ctx_with_cancel: nil parent");
    gort_ctx *c = new_ctx(parent, CTX_CANCEL);
    propagate_cancel(c);
    return c;
}

/* The timer's function, in a goroutine of its own. */
static void deadline_fired(void *arg)
{
    cancel(arg, true, -ETIMEDOUT);
}

gort_ctx *gort_ctx_with_deadline(gort_ctx *parent, int64_t deadline)
{
    if (!parent) gort_panic("gort_ctx_with_deadline: nil parent");
    if (parent->has_deadline && parent->deadline < deadline) {
        /* The parent's deadline comes first and already cancels the child. */
        return gort_ctx_with_cancel(parent);
    }
    gort_ctx *c = new_ctx(parent, CTX_TIMER);
    c->has_deadline = true;
    c->deadline = deadline;
    propagate_cancel(c);
    int64_t d = deadline - gort_now();
    if (d <= 0) {
        cancel(c, true, -ETIMEDOUT); /* already passed */
        return c;
    }
    gort_mutex_lock(&c->mu);
    /* A cancel from the parent may have come in since propagate_cancel: then
     * no timer (cancel_one found none to stop). Under mu, the timer cannot
     * fire into a half-built context: deadline_fired waits for mu. */
    if (atomic_load_explicit(&c->err, memory_order_relaxed) == 0)
        GORT_STORE(c->timer, gort_timer_after_func(d, deadline_fired, c));
    gort_mutex_unlock(&c->mu);
    return c;
}

gort_ctx *gort_ctx_with_timeout(gort_ctx *parent, int64_t ns)
{
    if (!parent) gort_panic("gort_ctx_with_timeout: nil parent");
    int64_t now = gort_now();
    int64_t deadline = ns > INT64_MAX - now ? INT64_MAX : now + ns; /* saturate */
    return gort_ctx_with_deadline(parent, deadline);
}

gort_ctx *gort_ctx_with_value(gort_ctx *parent, const void *key, void *val)
{
    if (!parent) gort_panic("gort_ctx_with_value: nil parent");
    if (!key) gort_panic("gort_ctx_with_value: nil key");
    gort_ctx *c = new_ctx(parent, CTX_VALUE);
    GORT_STORE(c->key, key);
    GORT_STORE(c->val, val);
    return c;
}

/* ---- queries and cancel ---------------------------------------------------- */

void gort_ctx_cancel(gort_ctx *c)
{
    if (!c) gort_panic("gort_ctx_cancel: nil context");
    if (cancelable(c)) cancel(c, true, -ECANCELED);
}

/* Done's slow path: create the channel (Go 1.19's lazy done). */
static gort_chan *done_slow(gort_ctx *c)
{
    gort_mutex_lock(&c->mu);
    gort_chan *d = atomic_load_explicit(&c->done, memory_order_relaxed); /* mu held */
    if (!d) {
        /* err is 0 here: cancel_one sets done (under mu) whenever it sets err. */
        d = gort_chan_make(0, 0);
        atomic_store_explicit(&c->done, d, memory_order_release); /* pairs with the
                                                                     acquire in gort_ctx_done */
    }
    gort_mutex_unlock(&c->mu);
    return d;
}

gort_chan *gort_ctx_done(gort_ctx *c)
{
    if (!c) gort_panic("gort_ctx_done: nil context");
    gort_ctx *s = cancel_state(c);
    if (!s) return NULL; /* never cancelled: a nil channel, never ready */
    gort_chan *d = atomic_load_explicit(&s->done, memory_order_acquire); /* pairs with
                                                 the release stores in cancel_one, done_slow */
    return d ? d : done_slow(s);
}

int gort_ctx_err(gort_ctx *c)
{
    if (!c) gort_panic("gort_ctx_err: nil context");
    gort_ctx *s = cancel_state(c);
    return s ? atomic_load_explicit(&s->err, memory_order_acquire) /* pairs with the
                                                                release in cancel_one */
             : 0;
}

const char *gort_ctx_errstr(int err)
{
    switch (err) {
    case 0:
        return "";
    case -ECANCELED:
        return "context canceled";
    case -ETIMEDOUT:
        return "context deadline exceeded";
    default:
        return "unknown context error";
    }
}

void *gort_ctx_value(gort_ctx *c, const void *key)
{
    if (!c) gort_panic("gort_ctx_value: nil context");
    for (; c; c = c->parent)
        if (c->kind == CTX_VALUE && c->key == key) return c->val;
    return NULL;
}

bool gort_ctx_deadline(gort_ctx *c, int64_t *deadline)
{
    if (!c) gort_panic("gort_ctx_deadline: nil context");
    if (!c->has_deadline) return false;
    if (deadline) *deadline = c->deadline;
    return true;
}

/* ---- for tests ------------------------------------------------------------- */

/* How many children c's list holds now (tests: a cancelled child must leave
 * its parent's list). Takes c->mu; 0 for non-cancelable contexts. */
int gort__ctx_nchildren(gort_ctx *c);
int gort__ctx_nchildren(gort_ctx *c)
{
    if (!cancelable(c)) return 0;
    int n = 0;
    gort_mutex_lock(&c->mu);
    for (gort_ctx *k = c->children; k; k = k->sib_next)
        n++;
    gort_mutex_unlock(&c->mu);
    return n;
}

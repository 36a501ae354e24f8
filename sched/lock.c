/* sched/lock.c: the runtime's own mutex and one-shot wake-up (Go's
 * lock_futex.go).
 *
 * rlock: three states in one word (Drepper's "futexes are tricky", mutex 2):
 * 0 free, 1 held, 2 held and someone may sleep. The unlocker wakes a sleeper
 * only when it sees 2. A short spin first, since the sections these locks
 * protect are a few dozen instructions.
 *
 * note: key 0 -> 1 exactly once per clear. The sleeper re-checks the key
 * around futex_wait, so a wakeup that comes first is never lost.
 *
 * Both may be used from threads gort did not create. The holder of an rlock
 * must not park its goroutine (parking with a lock held is done only through
 * gopark's unlockf, after the switch) and never runs user code, so a
 * preemption signal, which refuses any PC inside gort, cannot stop a holder:
 * the lock needs no per-M count.
 */
#include "sched/sched.h"

void rlock_acquire(struct rlock *l)
{
    uint32_t c = 0;
    /* Acquire: the critical section's reads see the previous holder's
     * writes; pairs with the release exchange in rlock_release. */
    if (GORT_LIKELY(atomic_compare_exchange_strong_explicit(&l->key, &c, 1, memory_order_acquire,
                                                            memory_order_relaxed)))
        return;
    for (int i = 0; i < 100; i++) {
        __builtin_ia32_pause();
        c = 0;
        if (atomic_load_explicit(&l->key, memory_order_relaxed) == 0 &&
            atomic_compare_exchange_weak_explicit(&l->key, &c, 1, memory_order_acquire,
                                                  memory_order_relaxed))
            return;
    }
    /* Contended: announce a sleeper (2) and sleep until we take it free. */
    while (atomic_exchange_explicit(&l->key, 2, memory_order_acquire) != 0)
        ki_futex_wait(&l->key, 2, -1);
}

void rlock_release(struct rlock *l)
{
    /* Release: pairs with the acquire in rlock_acquire. */
    uint32_t old = atomic_exchange_explicit(&l->key, 0, memory_order_release);
    if (GORT_UNLIKELY(old == 0)) sched_throw("rlock_release: unlock of unlocked lock");
    if (old == 2) ki_futex_wake(&l->key, 1);
}

void note_sleep(struct note *n)
{
    /* Acquire: what the waker wrote before note_wakeup is visible after. */
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0)
        ki_futex_wait(&n->key, 0, -1);
}

bool note_tsleep(struct note *n, int64_t ns)
{
    int64_t deadline = ki_nanotime() + ns;
    while (atomic_load_explicit(&n->key, memory_order_acquire) == 0) {
        int64_t left = deadline - ki_nanotime();
        if (left <= 0) return false;
        ki_futex_wait(&n->key, 0, left);
    }
    return true;
}

bool note_tsleep_spin(struct note *n, int64_t spin_ns, int64_t ns)
{
    int64_t start = ki_nanotime();
    do {
        /* Acquire: as note_sleep. */
        if (atomic_load_explicit(&n->key, memory_order_acquire)) return true;
        for (int i = 0; i < 30; i++)
            __builtin_ia32_pause();
    } while (ki_nanotime() - start < spin_ns);
    return note_tsleep(n, ns - (ki_nanotime() - start));
}

void note_wakeup(struct note *n)
{
    /* Release: pairs with note_sleep's acquire load. */
    uint32_t old = atomic_exchange_explicit(&n->key, 1, memory_order_release);
    if (old != 0) sched_throw("note_wakeup: double wakeup");
    ki_futex_wake(&n->key, 1);
}

/* sync/waitgroup.c: gort_waitgroup (Go's sync.WaitGroup).
 *
 * state = counter << 32 | waiters, in one 64-bit word so that "counter hit
 * zero" and "how many waiters to release" are read together. Add with a
 * result of zero and waiters present resets state to 0 and releases each
 * waiter on sema. Wait increments the waiter count with a CAS (so it cannot
 * race with the reset) and sleeps on sema.
 * Orderings: the seq_cst RMWs make every Done's writes (the work it reports)
 * visible to the goroutine that Wait releases: Done's add is a release that
 * the final add or Wait's CAS/load acquires.
 */
#include "gort.h"
#include "sync/sync.h"

void gort_wg_add(gort_waitgroup *wg, int delta)
{
    uint64_t state =
        __atomic_add_fetch(&wg->state, (uint64_t)(int64_t)delta << 32, __ATOMIC_SEQ_CST);
    int32_t v = (int32_t)(state >> 32);
    uint32_t w = (uint32_t)state;
    if (v < 0) gort_panic("sync: negative WaitGroup counter");
    if (w != 0 && delta > 0 && v == delta)
        gort_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    if (v > 0 || w == 0) return;
    /* Counter is zero with waiters: nobody may change state now but us. */
    if (__atomic_load_n(&wg->state, __ATOMIC_SEQ_CST) != state)
        gort_panic("sync: WaitGroup misuse: Add called concurrently with Wait");
    __atomic_store_n(&wg->state, 0, __ATOMIC_SEQ_CST);
    for (; w > 0; w--)
        sema_release(&wg->sema, false);
}

void gort_wg_done(gort_waitgroup *wg)
{
    gort_wg_add(wg, -1);
}

void gort_wg_wait(gort_waitgroup *wg)
{
    uint64_t state = __atomic_load_n(&wg->state, __ATOMIC_SEQ_CST);
    for (;;) {
        if ((state >> 32) == 0) return;
        if (__atomic_compare_exchange_n(&wg->state, &state, state + 1, false, __ATOMIC_SEQ_CST,
                                        __ATOMIC_SEQ_CST)) {
            sema_acquire(&wg->sema, false, WAIT_WAITGROUP);
            if (__atomic_load_n(&wg->state, __ATOMIC_SEQ_CST) != 0)
                gort_panic("sync: WaitGroup is reused before previous Wait has returned");
            return;
        }
    }
}

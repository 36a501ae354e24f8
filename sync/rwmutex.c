/* sync/rwmutex.c: gort_rwmutex (Go's sync.RWMutex), writer-preferring.
 *
 * Fields (all but w are updated by atomic RMWs only):
 *   w             a gort_mutex that serialises writers.
 *   reader_count  readers inside or arriving. A writer announces itself by
 *                 subtracting RW_MAX_READERS (2^30), so it is negative while
 *                 a writer is pending or inside, and its value
 *                 + RW_MAX_READERS still counts the readers.
 *   reader_wait   readers that were inside when the writer announced
 *                 itself and have not left yet: the writer enters at 0.
 *   reader_sem    readers that arrived behind a writer sleep here; the
 *                 writer's unlock releases exactly that many.
 *   writer_sem    the pending writer sleeps here; the last departing reader
 *                 of reader_wait releases it.
 *
 * Protocol (Go's):
 *   rlock:   reader_count++; if the result is negative a writer is pending:
 *            sleep on reader_sem (writer preference: new readers queue
 *            behind the writer, so a stream of readers cannot starve it).
 *   runlock: reader_count--; if the result is negative, a writer is
 *            pending: reader_wait--, and the reader that brings it to 0
 *            releases writer_sem.
 *   lock:    lock w; r = readers inside (reader_count -= 2^30, plus 2^30);
 *            reader_wait += r; if that is not 0, sleep on writer_sem.
 *            Either the writer's add or the last reader's decrement reaches
 *            0 first on reader_wait, so exactly one side sees 0: the writer
 *            enters directly, or the reader releases writer_sem (sema keeps
 *            the count if the writer has not slept yet).
 *   unlock:  r = reader_count += 2^30 (readers that queued meanwhile);
 *            release reader_sem r times; unlock w.
 * Invariant: 0 <= reader_count + (writer pending ? 2^30 : 0) <= 2^30 - 1.
 *
 * Memory ordering: every RMW is acq_rel, so a release on one side is
 * acquired by the other through the same word's release sequence (all
 * writes to these words are RMWs): rlock acquires the previous writer's
 * unlock add; the writer's add on reader_count or reader_wait (whichever
 * decides it need not sleep) acquires each departed reader's decrement;
 * when it sleeps, sema's seq_cst pair orders the last reader's release.
 *
 * Misuse is fatal, as in Go: "sync: RUnlock of unlocked RWMutex",
 * "sync: Unlock of unlocked RWMutex". Callers: goroutines.
 */
#include "gort.h"
#include "sync/sync.h"

#define RW_MAX_READERS (1 << 30) /* Go's rwmutexMaxReaders */

static GORT_NOINLINE void rw_runlock_slow(gort_rwmutex *rw, int32_t r);

void gort_rwmutex_rlock(gort_rwmutex *rw)
{
    if (GORT_UNLIKELY(__atomic_add_fetch(&rw->reader_count, 1, __ATOMIC_ACQ_REL) < 0)) {
        /* A writer is pending or inside: wait for its unlock. */
        sema_acquire(&rw->reader_sem, false, WAIT_SYNC_RWMUTEX_R);
    }
}

void gort_rwmutex_runlock(gort_rwmutex *rw)
{
    int32_t r = __atomic_sub_fetch(&rw->reader_count, 1, __ATOMIC_ACQ_REL);
    if (GORT_UNLIKELY(r < 0)) rw_runlock_slow(rw, r);
}

static GORT_NOINLINE void rw_runlock_slow(gort_rwmutex *rw, int32_t r)
{
    /* r + 1 was the count before us: 0 (no reader, no writer) or exactly
     * -RW_MAX_READERS (a writer, no reader) means nobody held a read lock. */
    if (r + 1 == 0 || r + 1 == -RW_MAX_READERS) gort__fatal("sync: RUnlock of unlocked RWMutex");
    /* A writer is pending: the last of the readers it waits for wakes it. */
    if (__atomic_sub_fetch(&rw->reader_wait, 1, __ATOMIC_ACQ_REL) == 0)
        sema_release(&rw->writer_sem, false);
}

void gort_rwmutex_lock(gort_rwmutex *rw)
{
    /* First exclude other writers. */
    gort_mutex_lock(&rw->w);
    /* Announce ourselves; r: readers inside at that moment. */
    int32_t r =
        __atomic_sub_fetch(&rw->reader_count, RW_MAX_READERS, __ATOMIC_ACQ_REL) + RW_MAX_READERS;
    /* Wait for them, unless they have all left already. */
    if (r != 0 && __atomic_add_fetch(&rw->reader_wait, r, __ATOMIC_ACQ_REL) != 0)
        sema_acquire(&rw->writer_sem, false, WAIT_SYNC_RWMUTEX_W);
}

void gort_rwmutex_unlock(gort_rwmutex *rw)
{
    /* Let readers in again; r: readers that queued behind us. */
    int32_t r = __atomic_add_fetch(&rw->reader_count, RW_MAX_READERS, __ATOMIC_ACQ_REL);
    if (GORT_UNLIKELY(r >= RW_MAX_READERS)) gort__fatal("sync: Unlock of unlocked RWMutex");
    for (int32_t i = 0; i < r; i++)
        sema_release(&rw->reader_sem, false);
    /* Then let the next writer try. */
    gort_mutex_unlock(&rw->w);
}

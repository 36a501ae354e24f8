/* sync/pool.h: what the rest of the runtime needs from gort_pool (pool.c). */
#ifndef GORT_SYNC_POOL_H
#define GORT_SYNC_POOL_H

/* Go's poolCleanup, for the collector: called at the start of every GC
 * cycle with the world stopped. Each pool's per-P caches become its victim
 * cache, and the previous victim cache is dropped (its objects are simply
 * forgotten: they belong to the user, or to the collector). An object put in
 * a pool therefore survives one collection and is gone after two.
 * Must not run concurrently with pool use by goroutines (the stopped world
 * guarantees it); threads gort did not create are excluded by a lock. */
void sync_pool_cleanup(void);

#endif

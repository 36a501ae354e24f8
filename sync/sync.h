/* sync/sync.h: the sync layer's private interface. */
#ifndef GORT_SYNC_H
#define GORT_SYNC_H

#include <stdbool.h>
#include <stdint.h>

#include "sched/sched.h"

/* Go's semacquire/semrelease on a 32-bit counter at addr (sema.c). acquire
 * blocks the goroutine until *addr > 0, then decrements it. release
 * increments it and wakes one waiter; handoff: the count goes straight to
 * that waiter, and the releaser yields so it runs now (mutex starvation
 * mode). lifo: queue at the front (a waiter that already waited once). */
void sema_acquire(uint32_t *addr, bool lifo, enum waitreason why);
void sema_release(uint32_t *addr, bool handoff);
/* Waiters parked on addr (tests and diagnostics). */
uint32_t sema_nwait(uint32_t *addr);

#endif

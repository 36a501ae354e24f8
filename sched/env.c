/* sched/env.c: the GORT_* environment, read once at gort_main.
 *
 *   GORT_MAXPROCS    processors, 1..1024 (default: CPUs this process may use)
 *   GORT_STACK_SIZE  goroutine stack bytes, with optional k/K or m/M suffix,
 *                    16k..256m, rounded up to 4 KiB (default 64k; 256k in
 *                    sanitizer builds, whose frames are larger)
 *   GORT_NUMA        off | fake:N (kernel-iface/numa.c)
 *   GORT_TIMESLICE   how long a goroutine may run before sysmon preempts it: a
 *                    number with unit ns, us, ms or s, from 50us to 10s (default 10ms)
 *   GORT_GC          the collector's percentage (Go's GOGC): 0..1000000 or off (default 100)
 *   GORT_MEMLIMIT    soft memory limit (Go's GOMEMLIMIT): bytes with an optional
 *                    B, KiB, MiB, GiB or TiB suffix, or off (default)
 *   GORT_DEBUG       comma-separated key=value: schedtrace=MS, scheddetail=0|1,
 *                    asyncpreemptoff=0|1 (no SIGURG preemption; cooperative only),
 *                    preemptalarmoff=0|1 (no per-thread alarms: sysmon alone
 *                    sends preemption signals, as in Go),
 *                    gctrace=0|1, gccheckmark=0|1, gcstoptheworld=0|1
 * A malformed value is an error that names the variable, never a silent
 * default: the process prints it and exits with status 2.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "sched/sched.h"

struct config cfg;

static _Noreturn void bad(const char *msg)
{
    fprintf(stderr, "gort: %s\n", msg);
    _exit(2);
}

/* Parse a decimal integer in [lo, hi] with an optional k/m suffix
 * (multiplier). Returns false when malformed or out of range. */
static bool parse_int(const char *s, long long lo, long long hi, bool suffix, long long *out)
{
    if (!s || !*s) return false;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *s == ' ' || *s == '+') return false;
    if (suffix && (*end == 'k' || *end == 'K')) {
        if (v > hi / 1024) return false;
        v *= 1024, end++;
    } else if (suffix && (*end == 'm' || *end == 'M')) {
        if (v > hi / (1024 * 1024)) return false;
        v *= 1024 * 1024, end++;
    }
    if (*end || v < lo || v > hi) return false;
    *out = v;
    return true;
}

/* "10ms", "500us", "2s", "250000ns": a positive integer and a unit. */
static bool parse_duration(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v <= 0 || *s == '+' || *s == ' ') return false;
    static const struct {
        const char *unit;
        long long mul;
    } units[] = {{"ns", 1}, {"us", 1000}, {"ms", 1000 * 1000}, {"s", 1000 * 1000 * 1000}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit)) continue;
        if (v > INT64_MAX / units[i].mul) return false;
        *out = v * units[i].mul;
        return true;
    }
    return false;
}

/* The GORT_DEBUG settings that take 0 or 1. */
static bool *debug_flag(const char *key)
{
    static const struct {
        const char *key;
        bool *flag;
    } flags[] = {
        {"scheddetail", &cfg.scheddetail},         {"asyncpreemptoff", &cfg.asyncpreemptoff},
        {"preemptalarmoff", &cfg.preemptalarmoff}, {"gctrace", &cfg.gctrace},
        {"gccheckmark", &cfg.gccheckmark},         {"gcstoptheworld", &cfg.gcstoptheworld}};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strcmp(key, flags[i].key)) return flags[i].flag;
    return NULL;
}

/* Go's GOMEMLIMIT syntax: a byte count with an optional suffix B, KiB, MiB,
 * GiB or TiB. */
static bool parse_bytes(const char *s, int64_t *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || v < 0 || *s == '+' || *s == ' ') return false;
    static const struct {
        const char *unit;
        int shift;
    } units[] = {{"", 0}, {"B", 0}, {"KiB", 10}, {"MiB", 20}, {"GiB", 30}, {"TiB", 40}};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].unit)) continue;
        if (v > INT64_MAX >> units[i].shift) return false;
        *out = (int64_t)v << units[i].shift;
        return true;
    }
    return false;
}

static void load_debug(const char *s)
{
    char buf[512];
    if (strlen(s) >= sizeof buf) bad("GORT_DEBUG is too long");
    strcpy(buf, s);
    for (char *save = NULL, *kv = strtok_r(buf, ",", &save); kv; kv = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(kv, '=');
        char msg[640];
        if (!eq) {
            snprintf(msg, sizeof msg, "GORT_DEBUG: \"%s\" is not key=value", kv);
            bad(msg);
        }
        *eq = 0;
        const char *v = eq + 1;
        long long n;
        bool *flag;
        if (!strcmp(kv, "schedtrace")) {
            if (!parse_int(v, 1, 3600000, false, &n)) {
                snprintf(msg, sizeof msg,
                         "GORT_DEBUG: schedtrace=\"%s\": expected milliseconds from 1 to 3600000",
                         v);
                bad(msg);
            }
            cfg.schedtrace_ms = (int)n;
        } else if ((flag = debug_flag(kv))) {
            if (!parse_int(v, 0, 1, false, &n)) {
                snprintf(msg, sizeof msg, "GORT_DEBUG: %s=\"%s\": expected 0 or 1", kv, v);
                bad(msg);
            }
            *flag = n;
        } else {
            snprintf(msg, sizeof msg,
                     "GORT_DEBUG: unknown setting \"%s\" (known: schedtrace, scheddetail, "
                     "asyncpreemptoff, preemptalarmoff, gctrace, gccheckmark, gcstoptheworld)",
                     kv);
            bad(msg);
        }
    }
}

void config_load(void)
{
    char msg[512];
    long long n;
    const char *s = getenv("GORT_MAXPROCS");
    cfg.ncpu = ki_cpu_count();
    cfg.maxprocs = cfg.ncpu;
    if (cfg.maxprocs > MAX_PROCS) cfg.maxprocs = MAX_PROCS;
    if (s && *s) {
        if (!parse_int(s, 1, MAX_PROCS, false, &n)) {
            snprintf(msg, sizeof msg, "GORT_MAXPROCS=\"%.64s\": expected an integer from 1 to %d",
                     s, MAX_PROCS);
            bad(msg);
        }
        cfg.maxprocs = (int)n;
    }

    cfg.stack_size = GORT_ASAN ? 256 << 10 : 64 << 10;
    s = getenv("GORT_STACK_SIZE");
    if (s && *s) {
        if (!parse_int(s, 16 << 10, 256 << 20, true, &n)) {
            snprintf(msg, sizeof msg,
                     "GORT_STACK_SIZE=\"%.64s\": expected bytes from 16k to 256m (suffix k or m)",
                     s);
            bad(msg);
        }
        cfg.stack_size = ((size_t)n + KI_PAGE_SIZE - 1) & ~(KI_PAGE_SIZE - 1);
    }

    cfg.timeslice_ns = 10 * 1000 * 1000;
    s = getenv("GORT_TIMESLICE");
    if (s && *s) {
        if (!parse_duration(s, &cfg.timeslice_ns) || cfg.timeslice_ns < 50 * 1000 ||
            cfg.timeslice_ns > 10LL * 1000 * 1000 * 1000) {
            snprintf(msg, sizeof msg,
                     "GORT_TIMESLICE=\"%.64s\": expected a duration from 50us to 10s "
                     "(a number with unit ns, us, ms or s)",
                     s);
            bad(msg);
        }
    }

    s = getenv("GORT_DEBUG");
    if (s && *s) load_debug(s);

    cfg.gc_percent = 100;
    s = getenv("GORT_GC");
    if (s && *s) {
        if (!strcmp(s, "off")) {
            cfg.gc_percent = -1;
        } else if (parse_int(s, 0, 1000000, false, &n)) {
            cfg.gc_percent = (int)n;
        } else {
            snprintf(msg, sizeof msg,
                     "GORT_GC=\"%.64s\": expected a percentage from 0 to 1000000, or off", s);
            bad(msg);
        }
    }

    cfg.gc_memlimit = INT64_MAX;
    s = getenv("GORT_MEMLIMIT");
    if (s && *s && strcmp(s, "off") && !parse_bytes(s, &cfg.gc_memlimit)) {
        snprintf(msg, sizeof msg,
                 "GORT_MEMLIMIT=\"%.64s\": expected bytes with an optional suffix B, KiB, MiB, "
                 "GiB or TiB, or off",
                 s);
        bad(msg);
    }

    cfg.poller = POLLER_AUTO;
    s = getenv("GORT_POLLER");
    if (s && *s) {
        if (!strcmp(s, "io_uring") || !strcmp(s, "uring")) {
            cfg.poller = POLLER_URING;
        } else if (!strcmp(s, "epoll")) {
            cfg.poller = POLLER_EPOLL;
        } else if (strcmp(s, "auto")) {
            snprintf(msg, sizeof msg, "GORT_POLLER=\"%.64s\": expected io_uring, epoll or auto", s);
            bad(msg);
        }
    }

    char err[256];
    if (ki_numa_discover(&cfg.numa, getenv("GORT_NUMA"), err, sizeof err) < 0) bad(err);
}

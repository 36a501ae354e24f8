/* sched/preempt.c: asynchronous preemption with SIGURG (Go's preempt.go and
 * signal_unix.go doSigPreempt).
 *
 * Asking: preemptone(p, why) marks the goroutine running on p (g->preempt) and
 * sends SIGURG to the one thread running it (tgkill), at most one signal in
 * flight per thread (m->preempt_sig). Callers: sysmon (time slice over,
 * overdue timers) and stop_the_world.
 *
 * The alarm (better than Go where Linux allows): sysmon is a thread like any
 * other, and while every CPU is busy the kernel sometimes runs its wake-up
 * a tick late (see sysmon.c), so a sleeper behind a hog woke milliseconds
 * late. A goroutine preempted once is likely to hog again (g->hog, cleared
 * when it parks or yields), so the M about to run it arms a per-thread POSIX timer
 * (SIGEV_THREAD_ID: the kernel's timer interrupt signals this thread
 * itself, no other thread has to be scheduled) for its P's earliest timer
 * or the end of its slice, whichever is first; a timer that becomes the P's
 * earliest while the hog runs brings it forward (timer.c), and leaving the
 * hog disarms it. One timer_settime per hog resumption, none for goroutines
 * that park. Sysmon still does everything it did (first preemptions, Ps in
 * blocking regions, timers reset from other Ps). GORT_DEBUG=preemptalarmoff=1
 * turns the alarm off.
 *
 * Deciding: the handler runs on the thread's alternate stack and acts only
 * on its own signals (SI_TKILL from this process while m->preempt_sig was
 * set, and the alarm: SI_TIMER naming this thread's M, while the goroutine
 * it was armed for runs and its time has come); any other SIGURG goes to
 * the handler the program installed, before gort started or later
 * (preempt_check_handler re-installs ours and keeps theirs to forward to).
 * SIGURG is not queued: a request that arrives while another SIGURG is
 * pending is merged into it, so whichever SIGURG comes first consumes the
 * request flag; the program's handler may then see a spurious SIGURG of
 * ours, as Go programs may. Its own signal preempts the goroutine only at a
 * safe point:
 *   - the thread runs a goroutine (not the scheduler) that is still marked,
 *     holds a P, is not in a blocking region and not pinned (m->locks);
 *   - the PC is in user code: the executable's own code sections, or those
 *     of a shared object registered with gort_preempt_register, and never
 *     gort's own code (all of it is in section gort_text, see the Makefile),
 *     the PLT stubs (gort's calls into libc pass through them), libc, the
 *     vDSO or any other object: a goroutine stopped inside malloc holding
 *     its lock would deadlock the next goroutine that calls malloc on that
 *     thread;
 *   - the stack pointer is inside the goroutine's stack with room for the
 *     saved state and the scheduler's frames below the red zone.
 * Not a safe point: the mark stays; sysmon asks again later, and gort calls
 * check the mark (preempt_check) and yield there.
 *
 * Yielding: at a safe point the handler makes the goroutine call
 * gort__async_preempt (preempt.S) as if the interrupted instruction had
 * called it, below the 128-byte red zone; the trampoline saves every
 * register and the extended state, calls gort__preempt_park, and restores
 * it all when the goroutine is resumed. gort__preempt_park runs this P's
 * overdue timers (so the goroutine a timer wakes runs next) and puts the
 * preempted goroutine on the global run queue, as Go does.
 *
 * A statically linked program (libc inside the executable) cannot tell
 * libc's code from the user's: async preemption is off there, as it is
 * with GORT_DEBUG=asyncpreemptoff=1; marks and cooperative checks remain.
 */
#include <cpuid.h>
#include <errno.h>
#include <elf.h>
#include <fcntl.h>
#include <stdlib.h>
#include <link.h>
#include <signal.h>
#include <string.h>
#include <ucontext.h>
#include <unistd.h>

#include "gort.h"
#include "sched/sched.h"

/* Bounds of gort's code (Makefile: every library object's .text renamed). */
extern char __start_gort_text[] __attribute__((visibility("hidden")));
extern char __stop_gort_text[] __attribute__((visibility("hidden")));

void gort__async_preempt(void);

/* Read by preempt.S. */
#define HIDDEN __attribute__((visibility("hidden")))
HIDDEN uint64_t gort__xsave_size = 512;
HIDDEN uint64_t gort__xsave_mask;
HIDDEN uint8_t gort__use_xsave;
HIDDEN void gort__preempt_park(void);

/* Stack room the trampoline and the scheduler need below the red zone,
 * besides the extended state (ASan frames are several times larger). */
#define PARK_STACK_ROOM (GORT_ASAN ? 32768 : 4096)

#define MAX_CODE_RANGES 64
struct code_range {
    uintptr_t lo, hi;
};
/* Preemptible code: written before a range is published (count, release),
 * read by the handler (count, acquire). Append-only. */
static struct code_range ranges[MAX_CODE_RANGES];
static _Atomic int nranges;
static struct rlock ranges_lock; /* serialises writers */
static bool async_enabled;
static bool alarms_enabled; /* async_enabled and not GORT_DEBUG=preemptalarmoff=1 */

/* The program's SIGURG action, forwarded to. Double-buffered: the single
 * writer (preempt_init, then sysmon) fills the slot not in use and
 * publishes its index with a release store; a handler copies the slot its
 * acquire load names. */
static struct sigaction user_urg[2];
static _Atomic int user_urg_idx;

static _Atomic uint64_t npreempt_async, npreempt_unsafe, npreempt_alarm;

/* A signal this much before the alarm's time still counts (timer
 * granularity); an alarm is never armed closer than ALARM_MIN_NS ahead. */
#define ALARM_EARLY_NS 2000
#define ALARM_MIN_NS   5000

/* ---- what is user code ---------------------------------------------------- */

struct find_arg {
    uintptr_t addr; /* object containing addr; 0: the executable */
    bool found;
    bool is_static; /* executable without a dynamic section */
};

static void add_range(uintptr_t lo, uintptr_t hi)
{
    int n = atomic_load_explicit(&nranges, memory_order_relaxed);
    if (n == MAX_CODE_RANGES) return;
    ranges[n].lo = lo;
    ranges[n].hi = hi;
    /* Release: the range is written before the handler can see it. */
    atomic_store_explicit(&nranges, n + 1, memory_order_release);
}

/* Add the code sections of the ELF file at path, loaded at bias: every
 * executable section except the PLT stubs (.plt, .plt.got, .plt.sec: gort's
 * own calls into libc pass through the executable's PLT), .init and .fini,
 * and gort_text. The section headers are read from the file: they are not
 * necessarily mapped. False when the file cannot be read. */
static bool add_code_sections(const char *path, uintptr_t bias)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = false;
    ElfW(Ehdr) eh;
    ElfW(Shdr) *sh = NULL;
    char *names = NULL;
    if (pread(fd, &eh, sizeof eh, 0) != (ssize_t)sizeof eh || memcmp(eh.e_ident, ELFMAG, SELFMAG) ||
        eh.e_shentsize != sizeof(ElfW(Shdr)) || eh.e_shnum == 0 || eh.e_shstrndx >= eh.e_shnum)
        goto out;
    size_t shsize = (size_t)eh.e_shnum * sizeof *sh;
    sh = malloc(shsize);
    if (!sh || pread(fd, sh, shsize, (off_t)eh.e_shoff) != (ssize_t)shsize) goto out;
    const ElfW(Shdr) *strs = &sh[eh.e_shstrndx];
    if (strs->sh_size == 0 || strs->sh_size > (1 << 20)) goto out;
    names = malloc(strs->sh_size + 1);
    if (!names || pread(fd, names, strs->sh_size, (off_t)strs->sh_offset) != (ssize_t)strs->sh_size)
        goto out;
    names[strs->sh_size] = 0;
    for (int i = 0; i < eh.e_shnum; i++) {
        if (!(sh[i].sh_flags & SHF_EXECINSTR) || !(sh[i].sh_flags & SHF_ALLOC) || !sh[i].sh_size ||
            sh[i].sh_name >= strs->sh_size)
            continue;
        const char *name = names + sh[i].sh_name;
        if (!strncmp(name, ".plt", 4) || !strcmp(name, ".init") || !strcmp(name, ".fini") ||
            !strcmp(name, "gort_text"))
            continue;
        add_range(bias + sh[i].sh_addr, bias + sh[i].sh_addr + sh[i].sh_size);
    }
    ok = true;
out:
    free(names);
    free(sh);
    close(fd);
    return ok;
}

static int find_object(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    struct find_arg *a = data;
    bool want = false;
    if (a->addr == 0) {
        want = true; /* the first object reported is the executable */
    } else {
        for (int i = 0; i < info->dlpi_phnum && !want; i++) {
            const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
            uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
            want = ph->p_type == PT_LOAD && a->addr >= lo && a->addr < lo + ph->p_memsz;
        }
    }
    if (!want) return 0;
    bool dynamic = false;
    for (int i = 0; i < info->dlpi_phnum; i++)
        if (info->dlpi_phdr[i].p_type == PT_DYNAMIC) dynamic = true;
    const char *path = a->addr == 0 || !info->dlpi_name[0] ? "/proc/self/exe" : info->dlpi_name;
    a->found = add_code_sections(path, info->dlpi_addr);
    a->is_static = !dynamic;
    return 1;
}

int gort_preempt_register(const void *addr)
{
    if (!addr) return -EINVAL;
    rlock_acquire(&ranges_lock);
    struct find_arg a = {(uintptr_t)addr, false, false};
    int before = atomic_load_explicit(&nranges, memory_order_relaxed);
    dl_iterate_phdr(find_object, &a);
    int after = atomic_load_explicit(&nranges, memory_order_relaxed);
    rlock_release(&ranges_lock);
    if (!a.found) return -ENOENT;
    if (after == before && before == MAX_CODE_RANGES) return -ENOSPC;
    return 0;
}

static inline bool in_user_code(uintptr_t pc)
{
    if (pc >= (uintptr_t)__start_gort_text && pc < (uintptr_t)__stop_gort_text) return false;
    int n = atomic_load_explicit(&nranges, memory_order_acquire);
    for (int i = 0; i < n; i++)
        if (pc >= ranges[i].lo && pc < ranges[i].hi) return true;
    return false;
}

bool sched_user_pc(uintptr_t pc)
{
    return async_enabled && in_user_code(pc);
}

/* ---- the signal ----------------------------------------------------------- */

static void forward(int sig, siginfo_t *info, void *uctx)
{
    int i = atomic_load_explicit(&user_urg_idx, memory_order_acquire);
    struct sigaction sa = user_urg[i];
    if (sa.sa_flags & SA_SIGINFO) {
        if (sa.sa_sigaction) sa.sa_sigaction(sig, info, uctx);
    } else if (sa.sa_handler != SIG_DFL && sa.sa_handler != SIG_IGN) {
        sa.sa_handler(sig); /* SIGURG's default action is to ignore it */
    }
}

/* Whether the goroutine gp, interrupted at uc, may be stopped there. */
static bool safe_point(struct m *m, struct g *gp, const ucontext_t *uc)
{
    if (!m->p || m->blocked || m->locks) return false;
    if (atomic_load_explicit(&gp->status, memory_order_relaxed) != G_RUNNING) return false;
    uintptr_t pc = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    if (sp & 7) return false;
    uintptr_t need = 128 + 8 + 16 * 8 + gort__xsave_size + 64 + PARK_STACK_ROOM;
    if (sp > gp->stack_hi || sp < gp->stack_lo + need) return false;
    return in_user_code(pc);
}

/* Whether the alarm signal that just arrived is due: the alarm was armed
 * for the goroutine still running here, and its time has come (a signal
 * from an earlier arming may still arrive after a re-arm). */
static bool alarm_due(struct m *m, struct g *gp)
{
    /* The fields are this thread's own; the fence keeps the compiler from
     * using values read before the signal. */
    atomic_signal_fence(memory_order_acquire);
    int64_t at = __atomic_load_n(&m->alarm_at, __ATOMIC_RELAXED);
    if (!gp || __atomic_load_n(&m->alarm_g, __ATOMIC_RELAXED) != gp || at == 0) return false;
    return ki_nanotime() >= at - ALARM_EARLY_NS;
}

/* Signal handler: touches only the interrupted goroutine's stack below its
 * red zone and the signal frame.
 *
 * Which SIGURGs are gort's: a tgkill from this process while a request was
 * in flight (m->preempt_sig), and this thread's alarm (SI_TIMER with the
 * M as its value). SIGURG is a standard signal: while one is pending a
 * second one to the same thread is dropped, so a request may arrive as the
 * alarm's signal or as the program's. Hence the request flag is consumed
 * by whichever SIGURG comes first, and then acted on. */
__attribute__((no_sanitize("address"))) static void sigurg_handler(int sig, siginfo_t *info,
                                                                   void *uctx)
{
    struct m *m = gort_m();
    /* Acquire: pairs with the sender's exchange (the mark before it). */
    bool requested = m && atomic_exchange_explicit(&m->preempt_sig, 0, memory_order_acquire);
    bool alarm = m && info->si_code == SI_TIMER && info->si_value.sival_ptr == m;
    bool tkill = requested && info->si_code == SI_TKILL && info->si_pid == getpid();
    if (!tkill && !alarm) forward(sig, info, uctx);
    if (!requested && !alarm) return;
    struct g *gp = m->curg;
    if (!gp) return;
    if (alarm && alarm_due(m, gp)) {
        /* Relaxed: this thread's own goroutine, read back below. */
        atomic_fetch_or_explicit(&gp->preempt, PREEMPT_ASK | PREEMPT_HOG, memory_order_relaxed);
        atomic_fetch_add_explicit(&npreempt_alarm, 1, memory_order_relaxed);
    }
    if (!atomic_load_explicit(&gp->preempt, memory_order_relaxed)) return;
    ucontext_t *uc = uctx;
    if (!safe_point(m, gp, uc)) {
        atomic_fetch_add_explicit(&npreempt_unsafe, 1, memory_order_relaxed);
        return;
    }
    uintptr_t sp = (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
    uintptr_t nsp = sp - 128 - 8;
    *(uintptr_t *)nsp = (uintptr_t)uc->uc_mcontext.gregs[REG_RIP];
    uc->uc_mcontext.gregs[REG_RSP] = (greg_t)nsp;
    uc->uc_mcontext.gregs[REG_RIP] = (greg_t)(uintptr_t)gort__async_preempt;
    atomic_fetch_add_explicit(&npreempt_async, 1, memory_order_relaxed);
}

/* ---- the alarm -------------------------------------------------------------- */

void preempt_alarm_arm(struct m *m, struct p *p, struct g *gp)
{
    if (!alarms_enabled || m->alarm_state == ALARM_FAILED) return;
    if (m->alarm_state == ALARM_NONE) {
        if (ki_thread_timer_create(m->tid, SIGURG, m, &m->alarm_id) < 0) {
            m->alarm_state = ALARM_FAILED; /* sysmon still preempts */
            return;
        }
        m->alarm_state = ALARM_READY;
    }
    int64_t now = ki_nanotime();
    int64_t when = now + cfg.timeslice_ns;
    /* Relaxed: a timer added meanwhile by another P to this heap (a reset
     * from afar) is sysmon's to notice, as without the alarm. */
    int64_t tw = atomic_load_explicit(&p->timer0when, memory_order_relaxed);
    if (tw && tw < when) when = tw;
    if (when < now + ALARM_MIN_NS) when = now + ALARM_MIN_NS;
    /* Fields first, then the timer: a signal can only come after the
     * syscall, and the handler on this thread sees these stores. */
    __atomic_store_n(&m->alarm_g, gp, __ATOMIC_RELAXED);
    __atomic_store_n(&m->alarm_at, when, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_release);
    if (ki_thread_timer_set(m->alarm_id, when) < 0) {
        __atomic_store_n(&m->alarm_at, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&m->alarm_g, NULL, __ATOMIC_RELAXED);
    }
}

void preempt_alarm_timer_added(struct m *m, int64_t when)
{
    if (!m->alarm_g || when >= m->alarm_at) return;
    int64_t now = ki_nanotime();
    if (when < now + ALARM_MIN_NS) when = now + ALARM_MIN_NS;
    __atomic_store_n(&m->alarm_at, when, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_release);
    if (ki_thread_timer_set(m->alarm_id, when) < 0) {
        __atomic_store_n(&m->alarm_at, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&m->alarm_g, NULL, __ATOMIC_RELAXED);
    }
}

void preempt_alarm_disarm(struct m *m)
{
    int64_t at = m->alarm_at;
    __atomic_store_n(&m->alarm_g, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&m->alarm_at, 0, __ATOMIC_RELAXED);
    atomic_signal_fence(memory_order_release);
    /* Fired already (the usual case: it is what preempted the hog): no
     * system call. A signal still on its way finds alarm_g cleared. */
    if (at > ki_nanotime()) ki_thread_timer_set(m->alarm_id, 0);
}

void preempt_alarm_delete(struct m *m)
{
    if (m->alarm_state == ALARM_READY) ki_thread_timer_delete(m->alarm_id);
    m->alarm_state = ALARM_NONE;
    m->alarm_at = 0;
    m->alarm_g = NULL;
}

/* fork(): the child has no timers; its one M makes a new one when needed. */
void preempt_alarm_fork_child(struct m *m)
{
    m->alarm_state = ALARM_NONE;
    m->alarm_at = 0;
    m->alarm_g = NULL;
}

/* Called by the trampoline on the preempted goroutine's stack. */
void gort__preempt_park(void)
{
    sched_preempt_yield();
}

bool preemptone(struct p *p, uint32_t why)
{
    /* Relaxed loads of fields their owners write plainly: a stale M or G
     * only costs a needless mark (cleared when that G next starts) or a
     * signal the handler ignores. Ms are never freed. */
    struct m *m = __atomic_load_n(&p->m, __ATOMIC_RELAXED);
    if (!m || m == gort_m()) return false;
    struct g *gp = __atomic_load_n(&m->curg, __ATOMIC_RELAXED);
    if (!gp) return false;
    /* Or: a stopper's plain request must not erase sysmon's reason. */
    atomic_fetch_or_explicit(&gp->preempt, PREEMPT_ASK | why, memory_order_relaxed);
    if (!async_enabled) return true;
    /* Acq_rel: orders the mark before the signal the handler acts on. */
    if (atomic_exchange_explicit(&m->preempt_sig, 1, memory_order_acq_rel) == 0 &&
        ki_tgkill(getpid(), m->tid, SIGURG) < 0)
        atomic_store_explicit(&m->preempt_sig, 0, memory_order_relaxed);
    return true;
}

void preemptall(void)
{
    int32_t n = atomic_load_explicit(&gomaxprocs, memory_order_relaxed);
    for (int32_t i = 0; i < n; i++)
        if (atomic_load_explicit(&allp[i]->status, memory_order_relaxed) == P_RUNNING)
            preemptone(allp[i], 0);
}

/* ---- set-up ---------------------------------------------------------------- */

static void xsave_init(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d)) return;
    bool xsave = (c & (1u << 26)) && (c & (1u << 27)); /* XSAVE, OSXSAVE */
    if (!xsave || __get_cpuid_max(0, NULL) < 0xd) return;
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    uint64_t xcr0 = ((uint64_t)hi << 32) | lo;
    /* AMX tile state (bits 17, 18) is enabled per process on request and
     * trapped until then; gort never saves it. */
    xcr0 &= ~((1ULL << 17) | (1ULL << 18));
    __cpuid_count(0xd, 0, a, b, c, d);
    if (b < 576) return;
    gort__xsave_mask = xcr0;
    gort__xsave_size = b;
    gort__use_xsave = 1;
}

void preempt_init(void)
{
    xsave_init();
    struct find_arg a = {0, false, false};
    dl_iterate_phdr(find_object, &a);
    async_enabled = !cfg.asyncpreemptoff && a.found && !a.is_static;
    alarms_enabled = async_enabled && !cfg.preemptalarmoff;
    struct sigaction old;
    if (ki_signal_install(SIGURG, sigurg_handler, &old) < 0)
        gort__fatal("cannot install the SIGURG handler");
    user_urg[0] = old;
    atomic_store_explicit(&user_urg_idx, 0, memory_order_release);
}

void preempt_check_handler(void)
{
    struct sigaction cur;
    if (sigaction(SIGURG, NULL, &cur) != 0) return;
    if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == sigurg_handler) return;
    /* The program installed its own: forward to it from now on. */
    int next = 1 - atomic_load_explicit(&user_urg_idx, memory_order_relaxed);
    user_urg[next] = cur;
    atomic_store_explicit(&user_urg_idx, next, memory_order_release);
    ki_signal_install(SIGURG, sigurg_handler, NULL);
}

void gort__preempt_stats(uint64_t *async, uint64_t *unsafe)
{
    *async = atomic_load(&npreempt_async);
    *unsafe = atomic_load(&npreempt_unsafe);
}

/* For tests: how many alarms found their goroutine still running when due. */
uint64_t gort__preempt_alarms(void)
{
    return atomic_load(&npreempt_alarm);
}

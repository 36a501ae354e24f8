/* tools/numabench/main.c: gort-numabench, memory latency and bandwidth between NUMA nodes,
 * measured from gort goroutines.
 *
 * Usage. `gort-numabench` measures, for every pair (A, B) of a node A running and a node
 * B holding the memory, the latency of a dependent pointer chase (ns per load, random
 * order over a buffer several times the last-level cache) and the bandwidth of
 * streaming reads and of streaming (non-temporal) writes (GB/s, one goroutine per CPU of
 * A, each on a thread pinned there). It prints three matrices (rows: the node running,
 * columns: the node holding the memory) and checks with move_pages(2) that the buffer's
 * pages really are on their node. `--csv` prints one line per pair instead
 * (cpu_node,mem_node,latency_ns,read_gbps,write_gbps, after a header line). `-s SIZE`
 * sets the buffer per memory node (default 256 MiB or four times the LLC, whichever is
 * larger), `-t N` the bandwidth goroutines per running node, `-q` a quick run of a few
 * seconds on a small buffer (cache numbers: for tests). Node ids are the kernel's
 * (numactl -H); with GORT_NUMA=fake:N they are gort's virtual nodes, which share one
 * real node's memory, and the output says so. Takes about one second per pair plus
 * one to build each column's buffer; run it on an otherwise idle machine.
 *
 * Order of work (one memory node at a time, so only one buffer is mapped): map and
 * bind the buffer, build the chase on a thread of its node (first touch), check the
 * placement, then every row's latency (each continuing the chase where the last
 * stopped), every row's reads, every row's writes (which destroy the chase).
 * Exit status: 0, 1 when the machine refused something (memory, pinning), 2 for a
 * bad argument or environment value.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gort.h"
#include "tools/numabench/numabench.h"

#define PROG        "gort-numabench"
#define MIB         (1UL << 20)
#define HUGE        (2UL << 20)
#define MIN_SIZE    (1UL << 20)
#define MAX_SIZE    (1UL << 40)
#define MAX_THREADS 1024
#define MIN_SLICE   (64UL << 10) /* bytes each bandwidth thread streams over, at least */

struct opts {
    size_t size; /* 0: default */
    int threads; /* 0: one per CPU of the running node */
    bool quick, csv;
};

struct result {
    double lat_ns, read_gbps, write_gbps;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s [-q] [--csv] [-s SIZE] [-t N]\n"
            "Memory latency and bandwidth between NUMA nodes, measured from gort goroutines:\n"
            "for each node running (rows) and node holding the memory (columns), a dependent\n"
            "pointer chase (ns per load) and streaming reads and non-temporal writes (GB/s).\n"
            "\n"
            "  -s, --size SIZE    buffer per memory node, bytes or with K, M, G (default: 256M\n"
            "                     or 4x the last-level cache, whichever is larger; -q: 8M)\n"
            "  -t, --threads N    bandwidth goroutines per running node, 1..%d (default: one\n"
            "                     per CPU of the node, each pinned to its CPU)\n"
            "  -q, --quick        small buffer, short runs: a few seconds (cache numbers)\n"
            "      --csv          one line per pair after a header line:\n"
            "                     cpu_node,mem_node,latency_ns,read_gbps,write_gbps\n"
            "  -h, --help         this text\n"
            "\n"
            "Nodes are the kernel's (numactl -H); GORT_NUMA=fake:N splits the CPUs into N\n"
            "virtual nodes over one real node (memory not bound), GORT_NUMA=off makes one.\n",
            PROG, MAX_THREADS);
}

/* "gort-numabench: <what is wrong>" and the short usage on stderr; returns exit status 2. */
static __attribute__((format(printf, 1, 2))) int bad_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", PROG);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nusage: %s [-q] [--csv] [-s SIZE] [-t N] (--help for more)\n", PROG);
    return 2;
}

/* "256M", "1g", "65536" -> bytes; false when malformed or out of range. */
static bool parse_size(const char *s, size_t *out)
{
    if (*s < '0' || *s > '9') return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno) return false;
    unsigned shift = 0;
    switch (*end) {
    case 'k':
    case 'K':
        shift = 10, end++;
        break;
    case 'm':
    case 'M':
        shift = 20, end++;
        break;
    case 'g':
    case 'G':
        shift = 30, end++;
        break;
    default:
        break;
    }
    if (shift && (*end == 'i' || *end == 'I')) end++; /* "256MiB" */
    if (shift && (*end == 'b' || *end == 'B')) end++;
    if (*end || v > (MAX_SIZE >> shift)) return false;
    v <<= shift;
    if (v < MIN_SIZE) return false;
    *out = (size_t)v;
    return true;
}

static bool parse_threads(const char *s, int *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < 1 || v > MAX_THREADS) return false;
    *out = (int)v;
    return true;
}

/* 0, or the exit status for a bad command line. */
static int parse_args(int argc, char **argv, struct opts *o)
{
    static const struct option longopts[] = {
        {"size", required_argument, NULL, 's'}, {"threads", required_argument, NULL, 't'},
        {"quick", no_argument, NULL, 'q'},      {"csv", no_argument, NULL, 'c'},
        {"help", no_argument, NULL, 'h'},       {NULL, 0, NULL, 0},
    };
    memset(o, 0, sizeof *o);
    opterr = 0;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "+:hqs:t:", longopts, NULL)) != -1) {
        switch (c) {
        case 'h':
            usage(stdout);
            return -1; /* exit 0 */
        case 'q':
            o->quick = true;
            break;
        case 'c':
            o->csv = true;
            break;
        case 's':
            if (!parse_size(optarg, &o->size))
                return bad_usage("-s %s: expected a size from 1M to 1T (bytes, or K, M, G)",
                                 optarg);
            break;
        case 't':
            if (!parse_threads(optarg, &o->threads))
                return bad_usage("-t %s: expected a number of threads from 1 to %d", optarg,
                                 MAX_THREADS);
            break;
        case ':': /* the option is the last argument: "-s", "--size" */
            return bad_usage("option %s needs a value", argv[optind - 1]);
        default: { /* '?': an unknown option, or a value given to --csv, --quick, --help */
            const char *a = argv[optind - 1], *eq = strchr(a, '=');
            if (strncmp(a, "--", 2) != 0) return bad_usage("unknown option -%c", optopt);
            if (eq && optopt) return bad_usage("option %.*s takes no value", (int)(eq - a), a);
            return bad_usage("unknown option %s", a);
        }
        }
    }
    if (optind < argc) return bad_usage("unexpected argument %s", argv[optind]);
    return 0;
}

/* "0-3,8,10-11" */
static void format_cpus(const int *cpus, int n, char *buf, size_t len)
{
    size_t at = 0;
    buf[0] = 0;
    for (int i = 0; i < n && at < len; i++) {
        int j = i;
        while (j + 1 < n && cpus[j + 1] == cpus[j] + 1)
            j++;
        int w = j > i ? snprintf(buf + at, len - at, "%s%d-%d", at ? "," : "", cpus[i], cpus[j])
                      : snprintf(buf + at, len - at, "%s%d", at ? "," : "", cpus[i]);
        if (w < 0) break;
        at += (size_t)w;
        i = j;
    }
}

/* The [selected] word of the THP setting, or "unknown". */
static void thp_mode(char *buf, size_t len)
{
    snprintf(buf, len, "unknown");
    FILE *f = fopen("/sys/kernel/mm/transparent_hugepage/enabled", "r");
    if (!f) return;
    char line[128];
    if (fgets(line, sizeof line, f)) {
        char *a = strchr(line, '['), *b = a ? strchr(a, ']') : NULL;
        if (a && b) snprintf(buf, len, "%.*s", (int)(b - a - 1), a + 1);
    }
    fclose(f);
}

/* ---- one memory node ----------------------------------------------------------------------- */

struct chase_job {
    struct nb_chase *c;
    uint64_t seed, max_steps;
    int64_t budget_ns;
    double ns;
};

static void chase_build_job(void *arg, int i)
{
    (void)i;
    struct chase_job *j = arg;
    nb_chase_build(j->c, j->seed);
}

static void chase_walk_job(void *arg, int i)
{
    (void)i;
    struct chase_job *j = arg;
    j->ns = nb_chase_ns(j->c, j->max_steps, j->budget_ns);
}

struct run {
    const struct opts *o;
    const struct nb_topo *t;
    size_t size;
    int64_t lat_budget, bw_budget;
    struct result res[NB_MAX_COLS][NB_MAX_COLS]; /* [row][column] */
    struct nb_place place[NB_MAX_COLS];
    long long thp[NB_MAX_COLS];
};

static int row_threads(const struct run *r, int row)
{
    return r->o->threads ? r->o->threads : r->t->node[row].ncpus;
}

static int fail_pin(const struct nb_node *n, int err)
{
    fprintf(stderr, "%s: cannot pin a thread to node %d's CPUs: %s\n", PROG, n->label,
            strerror(-err));
    return 1;
}

/* A progress line on a terminal's stderr, rewritten in place (fmt NULL: erased). */
static __attribute__((format(printf, 2, 3))) void progress(const struct run *r, const char *fmt,
                                                           ...)
{
    if (r->o->csv || !isatty(2)) return;
    fprintf(stderr, "\r\033[K");
    if (!fmt) return;
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
}

/* Measure column col against every row; 0 or an exit status. */
static int measure_column(struct run *r, int col)
{
    const struct nb_topo *t = r->t;
    const struct nb_node *mem = &t->node[col];
    char err[256];
    char *buf = nb_buf_map(r->size, mem->kernel_id, err, sizeof err);
    if (!buf) {
        fprintf(stderr, "%s: memory node %d: %s\n", PROG, mem->label, err);
        return 1;
    }
    progress(r, "memory node %d (%d of %d): building the chase", mem->label, col + 1, t->ncols);
    struct nb_chase chase = {.base = buf, .nlines = r->size / 64};
    struct chase_job job = {.c = &chase, .seed = (uint64_t)nb_now() * 0x9e3779b97f4a7c15ULL};
    int e = nb_run_pinned(1, mem->cpus, mem->ncpus, false, chase_build_job, &job);
    if (e) {
        nb_buf_unmap(buf, r->size);
        return fail_pin(mem, e);
    }
    /* Where the memory of a virtual or unbound node lies is the kernel's choice: report
     * it without expecting a node. */
    nb_place_query(buf, r->size, mem->kernel_id, &r->place[col]);
    r->thp[col] = nb_thp_bytes(buf, r->size);

    /* Each row walks its own stretch of the cycle (see measure.c); a small buffer (-q)
     * cannot give every row a fresh stretch of useful length and wraps instead. */
    uint64_t share = chase.nlines / (uint64_t)(t->nrows + 1);
    job.max_steps = share > 6 * NB_CHASE_CHUNK ? share : 6 * NB_CHASE_CHUNK;
    job.budget_ns = r->lat_budget;
    const struct nb_node *failed = NULL; /* the row whose CPUs refused a thread */
    for (int row = 0; row < t->nrows; row++) {
        const struct nb_node *run = &t->node[row];
        progress(r, "memory node %d: latency from node %d", mem->label, run->label);
        e = nb_run_pinned(1, run->cpus, run->ncpus, false, chase_walk_job, &job);
        if (e) {
            failed = run;
            break;
        }
        r->res[row][col].lat_ns = job.ns;
    }
    for (int pass = 0; pass < 2 && !e; pass++) {
        for (int row = 0; row < t->nrows; row++) {
            const struct nb_node *run = &t->node[row];
            progress(r, "memory node %d: %s from node %d", mem->label, pass ? "writes" : "reads",
                     run->label);
            double g = nb_stream_gbps(buf, r->size, row_threads(r, row), run->cpus, run->ncpus,
                                      pass == 1, r->bw_budget);
            if (g < 0) {
                e = (int)g;
                failed = run;
                break;
            }
            if (pass)
                r->res[row][col].write_gbps = g;
            else
                r->res[row][col].read_gbps = g;
        }
    }
    nb_buf_unmap(buf, r->size);
    progress(r, NULL);
    return e ? fail_pin(failed, e) : 0;
}

/* ---- output ------------------------------------------------------------------------------ */

static void print_matrix(const struct run *r, const char *title, int which)
{
    const struct nb_topo *t = r->t;
    printf("\n%s\n%10s", title, "");
    for (int c = 0; c < t->ncols; c++) {
        char head[16];
        snprintf(head, sizeof head, "mem %d", t->node[c].label);
        printf(" %9s", head);
    }
    printf("\n");
    for (int row = 0; row < t->nrows; row++) {
        printf("  cpu %-4d", t->node[row].label);
        for (int c = 0; c < t->ncols; c++) {
            const struct result *x = &r->res[row][c];
            double v = which == 0 ? x->lat_ns : which == 1 ? x->read_gbps : x->write_gbps;
            printf(" %9.1f", v);
        }
        printf("\n");
    }
}

static void print_place(const struct run *r, int col)
{
    const struct nb_node *n = &r->t->node[col];
    const struct nb_place *p = &r->place[col];
    printf("  memory of node %d: ", n->label);
    if (p->err) {
        printf("not verified (move_pages: %s)\n", strerror(-p->err));
        return;
    }
    printf("%ld pages", p->pages);
    long present = p->pages - p->missing;
    int only = -1, kinds = 0;
    for (int k = 0; k <= NB_HIST_NODES; k++)
        if (p->on[k]) only = k, kinds++;
    if (kinds == 1 && !p->missing && only < NB_HIST_NODES)
        printf(", all on kernel node %d", only);
    else {
        printf(":");
        for (int k = 0; k <= NB_HIST_NODES; k++)
            if (p->on[k])
                printf(k < NB_HIST_NODES ? " %ld on node %d" : " %ld on nodes >= %d", p->on[k], k);
        if (p->missing) printf(" %ld not present", p->missing);
    }
    if (p->expected >= 0)
        printf(p->elsewhere || p->missing ? "; %ld elsewhere, EXPECTED node %d" : " (bound there)",
               p->elsewhere, p->expected);
    if (r->thp[col] >= 0 && present > 0)
        printf("; %.0f%% in huge pages", 100.0 * (double)r->thp[col] / (double)r->size);
    printf("\n");
}

/* Placement problems that the CSV reader would not see. */
static void warn_place(const struct run *r, int col)
{
    const struct nb_place *p = &r->place[col];
    int label = r->t->node[col].label;
    if (p->err)
        fprintf(stderr, "%s: memory of node %d: placement not verified (move_pages: %s)\n", PROG,
                label, strerror(-p->err));
    else if (p->expected >= 0 && (p->elsewhere || p->missing))
        fprintf(stderr,
                "%s: warning: memory of node %d: %ld of %ld pages elsewhere, %ld not "
                "present\n",
                PROG, label, p->elsewhere, p->pages, p->missing);
}

static void print_summary(const struct run *r)
{
    const struct nb_topo *t = r->t;
    if (t->ncols < 2) return;
    double l[3] = {0}, m[3] = {0};
    int nl = 0, nm = 0;
    for (int row = 0; row < t->nrows; row++)
        for (int c = 0; c < t->ncols; c++) {
            const struct result *x = &r->res[row][c];
            double *a = row == c ? l : m;
            a[0] += x->lat_ns, a[1] += x->read_gbps, a[2] += x->write_gbps;
            *(row == c ? &nl : &nm) += 1;
        }
    if (!nl || !nm) return;
    for (int i = 0; i < 3; i++)
        l[i] /= nl, m[i] /= nm;
    printf("\nlocal (mean of the diagonal): %.1f ns, read %.1f GB/s, write %.1f GB/s\n", l[0], l[1],
           l[2]);
    printf("remote (mean of the rest):    %.1f ns, read %.1f GB/s, write %.1f GB/s"
           " (latency x%.2f, read x%.2f, write x%.2f)%s\n",
           m[0], m[1], m[2], m[0] / l[0], m[1] / l[1], m[2] / l[2],
           t->mode == NB_FAKE ? "; virtual nodes: any difference is noise" : "");
}

static int numabench_main(int argc, char **argv)
{
    struct opts o;
    int rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? 0 : rc;

    static struct nb_topo topo; /* big (64 nodes); not on the goroutine's stack */
    char err[256];
    if (nb_topo_discover(&topo, err, sizeof err) < 0) {
        fprintf(stderr, "%s: %s\n", PROG, err);
        return 2;
    }
    static struct run r;
    r.o = &o;
    r.t = &topo;
    int maxthreads = 1;
    for (int row = 0; row < topo.nrows; row++)
        if (row_threads(&r, row) > maxthreads) maxthreads = row_threads(&r, row);
    size_t llc = nb_llc_bytes();
    if (o.size) {
        if (o.size / (size_t)maxthreads < MIN_SLICE) {
            fprintf(stderr,
                    "%s: -s: %zu KiB is too small for %d bandwidth threads (each needs %lu "
                    "KiB)\n",
                    PROG, o.size >> 10, maxthreads, MIN_SLICE >> 10);
            return 2;
        }
        r.size = o.size;
    } else if (o.quick) {
        r.size = 8 * MIB;
    } else {
        r.size = 256 * MIB;
        while (r.size < 4 * llc)
            r.size *= 2;
    }
    if (r.size < (size_t)maxthreads * MIN_SLICE) r.size = (size_t)maxthreads * MIN_SLICE;
    r.size = (r.size + HUGE - 1) & ~(HUGE - 1);
    r.lat_budget = o.quick ? 20000000 : 300000000;
    r.bw_budget = o.quick ? 20000000 : 300000000;

    for (int c = 0; c < topo.ncols; c++) {
        long long total, free_bytes;
        nb_node_size(topo.node[c].kernel_id, &total, &free_bytes);
        if (total >= 0 && (long long)r.size > total) {
            fprintf(stderr,
                    "%s: node %d has %lld MiB of memory, less than the %zu MiB buffer "
                    "(use -s)\n",
                    PROG, topo.node[c].label, total >> 20, r.size >> 20);
            return 1;
        }
        if (free_bytes >= 0 && (long long)r.size > free_bytes)
            fprintf(stderr,
                    "%s: warning: node %d has %lld MiB free, less than the %zu MiB "
                    "buffer: the kernel must reclaim memory first\n",
                    PROG, topo.node[c].label, free_bytes >> 20, r.size >> 20);
    }

    char desc[512];
    nb_topo_describe(&topo, desc, sizeof desc);
    if (o.csv) {
        if (topo.mode != NB_REAL) fprintf(stderr, "%s: %s\n", PROG, desc);
    } else {
        char thp[32];
        thp_mode(thp, sizeof thp);
        printf("%s: memory latency and bandwidth between NUMA nodes\n", PROG);
        printf("nodes: %s\n", desc);
        for (int c = 0; c < topo.ncols; c++) {
            const struct nb_node *n = &topo.node[c];
            char cpus[256];
            format_cpus(n->cpus, n->ncpus, cpus, sizeof cpus);
            if (n->mem_only)
                printf("  node %d: memory only (its buffer is built from node %d's CPUs)\n",
                       n->label, topo.node[0].label);
            else if (!n->own_cpus)
                printf("  node %d: no CPU of its own: runs on node %d's CPUs %s\n", n->label,
                       topo.node[0].label, cpus);
            else
                printf("  node %d: CPUs %s\n", n->label, cpus);
        }
        printf("buffer: %zu MiB per memory node", r.size >> 20);
        if (llc) printf(" (last-level cache: %zu MiB)", llc >> 20);
        if (r.size < 2 * llc)
            printf(", NOT much larger than the cache: bandwidth partly from the cache");
        printf("; transparent huge pages: %s\n", thp);
        if (o.threads)
            printf("bandwidth: %d goroutines per running node, pinned round-robin to its CPUs\n",
                   o.threads);
        else
            printf("bandwidth: one goroutine per CPU of the running node, pinned to it\n");
        fflush(stdout);
    }

    for (int c = 0; c < topo.ncols; c++) {
        rc = measure_column(&r, c);
        if (rc) return rc;
    }

    if (o.csv) {
        for (int c = 0; c < topo.ncols; c++)
            warn_place(&r, c);
        printf("cpu_node,mem_node,latency_ns,read_gbps,write_gbps\n");
        for (int row = 0; row < topo.nrows; row++)
            for (int c = 0; c < topo.ncols; c++) {
                const struct result *x = &r.res[row][c];
                printf("%d,%d,%.2f,%.2f,%.2f\n", topo.node[row].label, topo.node[c].label,
                       x->lat_ns, x->read_gbps, x->write_gbps);
            }
        return 0;
    }
    printf("placement (move_pages, per 4 KiB page):\n");
    for (int c = 0; c < topo.ncols; c++)
        print_place(&r, c);
    print_matrix(&r,
                 "latency, ns per dependent load (rows: node running, columns: node "
                 "holding the memory)",
                 0);
    print_matrix(&r, "read bandwidth, GB/s", 1);
    print_matrix(&r, "write bandwidth (non-temporal stores), GB/s", 2);
    print_summary(&r);
    return 0;
}

int main(int argc, char **argv)
{
    return gort_main(numabench_main, argc, argv);
}

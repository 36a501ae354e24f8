/* tests/test_numabench.c: the gort-numabench tool (tools/numabench), run as a
 * subprocess the way a user runs it.
 *
 * The program is found next to this one: BUILD/tests/test_numabench ->
 * BUILD/bin/gort-numabench, so a sanitizer build (build-asan) tests its own tool.
 * Every run uses -q (small buffers, short runs) and is bounded in time.
 *
 * Checked: the CSV shape (a header, then one line per pair of nodes, each pair once,
 * every number positive and finite) with GORT_NUMA=off (1 pair) and fake:2 (4 pairs);
 * the readable output has its three matrices and its placement report, and says that
 * fake nodes are virtual; -h prints the usage and exits 0; bad arguments and a bad
 * GORT_NUMA exit 2 with a message. Not checked: the numbers' values (this machine is
 * shared and noisy, and its "nodes" are one node).
 */
#include <limits.h>
#include <math.h>
#include <numa.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "gort_test.h"

#define RUN_TIMEOUT_MS 120000 /* -q takes well under a second here; ASan and load: slack */
#define CSV_HEADER     "cpu_node,mem_node,latency_ns,read_gbps,write_gbps"

static char tool[PATH_MAX];

/* BUILD/tests/test_numabench -> BUILD/bin/gort-numabench */
static int find_tool(void **state)
{
    (void)state;
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0) return -1;
    self[n] = 0;
    for (int i = 0; i < 2; i++) {
        char *slash = strrchr(self, '/');
        if (!slash) return -1;
        *slash = 0;
    }
    snprintf(tool, sizeof tool, "%.*s/bin/gort-numabench", PATH_MAX - 32, self);
    if (access(tool, X_OK) != 0) {
        print_error("%s not found or not executable (build it with make)\n", tool);
        return -1;
    }
    return 0;
}

/* Run the tool with args (NULL-terminated) and env overrides. */
static void run_tool(const char *const *args, const char *const *env, struct run *r)
{
    char *argv[16] = {tool};
    int n = 1;
    for (; args[n - 1] && n < 15; n++)
        argv[n] = (char *)args[n - 1];
    argv[n] = NULL;
    run_prog(tool, argv, env, RUN_TIMEOUT_MS, r);
}

/* Parse the CSV on r->out: the header, then rows; each (cpu, mem) pair must appear
 * exactly once with cpu, mem < nnodes, and all numbers positive and finite. Returns
 * the number of rows, or -1 (after printing why) when the shape is wrong. */
static int check_csv(const struct run *r, int nnodes)
{
    bool seen[8][8] = {{false}};
    int rows = 0;
    const char *l = r->out;
    size_t hlen = strlen(CSV_HEADER);
    if (strncmp(l, CSV_HEADER, hlen) != 0 || l[hlen] != '\n') {
        print_error("csv: first line is not the header %s\n", CSV_HEADER);
        return -1;
    }
    for (l += hlen + 1; *l; rows++) {
        const char *nl = strchr(l, '\n');
        if (!nl) {
            print_error("csv: last line has no newline\n");
            return -1;
        }
        int cpu, mem, used = 0;
        double v[3];
        if (sscanf(l, "%d,%d,%lf,%lf,%lf%n", &cpu, &mem, &v[0], &v[1], &v[2], &used) != 5 ||
            l + used != nl) {
            print_error("csv: malformed line: %.*s\n", (int)(nl - l), l);
            return -1;
        }
        if (cpu < 0 || mem < 0 || cpu >= nnodes || mem >= nnodes || seen[cpu][mem]) {
            print_error("csv: unexpected or repeated pair %d,%d\n", cpu, mem);
            return -1;
        }
        seen[cpu][mem] = true;
        for (int i = 0; i < 3; i++)
            if (!isfinite(v[i]) || v[i] <= 0) {
                print_error("csv: not a positive number in: %.*s\n", (int)(nl - l), l);
                return -1;
            }
        l = nl + 1;
    }
    return rows;
}

static void test_csv_numa_off(void **state)
{
    (void)state;
    static const char *const args[] = {"-q", "--csv", NULL};
    static const char *const env[] = {"GORT_NUMA=off", NULL};
    struct run r;
    run_tool(args, env, &r);
    CHECK(&r, "GORT_NUMA=off -q --csv", exited_with(&r, 0));
    CHECK(&r, "GORT_NUMA=off -q --csv", check_csv(&r, 1) == 1);
    CHECK(&r, "GORT_NUMA=off -q --csv", has(r.err, "GORT_NUMA=off"));
    print_message("%s", r.out);
    run_free(&r);
}

static void test_csv_fake2(void **state)
{
    (void)state;
    static const char *const args[] = {"-q", "--csv", NULL};
    static const char *const env[] = {"GORT_NUMA=fake:2", NULL};
    struct run r;
    run_tool(args, env, &r);
    CHECK(&r, "GORT_NUMA=fake:2 -q --csv", exited_with(&r, 0));
    CHECK(&r, "GORT_NUMA=fake:2 -q --csv", check_csv(&r, 2) == 4);
    /* the output says the nodes are virtual (on stderr: stdout is pure CSV) */
    CHECK(&r, "GORT_NUMA=fake:2 -q --csv", has(r.err, "fake:2") && has(r.err, "virtual"));
    print_message("%s", r.out);
    run_free(&r);
}

/* More threads than CPUs per node: the bandwidth goroutines share the CPUs. */
static void test_csv_threads(void **state)
{
    (void)state;
    static const char *const args[] = {"-q", "--csv", "-t", "3", "-s", "4M", NULL};
    static const char *const env[] = {"GORT_NUMA=fake:2", "GORT_MAXPROCS=1", NULL};
    struct run r;
    run_tool(args, env, &r);
    CHECK(&r, "fake:2 -t 3 -s 4M with 1 P", exited_with(&r, 0));
    CHECK(&r, "fake:2 -t 3 -s 4M with 1 P", check_csv(&r, 2) == 4);
    run_free(&r);
}

static void test_readable_fake2(void **state)
{
    (void)state;
    static const char *const args[] = {"-q", NULL};
    static const char *const env[] = {"GORT_NUMA=fake:2", NULL};
    struct run r;
    run_tool(args, env, &r);
    const char *sc = "GORT_NUMA=fake:2 -q";
    CHECK(&r, sc, exited_with(&r, 0));
    CHECK(&r, sc, has(r.out, "virtual nodes"));
    CHECK(&r, sc, has_line(r.out, "latency, ns per dependent load"));
    CHECK(&r, sc, has_line(r.out, "read bandwidth, GB/s"));
    CHECK(&r, sc, has_line(r.out, "write bandwidth"));
    CHECK(&r, sc, has_line(r.out, "  cpu 0 ") && has_line(r.out, "  cpu 1 "));
    CHECK(&r, sc, has(r.out, "mem 0") && has(r.out, "mem 1"));
    CHECK(&r, sc,
          has_line(r.out, "  memory of node 0: ") && has_line(r.out, "  memory of node 1: "));
    /* one real node here: move_pages finds every page of both virtual nodes on it */
    if (numa_available() >= 0 && numa_num_configured_nodes() == 1)
        CHECK(&r, sc,
              !has(r.out, "not verified") && !has(r.out, "not present") &&
                  has(r.out, "pages, all on kernel node 0"));
    run_free(&r);
}

static void test_help(void **state)
{
    (void)state;
    static const char *const h[] = {"-h", NULL}, *const help[] = {"--help", NULL};
    const char *const *cases[] = {h, help};
    for (int i = 0; i < 2; i++) {
        struct run r;
        run_tool(cases[i], NULL, &r);
        CHECK(&r, cases[i][0], exited_with(&r, 0));
        CHECK(&r, cases[i][0], has_line(r.out, "usage: gort-numabench"));
        CHECK(&r, cases[i][0], has(r.out, "--csv") && has(r.out, "--size"));
        run_free(&r);
    }
}

static void test_bad_arguments(void **state)
{
    (void)state;
    static const struct {
        const char *args[5];
        const char *words;
    } cases[] = {
        {{"--bogus"}, "unknown option --bogus"},
        {{"-x"}, "unknown option -x"},
        {{"-s", "abc"}, "-s abc"},
        {{"-s", "100"}, "-s 100"}, /* below 1M */
        {{"-s", "2T"}, "-s 2T"},
        {{"-s", "12X"}, "-s 12X"},
        {{"-s"}, "needs a value"},
        {{"-t", "0"}, "-t 0"},
        {{"-t", "1025"}, "-t 1025"},
        {{"-t", "3x"}, "-t 3x"},
        {{"--csv=yes"}, "--csv takes no value"},
        {{"-q", "extra"}, "unexpected argument extra"},
        {{"-s", "1M", "-t", "64"}, "too small"}, /* 64 threads need 64 x 64 KiB */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *const *args = cases[i].args;
        char name[96];
        snprintf(name, sizeof name, "%s %s %s %s", args[0], args[1] ? args[1] : "",
                 args[2] ? args[2] : "", args[3] ? args[3] : "");
        struct run r;
        run_tool(args, NULL, &r);
        CHECK(&r, name, exited_with(&r, 2));
        CHECK(&r, name, has_line(r.err, "gort-numabench: "));
        CHECK(&r, name, has(r.err, cases[i].words));
        CHECK(&r, name, r.outlen == 0);
        run_free(&r);
    }
}

/* The runtime rejects a bad GORT_NUMA before the tool runs, naming the variable. */
static void test_bad_numa_env(void **state)
{
    (void)state;
    static const char *const args[] = {"-q", "--csv", NULL};
    static const char *const env[] = {"GORT_NUMA=fake:x", NULL};
    struct run r;
    run_tool(args, env, &r);
    CHECK(&r, "GORT_NUMA=fake:x", exited_with(&r, 2));
    CHECK(&r, "GORT_NUMA=fake:x", has(r.err, "GORT_NUMA"));
    run_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_csv_numa_off), cmocka_unit_test(test_csv_fake2),
        cmocka_unit_test(test_csv_threads),  cmocka_unit_test(test_readable_fake2),
        cmocka_unit_test(test_help),         cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_bad_numa_env),
    };
    return cmocka_run_group_tests(tests, find_tool, NULL);
}

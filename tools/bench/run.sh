#!/usr/bin/env bash
# run.sh BIN_DIR [RUNS]: run gort benchmarks side by side with their Go twins.
#
# For each NAME in $BENCHES (default below; the environment may set it), runs BIN_DIR/bench-NAME and
# BIN_DIR/gobench-NAME alternately RUNS times (default 5; parked at most 3,
# it holds a million goroutines), then prints on stdout, per metric:
#   gort.METRIC  median unit
#   go.METRIC    median unit
#   ratio.METRIC gort/go x        (two decimals)
# followed by a human-readable table whose lines all start with "# ".
# Raw values and progress go to stderr. A missing gobench-NAME only drops the
# Go column (noted); a missing or failing binary, or one that prints no
# metric, makes the script exit 1 (after printing what it has).
set -eu

usage() {
    echo "usage: $0 BIN_DIR [RUNS]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
BIN_DIR=$1
RUNS=${2:-5}
case $RUNS in '' | *[!0-9]*) usage ;; esac
[ "$RUNS" -ge 1 ] || usage
[ -d "$BIN_DIR" ] || { echo "run.sh: $BIN_DIR: not a directory" >&2; exit 2; }

BENCHES=${BENCHES:-"yield spawn parked pingpong buffered select mutex sleep timer hogsleep stw blocking echo idleconn"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results # lines: BENCH IMPL METRIC VALUE UNIT
notes=$tmp/notes     # lines shown under the human table
: >"$results"
: >"$notes"
status=0

# run_one BENCH IMPL BIN: run BIN once, append its metrics to $results.
run_one() {
    local bench=$1 impl=$2 bin=$3 rc=0
    "$bin" >"$tmp/out" 2>"$tmp/err" || rc=$?
    if [ "$rc" -ne 0 ]; then
        echo "run.sh: $bin failed (exit $rc); its stderr ends with:" >&2
        tail -n 20 "$tmp/err" >&2
        return 1
    fi
    awk -v bench="$bench" -v impl="$impl" -v bin="$bin" '
        NF == 3 && $2 ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ {
            print bench, impl, $1, $2, $3; n++; next
        }
        { printf "run.sh: %s: ignoring stdout line: %s\n", bin, $0 | "cat 1>&2" }
        END { exit n > 0 ? 0 : 1 }
    ' "$tmp/out" >>"$results" || {
        echo "run.sh: $bin printed no metric" >&2
        return 1
    }
}

for bench in $BENCHES; do
    runs=$RUNS
    if [ "$bench" = parked ] && [ "$runs" -gt 3 ]; then runs=3; fi
    cbin=$BIN_DIR/bench-$bench
    gobin=$BIN_DIR/gobench-$bench
    if [ ! -x "$cbin" ]; then
        echo "run.sh: $cbin missing or not executable" >&2
        echo "bench-$bench missing: no results" >>"$notes"
        status=1
        continue
    fi
    have_go=1
    if [ ! -x "$gobin" ]; then
        have_go=0
        echo "run.sh: $gobin missing; Go column skipped for $bench" >&2
        echo "gobench-$bench missing: Go column skipped for $bench" >>"$notes"
    fi
    i=1
    while [ "$i" -le "$runs" ]; do
        echo "run.sh: $bench run $i/$runs" >&2
        if ! run_one "$bench" gort "$cbin"; then
            status=1
            echo "bench-$bench failed in run $i" >>"$notes"
            break
        fi
        if [ "$have_go" -eq 1 ] && ! run_one "$bench" go "$gobin"; then
            status=1
            echo "gobench-$bench failed in run $i" >>"$notes"
            break
        fi
        i=$((i + 1))
    done
done

# Raw values, one line per implementation and metric, on stderr.
awk '
    { key = $2 "." $3; if (!(key in vals)) { order[++n] = key; unit[key] = $5 }
      vals[key] = vals[key] " " $4 }
    END { for (i = 1; i <= n; i++) printf "raw %s:%s %s\n", order[i], vals[order[i]], unit[order[i]] }
' "$results" >&2

# Medians, ratios, and the human table on stdout.
awk -v notes="$notes" '
    function median(list,    a, k, i, j, t) {
        k = split(list, a, " ")
        for (i = 2; i <= k; i++) {          # insertion sort, numeric
            t = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
            a[j + 1] = t
        }
        if (k % 2) return a[(k + 1) / 2] + 0
        return (a[k / 2] + a[k / 2 + 1]) / 2
    }
    function fmt(v, isint) {
        if (isint && v == int(v)) return sprintf("%.0f", v)
        if (v >= 1 || v <= -1) return sprintf("%.1f", v)
        return sprintf("%.3g", v)
    }
    {
        m = $3
        if (!(m in seen)) { seen[m] = 1; order[++n] = m; unit[m] = $5 }
        else if (unit[m] != $5)
            printf "run.sh: %s: unit %s differs from %s\n", m, $5, unit[m] | "cat 1>&2"
        vals[$2, m] = vals[$2, m] " " $4
        has[$2, m] = 1
        if ($4 ~ /[.eE]/) notint[m] = 1
    }
    END {
        for (i = 1; i <= n; i++) {
            m = order[i]
            g = ""; o = ""; r = ""
            if (has["gort", m]) { g = fmt(median(vals["gort", m]), !notint[m]); print "gort." m, g, unit[m] }
            if (has["go", m])   { o = fmt(median(vals["go", m]), !notint[m]);   print "go." m, o, unit[m] }
            if (g != "" && o != "" && o + 0 != 0) {
                r = sprintf("%.2f", g / o); print "ratio." m, r, "x"
            }
            G[m] = g == "" ? "-" : g; O[m] = o == "" ? "-" : o; R[m] = r == "" ? "-" : r
        }
        print "#"
        printf "# %-22s %12s %12s %8s  %s\n", "metric", "gort", "go", "gort/go", "unit"
        for (i = 1; i <= n; i++) {
            m = order[i]
            printf "# %-22s %12s %12s %8s  %s\n", m, G[m], O[m], R[m], unit[m]
        }
        print "# (medians; gort/go < 1 means gort is lower)"
        while ((getline line < notes) > 0) print "# note: " line
    }
' "$results"

exit "$status"

#!/usr/bin/env bash
# gcbench.sh BUILD_DIR [RUNS]: the collector benchmarks (issue 8) side by side in one
# invocation: gcbintree on gort (BUILD_DIR/bin/bench-gcbintree), Go
# (BUILD_DIR/bin/gobench-gcbintree) and the Boehm collector (tools/bench/boehm/
# gcbintree_boehm.c, compiled here with -lgc into BUILD_DIR/bin/boehm-gcbintree), and
# gcpause on gort and Go. The implementations of a benchmark take turns, RUNS rounds
# (default 5); then stdout has, per metric, the medians and ratios:
#   gort.METRIC   median unit
#   go.METRIC     median unit
#   boehm.METRIC  median unit        (gcbintree only)
#   ratio.METRIC  gort/go x          (two decimals; < 1: gort is lower)
#   ratio_boehm.METRIC gort/boehm x
# followed by a table whose lines start with "# ". Raw values and progress go to stderr.
# A missing binary (Go not installed, libgc-dev missing, gort not built) drops its column
# with a note; one that fails or prints no metric is dropped from the later rounds. A
# missing gort binary or any failure makes the script exit 1 at the end, after printing
# what it has (a missing Go or Boehm column alone does not, as in run.sh).
#
# Environment: GCBENCH_BENCHES ("gcbintree gcpause"), GCBINTREE_ARGS (arguments for every
# gcbintree binary, e.g. "16 3"; default none: depth 18, 5 runs in each process),
# GCPAUSE_ARGS (e.g. "256 5"; default none: 1024 MiB live for 10 s; Go needs about 2.8 GB
# of RSS for it), GCBENCH_TIMEOUT (seconds per run, 600), GCBENCH_MAX_RSS_MIB (a run whose
# RSS passes it is killed and counts as failed, 12288: the machines have 24 GiB and are
# shared; a collector that falls behind would otherwise take them all), CC (gcc).
# Needs libgc-dev (scripts/deps.sh --bench) for the Boehm column.
set -eu

usage() {
    echo "usage: $0 BUILD_DIR [RUNS]" >&2
    exit 2
}

if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
BUILD=$1
RUNS=${2:-5}
case $RUNS in '' | *[!0-9]*) usage ;; esac
[ "$RUNS" -ge 1 ] || usage
[ -d "$BUILD" ] || { echo "gcbench.sh: $BUILD: not a directory" >&2; exit 2; }
BENCHES=${GCBENCH_BENCHES:-"gcbintree gcpause"}
TIMEOUT=${GCBENCH_TIMEOUT:-600}
MAX_RSS_MIB=${GCBENCH_MAX_RSS_MIB:-12288}
case $TIMEOUT$MAX_RSS_MIB in *[!0-9]*) usage ;; esac
CC=${CC:-gcc}
here=$(cd "$(dirname "$0")" && pwd)
BIN=$BUILD/bin
mkdir -p "$BIN"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
results=$tmp/results # lines: BENCH IMPL METRIC VALUE UNIT
notes=$tmp/notes     # lines shown under the table
: >"$results"
: >"$notes"
status=0

note() {
    echo "gcbench.sh: $*" >&2
    echo "$*" >>"$notes"
}

# The Boehm variant of gcbintree, rebuilt every time (it is one small file).
case " $BENCHES " in *" gcbintree "*)
    if $CC -std=gnu11 -O2 -g -Wall -Wextra -Werror -pthread -o "$BIN/boehm-gcbintree" \
        "$here/boehm/gcbintree_boehm.c" -lgc 2>"$tmp/cc.err"; then
        :
    else
        cat "$tmp/cc.err" >&2
        rm -f "$BIN/boehm-gcbintree"
        note "boehm-gcbintree not built (libgc-dev missing? scripts/deps.sh --bench)"
    fi
    ;;
esac

# watched BIN ARGS: run BIN ARGS (stdout $tmp/out, stderr $tmp/err), polling its VmRSS
# every 0.2 s; kill it past MAX_RSS_MIB or TIMEOUT seconds. Sets peak_kib and why (empty,
# or what it was killed for); returns its exit status.
watched() {
    local bin=$1 args=$2 pid rc=0 ticks=0 k v rest
    peak_kib=0
    why=""
    # shellcheck disable=SC2086
    "$bin" $args >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    while kill -0 "$pid" 2>/dev/null; do
        while read -r k v rest; do
            if [ "$k" = VmRSS: ]; then
                [ "$v" -gt "$peak_kib" ] && peak_kib=$v
                break
            fi
        done <"/proc/$pid/status" 2>/dev/null || true
        if [ "$peak_kib" -gt $((MAX_RSS_MIB * 1024)) ]; then
            why="killed: RSS over ${MAX_RSS_MIB} MiB (GCBENCH_MAX_RSS_MIB)"
        elif [ "$ticks" -ge $((TIMEOUT * 5)) ]; then
            why="killed: ran over ${TIMEOUT} s (GCBENCH_TIMEOUT)"
        fi
        if [ -n "$why" ]; then
            kill -9 "$pid" 2>/dev/null || true
            break
        fi
        sleep 0.2
        ticks=$((ticks + 1))
    done
    wait "$pid" || rc=$?
    return "$rc"
}

# run_one BENCH IMPL BIN ARGS: run BIN once, append its metrics to $results.
run_one() {
    local bench=$1 impl=$2 bin=$3 args=$4 rc=0
    watched "$bin" "$args" || rc=$?
    if [ "$rc" -ne 0 ] || [ -n "$why" ]; then
        echo "gcbench.sh: $bin $args failed (exit $rc${why:+, $why}, peak RSS" \
            "$((peak_kib / 1024)) MiB); its stderr ends with:" >&2
        tail -n 40 "$tmp/err" >&2
        return 1
    fi
    cat "$tmp/err" >&2
    echo "gcbench.sh: $impl: peak RSS $((peak_kib / 1024)) MiB (sampled every 0.2 s)" >&2
    awk -v bench="$bench" -v impl="$impl" -v bin="$bin" '
        NF == 3 && $2 ~ /^-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?$/ {
            print bench, impl, $1, $2, $3; n++; next
        }
        { printf "gcbench.sh: %s: ignoring stdout line: %s\n", bin, $0 | "cat 1>&2" }
        END { exit n > 0 ? 0 : 1 }
    ' "$tmp/out" >>"$results" || {
        echo "gcbench.sh: $bin printed no metric" >&2
        return 1
    }
    sed "s|^|gcbench.sh: $impl: |" "$tmp/out" >&2
}

for bench in $BENCHES; do
    case $bench in
    gcbintree) impls="gort go boehm" args=${GCBINTREE_ARGS:-} ;;
    gcpause) impls="gort go" args=${GCPAUSE_ARGS:-} ;;
    *)
        note "unknown benchmark $bench"
        status=1
        continue
        ;;
    esac
    live=""
    for impl in $impls; do
        case $impl in
        gort) bin=$BIN/bench-$bench ;;
        go) bin=$BIN/gobench-$bench ;;
        boehm) bin=$BIN/boehm-$bench ;;
        esac
        if [ -x "$bin" ]; then
            live="$live $impl"
        else
            note "$(basename "$bin") missing: no $impl column for $bench"
            if [ "$impl" = gort ]; then status=1; fi
        fi
    done
    for i in $(seq "$RUNS"); do
        for impl in $live; do
            case $impl in
            gort) bin=$BIN/bench-$bench ;;
            go) bin=$BIN/gobench-$bench ;;
            boehm) bin=$BIN/boehm-$bench ;;
            esac
            echo "gcbench.sh: $bench $impl run $i/$RUNS" >&2
            if ! run_one "$bench" "$impl" "$bin" "$args"; then
                note "$(basename "$bin") failed in run $i: dropped from $bench"
                status=1
                live=$(echo "$live" | tr ' ' '\n' | grep -vx "$impl" | tr '\n' ' ')
            fi
        done
    done
done

# Raw values, one line per implementation and metric, on stderr.
awk '
    { key = $2 "." $3; if (!(key in vals)) { order[++n] = key; unit[key] = $5 }
      vals[key] = vals[key] " " $4 }
    END { for (i = 1; i <= n; i++) printf "raw %s:%s %s\n", order[i], vals[order[i]], unit[order[i]] }
' "$results" >&2

# Medians, ratios, and the table on stdout.
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
    function ratio(a, b) { return (a != "" && b != "" && b + 0 != 0) ? sprintf("%.2f", a / b) : "" }
    {
        m = $3
        if (!(m in seen)) { seen[m] = 1; order[++n] = m; unit[m] = $5 }
        else if (unit[m] != $5)
            printf "gcbench.sh: %s: unit %s differs from %s\n", m, $5, unit[m] | "cat 1>&2"
        vals[$2, m] = vals[$2, m] " " $4
        has[$2, m] = 1
        if ($4 ~ /[.eE]/) notint[m] = 1
    }
    END {
        split("gort go boehm", impls, " ")
        for (i = 1; i <= n; i++) {
            m = order[i]
            for (j = 1; j <= 3; j++) {
                im = impls[j]; v[im] = ""
                if (has[im, m]) { v[im] = fmt(median(vals[im, m]), !notint[m]); print im "." m, v[im], unit[m] }
            }
            rg = ratio(v["gort"], v["go"]); rb = ratio(v["gort"], v["boehm"])
            if (rg != "") print "ratio." m, rg, "x"
            if (rb != "") print "ratio_boehm." m, rb, "x"
            G[m] = v["gort"] == "" ? "-" : v["gort"]; O[m] = v["go"] == "" ? "-" : v["go"]
            B[m] = v["boehm"] == "" ? "-" : v["boehm"]
            RG[m] = rg == "" ? "-" : rg; RB[m] = rb == "" ? "-" : rb
        }
        print "#"
        printf "# %-22s %10s %10s %10s %8s %10s  %s\n", "metric", "gort", "go", "boehm", "gort/go", "gort/boehm", "unit"
        for (i = 1; i <= n; i++) {
            m = order[i]
            printf "# %-22s %10s %10s %10s %8s %10s  %s\n", m, G[m], O[m], B[m], RG[m], RB[m], unit[m]
        }
        print "# (medians; a ratio < 1 means gort is lower)"
        while ((getline line < notes) > 0) print "# note: " line
    }
' "$results"

exit "$status"

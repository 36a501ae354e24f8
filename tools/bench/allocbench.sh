#!/usr/bin/env bash
# allocbench.sh BUILD_DIR [ROUNDS]: the allocator comparison (issue 7). Builds each
# allocator benchmark (bintree xmalloc larson rss; see alloc.h) four times, against gort,
# mimalloc, jemalloc and glibc, runs the variants alternately ROUNDS times (default 3;
# each program already reports the median of its own runs), and prints per metric the
# median of each variant and its ratio to mimalloc:
#   ALLOC.METRIC  median unit
# then a table (lines starting with "# "). The Go twin (gobench-bintree) joins when built.
# Needs BUILD_DIR/libgort.a (make lib) and libmimalloc-dev, libjemalloc-dev
# (scripts/deps.sh --bench). Raw values go to stderr.
set -eu

# No SIGURG preemption: mimalloc and jemalloc keep per-thread state in TLS, and gort's
# async preemption (which knows only gort's and libc's code as unsafe points) could move
# a goroutine to another thread in the middle of their malloc (seen: jemalloc hangs).
# The same setting for every variant; none of these programs needs preemption.
export GORT_DEBUG=${GORT_DEBUG:-asyncpreemptoff=1}

[ $# -ge 1 ] && [ $# -le 2 ] || { echo "usage: $0 BUILD_DIR [ROUNDS]" >&2; exit 2; }
BUILD=$1
ROUNDS=${2:-3}
CC=${CC:-gcc}
BENCHES=${ALLOC_BENCHES:-"bintree xmalloc larson rss"}
ALLOCS="gort mimalloc jemalloc glibc"
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
out=$BUILD/bin/allocbench
mkdir -p "$out"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

flags="-std=gnu11 -O2 -g -D_GNU_SOURCE -pthread -I$root/include -I$root"
libs="$BUILD/libgort.a -luring -lnuma -lpthread -lm"
for b in $BENCHES; do
    for a in $ALLOCS; do
        case $a in
        gort) extra="-DALLOC_GORT" ;;
        mimalloc) extra="-DALLOC_MIMALLOC -lmimalloc" ;;
        jemalloc) extra="-DALLOC_JEMALLOC -l:libjemalloc_pic.a -ldl" ;;
        glibc) extra="-DALLOC_GLIBC" ;;
        esac
        # shellcheck disable=SC2086
        $CC $flags -o "$out/$b-$a" "$here/$b.c" $extra $libs
    done
done

: >"$tmp/results"
for r in $(seq "$ROUNDS"); do
    for b in $BENCHES; do
        for a in $ALLOCS go; do
            bin=$out/$b-$a
            [ "$a" = go ] && bin=$BUILD/bin/gobench-$b
            [ -x "$bin" ] || continue
            "$bin" >"$tmp/out" 2>>"$tmp/err" || { echo "allocbench: $bin failed" >&2; exit 1; }
            awk -v a="$a" 'NF == 3 { print a, $1, $2, $3 }' "$tmp/out" | tee -a "$tmp/results" >&2
        done
    done
done

# median per (alloc, metric); ratio to mimalloc
sort -k2,2 -k1,1 -k3,3g "$tmp/results" | awk '
    { key = $1 " " $2; v[key, ++n[key]] = $3; unit[$2] = $4; m[$2] = 1; al[$1] = 1 }
    END {
        split("gort mimalloc jemalloc glibc go", order, " ")
        for (k in n) { c = n[k]; med[k] = (c % 2) ? v[k, (c + 1) / 2] : (v[k, c / 2] + v[k, c / 2 + 1]) / 2 }
        for (metric in m) for (i = 1; i <= 5; i++) { a = order[i]; k = a " " metric
            if (k in med) printf "%s.%s %s %s\n", a, metric, med[k], unit[metric] }
        printf "# %-18s %10s %10s %10s %10s %10s   gort/mimalloc\n", "metric", "gort", "mimalloc", "jemalloc", "glibc", "go"
        for (metric in m) {
            line = sprintf("# %-18s", metric)
            for (i = 1; i <= 5; i++) { k = order[i] " " metric; line = line sprintf(" %10s", (k in med) ? med[k] : "-") }
            g = "gort " metric; mi = "mimalloc " metric
            if ((g in med) && (mi in med) && med[mi] > 0) line = line sprintf("   %.2f", med[g] / med[mi])
            print line " (" unit[metric] ")"
        }
    }'

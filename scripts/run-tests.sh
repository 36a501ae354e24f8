#!/usr/bin/env bash
# scripts/run-tests.sh DIR [NAME...]: run the test programs DIR/tests/test_* (sorted), each
# under a time limit, and report. Exits 1 if any failed.
#
#   TESTS="test_runq test_sched"   run only these (the test_ prefix may be left out);
#                                  names given as arguments do the same
#   TEST_TIMEOUT=300               seconds per program; running past it is a failure
#
# Exported to every test: GORT_TEST_HELPERS=DIR/tests/helpers (absolute), the directory of
# the helper programs that tests run as subprocesses. Unless already set, ASAN_OPTIONS turns
# leak detection off (goroutine stacks and the GC heap are mmap'd regions LeakSanitizer does
# not scan, so it would report false leaks) and UBSAN_OPTIONS asks for stack traces.
set -uo pipefail

if [ $# -lt 1 ] || [ "$1" = -h ] || [ "$1" = --help ]; then
    sed -n '2,12s/^# \{0,1\}//p' "$0"
    [ $# -ge 1 ] && exit 0
    exit 2
fi

dir=$1
shift
if [ ! -d "$dir/tests" ]; then
    echo "run-tests: $dir/tests: no such directory (build first: make)" >&2
    exit 2
fi
dir=$(cd "$dir" && pwd)
timeout_s=${TEST_TIMEOUT:-300}

export GORT_TEST_HELPERS="$dir/tests/helpers"
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1}"

# The selection: arguments, else $TESTS, else everything.
names=("$@")
if [ ${#names[@]} -eq 0 ] && [ -n "${TESTS:-}" ]; then
    read -r -a names <<<"$TESTS"
fi

progs=()
failed=()
npass=0
nfail=0

if [ ${#names[@]} -gt 0 ]; then
    for n in "${names[@]}"; do
        n=${n##*/}
        n=${n%.c}
        case "$n" in test_*) ;; *) n="test_$n" ;; esac
        if [ -f "$dir/tests/$n" ] && [ -x "$dir/tests/$n" ]; then
            progs+=("$dir/tests/$n")
        else
            echo "run-tests: no test program $dir/tests/$n" >&2
            failed+=("$n(missing)")
            nfail=$((nfail + 1))
        fi
    done
else
    while IFS= read -r f; do
        [ -n "$f" ] && progs+=("$f")
    done < <(find "$dir/tests" -maxdepth 1 -type f -name 'test_*' -perm -u+x | LC_ALL=C sort)
    if [ ${#progs[@]} -eq 0 ]; then
        echo "run-tests: no test programs in $dir/tests" >&2
    fi
fi

now() { date +%s.%N; }

for prog in "${progs[@]+"${progs[@]}"}"; do
    name=${prog##*/}
    echo "=== RUN   $name"
    start=$(now)
    timeout --kill-after=10 "$timeout_s" "$prog" </dev/null
    rc=$?
    secs=$(awk -v a="$start" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }')
    if [ $rc -eq 0 ]; then
        echo "--- PASS  $name (${secs}s)"
        npass=$((npass + 1))
        continue
    fi
    nfail=$((nfail + 1))
    failed+=("$name")
    if [ $rc -eq 124 ] || { [ $rc -eq 137 ] && awk -v s="$secs" -v t="$timeout_s" 'BEGIN { exit !(s >= t) }'; }; then
        why="timed out after ${timeout_s}s"
    elif [ $rc -gt 128 ]; then
        why="killed by signal SIG$(kill -l $((rc - 128)) 2>/dev/null || echo $((rc - 128)))"
    else
        why="exit status $rc"
    fi
    echo "--- FAIL  $name ($why, ${secs}s)"
done

if [ $nfail -gt 0 ]; then
    echo "failed: ${failed[*]}"
fi
echo "tests: $npass passed, $nfail failed"
[ $nfail -eq 0 ]

#!/usr/bin/env bash
# scripts/deps.sh [--bench] [--format]: check that what gort needs to build and test is
# installed. Missing pieces are installed with apt-get when running as root (Debian 12);
# otherwise the exact command to run is printed and the script exits 1.
# Silent when everything is present.
#
#   always:    gcc, make, libc headers, pkg-config, liburing, libnuma, cmocka
#   --bench:   go (golang-go) for the Go twins of the benchmarks; mimalloc and jemalloc
#              (libmimalloc-dev, libjemalloc-dev) for the allocator comparison
#              (tools/bench/allocbench.sh); valgrind and wrk are only mentioned when
#              absent, never required
#   --format:  clang-format
set -euo pipefail

want_bench=0
want_format=0
for arg in "$@"; do
    case "$arg" in
    --bench) want_bench=1 ;;
    --format) want_format=1 ;;
    -h | --help)
        sed -n '2,10s/^# \{0,1\}//p' "$0"
        exit 0
        ;;
    *)
        echo "deps.sh: unknown option '$arg' (use --bench, --format)" >&2
        exit 2
        ;;
    esac
done

have_cmd() { command -v "$1" >/dev/null 2>&1; }

have_header() {
    local d
    for d in /usr/include /usr/include/x86_64-linux-gnu /usr/local/include; do
        [ -f "$d/$1" ] && return 0
    done
    return 1
}

missing=() # "what (package)" for the report
pkgs=()    # Debian packages to install

need() { # need <package> <description>
    local p
    for p in "${pkgs[@]+"${pkgs[@]}"}"; do
        [ "$p" = "$1" ] && return 0
    done
    pkgs+=("$1")
    missing+=("$2 ($1)")
}

check() {
    missing=()
    pkgs=()
    have_cmd gcc || need gcc "gcc"
    have_cmd make || need make "make"
    have_header stdio.h || need libc6-dev "C library headers"
    have_cmd pkg-config || need pkg-config "pkg-config"
    have_header liburing.h || need liburing-dev "liburing.h"
    have_header numa.h || need libnuma-dev "numa.h"
    have_header cmocka.h || need libcmocka-dev "cmocka.h"
    if [ "$want_format" = 1 ]; then
        have_cmd "${CLANG_FORMAT:-clang-format}" || need clang-format "clang-format"
    fi
    if [ "$want_bench" = 1 ]; then
        have_cmd go || need golang-go "go"
        have_header mimalloc.h || need libmimalloc-dev "mimalloc.h"
        have_header jemalloc/jemalloc.h || need libjemalloc-dev "jemalloc/jemalloc.h"
        have_header gc.h || need libgc-dev "gc.h"
    fi
}

check

if [ "${#pkgs[@]}" -gt 0 ]; then
    if [ "$(id -u)" != 0 ] || ! have_cmd apt-get; then
        echo "deps.sh: missing: ${missing[*]}" >&2
        if have_cmd apt-get; then
            echo "deps.sh: install them with:" >&2
            echo "    sudo apt-get install -y ${pkgs[*]}" >&2
        else
            echo "deps.sh: no apt-get here; install the equivalents of these Debian packages:" \
                "${pkgs[*]}" >&2
        fi
        exit 1
    fi

    echo "deps.sh: installing ${pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt_install() {
        apt-get install -y -q --no-install-recommends "${pkgs[@]}"
    }
    # Refresh the package lists only when there are none yet, or when the install fails
    # on stale ones.
    if ! compgen -G '/var/lib/apt/lists/*_Packages*' >/dev/null; then
        apt-get update -q
    fi
    if ! apt_install; then
        apt-get update -q
        apt_install
    fi

    hash -r
    check
    if [ "${#pkgs[@]}" -gt 0 ]; then
        echo "deps.sh: still missing after apt-get install: ${missing[*]}" >&2
        exit 1
    fi
fi

if [ "$want_bench" = 1 ]; then
    optional=()
    have_cmd valgrind || optional+=(valgrind)
    have_cmd wrk || optional+=(wrk)
    if [ "${#optional[@]}" -gt 0 ]; then
        echo "deps.sh: optional for benchmarks, not installed: ${optional[*]}" \
            "(apt-get install -y ${optional[*]})"
    fi
fi
exit 0

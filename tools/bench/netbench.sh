#!/usr/bin/env bash
# netbench.sh BUILD_DIR [RUNS]: gort's servers against nginx, redis and a Go twin, side by side
# in one invocation, on loopback (client and server share the machine).
#
#   (a) HTTP: `wrk -t1 -c64 -d5s` against BUILD_DIR/bin/gort-httpd, nginx (worker_processes 2,
#       `return 200 "Hello, World!"`, access_log off, run from a temporary prefix with -p/-c
#       as a non-daemon) and gobench-httpraw (tools/bench/httpraw.go: raw TCP, a goroutine per
#       connection, no net/http; built into a temporary directory if BUILD_DIR/bin lacks it).
#       Metrics: httpd_rps, nginx_rps, gohttp_rps (req/s), ratio_httpd_nginx,
#       ratio_httpd_gohttp (x).
#   (b) RESP: `redis-benchmark -t set,get -c 50 -n 100000 -q`, plain and with -P 16, against
#       BUILD_DIR/bin/gort-kvd and redis-server (--save '' --appendonly no).
#       Metrics: kvd_set_rps, kvd_get_rps, kvd_set_p16_rps, kvd_get_p16_rps, the same with
#       redis_, and ratio_kvd_redis_set, _get, _set_p16, _get_p16 (x).
#
# Every server is started once, gets a short untimed warm-up, and is measured RUNS times
# (default 3), the servers taking turns within each round; the medians go to stdout as
# `name value unit` lines, everything else (progress, raw values, wrk/redis-benchmark
# complaints, each server's CPU time while idle) to stderr. A part whose server binary is not
# built, or whose client tool is missing, is skipped with a message (missing tools are
# installed with apt-get when run as root; otherwise the command to run is printed). Every
# server this script started is killed on exit, Ctrl-C included.
#
# Knobs (environment): NETBENCH_WRK_DURATION (5s), NETBENCH_REDIS_N (100000),
# NETBENCH_PARTS ("http kv"; either one alone to run only that part).
set -u

usage() {
    echo "usage: $0 BUILD_DIR [RUNS]" >&2
    exit 2
}
if [ $# -lt 1 ] || [ $# -gt 2 ]; then usage; fi
BUILD=$1
RUNS=${2:-3}
case $RUNS in '' | *[!0-9]*) usage ;; esac
[ "$RUNS" -ge 1 ] || usage
[ -d "$BUILD/bin" ] || { echo "netbench: $BUILD/bin: not a directory" >&2; exit 2; }
BIN=$(cd "$BUILD/bin" && pwd)
SRC=$(cd "$(dirname "$0")" && pwd)
WRK_DURATION=${NETBENCH_WRK_DURATION:-5s}
REDIS_N=${NETBENCH_REDIS_N:-100000}
PARTS=${NETBENCH_PARTS:-http kv}

log() { echo "netbench: $*" >&2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/netbench.XXXXXX")
pids=() # every server started, killed by cleanup

# stop_servers: TERM to every server started, up to 2 s each to exit, then KILL.
stop_servers() {
    local p
    for p in "${pids[@]}"; do
        kill -TERM "$p" 2>/dev/null
    done
    for p in "${pids[@]}"; do
        for _ in $(seq 20); do
            kill -0 "$p" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$p" 2>/dev/null
        wait "$p" 2>/dev/null
    done
    pids=()
}
cleanup() {
    stop_servers
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT
trap 'log terminated; exit 143' TERM

# need TOOL PACKAGE...: 0 when TOOL is on PATH (installing PACKAGEs with apt-get as root if
# it is not); else prints the command to run and returns 1.
need() {
    local tool=$1
    shift
    command -v "$tool" >/dev/null 2>&1 && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        log "$tool missing: apt-get install -y $*"
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"; } >&2
        command -v "$tool" >/dev/null 2>&1 && return 0
    fi
    log "$tool missing; install it (sudo apt-get install -y $*) and run again"
    return 1
}

# can_connect PORT: 0 when something accepts on 127.0.0.1:PORT.
can_connect() {
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

used_ports=" "
# free_port: sets PORT to a port in 20000..29999 (below the ephemeral range) that nobody
# listens on and this script has not handed out yet.
free_port() {
    local p
    for _ in $(seq 100); do
        p=$((20000 + RANDOM % 10000))
        case $used_ports in *" $p "*) continue ;; esac
        if ! can_connect "$p"; then
            used_ports="$used_ports$p "
            PORT=$p
            return 0
        fi
    done
    log "no free port found"
    return 1
}

# start NAME PORT LOG CMD...: starts CMD in the background (its output to LOG), records its
# pid, and waits up to 10 s for PORT to accept. 0 when up.
start() {
    local name=$1 port=$2 logf=$3
    shift 3
    "$@" >"$logf" 2>&1 &
    local pid=$!
    pids+=("$pid")
    for _ in $(seq 100); do
        if can_connect "$port"; then
            log "$name up on 127.0.0.1:$port (pid $pid)"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    log "$name did not come up on port $port; its output:"
    tail -n 20 "$logf" >&2
    return 1
}

# cpu_ticks PID: utime + stime of PID (and its children, for nginx's workers) in clock ticks.
cpu_ticks() {
    local total=0 p t
    for p in "$1" $(cat "/proc/$1/task/$1/children" 2>/dev/null); do
        t=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$p/stat" 2>/dev/null) || t=0
        total=$((total + ${t:-0}))
    done
    echo "$total"
}

results=$tmp/results # lines: METRIC VALUE UNIT (one per run)
: >"$results"
record() { # record METRIC VALUE UNIT
    echo "$1 $2 $3" >>"$results"
    log "raw $1 $2 $3"
}

# idle_cpu NAME PID...: CPU time the servers used over one idle second, on stderr.
idle_cpu() {
    local -a names=() before=()
    local i=0
    while [ $# -ge 2 ]; do
        names+=("$1:$2")
        before+=("$(cpu_ticks "$2")")
        shift 2
    done
    sleep 1
    local hz
    hz=$(getconf CLK_TCK)
    for i in "${!names[@]}"; do
        local pid=${names[$i]#*:}
        local d=$(($(cpu_ticks "$pid") - before[i]))
        log "idle CPU of ${names[$i]%%:*} over 1 s: $((d * 1000 / hz)) ms"
    done
}

# ---- (a) HTTP -------------------------------------------------------------------------

# wrk_rps PORT DURATION: requests/s from one wrk run (empty on failure).
wrk_rps() {
    local out
    out=$(wrk -t1 -c64 -d"$2" "http://127.0.0.1:$1/" 2>&1)
    case $out in *"Non-2xx"* | *"Socket errors"*)
        log "wrk on port $1 reported: $(echo "$out" | grep -E 'Non-2xx|Socket errors' | tr '\n' ' ')" ;;
    esac
    echo "$out" | awk '/^Requests\/sec:/ { print $2 }'
}

http_part() {
    need wrk wrk || return 0
    local -a names=() ports=() spids=()
    local port

    if [ -x "$BIN/gort-httpd" ]; then
        free_port || return 0
        port=$PORT
        if start gort-httpd "$port" "$tmp/httpd.log" "$BIN/gort-httpd" -a 127.0.0.1 -p "$port"; then
            names+=(httpd) ports+=("$port") spids+=("${pids[-1]}")
        fi
    else
        log "$BIN/gort-httpd not built yet: skipping it (httpd_rps)"
    fi

    if need nginx nginx; then
        free_port || return 0
        port=$PORT
        local prefix=$tmp/nginx
        mkdir -p "$prefix/logs"
        cat >"$prefix/nginx.conf" <<EOF
worker_processes 2;
daemon off;
pid $prefix/nginx.pid;
error_log $prefix/logs/error.log warn;
$([ "$(id -u)" -eq 0 ] && echo "user root;")
events { worker_connections 1024; }
http {
    access_log off;
    client_body_temp_path $prefix/client_body;
    proxy_temp_path $prefix/proxy;
    fastcgi_temp_path $prefix/fastcgi;
    uwsgi_temp_path $prefix/uwsgi;
    scgi_temp_path $prefix/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            default_type text/plain;
            return 200 "Hello, World!";
        }
    }
}
EOF
        if start nginx "$port" "$tmp/nginx.log" nginx -p "$prefix" -c "$prefix/nginx.conf" \
            -e "$prefix/logs/error.log"; then
            names+=(nginx) ports+=("$port") spids+=("${pids[-1]}")
        fi
    fi

    local goh=$BIN/gobench-httpraw
    if [ ! -x "$goh" ] && command -v go >/dev/null 2>&1; then
        goh=$tmp/gobench-httpraw
        log "building $goh"
        GO111MODULE=off GOFLAGS='' go build -o "$goh" "$SRC/httpraw.go" >&2 || goh=
    fi
    if [ -n "$goh" ] && [ -x "$goh" ]; then
        free_port || return 0
        port=$PORT
        if start gohttp "$port" "$tmp/gohttp.log" "$goh" -a 127.0.0.1 -p "$port"; then
            names+=(gohttp) ports+=("$port") spids+=("${pids[-1]}")
        fi
    else
        log "no go toolchain and no $BIN/gobench-httpraw: skipping gohttp_rps"
    fi
    [ ${#names[@]} -gt 0 ] || return 0

    local -a idle=()
    for i in "${!names[@]}"; do idle+=("${names[$i]}" "${spids[$i]}"); done
    idle_cpu "${idle[@]}"

    for i in "${!names[@]}"; do
        log "warm-up: ${names[$i]} (wrk 1s)"
        wrk_rps "${ports[$i]}" 1s >/dev/null
    done
    local run v
    for run in $(seq "$RUNS"); do
        for i in "${!names[@]}"; do
            log "http run $run/$RUNS: ${names[$i]} (wrk -t1 -c64 -d$WRK_DURATION)"
            v=$(wrk_rps "${ports[$i]}" "$WRK_DURATION")
            if [ -n "$v" ]; then
                record "${names[$i]}_rps" "$v" req/s
            else
                log "wrk against ${names[$i]} gave no Requests/sec"
            fi
        done
    done
    for i in "${!names[@]}"; do
        kill -0 "${spids[$i]}" 2>/dev/null || log "${names[$i]} died during the runs (see above)"
    done
}

# ---- (b) RESP -------------------------------------------------------------------------

# rb PORT [EXTRA...]: runs redis-benchmark; prints "SET rps" and "GET rps" lines.
rb() {
    local port=$1
    shift
    redis-benchmark -h 127.0.0.1 -p "$port" -t set,get -c 50 -n "$REDIS_N" -q "$@" 2>&1 |
        tr '\r' '\n' | awk '/^(SET|GET): [0-9.]+ requests per second/ { print $1, $2 }' |
        tr -d ':'
}

kv_part() {
    need redis-benchmark redis-tools || return 0
    local -a names=() ports=() spids=()
    local port

    if [ -x "$BIN/gort-kvd" ]; then
        free_port || return 0
        port=$PORT
        if start gort-kvd "$port" "$tmp/kvd.log" "$BIN/gort-kvd" -a 127.0.0.1 -p "$port"; then
            names+=(kvd) ports+=("$port") spids+=("${pids[-1]}")
        fi
    else
        log "$BIN/gort-kvd not built yet: skipping it (kvd_*_rps)"
    fi
    if need redis-server redis-server; then
        free_port || return 0
        port=$PORT
        if start redis-server "$port" "$tmp/redis.log" redis-server --save '' --appendonly no \
            --port "$port" --bind 127.0.0.1 --dir "$tmp"; then
            names+=(redis) ports+=("$port") spids+=("${pids[-1]}")
        fi
    fi
    [ ${#names[@]} -gt 0 ] || return 0

    local -a idle=()
    for i in "${!names[@]}"; do idle+=("${names[$i]}" "${spids[$i]}"); done
    idle_cpu "${idle[@]}"

    for i in "${!names[@]}"; do
        log "warm-up: ${names[$i]}"
        rb "${ports[$i]}" >/dev/null
    done
    local run mode cmd val got
    for run in $(seq "$RUNS"); do
        for mode in plain p16; do
            for i in "${!names[@]}"; do
                log "kv run $run/$RUNS: ${names[$i]} $mode"
                got=0
                while read -r cmd val; do
                    cmd=$(echo "$cmd" | tr '[:upper:]' '[:lower:]')
                    if [ "$mode" = plain ]; then
                        record "${names[$i]}_${cmd}_rps" "$val" req/s
                    else
                        record "${names[$i]}_${cmd}_p16_rps" "$val" req/s
                    fi
                    got=$((got + 1))
                done < <(if [ "$mode" = plain ]; then rb "${ports[$i]}"; else rb "${ports[$i]}" -P 16; fi)
                [ "$got" -eq 2 ] || log "redis-benchmark against ${names[$i]} ($mode) gave $got of 2 results"
            done
        done
    done
    for i in "${!names[@]}"; do
        kill -0 "${spids[$i]}" 2>/dev/null || log "${names[$i]} died during the runs (see above)"
    done
}

for part in $PARTS; do
    case $part in
    http) http_part ;;
    kv) kv_part ;;
    *) log "unknown part $part (known: http kv)" ;;
    esac
    stop_servers
done

# Medians and ratios on stdout.
awk '
    function median(list,    a, k, i, j, t) {
        k = split(list, a, " ")
        for (i = 2; i <= k; i++) {
            t = a[i] + 0
            for (j = i - 1; j >= 1 && a[j] + 0 > t; j--) a[j + 1] = a[j]
            a[j + 1] = t
        }
        if (k % 2) return a[(k + 1) / 2] + 0
        return (a[k / 2] + a[k / 2 + 1]) / 2
    }
    {
        if (!($1 in vals)) { order[++n] = $1; unit[$1] = $3 }
        vals[$1] = vals[$1] " " $2
    }
    function ratio(name, a, b) {
        if ((a in med) && (b in med) && med[b] > 0) printf "%s %.2f x\n", name, med[a] / med[b]
    }
    END {
        for (i = 1; i <= n; i++) {
            m = order[i]; med[m] = median(vals[m])
            printf "%s %.0f %s\n", m, med[m], unit[m]
        }
        ratio("ratio_httpd_nginx", "httpd_rps", "nginx_rps")
        ratio("ratio_httpd_gohttp", "httpd_rps", "gohttp_rps")
        ratio("ratio_gohttp_nginx", "gohttp_rps", "nginx_rps")
        ratio("ratio_kvd_redis_set", "kvd_set_rps", "redis_set_rps")
        ratio("ratio_kvd_redis_get", "kvd_get_rps", "redis_get_rps")
        ratio("ratio_kvd_redis_set_p16", "kvd_set_p16_rps", "redis_set_p16_rps")
        ratio("ratio_kvd_redis_get_p16", "kvd_get_p16_rps", "redis_get_p16_rps")
    }
' "$results"

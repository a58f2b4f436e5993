#!/usr/bin/env bash
# Runs cmd/carillon-bench against a Carillon cluster on this machine: N
# `carillon serve` nodes on one PostgreSQL database and one Redis, behind
# nginx (round-robin, the shipped deploy/nginx/carillon-locations.conf), all
# on loopback. Everything it starts is its own and is removed on exit: the
# database, the Redis keys (under a prefix of its own), the nodes, nginx and
# a temporary directory.
#
# Usage (from anywhere in the repository; the arguments are the bench's):
#
#   deploy/bench-cluster.sh ingest --rooms 2000 --webhooks-per-room 10 \
#       --connections 32 --duration 30s --warmup 5s
#   NODES=1 deploy/bench-cluster.sh ingest ...     # one node, same setup
#   deploy/bench-cluster.sh fanout --streams 2000 --rate 100 --duration 30s --drain 10s
#   deploy/bench-cluster.sh idle --streams 3000 --hold 20s
#
# The script adds --url (nginx) and --server-pid -1 to the bench's flags: the
# bench can follow one server process only, so the script itself reads, once
# a second, the CPU time (utime + stime in /proc/<pid>/stat) of every node,
# of nginx (master and workers), of PostgreSQL (every process of the server,
# and the children it has reaped), of Redis and of the bench, plus the
# machine's busy time from /proc/stat; and each node's VmRSS. After the run
# it prints the CPU split over the bench's measurement window (taken from
# its progress lines; the whole run if none is recognised), each node's
# memory, and the database's size and message count.
#
# Environment (all optional):
#   NODES=3                   number of nodes
#   NODE_PORT=18101           first node's port (the others follow)
#   NGINX_PORT=18100          nginx's port
#   NGINX_WORKERS=auto        nginx worker_processes
#   PGURL=postgres://postgres@127.0.0.1:5432   server to create the database on
#   DB_NAME=carillon_bench_<random>            database to create (must not exist)
#   DB_PARAMS                 query string added to the nodes' DSN, such as
#                             pool_max_conns=16 (pgxpool's default: 4 on 2 CPUs)
#   REDIS_URL=redis://127.0.0.1:6379/0
#   BUILD=1                   build the binaries first (0: use them as they are)
#   CARILLON_BIN=/tmp/carillon  BENCH_BIN=/tmp/carillon-bench
#   CARILLON_ADMIN_TOKEN      the admin's API token (≥ 32 characters; one is
#                             made up if unset), CARILLON_ADMIN_EMAIL
#   OUT_DIR                   if set, node logs, nginx's error log and the
#                             CPU samples are copied there at the end
#
# PostgreSQL and Redis are shared servers: their CPU includes whatever else
# uses them meanwhile. Run one measurement at a time.
set -euo pipefail

if [[ $# -lt 1 ]]; then
    sed -n '2,/^set -euo/p' "$0" | sed '$d' | sed 's/^# \{0,1\}//'
    exit 2
fi
scenario=$1
shift

repo=$(cd "$(dirname "$0")/.." && pwd)
NODES=${NODES:-3}
NODE_PORT=${NODE_PORT:-18101}
NGINX_PORT=${NGINX_PORT:-18100}
NGINX_WORKERS=${NGINX_WORKERS:-auto}
NGINX_BIN=${NGINX_BIN:-$(command -v nginx || echo /usr/sbin/nginx)}
PGURL=${PGURL:-postgres://postgres@127.0.0.1:5432}
rand_hex() { head -c "$1" /dev/urandom | od -An -tx1 | tr -d ' \n'; }
DB_NAME=${DB_NAME:-carillon_bench_$(rand_hex 4)}
REDIS_URL=${REDIS_URL:-redis://127.0.0.1:6379/0}
BUILD=${BUILD:-1}
CARILLON_BIN=${CARILLON_BIN:-/tmp/carillon}
BENCH_BIN=${BENCH_BIN:-/tmp/carillon-bench}
export CARILLON_ADMIN_TOKEN=${CARILLON_ADMIN_TOKEN:-bench-admin-token-$(rand_hex 16)}
export CARILLON_ADMIN_EMAIL=${CARILLON_ADMIN_EMAIL:-admin@example.com}
if [[ ${#CARILLON_ADMIN_TOKEN} -lt 32 ]]; then
    echo "CARILLON_ADMIN_TOKEN must have at least 32 characters" >&2
    exit 2
fi
if [[ ! $DB_NAME =~ ^[a-z_][a-z0-9_]*$ ]]; then
    echo "DB_NAME must be a plain lower-case identifier" >&2
    exit 2
fi
redis_prefix="carillon-bench-$DB_NAME:"
base_url="http://127.0.0.1:$NGINX_PORT"
hz=$(getconf CLK_TCK)

log() { echo "bench-cluster: $*" >&2; }

# --- Cleanup: whatever was started, in reverse order --------------------------
work=$(mktemp -d /tmp/bench-cluster.XXXXXX)
node_pids=()
nginx_pid=
sampler_pid=
bench=
db_created=0
cleanup() {
    local rc=$?
    set +e
    [[ -n $sampler_pid ]] && kill "$sampler_pid" 2>/dev/null
    [[ -n $bench ]] && kill -TERM "$bench" 2>/dev/null && wait "$bench" 2>/dev/null
    if [[ -n $nginx_pid ]]; then
        kill -TERM "$nginx_pid" 2>/dev/null
    fi
    for pid in "${node_pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null
    done
    for pid in $nginx_pid "${node_pids[@]}"; do
        for _ in $(seq 100); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null
        wait "$pid" 2>/dev/null
    done
    if [[ -n ${OUT_DIR:-} ]]; then
        mkdir -p "$OUT_DIR"
        cp "$work"/*.log "$work"/cpu.tsv "$work"/nginx.conf "$OUT_DIR"/ 2>/dev/null
        log "logs and samples copied to $OUT_DIR"
    fi
    if [[ $db_created == 1 ]]; then
        psql -q "$PGURL/postgres" -c "DROP DATABASE IF EXISTS $DB_NAME WITH (FORCE)" >/dev/null ||
            log "could not drop database $DB_NAME"
    fi
    # Only this run's keys (the prefix holds the database's random name).
    redis-cli -u "$REDIS_URL" --scan --pattern "${redis_prefix}*" 2>/dev/null |
        xargs -r -n 500 redis-cli -u "$REDIS_URL" del >/dev/null 2>&1
    rm -rf "$work"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- Build ---------------------------------------------------------------------
if [[ $BUILD == 1 ]]; then
    log "building $CARILLON_BIN and $BENCH_BIN"
    (cd "$repo" && go build -o "$CARILLON_BIN" ./cmd/carillon && go build -o "$BENCH_BIN" ./cmd/carillon-bench)
    log "built from $(cd "$repo" && git rev-parse --short HEAD 2>/dev/null || echo unknown)$(cd "$repo" && [[ -n $(git status --porcelain --untracked-files=no 2>/dev/null) ]] && echo ' with uncommitted changes')"
else
    log "using $CARILLON_BIN and $BENCH_BIN as they are (BUILD=0)"
fi

# Streams hold a descriptor each in the bench, nginx (two) and a node.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true

# Another server on one of the ports would answer the readiness checks.
for port in "$NGINX_PORT" $(seq "$NODE_PORT" $((NODE_PORT + NODES - 1))); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
        log "port $port is in use (set NODE_PORT / NGINX_PORT)"
        exit 1
    fi
done

# --- Database, key ---------------------------------------------------------------
psql -q "$PGURL/postgres" -c "CREATE DATABASE $DB_NAME" >/dev/null
db_created=1
dsn="$PGURL/$DB_NAME"
node_dsn="$dsn${DB_PARAMS:+?$DB_PARAMS}"
head -c 32 /dev/urandom >"$work/secret.key"
chmod 600 "$work/secret.key"
log "database $DB_NAME, Redis prefix $redis_prefix, work directory $work"

# --- Nodes -----------------------------------------------------------------------
wait_ready() { # url pid what
    for _ in $(seq 300); do
        if [[ $(curl -s -o /dev/null -w '%{http_code}' "$1/readyz") == 200 ]]; then
            return 0
        fi
        if [[ -n ${2:-} ]] && ! kill -0 "$2" 2>/dev/null; then
            log "$3 exited; its log:"
            tail -20 "$work/$3.log" >&2
            exit 1
        fi
        sleep 0.1
    done
    log "$3 not ready on $1 after 30 s"
    exit 1
}
start_node() { # index
    local i=$1 port=$((NODE_PORT + $1 - 1))
    mkdir -p "$work/data$i"
    "$CARILLON_BIN" serve --addr "127.0.0.1:$port" --data "$work/data$i" \
        --database "$node_dsn" --redis "$REDIS_URL" --redis-prefix "$redis_prefix" \
        --secret-key-file "$work/secret.key" --public-url "$base_url" \
        --trusted-proxy 127.0.0.1/32 --drain-delay 0s \
        >"$work/node$i.log" 2>&1 &
    node_pids+=($!)
}
# The first node creates the schema and the admin; the others then start together.
start_node 1
wait_ready "http://127.0.0.1:$NODE_PORT" "${node_pids[0]}" node1
for ((i = 2; i <= NODES; i++)); do start_node "$i"; done
for ((i = 2; i <= NODES; i++)); do
    wait_ready "http://127.0.0.1:$((NODE_PORT + i - 1))" "${node_pids[i - 1]}" "node$i"
done
log "$NODES node(s) ready on ports $NODE_PORT..$((NODE_PORT + NODES - 1)), pids ${node_pids[*]}"

# --- nginx -----------------------------------------------------------------------
# A configuration of its own around the shipped snippet, as in
# cmd/carillon/nginx_cluster_test.go; enough connections for thousands of
# streams (each takes a client and an upstream connection); no access log.
mkdir -p "$work/temp"
{
    [[ $(id -u) == 0 ]] && echo "user root;" # workers could not enter $work as nobody
    cat <<EOF
worker_processes $NGINX_WORKERS;
worker_rlimit_nofile $(ulimit -Hn);
pid $work/nginx.pid;
error_log $work/nginx-error.log warn;
events { worker_connections 20000; }
http {
    client_body_temp_path $work/temp/client_body;
    proxy_temp_path $work/temp/proxy;
    fastcgi_temp_path $work/temp/fastcgi;
    uwsgi_temp_path $work/temp/uwsgi;
    scgi_temp_path $work/temp/scgi;
    access_log off;
    upstream carillon {
EOF
    for ((i = 0; i < NODES; i++)); do echo "        server 127.0.0.1:$((NODE_PORT + i));"; done
    cat <<EOF
        keepalive 64;
    }
    server {
        listen 127.0.0.1:$NGINX_PORT;
        include $repo/deploy/nginx/carillon-locations.conf;
    }
}
EOF
} >"$work/nginx.conf"
"$NGINX_BIN" -e "$work/nginx-error.log" -p "$work" -c "$work/nginx.conf" -g 'daemon off;' \
    >"$work/nginx.log" 2>&1 &
nginx_pid=$!
wait_ready "$base_url" "$nginx_pid" nginx
log "nginx ready on $base_url (pid $nginx_pid)"

# --- Sampler -----------------------------------------------------------------------
# One line a second: epoch, then cumulative CPU ticks of nodes (each), nginx,
# PostgreSQL, Redis, bench, the machine's busy ticks, then each node's
# VmRSS (kB). The bench's pid is read from $work/bench.pid once it exists.
# PostgreSQL's postmaster (from its data directory, readable as root or
# postgres; otherwise the oldest postgres process), Redis's server.
pg_pid=$(head -1 "$(psql -Atq "$PGURL/postgres" -c 'SHOW data_directory')/postmaster.pid" 2>/dev/null ||
    pgrep -o -x postgres || true)
redis_pid=$(pgrep -o -x redis-server || true)
ticks() { # pid... : utime + stime (own; with cutime + cstime if CHILDREN=1)
    local sum=0 p f
    for p in "$@"; do
        { read -r -a f <"/proc/$p/stat"; } 2>/dev/null || continue
        # Field 2 (comm) has no spaces for these processes: utime is f[13].
        sum=$((sum + f[13] + f[14]))
        [[ ${CHILDREN:-0} == 1 ]] && sum=$((sum + f[15] + f[16]))
    done
    echo $sum
}
sampler() {
    local line p cpu bench_pid
    while :; do
        line="$(date +%s.%N)"
        for p in "${node_pids[@]}"; do line+=" $(ticks "$p")"; done
        line+=" $(ticks "$nginx_pid" $(pgrep -P "$nginx_pid"))"
        if [[ -n $pg_pid ]]; then
            line+=" $(($(CHILDREN=1 ticks "$pg_pid") + $(ticks $(pgrep -P "$pg_pid"))))"
        else line+=" 0"; fi
        if [[ -n $redis_pid ]]; then line+=" $(ticks "$redis_pid")"; else line+=" 0"; fi
        bench_pid=$(cat "$work/bench.pid" 2>/dev/null || true)
        if [[ -n $bench_pid ]]; then line+=" $(ticks "$bench_pid")"; else line+=" 0"; fi
        read -r -a cpu <<<"$(head -1 /proc/stat)"
        # cpu user nice system idle iowait irq softirq steal: busy = all but idle and iowait
        line+=" $((cpu[1] + cpu[2] + cpu[3] + cpu[6] + cpu[7] + cpu[8]))"
        for p in "${node_pids[@]}"; do
            line+=" $(awk '/^VmRSS/ {print $2}' "/proc/$p/status" 2>/dev/null || echo 0)"
        done
        echo "$line" >>"$work/cpu.tsv"
        sleep 1
    done
}
sampler &
sampler_pid=$!

# --- The bench -----------------------------------------------------------------------
log "running: carillon-bench $scenario --url $base_url --server-pid -1 $*"
set +e
bench_args=("$@")
"$BENCH_BIN" "$scenario" --url "$base_url" --server-pid -1 "$@" 2> >(
    while IFS= read -r l; do echo "$l" >&2; echo "$(date +%s) $l" >>"$work/bench-progress.log"; done
) &
bench=$!
echo $bench >"$work/bench.pid"
wait $bench
bench_rc=$?
bench=
set -e
sleep 1.2 # one more sample after the end
kill "$sampler_pid" 2>/dev/null || true
wait "$sampler_pid" 2>/dev/null || true
sampler_pid=
sleep 0.2 # let the progress filter finish

# --- Report ------------------------------------------------------------------------
# The measurement window (epoch seconds), from the times the bench's progress
# lines were read and the scenario's flags.
arg() { # flag default: the flag's value among the bench's arguments
    local a want=$1 v=$2 next=0
    for a in "${bench_args[@]}"; do
        if [[ $next == 1 ]]; then v=$a next=0; continue; fi
        case $a in
        -$want | --$want) next=1 ;;
        -$want=* | --$want=*) v=${a#*=} ;;
        esac
    done
    echo "$v"
}
seconds() { # Go duration (1m30s, 20s, 500ms) -> whole seconds
    awk -v d="$1" 'BEGIN { t = 0
        while (match(d, /^[0-9.]+(ms|h|m|s)/)) { u = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
            n = u + 0; if (u ~ /ms$/) t += n / 1000; else if (u ~ /h$/) t += n * 3600; else if (u ~ /m$/) t += n * 60; else t += n }
        printf "%d", t }'
}
line_time() { # regexp first|last: when the bench printed the matching line
    local m
    m=$(grep -E "$1" "$work/bench-progress.log" 2>/dev/null || true)
    [[ -n $m ]] || return 0
    if [[ $2 == first ]]; then m=$(head -1 <<<"$m"); else m=$(tail -1 <<<"$m"); fi
    cut -d' ' -f1 <<<"$m"
}
t0= t1=
case $scenario in
ingest) # warm-up, then the window (progress lines count from the start of the load)
    t=$(line_time 'load on the server' first)
    if [[ -n $t ]]; then
        t0=$((t + $(seconds "$(arg warmup 5s)")))
        t1=$((t0 + $(seconds "$(arg duration 1m)")))
    fi ;;
fanout) t0=$(line_time 'posting [0-9.]+ messages/s' first) t1=$(line_time 'posting done' last) ;;
idle)
    t0=$(line_time 'event streams open; holding' first)
    hold=$(grep -oE 'holding them for [0-9.hms]+' "$work/bench-progress.log" 2>/dev/null | head -1 | awk '{print $4}' || true)
    [[ -n $t0 && -n $hold ]] && t1=$((t0 + $(seconds "$hold"))) ;;
esac
# Streams: the nodes' memory before the bench opened them (it prints how
# long the opening took once done).
tb=
if l=$(grep -E 'opening [0-9]+ event streams: [0-9]+ done in [0-9.]+s' "$work/bench-progress.log" 2>/dev/null | head -1) && [[ -n $l ]]; then
    took=$(grep -oE 'done in [0-9.]+s' <<<"$l" | grep -oE '[0-9.]+')
    tb=$((${l%% *} - $(awk -v s="$took" 'BEGIN { printf "%d", s + 0.999 }') - 1))
fi
window="measurement window from the bench's progress lines"
if [[ -z $t0 || -z $t1 || $t1 -le $t0 ]]; then
    t0=0 t1=9999999999 window="whole bench run (no window recognised)"
fi
echo
echo "== cluster: $NODES node(s) on PostgreSQL ($DB_NAME) + Redis behind nginx ($NGINX_WORKERS workers), $(nproc) CPUs, $(date -u +%FT%TZ)"
awk -v t0="$t0" -v t1="$t1" -v tb="${tb:-0}" -v n="$NODES" -v hz="$hz" -v window="$window" '
    { t = int($1) }
    NR == 1 || (tb > 0 && t <= tb) { for (i = 1; i <= n; i++) rssfirst[i] = $(n + 6 + i) }
    # The first sample at or after t0, the last at or before t1 (+1 s slack).
    t >= t0 && !have0 { have0 = 1; for (i = 1; i <= NF; i++) a[i] = $i; for (i = 1; i <= n; i++) rss0[i] = $(n + 6 + i) }
    # A counter that drops belongs to a process that has ended: keep its last value.
    have0 && t <= t1 + 1 { for (i = 1; i <= NF; i++) if ($i >= b[i] || i > n + 6) b[i] = $i; for (i = 1; i <= n; i++) if ($(n + 6 + i) > rssmax[i]) rssmax[i] = $(n + 6 + i) }
    END {
        if (!have0) { print "no CPU samples in the window"; exit }
        el = b[1] - a[1]
        if (el <= 0) { print "window too short for CPU figures"; exit }
        printf "CPU over %.1f s (%s), in cores (CPU seconds):\n", el, window
        nodes = 0
        for (i = 1; i <= n; i++) {
            c = (b[i + 1] - a[i + 1]) / hz; nodes += c
            printf "  node %d       %.2f (%.1f s)\n", i, c / el, c
        }
        split("nginx PostgreSQL Redis generator", names, " ")
        sum = nodes
        for (j = 1; j <= 4; j++) { g[j] = (b[n + 1 + j] - a[n + 1 + j]) / hz; sum += g[j] }
        machine = (b[n + 6] - a[n + 6]) / hz
        printf "  nodes total  %.2f (%.1f s)\n", nodes / el, nodes
        for (j = 1; j <= 4; j++) printf "  %-12s %.2f (%.1f s)\n", names[j], g[j] / el, g[j]
        printf "  machine busy %.2f; other processes and kernel %.2f\n", machine / el, (machine - sum) / el
        printf "node memory (VmRSS, MB): %s, at the window start -> max in the window\n", (tb > 0 ? "before the streams opened" : "at the bench start")
        for (i = 1; i <= n; i++) printf "  node %d       %.1f, %.1f -> %.1f\n", i, rssfirst[i] / 1024, rss0[i] / 1024, rssmax[i] / 1024
    }' "$work/cpu.tsv"
for ((i = 0; i < NODES; i++)); do
    hwm=$(awk '/^VmHWM/ {print $2}' "/proc/${node_pids[i]}/status" 2>/dev/null || echo 0)
    awk -v i=$((i + 1)) -v kb="$hwm" 'BEGIN { printf "  node %d VmHWM %.1f MB\n", i, kb / 1024 }'
done
# The database: whole size, and the messages and notifications tables with
# their indexes and TOAST.
psql -Atq "$dsn" -F ' ' -c "SELECT pg_database_size(current_database()),
        pg_total_relation_size('messages'), pg_total_relation_size('notifications'),
        (SELECT count(*) FROM messages)" |
    awk -v db="$DB_NAME" '{
        printf "database %s: %.1f MB (messages table %.1f MB, notifications %.1f MB), %d messages", db, $1 / 1048576, $2 / 1048576, $3 / 1048576, $4
        if ($4 > 0) printf "; per message: %.0f bytes overall, %.0f in messages + notifications", $1 / $4, ($2 + $3) / $4
        print ""
    }'
for ((i = 1; i <= NODES; i++)); do
    n=$(grep -ciE 'level=(WARN|ERROR)|panic' "$work/node$i.log" || true)
    if [[ $n -gt 0 ]]; then
        echo "node $i logged $n warnings or errors, the first:"
        grep -iE 'level=(WARN|ERROR)|panic' "$work/node$i.log" | head -3 | cut -c1-300 | sed 's/^/  /'
    fi
done
[[ -s $work/nginx-error.log ]] && grep -vE '\[notice\]' "$work/nginx-error.log" | head -10 | sed 's/^/nginx: /' || true
exit $bench_rc

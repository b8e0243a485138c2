#!/usr/bin/env bash
# The wallet scenario at N clients (default 100,000) over six gateways: through one Redis, then
# through a Redis Cluster of three masters (one replica each, sharded Pub/Sub), with the CPU of
# every Redis process over the run, from /proc/PID/stat.
#
#   scripts/bench/cluster.sh [N]
#   TARGETS=cluster GATEWAY_OPTIONS="--socket-send-buffer 0" scripts/bench/cluster.sh 100000
#
# Needs what run-all.sh needs (root for sysctl, redis-server); builds release if missing.
# Results: bench-results/cluster-<time>/wallet-*.json and summary.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
N=${1:-100000}
out=${OUT:-bench-results/cluster-$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
BIN=.build/release/tickwire
[ -x "$BIN" ] || swift build -c release --product tickwire 2>&1 | tail -n 1
scripts/bench/tune-system.sh >"$out/tune.txt"
log() { printf '==> %s\n' "$*" | tee -a "$out/summary.txt"; }
hz=$(getconf CLK_TCK)
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
redis_pid() { redis-cli -p "$1" info server | sed -n 's/^process_id:\([0-9]*\).*/\1/p' | tr -d '\r'; }

start_single() {
  redis-server --port 6399 --save "" --appendonly no --daemonize yes --dir /tmp >/dev/null
  sleep 0.3
  url=redis://127.0.0.1:6399
  ports=(6399)
}

start_cluster() {
  local dir=/tmp/tickwire-bench-cluster
  rm -rf "$dir" && mkdir -p "$dir"
  ports=(6400 6401 6402 6403 6404 6405)
  for port in "${ports[@]}"; do
    # The bus port is set below the ephemeral range tune-system.sh opens (10000-64999): port + 10000
    # could be taken as a client's source port (in TIME-WAIT) by the run before.
    redis-server --port "$port" --cluster-port $((port + 1000)) --cluster-enabled yes \
      --cluster-config-file "$dir/nodes-$port.conf" --save "" --appendonly no --dir "$dir" --daemonize yes >/dev/null
  done
  sleep 0.5
  redis-cli --cluster create $(printf '127.0.0.1:%s ' "${ports[@]}") --cluster-replicas 1 --cluster-yes >"$dir/create.log" 2>&1
  for _ in $(seq 1 100); do
    redis-cli -p 6400 cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
  sleep 2  # replicas in sync
  url=redis+cluster://127.0.0.1:6400,127.0.0.1:6401
}

stop_redis() { for port in "${ports[@]}"; do redis-cli -p "$port" shutdown nosave >/dev/null 2>&1; done; }

run() {
  local label=$1
  local names=() urls=()
  for i in 1 2 3 4 5 6; do
    # shellcheck disable=SC2086  # GATEWAY_OPTIONS is a list of options
    scripts/bench/gateway.sh start "tc$i" $((8420 + i)) --redis-url "$url" ${GATEWAY_OPTIONS:-} >/dev/null || { log "$label: gateway $i did not start"; return 1; }
    names+=("tc$i"); urls+=("ws://127.0.0.1:$((8420 + i))")
  done
  local pids; pids=$(scripts/bench/gateway.sh pids "${names[@]}")
  local redis_pids=() before=()
  for port in "${ports[@]}"; do
    local pid; pid=$(redis_pid "$port")
    redis_pids+=("$pid"); before+=("$(ticks "$pid")")
  done
  local started; started=$(date +%s.%N)
  $BIN bench wallet -c "$N" --workers 7 --connect-rate 4000 --duration 30 \
    --url "$(IFS=,; echo "${urls[*]}")" --jwt-secret bench-secret-0123456789abcdef0123 --api-key bench-api-key-0123456789abcdef \
    --source-addresses 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 --connections-per-source-address 25000 \
    --server-pid "$pids" --label "$label" --publish-redis-url "$url" --json "$out/wallet-${label// /-}.json" \
    2>>"$out/bench.log" | tail -n 1 | tee -a "$out/summary.txt"
  local elapsed; elapsed=$(echo "$(date +%s.%N) - $started" | bc)
  local cpu=()
  for i in "${!redis_pids[@]}"; do
    local used; used=$(( $(ticks "${redis_pids[$i]}") - before[i] ))
    local role; role=$(redis-cli -p "${ports[$i]}" role | head -n 1)
    cpu+=("${ports[$i]} $role $(echo "scale=1; 100 * $used / $hz / $elapsed" | bc)%")
  done
  log "$label: Redis CPU over ${elapsed%.*} s: $(IFS=';'; echo "${cpu[*]}")"
  for name in "${names[@]}"; do scripts/bench/gateway.sh stop "$name"; done
  pkill -f "tickwire bench-worker" 2>/dev/null
  sleep 2
}

TARGETS=${TARGETS:-"single cluster"}
log "wallet, $N clients, six gateways ${GATEWAY_OPTIONS:-}"
for target in $TARGETS; do
  case "$target" in
    single) start_single; run "tickwire redis"; stop_redis ;;
    cluster) start_cluster; run "tickwire redis cluster"; stop_redis ;;
  esac
done
log "results in $out"

#!/usr/bin/env bash
# Reproduces the tables of BENCHMARKS.md: every scenario at 10k, 19k and 100k connections for
# Tickwire (in-memory and Redis brokers) and Nchan (in-memory and Redis storage), on this machine.
#
#   scripts/bench/run-all.sh                      # everything (about an hour)
#   SIZES="10000" TARGETS="tickwire-memory nchan-memory" SCENARIOS="fanout-ceiling" scripts/bench/run-all.sh
#
# Needs root for sysctl, and Debian's redis-server, nginx and libnginx-mod-nchan (installed when missing).
# Results: bench-results/<time>/*.json; BENCHMARKS.md's tables are regenerated from them.
set -uo pipefail
cd "$(dirname "$0")/../.."
SIZES=${SIZES:-"10000 19000 100000"}
TARGETS=${TARGETS:-"tickwire-memory tickwire-redis nchan-memory nchan-redis"}
SCENARIOS=${SCENARIOS:-"idle wallet fanout-steady fanout-ceiling reconnect"}
out=${OUT:-bench-results/$(date -u +%Y%m%dT%H%M%SZ)}
mkdir -p "$out"
log() { printf '==> %s\n' "$*" | tee -a "$out/run.log"; }

for tool in redis-server nginx; do
  command -v $tool >/dev/null || { log "installing $tool"; apt-get install -y -qq redis-server nginx libnginx-mod-nchan >/dev/null; }
done
[ -f /usr/lib/nginx/modules/ngx_nchan_module.so ] || apt-get install -y -qq libnginx-mod-nchan >/dev/null
log "building (release)"
swift build -c release 2>&1 | tail -n 1
scripts/bench/tune-system.sh | tee -a "$out/run.log"
{ echo "cpu: $(lscpu | sed -n 's/^Model name: *//p') x $(nproc)"; echo "memory: $(free -g | awk '/Mem/{print $2}') GiB";
  echo "kernel: $(uname -r)"; echo "swift: $(swift --version 2>&1 | head -1)"; echo "redis: $(redis-server --version | cut -d' ' -f3)";
  echo "nginx: $(nginx -v 2>&1 | cut -d/ -f2), nchan $(dpkg-query -W -f='${Version}' libnginx-mod-nchan)"; } > "$out/machine.txt"

BIN=.build/release/tickwire
REDIS_PORT=6399
redis_start() { redis-server --port $REDIS_PORT --save "" --appendonly no --daemonize yes --dir /tmp >/dev/null; sleep 0.3; }
redis_stop() { redis-cli -p $REDIS_PORT shutdown nosave >/dev/null 2>&1 || true; }

gateways_for() { [ "$1" -gt 19900 ] && echo 6 || echo 1; }
workers_for() { [ "$1" -gt 19900 ] && echo 7 || echo 2; }

run() {
  local target=$1 size=$2 scenario=$3
  local name="$scenario-$target-$size"
  local bench_scenario=${scenario%%-*}
  local label=${target/-/ }
  local options=() server_options=() urls=() pids="" restart=""
  case "$scenario" in
    idle) options=(--duration 60) ;;
    wallet) options=(--duration 30) ;;
    fanout-steady) options=(--duration 20 --publish-rate "$(python3 -c "print(round(100000/$size, 2))")"); label="$label, 100k/s offered" ;;
    fanout-ceiling) options=(--duration 15 --publish-rate "$(python3 -c "print(round(600000/$size, 2))")"); label="$label, 600k/s offered" ;;
    reconnect) options=() ;;
  esac
  [ "$bench_scenario" = fanout ] && server_options+=(--price-interval 0)
  [ "$bench_scenario" = reconnect ] && server_options+=(--drain-seconds 2)
  # Six restarting gateways (twelve processes for a moment) on two vCPUs: one event loop
  # each, as Nchan's workers, or their threads crowd out the load generator (BENCHMARKS.md).
  [ "$bench_scenario" = reconnect ] && [ "$target" = tickwire-redis ] && [ "$(gateways_for "$size")" -gt 1 ] && server_options+=(--threads 1)
  case "$target" in
    tickwire-memory)
      if [ "$size" -gt 19900 ]; then
        echo "{\"scenario\":\"$bench_scenario\",\"label\":\"$label\",\"connections\":$size,\"skipped\":\"one process holds at most 20,000 open files here; see the extrapolation\"}" > "$out/$name.json"
        return
      fi
      pids=$(scripts/bench/gateway.sh start tw1 8401 "${server_options[@]}") || { log "$name: the gateway did not start"; return; }
      urls=(ws://127.0.0.1:8401)
      restart="scripts/bench/gateway.sh restart tw1"
      ;;
    tickwire-redis)
      redis_start
      local count; count=$(gateways_for "$size")
      local names=()
      for i in $(seq 1 "$count"); do
        scripts/bench/gateway.sh start "tr$i" $((8410 + i)) --redis-url redis://127.0.0.1:$REDIS_PORT "${server_options[@]}" >/dev/null \
          || { log "$name: gateway tr$i did not start"; scripts/bench/gateway.sh stop "${names[@]}"; redis_stop; return; }
        urls+=("ws://127.0.0.1:$((8410 + i))"); names+=("tr$i")
      done
      pids=$(scripts/bench/gateway.sh pids "${names[@]}")
      restart="for g in ${names[*]}; do scripts/bench/gateway.sh restart \$g & done; wait"
      options+=(--publish-redis-url redis://127.0.0.1:$REDIS_PORT)
      ;;
    nchan-memory|nchan-redis)
      local redis_url=""
      [ "$target" = nchan-redis ] && { redis_start; redis_url=redis://127.0.0.1:$REDIS_PORT; }
      local nworkers=2; [ "$size" -gt 19900 ] && nworkers=6
      pids=$(scripts/bench/nchan.sh start 8501 $nworkers $redis_url)
      urls=(ws://127.0.0.1:8501)
      restart="scripts/bench/nchan.sh restart 8501 $nworkers $redis_url >/dev/null"
      options+=(--target nchan)
      ;;
  esac
  [ "$bench_scenario" = reconnect ] && options+=(--restart-command "$restart")
  log "$name"
  $BIN bench "$bench_scenario" -c "$size" --workers "$(workers_for "$size")" --connect-rate 4000 \
    --url "$(IFS=,; echo "${urls[*]}")" --jwt-secret bench-secret-0123456789abcdef0123 --api-key bench-api-key-0123456789abcdef \
    --source-addresses 127.0.0.1,127.0.0.2,127.0.0.3,127.0.0.4,127.0.0.5 --connections-per-source-address 25000 \
    --server-pid "$pids" --label "$label" --json "$out/$name.json" "${options[@]}" 2>>"$out/run.log" | tail -n 1 | tee -a "$out/run.log"
  case "$target" in
    tickwire-memory) scripts/bench/gateway.sh stop tw1 ;;
    tickwire-redis) for i in $(seq 1 "$(gateways_for "$size")"); do scripts/bench/gateway.sh stop "tr$i"; done; redis_stop ;;
    nchan-*) scripts/bench/nchan.sh stop 8501; redis_stop ;;
  esac
  pkill -f "tickwire bench-worker" 2>/dev/null
  sleep 2
}

for size in $SIZES; do
  for scenario in $SCENARIOS; do
    for target in $TARGETS; do run "$target" "$size" "$scenario"; done
  done
done
python3 scripts/bench/report.py "$out" BENCHMARKS.md
log "results in $out; BENCHMARKS.md updated"

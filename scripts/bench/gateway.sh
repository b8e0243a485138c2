#!/usr/bin/env bash
# Starts, restarts and stops release-build Tickwire gateways for `tickwire bench`.
#
#   scripts/bench/gateway.sh start NAME PORT [serve options...]   # prints the pid
#   scripts/bench/gateway.sh restart NAME                          # zero-downtime: new process first, then SIGTERM the old
#   scripts/bench/gateway.sh stop NAME
#   scripts/bench/gateway.sh pids NAME...                          # comma-separated pids
#
# Gateways serve the bench symbols B0..B99 with the bench's secret and API key.
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=/tmp/tickwire-bench
mkdir -p "$dir"
bin=${TICKWIRE_BIN:-.build/release/tickwire}  # another build, for before/after runs
symbols=$(seq -s, -f 'B%g' 0 99)
action=$1
shift
launch() {
  local name=$1 port=$2
  shift 2
  local log="$dir/$name.$(date +%s%N).log"
  "$bin" serve --host 127.0.0.1 --port "$port" --symbols "$symbols" --feed none --reuse-port \
    --jwt-secret bench-secret-0123456789abcdef0123 --api-key bench-api-key-0123456789abcdef --log-level warning "$@" >"$log" 2>&1 &
  local pid=$!
  for _ in $(seq 1 100); do grep -q "listening on" "$log" 2>/dev/null && break; sleep 0.05; done
  # A gateway that did not start in time is stopped: left running on a shared (SO_REUSEPORT) port,
  # it would take a share of the next run's clients.
  grep -q "listening on" "$log" || { kill "$pid" 2>/dev/null; echo "gateway $name did not start: $(tail -3 "$log")" >&2; exit 1; }
  echo "$pid" >"$dir/$name.pid"
  printf '%s\n' "$port" "$@" >"$dir/$name.args"
  echo "$pid"
}
case "$action" in
start) launch "$@" ;;
restart)
  name=$1
  old=$(cat "$dir/$name.pid")
  mapfile -t args <"$dir/$name.args"
  launch "$name" "${args[@]}" >/dev/null
  kill -TERM "$old"
  ;;
stop)
  for name in "$@"; do
    [ -f "$dir/$name.pid" ] && kill -TERM "$(cat "$dir/$name.pid")" 2>/dev/null || true
    rm -f "$dir/$name.pid"
  done
  ;;
pids)
  for name in "$@"; do cat "$dir/$name.pid"; done | paste -sd,
  ;;
*) echo "usage: $0 start NAME PORT [options] | restart NAME | stop NAME... | pids NAME..." >&2; exit 2 ;;
esac

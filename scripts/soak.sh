#!/usr/bin/env bash
# Soak test (issue 12): a Redis, two gateways and a price feed on free loopback ports, driven
# for MINUTES by scripts/soak.mjs (2,000 SDK clients, churn, notifications, a restart of
# gateway 1 in the middle). Checks no loss for the clients that stayed, no memory or descriptor
# leak, and consistent metrics; ends with one `SOAK:` line and exits 0 (passed) or 1 (failed).
#
#   scripts/soak.sh MINUTES [--binary PATH] [driver options...]
#   scripts/soak.sh 10 --json /tmp/soak.json       # the CI form
#   scripts/soak.sh 2 --clients 500                # all driver options: node scripts/soak.mjs --help
#
# The binary defaults to .build/debug/tickwire. The logs stay in the run folder when the run
# fails (the script prints where); it is removed when the run passes.
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/soak.sh MINUTES [--binary PATH] [driver options...]" >&2; exit 2; }
[ $# -ge 1 ] || usage
minutes=$1
shift
if ! [[ "$minutes" =~ ^[0-9]*\.?[0-9]+$ ]] || ! awk -v m="$minutes" 'BEGIN { exit !(m > 0) }'; then
  echo "soak.sh: MINUTES must be a positive number, not '$minutes'" >&2
  exit 2
fi
binary=.build/debug/tickwire
driver_args=()
while [ $# -gt 0 ]; do
  case "$1" in
  --binary) [ $# -ge 2 ] || usage; binary=$2; shift 2 ;;
  *) driver_args+=("$1"); shift ;;
  esac
done
[ -x "$binary" ] || { echo "soak.sh: no tickwire binary at $binary (swift build, or --binary PATH)" >&2; exit 2; }
binary=$(cd "$(dirname "$binary")" && pwd)/$(basename "$binary")
if ! command -v redis-server >/dev/null 2>&1; then
  echo "soak.sh: redis-server is missing: installing it with apt-get" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || { echo "soak.sh: could not install redis-server" >&2; exit 1; }
fi

# Close the descriptors this script inherited (3 to 254; bash reads the script on 255): the
# gateways started here would hold them for life, and a gateway the driver restarts (Node passes
# on only stdin, stdout and stderr) would not, which the descriptor check would count as a change.
for fd in $(ls /proc/$$/fd); do
  if [ "$fd" -gt 2 ] && [ "$fd" -lt 255 ]; then eval "exec $fd>&-"; fi
done

run_dir=$(mktemp -d /tmp/tickwire-soak.XXXXXX)
status=1
# Every process is stopped through its pid file: the driver rewrites gateway1.pid when it
# restarts that gateway, so the file, not $!, names the process to stop.
stop_all() {
  local file
  for file in "$run_dir"/*.pid; do kill -TERM "$(cat "$file")" 2>/dev/null || true; done
  for _ in $(seq 1 60); do  # a gateway with clients left drains for up to 10 s
    local alive=0
    for file in "$run_dir"/*.pid; do kill -0 "$(cat "$file")" 2>/dev/null && alive=1; done
    [ "$alive" = 0 ] && break
    sleep 0.25
  done
  for file in "$run_dir"/*.pid; do kill -KILL "$(cat "$file")" 2>/dev/null || true; done
  if [ "$status" = 0 ]; then rm -rf "$run_dir"; else echo "soak.sh: logs in $run_dir" >&2; fi
}
trap stop_all EXIT
trap 'exit 130' INT TERM

# Five distinct free ports (Redis, then each gateway's public and metrics port), all held at
# once so that none is handed out twice.
read -r redis_port port1 metrics1 port2 metrics2 < <(node -e '
  const net = require("node:net");
  const servers = Array.from({ length: 5 }, () => net.createServer().listen(0, "127.0.0.1"));
  Promise.all(servers.map((s) => new Promise((ok) => s.on("listening", ok)))).then(() => {
    console.log(servers.map((s) => s.address().port).join(" "));
    servers.forEach((s) => s.close());
  });')
jwt_secret=$(node -e 'console.log(require("node:crypto").randomBytes(24).toString("hex"))')
api_key=$(node -e 'console.log(require("node:crypto").randomBytes(16).toString("hex"))')
redis_url=redis://127.0.0.1:$redis_port

redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no --dir "$run_dir" >"$run_dir/redis.log" 2>&1 &
echo $! >"$run_dir/redis.pid"
for _ in $(seq 1 100); do (exec 3<>"/dev/tcp/127.0.0.1/$redis_port") 2>/dev/null && break; sleep 0.1; done

# Starts gateway NAME in the background; its command line goes to NAME.argv (one argument a
# line) so that the driver restarts it exactly so.
start_gateway() {
  local name=$1 port=$2 metrics=$3
  local argv=("$binary" serve --host 127.0.0.1 --port "$port" --redis-url "$redis_url" --jwt-secret "$jwt_secret"
    --api-key "$api_key" --feed none --metrics-port "$metrics")
  printf '%s\n' "${argv[@]}" >"$run_dir/$name.argv"
  "${argv[@]}" >>"$run_dir/$name.log" 2>&1 &
  echo $! >"$run_dir/$name.pid"
  for _ in $(seq 1 300); do grep -q "listening on" "$run_dir/$name.log" && return 0; sleep 0.1; done
  echo "soak.sh: $name did not start: $(tail -n 3 "$run_dir/$name.log")" >&2
  exit 1
}
start_gateway gateway1 "$port1" "$metrics1"
start_gateway gateway2 "$port2" "$metrics2"
"$binary" feed --redis-url "$redis_url" >"$run_dir/feed.log" 2>&1 &
echo $! >"$run_dir/feed.pid"

echo "soak.sh: redis :$redis_port, gateway1 :$port1 (metrics :$metrics1), gateway2 :$port2 (metrics :$metrics2), logs in $run_dir"
set +e
TICKWIRE_SOAK_JWT_SECRET=$jwt_secret TICKWIRE_SOAK_API_KEY=$api_key \
  node --experimental-websocket --disable-warning=ExperimentalWarning scripts/soak.mjs --minutes "$minutes" \
  --run-dir "$run_dir" --gateway "gateway1:$port1:$metrics1" --gateway "gateway2:$port2:$metrics2" "${driver_args[@]}"
status=$?
set -e
exit "$status"

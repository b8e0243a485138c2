#!/usr/bin/env bash
# Runs every Tickwire test: unit and integration tests (Swift Testing, against real
# `tickwire` and `redis-server` processes), the JavaScript SDK's tests (node --test, the
# price board in a real headless Chromium among them), the Autobahn WebSocket conformance
# suite (kosoku) against /echo, a small run of the load generator (500 clients, 10 s)
# so it never rots, every fuzz target of Fuzz/ for 20 s (TICKWIRE_FUZZ_SECONDS) from its
# seed corpus, and the soak for 5 minutes (TICKWIRE_SOAK_MINUTES): docs/RELIABILITY.md.
# About 26 minutes on 2 cores from a clean clone; those two are the knobs that shorten it.
# Prints one summary line at the end; exits non-zero if anything failed.
#
# Installs what it needs when missing: the kosoku runner from PyPI (pip), and from Debian's
# packages (apt-get) redis-server for the cluster tests and chromium-headless-shell for the
# browser test.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
log() { printf '==> %s (at %d s)\n' "$*" "$SECONDS"; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "redis-server is missing: installing it with apt-get"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || { echo "could not install redis-server"; exit 1; }
fi
if ! command -v ss >/dev/null 2>&1; then
  log "ss is missing (a test reads a client socket's send buffer with it): installing iproute2 with apt-get"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iproute2 >/dev/null) \
    || { echo "could not install iproute2"; exit 1; }
fi
if ! command -v chromium-headless-shell >/dev/null 2>&1 && ! command -v chromium >/dev/null 2>&1; then
  log "Chromium is missing: installing chromium-headless-shell with apt-get"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium-headless-shell >/dev/null) \
    || { echo "could not install chromium-headless-shell"; exit 1; }
fi
if ! command -v kosoku >/dev/null 2>&1; then
  log "kosoku (Autobahn testsuite runner) is missing: installing it with pip"
  python3 -m pip install --quiet kosoku || { echo "could not install kosoku"; exit 1; }
fi

# Starts a debug gateway on a free port with the given options: sets $gateway_pid and $gateway_port.
start_gateway() {
  local out
  out=$(mktemp)
  .build/debug/tickwire serve --host 127.0.0.1 --port 0 --feed none "$@" >"$out" 2>/dev/null &
  gateway_pid=$!
  gateway_port=""
  for _ in $(seq 1 100); do
    gateway_port=$(sed -n 's#.*listening on ws://[^ ]*:\([0-9]*\)/ws.*#\1#p' "$out")
    [ -n "$gateway_port" ] && return 0
    sleep 0.1
  done
  return 1
}

log "building (debug)"
build_log=$(mktemp)
if ! swift build --build-tests >"$build_log" 2>&1; then
  grep -E 'error:' "$build_log" | head -n 20
  echo "TEST SUMMARY: FAILED: the build failed"
  exit 1
fi
tail -n 1 "$build_log"

log "swift test"
swift_log=$(mktemp)
# Swift Testing starts every test at once; the integration tests each start gateways and Redis
# servers, and on 2 cores a hundred processes starting together starve the timing-sensitive ones
# (a 2 s heartbeat, a 3 s token). Twelve at a time is as fast (26 s here) and steady. The option
# exists from Swift 6.2.
width=()
if swift --version 2>/dev/null | grep -qE 'Swift version (6\.([2-9]|[1-9][0-9])|[7-9])'; then
  width=(--experimental-maximum-parallelization-width 12)
fi
# The replicated and sharded Redis tests (a master, replicas and sentinels; six-node clusters) run
# after the rest, three at a time: each starts six or more servers and fails one over, and beside
# the timing-sensitive tests above they would starve them.
topology='SentinelEndpoints|SentinelFailover|RedisClusters|RedisClusterMode|TickwireIntegrationTests\.Sentinel/'
swift test --skip-build "${width[@]}" --skip "$topology" 2>&1 | tee "$swift_log" | grep --line-buffered -E '✘|Test run with'
swift_status=${PIPESTATUS[0]}  # read right after the pipeline: any later command resets it
log "swift test: Sentinel and Redis Cluster"
topology_log=$(mktemp)
topology_width=()
[ ${#width[@]} -gt 0 ] && topology_width=(--experimental-maximum-parallelization-width 3)
swift test --skip-build "${topology_width[@]}" --filter "$topology" 2>&1 | tee "$topology_log" | grep --line-buffered -E '✘|Test run with|^(sentinel|cluster):'
[ "${PIPESTATUS[0]}" -eq 0 ] || swift_status=1
cat "$topology_log" >>"$swift_log"
# One line for both runs: their test and suite counts added up.
swift_line=$(grep -hE 'Test run with [0-9]+ tests? in [0-9]+ suites?' "$swift_log" | sed 's/^[^A-Za-z]*//' | awk '
  { tests += $4; suites += $7; if ($0 ~ /failed/) failed = 1; runs++ }
  END { if (runs) printf "%d tests in %d suites %s", tests, suites, (failed ? "failed" : "passed") }')
failed_tests=$(grep -E '^✘ Test .* failed after' "$swift_log" | grep -vc '^✘ Test run with' || true)
if [ -z "$swift_line" ]; then
  # No summary: the test process died. Say where, and stop the servers its tests had started,
  # which would otherwise outlive it and load the machine for the steps below.
  grep -m 3 -E 'Fatal error|crashed' "$swift_log" | sed 's/^/    /'
  pkill -f "$PWD/.build/debug/tickwire" 2>/dev/null || true
fi

log "JavaScript SDK (node --test, the board in headless Chromium)"
js_log=$(mktemp)
TICKWIRE_REQUIRE_BROWSER=1 node --experimental-websocket --test clients/js/test/*.test.mjs >"$js_log" 2>&1
js_status=$?
grep -E '^not ok|^# (tests|pass|fail|skipped|todo)|reconnection budget:' "$js_log" | sed 's/^/    /'
js_line=$(awk '/^# tests/{t=$3} /^# pass/{p=$3} /^# fail/{f=$3} /^# skipped/{s=$3} END{printf "%s tests, %s passed, %s failed, %s skipped", t, p, f, s}' "$js_log")
[ "$js_status" -eq 0 ] || grep -B2 -A20 '^not ok' "$js_log" | head -n 60

log "Autobahn conformance (sections 1-7, 10) against /echo"
autobahn_status=1
autobahn_line="did not run (the echo server did not start)"
if start_gateway --conformance-echo --jwt-secret conformance-secret-0123456789abcdef --api-key conformance-api-key-0123456789; then
  port=$gateway_port
  reports=$(mktemp -d)
  kosoku -p 4 -o "$reports" -i '1.*' -i '2.*' -i '3.*' -i '4.*' -i '5.*' -i '6.*' -i '7.*' -i '10.*' \
    "ws://127.0.0.1:$port/echo" >/dev/null 2>&1
  autobahn_status=$?
  autobahn_line=$(python3 - "$reports/index.json" <<'PY'
import json, sys, collections
try:
    cases = [c for agent in json.load(open(sys.argv[1])).values() for c in agent.values()]
except Exception as error:
    print(f"no report ({error})"); sys.exit()
failed = sum(1 for c in cases if c["behavior"] == "FAILED" or c["behaviorClose"] == "FAILED")
kinds = collections.Counter(c["behavior"] for c in cases)
print(f"{len(cases)} cases, {failed} FAILED (" + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) + ")")
PY
)
fi
kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null

log "load generator smoke (wallet, 500 clients, 10 s)"
bench_json=$(mktemp)
bench_status=1
bench_line="did not run (the gateway did not start)"
if start_gateway --symbols "$(seq -s, -f 'B%g' 0 99)" --jwt-secret bench-smoke-secret-0123456789abcdef --api-key bench-smoke-api-key-0123456789; then
  .build/debug/tickwire bench wallet -c 500 --duration 10 --connect-rate 1000 --url "ws://127.0.0.1:$gateway_port" \
    --jwt-secret bench-smoke-secret-0123456789abcdef --api-key bench-smoke-api-key-0123456789 --server-pid "$gateway_pid" --json "$bench_json" >/dev/null 2>&1
  bench_status=$?
  bench_line=$(python3 - "$bench_json" "$bench_status" <<'PY'
import json, sys
try:
    r = json.load(open(sys.argv[1]))
except Exception:
    print(f"no result (exit {sys.argv[2]})"); sys.exit(1)
ok = r["subscribed"] == r["connections"] and r["lost"] == 0 and r["duplicated"] == 0 and r["delivered"] > 0
print(f"{r['subscribed']}/{r['connections']} subscribed, {r['delivered']} delivered, {r['lost']} lost, "
      f"{r['duplicated']} duplicated, p99 {r['latencyMicroseconds']['p99']/1000:.1f} ms")
sys.exit(0 if ok else 1)
PY
)
  [ $? -eq 0 ] || bench_status=1
fi
kill "$gateway_pid" 2>/dev/null; wait "$gateway_pid" 2>/dev/null

log "fuzzing (every target of Fuzz/ for ${TICKWIRE_FUZZ_SECONDS:-20} s)"
fuzz_log=$(mktemp)
scripts/fuzz.sh all "${TICKWIRE_FUZZ_SECONDS:-20}" >"$fuzz_log" 2>&1
fuzz_status=$?
sed 's/^/    /' "$fuzz_log" | tail -n 30
fuzz_line=$(awk '/executions in/ {runs += $2; n++} /CRASH/ {c++} END {printf "%d targets, %d executions, %d crashes", n + c, runs, c}' "$fuzz_log")
grep -q 'did not build' "$fuzz_log" && fuzz_line="the fuzz targets did not build"

log "soak (${TICKWIRE_SOAK_MINUTES:-5} minutes: 2,000 SDK clients churning, notifications, a gateway restarted)"
soak_log=$(mktemp)
scripts/soak.sh "${TICKWIRE_SOAK_MINUTES:-5}" >"$soak_log" 2>&1
soak_status=$?
grep -E '^(check|problem|soak.sh:)' "$soak_log" | sed 's/^/    /'
soak_line=$(grep -E '^SOAK:' "$soak_log" | tail -n 1 | sed 's/^SOAK: //')
[ -n "$soak_line" ] || { soak_line="did not finish (exit $soak_status)"; tail -n 20 "$soak_log" | sed 's/^/    /'; }

elapsed=$(( $(date +%s) - started ))
status=0
[ "$swift_status" -eq 0 ] || status=1
[ "$js_status" -eq 0 ] || status=1
[ "$autobahn_status" -eq 0 ] || status=1
[ "$bench_status" -eq 0 ] || status=1
[ "$fuzz_status" -eq 0 ] || status=1
[ "$soak_status" -eq 0 ] || status=1
verdict=$([ $status -eq 0 ] && echo PASSED || echo FAILED)
echo "TEST SUMMARY: $verdict in ${elapsed}s | swift: ${swift_line:-no result} (${failed_tests} failing) | js: $js_line | autobahn: $autobahn_line | bench smoke: $bench_line | fuzz: $fuzz_line | soak: $soak_line"
exit $status

#!/usr/bin/env bash
# Runs every Tickwire test: unit and integration tests (Swift Testing, against real
# `tickwire` processes), then the Autobahn WebSocket conformance suite (kosoku) against
# /echo. Prints one summary line at the end; exits non-zero if anything failed.
#
# Installs what it needs when missing: the kosoku runner from PyPI (pip), and
# redis-server from Debian's packages (apt-get) for the cluster tests.
set -uo pipefail
cd "$(dirname "$0")/.."
started=$(date +%s)
log() { printf '==> %s\n' "$*"; }

if ! command -v redis-server >/dev/null 2>&1; then
  log "redis-server is missing: installing it with apt-get"
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server >/dev/null) \
    || { echo "could not install redis-server"; exit 1; }
fi
if ! command -v kosoku >/dev/null 2>&1; then
  log "kosoku (Autobahn testsuite runner) is missing: installing it with pip"
  python3 -m pip install --quiet kosoku || { echo "could not install kosoku"; exit 1; }
fi

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
swift test --skip-build 2>&1 | tee "$swift_log" | grep --line-buffered -E '✘|Test run with'
swift_status=${PIPESTATUS[0]}  # read right after the pipeline: any later command resets it
swift_line=$(grep -E 'Test run with [0-9]+ tests?' "$swift_log" | tail -n 1 | sed 's/^[^A-Za-z]*//')
failed_tests=$(grep -cE '^✘ Test .*(failed|recorded an issue)' "$swift_log" || true)

log "Autobahn conformance (sections 1-7, 10) against /echo"
echo_out=$(mktemp)
.build/debug/tickwire serve --host 127.0.0.1 --port 0 --feed none --conformance-echo \
  --jwt-secret conformance --api-key conformance >"$echo_out" 2>/dev/null &
echo_pid=$!
port=""
for _ in $(seq 1 100); do
  port=$(sed -n 's#.*listening on ws://[^ ]*:\([0-9]*\)/ws.*#\1#p' "$echo_out")
  [ -n "$port" ] && break
  sleep 0.1
done
autobahn_status=1
autobahn_line="did not run (the echo server did not start)"
if [ -n "$port" ]; then
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
kill "$echo_pid" 2>/dev/null; wait "$echo_pid" 2>/dev/null

elapsed=$(( $(date +%s) - started ))
status=0
[ "$swift_status" -eq 0 ] || status=1
[ "$autobahn_status" -eq 0 ] || status=1
verdict=$([ $status -eq 0 ] && echo PASSED || echo FAILED)
echo "TEST SUMMARY: $verdict in ${elapsed}s | swift: ${swift_line:-no result} (${failed_tests} failing) | autobahn: $autobahn_line"
exit $status

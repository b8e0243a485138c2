#!/usr/bin/env bash
# Runs one libFuzzer target of Fuzz/ for a number of seconds, from its committed seed corpus.
#
#   scripts/fuzz.sh TARGET SECONDS     e.g. scripts/fuzz.sh FuzzWebSocketFrames 60
#   scripts/fuzz.sh all SECONDS        every target in turn
#   scripts/fuzz.sh list               the targets
#
# Builds the targets first (debug, -sanitize=fuzzer,address, into .build-fuzz). New inputs the
# fuzzer finds go to a scratch folder, not into the committed corpus; a crash is saved as
# Fuzz/Crashes/TARGET-crash-* and the script exits 1 with the property it broke. Prints one line
# per target: executions, corpus, coverage, crashes. Replay a crash with
# `.build-fuzz/debug/TARGET Fuzz/Crashes/FILE`.
set -uo pipefail
cd "$(dirname "$0")/.."
targets=(FuzzWebSocketFrames FuzzClientMessages FuzzJWT FuzzRESP FuzzHTTP FuzzJSONDifferential FuzzDecimalDifferential)

usage() { echo "usage: scripts/fuzz.sh TARGET|all SECONDS   (targets: ${targets[*]})" >&2; exit 2; }
[ "${1:-}" = list ] && { printf '%s\n' "${targets[@]}"; exit 0; }
[ $# -eq 2 ] || usage
[[ "$2" =~ ^[0-9]+$ ]] && [ "$2" -gt 0 ] || { echo "SECONDS must be a positive whole number, not '$2'" >&2; exit 2; }
if [ "$1" = all ]; then
  selected=("${targets[@]}")
else
  [[ " ${targets[*]} " == *" $1 "* ]] || { echo "unknown fuzz target '$1' (targets: ${targets[*]})" >&2; exit 2; }
  selected=("$1")
fi
seconds=$2

build_log=$(mktemp)
# SwiftPM keeps the build plan of a path dependency (the package itself) when only its files
# changed, so a source file added to Tickwire since the last fuzz build was missing from it
# ("cannot find ... in scope"). Planning again costs seconds; compiled objects are kept.
rm -f .build-fuzz/debug.yaml
# One product at a time: a plain `swift build` would also link the package's `tickwire`, whose
# own main cannot link with libFuzzer's.
for target in "${selected[@]}"; do
  if ! (cd Fuzz && swift build --build-path ../.build-fuzz -Xswiftc -sanitize=fuzzer,address --product "$target") >"$build_log" 2>&1; then
    grep -E 'error:' "$build_log" | grep -v 'Cannot export' | head -n 20
    echo "FUZZ: FAILED: $target did not build"
    exit 1
  fi
done

status=0
mkdir -p Fuzz/Crashes
for target in "${selected[@]}"; do
  scratch=$(mktemp -d)
  log=$(mktemp)
  # Swift's backtracer takes seconds per crash; libFuzzer prints what a finding needs. Leak
  # detection is off: Swift keeps an enum's case in the spare bits of a class pointer, which
  # LeakSanitizer cannot follow, so objects held in such enums (the JWT keys) look leaked.
  SWIFT_BACKTRACE=enable=no ASAN_OPTIONS=detect_leaks=0 ".build-fuzz/debug/$target" "$scratch" "Fuzz/Corpus/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -detect_leaks=0 \
    -artifact_prefix="Fuzz/Crashes/$target-" >"$log" 2>&1
  result=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
  coverage=$(grep -E '^#[0-9]+' "$log" | tail -n 1 | sed -n 's/.*cov: \([0-9]*\).*corp: \([0-9]*\).*/\1 edges, corpus \2/p')
  if [ "$result" -eq 0 ]; then
    echo "$target: ${runs:-?} executions in ${seconds} s, ${coverage:-no coverage line}, 0 crashes"
  else
    status=1
    echo "$target: CRASH after ${runs:-?} executions (exit $result)"
    grep -m 3 -E 'Fatal error|ERROR: (AddressSanitizer|libFuzzer)|SUMMARY' "$log" | cut -c1-400 | sed 's/^/    /'
    grep -m 1 -E "Test unit written to" "$log" | sed 's/^/    /'
  fi
  rm -rf "$scratch" "$log"
done
exit $status

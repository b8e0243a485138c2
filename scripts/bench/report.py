#!/usr/bin/env python3
"""Renders bench-results/<run>/*.json into the tables of BENCHMARKS.md (between the
<!-- results:start --> and <!-- results:end --> markers).

  scripts/bench/report.py bench-results/20261130T000000Z BENCHMARKS.md
  scripts/bench/report.py RUN_A RUN_B BENCHMARKS.md   # several runs: a later run's result replaces an earlier one's
"""
import glob, json, os, sys

runs, target = sys.argv[1:-1], sys.argv[-1]
by_name = {}
for run in runs:
    for path in sorted(glob.glob(os.path.join(run, "*.json"))):
        with open(path) as f:
            result = json.load(f)
        result["run"] = os.path.basename(run.rstrip("/"))
        by_name[os.path.basename(path)] = result
results = list(by_name.values())

def ms(value):
    if value is None: return "-"
    v = value / 1000
    return f"{v:.0f}" if v >= 100 else f"{v:.1f}" if v >= 10 else f"{v:.2f}"

def row(r, scenario):
    if "skipped" in r:
        return f"| {r['connections']:,} | {r['label']} | skipped: {r['skipped']} |" + " |" * (12 if scenario in ('wallet', 'fanout') else 9 if scenario == 'reconnect' else 4)
    c = r.get("connectMilliseconds") or {}
    rss = r.get("serverRSSPerConnectionBytes")
    cpu = r.get("serverCPUPercent")
    base = f"| {r['connections']:,} | {r['label']} | {r['run']} | {r['subscribed']:,} | {c.get('p50','-')}/{c.get('p99','-')} ms | " \
           f"{'-' if rss is None else f'{rss/1024:.2f} KB'} | {'-' if cpu is None else f'{cpu:.0f}%'} |"
    if scenario == "idle":
        return base
    if scenario == "reconnect":
        rc = r.get("reconnectMilliseconds") or {}
        back = r.get("allBackSeconds")
        per = r.get("serverCPUPerConnectionMicroseconds")
        return base + f" {'not all' if back is None else f'{back:.1f} s'} | {rc.get('p50','-')} ms | {rc.get('p99','-')} ms | {rc.get('max','-')} ms |" \
                      f" {'-' if per is None else f'{per:.0f} µs'} |"
    lat = r.get("latencyMicroseconds") or {}
    return base + f" {r['deliveredPerSecond']:,.0f} | {ms(lat.get('p50'))} | {ms(lat.get('p90'))} | {ms(lat.get('p99'))} | " \
                  f"{ms(lat.get('p999'))} | {ms(lat.get('max'))} | {r.get('lost', 0):,} | {r.get('duplicated', 0):,} |"

headers = {
    "idle": "| N | target | run | subscribed | connect p50/p99 | server RSS per connection | server CPU (idle) |",
    "wallet": "| N | target | run | subscribed | connect p50/p99 | RSS/conn | server CPU | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | lost | dup |",
    "fanout": "| N | target | run | subscribed | connect p50/p99 | RSS/conn | server CPU | delivered/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | lost | dup |",
    "reconnect": "| N | target | run | subscribed | connect p50/p99 | RSS/conn | server CPU | all back after restart | per client p50 | p99 | max | server CPU per connect |",
}
headers = {k: v + "\n" + "|---" * v.count(" | ") + "|---|" for k, v in headers.items()}
titles = {"idle": "Idle", "wallet": "Wallet", "fanout": "Fan-out", "reconnect": "Reconnect"}
lines = ["Runs " + ", ".join(f"`{os.path.basename(run.rstrip('/'))}`" for run in runs) + "."]
machine = os.path.join(runs[-1], "machine.txt")
if os.path.exists(machine):
    lines += ["", "```", open(machine).read().strip(), "```"]
for scenario in ("idle", "wallet", "fanout", "reconnect"):
    chosen = [r for r in results if r.get("scenario") == scenario]
    if not chosen: continue
    chosen.sort(key=lambda r: (r["connections"], r["label"]))
    lines += ["", f"### {titles[scenario]}", "", headers[scenario]] + [row(r, scenario) for r in chosen]
commands = sorted({r["command"] for r in results if "command" in r})
lines += ["", "<details><summary>Exact commands</summary>", "", "```"] + commands + ["```", "", "</details>"]

text = open(target).read()
start, end = "<!-- results:start -->", "<!-- results:end -->"
before, rest = text.split(start, 1)
_, after = rest.split(end, 1)
open(target, "w").write(before + start + "\n" + "\n".join(lines) + "\n" + end + after)
print(f"rendered {len(results)} results into {target}")

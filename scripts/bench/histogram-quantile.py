#!/usr/bin/env python3
"""Quantiles of a Prometheus histogram, the way PromQL's histogram_quantile computes
them (linear interpolation inside the bucket), summed over every /metrics URL given.

  scripts/bench/histogram-quantile.py tickwire_broker_lag_seconds http://127.0.0.1:8081/metrics ...
"""
import re, sys, urllib.request

def buckets(url, name):
    text = urllib.request.urlopen(url, timeout=5).read().decode()
    result = {}
    for line in text.splitlines():
        m = re.match(rf'{name}_bucket\{{.*le="([^"]+)".*\}} ([0-9.e+]+)', line)
        if m:
            le = float("inf") if m.group(1) == "+Inf" else float(m.group(1))
            result[le] = result.get(le, 0.0) + float(m.group(2))
    return result

def quantile(q, cumulative):
    bounds = sorted(cumulative)
    total = cumulative[bounds[-1]]
    if total == 0:
        return None
    rank = q * total
    previous_bound, previous_count = 0.0, 0.0
    for bound in bounds:
        count = cumulative[bound]
        if count >= rank:
            if bound == float("inf"):
                return previous_bound
            return previous_bound + (bound - previous_bound) * (rank - previous_count) / max(count - previous_count, 1e-12)
        previous_bound, previous_count = bound, count
    return bounds[-1]

name, urls = sys.argv[1], sys.argv[2:]
merged = {}
for url in urls:
    for le, count in buckets(url, name).items():
        merged[le] = merged.get(le, 0.0) + count
total = merged.get(float("inf"), 0)
parts = [f"samples={int(total)}"]
for q in (0.5, 0.9, 0.99, 0.999):
    value = quantile(q, merged)
    parts.append(f"p{q*100:g}=" + ("n/a" if value is None else f"{value*1e6:.0f}us"))
print(name, " ".join(parts))

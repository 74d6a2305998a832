#!/usr/bin/env python3
"""Compare two mmbot builds on the same machine state: alternate their
`mmbot bench --json` runs and print each run and the medians.

On a shared machine the speed drifts between runs minutes apart, so two
builds are only comparable when their runs alternate. Usage:

    scripts/bench_ab.py OLD_BINARY NEW_BINARY RUNS [bench arguments...]
    scripts/bench_ab.py /tmp/mmbot_old target/release/mmbot 3 --profile busy --events 100000 --config pin.toml

Columns: tick_to_quote p50/p99, the header ("parse, depth frames only") and
book stage p50, the strategy stage p50, the rest-of-diff read and apply per
level (ns), the whole-diff-first baseline p50, the serde_json parse
baseline p50 and, with --script, the first
script's strategy stage and its tick_to_quote over native (p50).
"""
import json
import statistics
import subprocess
import sys

COLUMNS = [
    ("t2q", lambda d: d["latency_ns"]["tick_to_quote"]["p50"]),
    ("t2q99", lambda d: d["latency_ns"]["tick_to_quote"]["p99"]),
    ("header", lambda d: d["depth_parse_ns"]["p50"]),
    ("book", lambda d: d["latency_ns"]["book"]["p50"]),
    ("strategy", lambda d: d["latency_ns"]["strategy"]["p50"]),
    ("read_lvl", lambda d: d["per_level_ns"]["parse"]["p50"]),
    ("apply_lvl", lambda d: d["per_level_ns"]["apply"]["p50"]),
    ("whole_t2q", lambda d: d["baselines"]["whole_diff_tick_to_quote"]["p50"]),
    ("serde", lambda d: d["baselines"]["serde_json_f64_parse"]["p50"]),
    ("script_strategy", lambda d: d["scripts"][0]["latency_ns"]["strategy"]["p50"] if d.get("scripts") else 0),
    ("script_over_native", lambda d: d["scripts"][0]["latency_ns"]["tick_to_quote"]["p50"]
     - d["latency_ns"]["tick_to_quote"]["p50"] if d.get("scripts") else 0),
]


def main() -> int:
    if len(sys.argv) < 4:
        print(__doc__, file=sys.stderr)
        return 2
    builds = {"old": sys.argv[1], "new": sys.argv[2]}
    runs, args = int(sys.argv[3]), sys.argv[4:]
    rows = {name: [] for name in builds}
    for _ in range(runs):
        for name, binary in builds.items():
            out = subprocess.run([binary, "bench", *args, "--json"], capture_output=True, text=True)
            if out.returncode != 0:
                print(f"{name}: {binary} bench failed:\n{out.stderr}", file=sys.stderr)
                return 1
            d = json.loads(out.stdout)
            host = d.get("host", {})
            if host and not rows["old"] and not rows["new"]:
                print(f"host: {host.get('cpu')}, {host.get('cores')} logical cores, "
                      f"hypervisor {host.get('hypervisor')}, TSC {host.get('tsc_ghz')} GHz", flush=True)
            row = {k: f(d) for k, f in COLUMNS}
            rows[name].append(row)
            print(name, " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print("medians:")
    for name in builds:
        print(name, " ".join(f"{k}={statistics.median(r[k] for r in rows[name]):g}" for k, _ in COLUMNS))
    return 0


if __name__ == "__main__":
    sys.exit(main())

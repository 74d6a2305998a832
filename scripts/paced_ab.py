#!/usr/bin/env python3
"""Compare builds or configs on paced replays: run `mmbot replay FILE
--speed 1 --seconds SECONDS --config CONFIG --report ...` for each variant
in turn, RUNS rounds, and print each run and the medians.

A paced replay feeds frames at the recorded rate, so each frame meets the
hot thread as a live feed would (waiting, cold or warmed). On a shared
machine the speed drifts between runs minutes apart, so variants are only
comparable when their runs alternate. Usage:

    scripts/paced_ab.py RUNS FILE SECONDS LABEL=BINARY:CONFIG [LABEL=BINARY:CONFIG ...]
    scripts/paced_ab.py 3 ../shared/data/busy/usdm_ethusdt_20240808.gz 10 \\
        warm=target/release/mmbot:busy_warm.toml cold=target/release/mmbot:busy_cold.toml

Columns: the paced tick_to_quote p50/p90/p99 of quotes whose frame found
the hot thread waiting (the `paced:` line), how many such quotes, the p50
of all quotes (`all_p50`: with `poll = "poll"` few frames find the thread
waiting), and the parse / book / strategy / quote stage p50s of the whole run (report).
"""
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile

PACED = re.compile(r"paced: (\d+) quotes from frames that found the hot thread waiting: "
                   r"tick_to_quote p50 (\d+) ns p90 (\d+) ns p99 (\d+) ns")
ALL = re.compile(r"on threads .*?tick_to_quote p50 (\d+) ns p99 (\d+) ns")
STAGES = ("parse", "book", "strategy", "quote")


def run(binary: str, config: str, file: str, seconds: str) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        report = os.path.join(tmp, "report.json")
        out = subprocess.run([binary, "replay", file, "--speed", "1", "--seconds", seconds,
                              "--config", config, "--report", report],
                             capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{binary} replay failed:\n{out.stderr}")
        m, a = PACED.search(out.stderr), ALL.search(out.stderr)
        if not m or not a:
            raise RuntimeError(f"no summary or paced line in the output of {binary}:\n{out.stderr}")
        with open(report) as f:
            latency = json.load(f)["perf"]["latency_ns"]
    row = {"waiting": int(m[1]), "p50": int(m[2]), "p90": int(m[3]), "p99": int(m[4]), "all_p50": int(a[1])}
    row.update({s: latency[s]["p50"] for s in STAGES})
    return row


def main() -> int:
    if len(sys.argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    runs, file, seconds = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    variants = {}
    for spec in sys.argv[4:]:
        label, _, rest = spec.partition("=")
        binary, _, config = rest.rpartition(":")
        if not label or not binary or not config:
            print(f"bad variant {spec!r}: expected LABEL=BINARY:CONFIG", file=sys.stderr)
            return 2
        variants[label] = (binary, config)
    rows = {label: [] for label in variants}
    for _ in range(runs):
        for label, (binary, config) in variants.items():
            try:
                row = run(binary, config, file, seconds)
            except RuntimeError as e:
                print(e, file=sys.stderr)
                return 1
            rows[label].append(row)
            print(label, " ".join(f"{k}={v}" for k, v in row.items()), flush=True)
    print("medians:")
    for label, got in rows.items():
        print(label, " ".join(f"{k}={statistics.median(r[k] for r in got):g}" for k in got[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The hot path's cost of the control plane: tick_to_quote of a paced replay
with no control plane, with the control plane idle, and with a dashboard
client connected to its WebSocket stream (reading everything, as the web page
does), run in turn N times each. Prints every run and the medians.

    scripts/bench_control.py MMBOT RECORDING [N] [SECONDS]

e.g. scripts/bench_control.py target/release/mmbot \
         ../shared/data/busy/usdm_ethusdt_20240808.gz 3 20

Each run is `mmbot replay RECORDING --speed 1 --seconds SECONDS` with
`[cores] hot = 1`, `[ai] provider = "none"`, `[feed] poll = "busy"` (the
paced set-up of README section 10), plus `[control]` on an ephemeral port
for the two control cases. The client is this script: it upgrades
/api/stream and reads until the run ends.
"""
import base64
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

TOKEN = "bench-token-0123456789abcdef"
BASE = '[cores]\nhot = 1\n[ai]\nprovider = "none"\n[feed]\npoll = "busy"\n'


def client(port, stop, got):
    """A stream reader: the page's WebSocket, minus the drawing."""
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(
        (
            f"GET /api/stream?token={TOKEN} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
            "Sec-WebSocket-Version: 13\r\n\r\n"
        ).encode()
    )
    s.settimeout(0.5)
    while not stop.is_set():
        try:
            b = s.recv(65536)
        except socket.timeout:
            continue
        except OSError:
            break
        if not b:
            break
        got[0] += len(b)
    s.close()


def run(mmbot, recording, seconds, mode):
    with tempfile.TemporaryDirectory() as d:
        cfg = os.path.join(d, "bench.toml")
        text = BASE
        if mode != "off":
            text += '[control]\nlisten = "127.0.0.1:0"\n'
        open(cfg, "w").write(text)
        report = os.path.join(d, "report.json")
        env = dict(os.environ, MMBOT_CONTROL_TOKEN=TOKEN)
        p = subprocess.Popen(
            [mmbot, "replay", recording, "--speed", "1", "--seconds", str(seconds), "--config", cfg,
             "--report", report],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env, cwd=d,
        )
        stop, got, t = threading.Event(), [0], None
        err = []
        for line in p.stderr:
            err.append(line)
            m = re.match(r"control: http://127\.0\.0\.1:(\d+)/", line)
            if m and mode == "client":
                t = threading.Thread(target=client, args=(int(m.group(1)), stop, got))
                t.start()
        p.wait()
        stop.set()
        if t:
            t.join()
        if p.returncode != 0:
            sys.exit("".join(err))
        r = json.load(open(report))
        t2q = r["perf"]["latency_ns"]["tick_to_quote"]
        return t2q["p50"], t2q["p99"], got[0]


def main():
    mmbot, recording = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 3
    seconds = float(sys.argv[4]) if len(sys.argv) > 4 else 20
    modes = ["off", "idle", "client"]
    res = {m: [] for m in modes}
    for i in range(n):
        for m in modes if i % 2 == 0 else modes[::-1]:
            p50, p99, got = run(mmbot, recording, seconds, m)
            res[m].append((p50, p99))
            extra = f", client read {got} bytes" if m == "client" else ""
            print(f"run {i + 1} {m:>6}: tick_to_quote p50 {p50} ns, p99 {p99} ns{extra}", flush=True)
    base = statistics.median(p for p, _ in res["off"])
    for m in modes:
        p50 = statistics.median(p for p, _ in res[m])
        p99 = statistics.median(q for _, q in res[m])
        print(f"median {m:>6}: p50 {p50:.0f} ns ({(p50 / base - 1) * 100:+.1f}% vs off), p99 {p99:.0f} ns")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Builds a long recording for replay benchmarks from the real captures.

There is no long real capture beside the project, so this repeats the real
ones in ../shared/data/recordings, all symbols interleaved as recorded, REPEAT
times. Each repetition shifts every update id (U, u, pu, lastUpdateId, and the
bookTicker u) and the receive timestamps forward, so a repetition reads like a
reconnect: a gap, a fresh snapshot, a resync, then real diffs that chain.
Frames are otherwise byte-for-byte the captured ones.

usage: scripts/make_long_recording.py OUT.gz [REPEAT]   (default 400, ~290 MB of text)
"""
import glob
import gzip
import os
import re
import sys

ID = re.compile(rb'"(U|u|pu|lastUpdateId)":(\d+)')


def main():
    out = sys.argv[1]
    repeat = int(sys.argv[2]) if len(sys.argv) > 2 else 400
    here = os.path.dirname(os.path.abspath(__file__))
    files = sorted(glob.glob(os.path.join(here, "..", "..", "shared", "data", "recordings", "*.gz")))
    if not files:
        sys.exit("no captures in ../shared/data/recordings")
    lines = []
    for f in files:
        with gzip.open(f, "rb") as fh:
            lines.extend(l for l in fh.read().split(b"\n") if l)
    # Interleave by receive time, as one multi-symbol session would record them.
    lines.sort(key=lambda l: int(l.split(b" ", 1)[0]))
    span = int(lines[-1].split(b" ", 1)[0]) - int(lines[0].split(b" ", 1)[0]) + 1_000_000_000
    with gzip.open(out, "wb", compresslevel=6) as w:
        for r in range(repeat):
            shift = r * 10**12
            ts_shift = r * span
            for l in lines:
                ts, body = l.split(b" ", 1)
                body = ID.sub(lambda m: b'"%s":%d' % (m.group(1), int(m.group(2)) + shift), body)
                w.write(b"%d %s\n" % (int(ts) + ts_shift, body))


if __name__ == "__main__":
    main()

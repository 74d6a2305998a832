#!/usr/bin/env python3
"""Writes tests/data/sample_spot_btcusdt.rec: a small synthetic spot BTCUSDT
recording in the recording line format (`<recv_ts_ns> <json>`), made up here
(not a capture), self-consistent so that it needs nothing beside the project:
two diffs before the snapshot (one stale, one straddling), a REST snapshot,
chained diffs, bookTickers that match the true book at their `u`, a trade and
a kline (skipped). The README's first command replays it; tests pin its output.
"""
import json
import os
import random

rng = random.Random(7)
TICK = 1  # in cents
bids = {6183700 - i * 3: rng.randint(1, 400) * 10**5 for i in range(12)}
asks = {6183705 + i * 3: rng.randint(1, 400) * 10**5 for i in range(12)}


def dec(v, scale):
    s = f"{v / scale:.8f}"
    return s


def px(c):  # cents -> "61837.00000000"
    return dec(c, 100)


def qt(q):  # 1e-8 units -> "3.78826000"
    return dec(q, 10**8)


lines = []
ts = 1723161255000_000000
uid = 50093239000


def emit(obj, wrap=None):
    global ts
    ts += rng.randint(2, 40) * 1_000_000
    body = json.dumps({"stream": wrap, "data": obj} if wrap else obj, separators=(",", ":"))
    lines.append(f"{ts} {body}")


def diff(U, u, b, a):
    emit({"e": "depthUpdate", "E": ts // 1_000_000, "s": "BTCUSDT", "U": U, "u": u,
          "b": [[px(p), qt(q)] for p, q in b], "a": [[px(p), qt(q)] for p, q in a]},
         "btcusdt@depth@100ms")


def apply(side, levels):
    for p, q in levels:
        if q == 0:
            side.pop(p, None)
        else:
            side[p] = q


def ticker(u):
    bb = max(bids)
    ba = min(asks)
    emit({"u": u, "s": "BTCUSDT", "b": px(bb), "B": qt(bids[bb]), "a": px(ba), "A": qt(asks[ba])},
         "btcusdt@bookTicker")


# A diff already inside the snapshot (stale once it arrives), then one that straddles it.
stale = [(max(bids), bids[max(bids)])]
diff(uid - 5, uid - 2, stale, [])
snap_id = uid
straddle_b = [(max(bids) + 1, 150 * 10**5)]
pending = (uid - 1, uid + 3, straddle_b, [])
diff(*pending)
emit({"lastUpdateId": snap_id, "bids": [[px(p), qt(q)] for p, q in sorted(bids.items(), reverse=True)],
      "asks": [[px(p), qt(q)] for p, q in sorted(asks.items())]})
apply(bids, straddle_b)
last = uid + 3
ticker(last)
emit({"e": "kline", "E": ts // 1_000_000, "s": "BTCUSDT", "k": {}}, "btcusdt@kline_1m")
for n in range(24):
    b, a = [], []
    for _ in range(rng.randint(1, 4)):
        p = max(bids) - rng.randint(-1, 6)
        if p >= min(asks):
            continue
        b.append((p, 0 if (p in bids and rng.random() < 0.3) else rng.randint(1, 500) * 10**5))
    for _ in range(rng.randint(1, 4)):
        p = min(asks) + rng.randint(-1, 6)
        if p <= max(bids) or any(p <= bp for bp, _ in b):
            continue
        a.append((p, 0 if (p in asks and rng.random() < 0.3) else rng.randint(1, 500) * 10**5))
    U = last + 1
    u = U + rng.randint(0, 5)
    apply(bids, b)
    apply(asks, a)
    # keep it uncrossed
    assert max(bids) < min(asks)
    diff(U, u, b, a)
    last = u
    if n % 3 == 0:
        ticker(last)
    if n % 5 == 0:
        emit({"e": "trade", "E": ts // 1_000_000, "s": "BTCUSDT", "t": 3000 + n, "p": px(min(asks)),
              "q": qt(10**6), "T": ts // 1_000_000, "m": False, "M": True}, "btcusdt@trade")

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "sample_spot_btcusdt.rec")
with open(out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"wrote {len(lines)} lines to {os.path.normpath(out)}")

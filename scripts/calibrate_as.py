#!/usr/bin/env python3
"""Calibrate Avellaneda-Stoikov / GLFT parameters from a Binance capture.

Usage:
    python3 scripts/calibrate_as.py FILE.gz [--step-s 0.1] [--max-depth-ticks 2000]
        [--tick 0.01] [--min-order 0.001] [--max-position 0.01] [--json]

FILE.gz is a recording in mmbot's line format (`<recv_ts_ns> <raw JSON>`, gzip):
bookTicker frames give the mid, trade (or aggTrade) frames the market orders.
Stock python3 only, no packages.

Method (hftbacktest, examples/"GLFT Market Making Model and Grid Trading.ipynb",
functions measure_trading_intensity_and_volatility / measure_trading_intensity /
linear_regression):
  * time is cut into steps of --step-s (0.1 s); the mid is read at each step's start;
  * sigma: standard deviation of the mid's change per step, times sqrt(1 / step_s),
    i.e. price units per sqrt(second) (also printed in bps of the mid);
  * arrival depth of a step: the deepest trade of the step measured from the
    previous step's mid on the aggressor's side (a taker buy at p: p - mid; a
    taker sell: mid - p). A quote at depth d would have been filled in that step
    if the arrival depth is beyond d (queue position ignored, as there);
  * lambda(d) = steps whose arrival depth > d, per second, on a grid of d;
  * A and k by least squares of ln lambda = ln A - k d over the grid points with
    lambda > 0 (the "shallow" refit: only d up to --max-depth-ticks);
  * also the exponential-tail maximum-likelihood k (1 / mean excess depth),
    which is what glft.rhai computes online;
  * gamma for Avellaneda-Stoikov (see scripts/README.md, "Calibration"): chosen so that
    at a full position (q = max_position / min_order_size order sizes) the
    reservation price moves by one half spread (1/k) over the horizon T:
        gamma = (1 / k) / (q_max * sigma^2 * T),
    with T = 1 / lambda(1/k), the mean time between fills at the quoted depth.
"""

import argparse
import gzip
import json
import math
import sys


def read(path):
    """Yields (recv_s, kind, data) for bookTicker and trade frames."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8", errors="replace") as f:
        for line in f:
            sp = line.find(" ")
            if sp <= 0:
                continue
            try:
                ts = int(line[:sp]) / 1e9
                msg = json.loads(line[sp + 1:])
            except ValueError:
                continue
            data = msg.get("data", msg)
            stream = msg.get("stream", "")
            if stream.endswith("@bookTicker") or ("b" in data and "a" in data and "B" in data and "e" not in data):
                yield ts, "book", data
            elif data.get("e") in ("trade", "aggTrade"):
                yield ts, "trade", data


def linear_regression(x, y):
    n = len(x)
    sx, sy = sum(x), sum(y)
    sx2 = sum(v * v for v in x)
    sxy = sum(a * b for a, b in zip(x, y))
    slope = (n * sxy - sx * sy) / (n * sx2 - sx * sx)
    return slope, (sy - slope * sx) / n


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("file")
    ap.add_argument("--step-s", type=float, default=0.1)
    ap.add_argument("--tick", type=float, default=0.01)
    ap.add_argument("--max-depth-ticks", type=float, default=2000.0)
    ap.add_argument("--bins", type=int, default=100, help="grid points for the regression")
    ap.add_argument("--min-order", type=float, default=0.001)
    ap.add_argument("--max-position", type=float, default=0.01)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()

    step = a.step_s
    mid = None
    step_start = None
    step_mid = None  # mid at the start of the current step
    step_depth = None  # deepest arrival in the current step (None: no trade)
    depths = []  # per step: arrival depth in price units, or None
    mids = []  # mid at each step start
    spreads = []
    trades = 0
    for ts, kind, d in read(a.file):
        if kind == "book":
            bid, ask = float(d["b"]), float(d["a"])
            if bid <= 0 or ask <= bid:
                continue
            mid = (bid + ask) / 2
            spreads.append(ask - bid)
        if mid is None:
            continue
        if step_start is None:
            step_start, step_mid = ts, mid
            mids.append(mid)
        while ts >= step_start + step:
            depths.append(step_depth)
            step_start += step
            step_mid = mid
            mids.append(mid)
            step_depth = None
        if kind == "trade":
            trades += 1
            p = float(d["p"])
            taker_buy = not d["m"]  # m: the buyer is the maker, so the taker sold
            depth = p - step_mid if taker_buy else step_mid - p
            step_depth = depth if step_depth is None else max(step_depth, depth)

    if len(mids) < 100:
        sys.exit(f"{a.file}: only {len(mids)} steps with a mid; need a longer capture with bookTicker frames")
    seconds = len(depths) * step
    chg = [b - c for b, c in zip(mids[1:], mids[:-1])]
    mean = sum(chg) / len(chg)
    sd = math.sqrt(sum((c - mean) ** 2 for c in chg) / (len(chg) - 1))
    sigma = sd * math.sqrt(1 / step)
    avg_mid = sum(mids) / len(mids)
    sigma_bps = sigma / avg_mid * 1e4

    # lambda(d) on a grid of depths (price units).
    tick = a.tick
    dmax = a.max_depth_ticks * tick
    grid = [dmax * (i + 0.5) / a.bins for i in range(a.bins)]
    hits = [d for d in depths if d is not None and d > 0]
    lam = [sum(1 for h in hits if h > g) / seconds for g in grid]
    xs = [g for g, l in zip(grid, lam) if l > 0]
    ys = [math.log(l) for l in lam if l > 0]
    slope, intercept = linear_regression(xs, ys)
    k_reg, a_reg = -slope, math.exp(intercept)
    # Exponential-tail MLE above the first grid point (what glft.rhai does online).
    d0 = grid[0]
    tail = [min(h, dmax) - d0 for h in hits if h > d0]
    unc = sum(1 for h in hits if d0 < h < dmax)
    k_mle = unc / sum(tail) if tail else float("nan")
    a_mle = len(tail) / seconds * math.exp(k_mle * d0)

    half = 1 / k_reg
    lam_half = a_reg * math.exp(-k_reg * half)
    horizon = 1 / lam_half
    q_max = a.max_position / a.min_order
    gamma = half / (q_max * sigma * sigma * horizon)
    as_spread = gamma * sigma * sigma * horizon + (2 / gamma) * math.log(1 + gamma / k_reg)
    out = {
        "file": a.file,
        "seconds": round(seconds, 1),
        "steps": len(depths),
        "trades": trades,
        "steps_with_a_trade": len(hits),
        "mid": round(avg_mid, 4),
        "median_spread": sorted(spreads)[len(spreads) // 2],
        "sigma_price_per_sqrt_s": sigma,
        "sigma_bps_per_sqrt_s": sigma_bps,
        "A_per_s": a_reg,
        "k_per_price_unit": k_reg,
        "k_per_tick": k_reg * tick,
        "A_mle_per_s": a_mle,
        "k_mle_per_price_unit": k_mle,
        "as_horizon_s": horizon,
        "as_q_max": q_max,
        "as_gamma": gamma,
        "as_spread": as_spread,
        "as_spread_bps": as_spread / avg_mid * 1e4,
    }
    if a.json:
        print(json.dumps(out, indent=2))
    else:
        for key, v in out.items():
            print(f"{key:>24}: {v:.6g}" if isinstance(v, float) else f"{key:>24}: {v}")


if __name__ == "__main__":
    main()

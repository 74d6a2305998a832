"""mmbot's paper exchange vs hftbacktest 2.4.4 on the same capture and strategy.

Runs a fixed-half-spread strategy (one lot on each side, `ticks` ticks
outside the touch) in hftbacktest with the risk-averse queue model, the
no-partial-fill exchange, 20 ms constant entry and response latency and no
fees, and prints its orders, cancels, fills, volume and position next to
mmbot's report for the same settings (docs/hftbacktest_compare/mmbot.toml).

Usage (see docs/hftbacktest_comparison.md):

    python3 -m venv /tmp/hbt && /tmp/hbt/bin/pip install hftbacktest==2.4.4
    cargo build --release
    /tmp/hbt/bin/python docs/hftbacktest_compare/compare.py \
        ../shared/data/busy/usdm_ethusdt_20240808.gz target/release/mmbot [risk_averse,power,log] [receive|exchange]

Clocks: mmbot runs everything on the receive clock (a market event happens
at the exchange when it was received). To compare fill models and not
clocks, the hftbacktest input here is converted with exch_ts = local_ts =
the receive time (`receive`, the default). `exchange` uses Binance's
transaction time T for exch_ts instead (hftbacktest's own converter, with
its clock-offset correction) and runs mmbot with `[paper] clock =
"exchange"`.

The strategy loop mirrors what mmbot's paper exchange does for a client:
- it decides on each depth message only (mmbot quotes on depth events);
- per side: while the last new order is unanswered (no ack yet), it sends
  no other order, and cancels that order if it is no longer wanted (in
  hftbacktest a cancel can only go out once the ack is back, so it is sent
  then);
- an acked order at the wanted price is kept; one at another price is
  cancelled and the replacement sent at the same time;
- an order the client believes works (hftbacktest only reports a fill one
  response latency later) counts as working.
"""

import gzip
import json
import subprocess
import sys
import tempfile

import numpy as np
from numba import njit
from numba.typed import Dict
from numba import types as nbt

from hftbacktest import (
    BacktestAsset,
    HashMapMarketDepthBacktest,
    BUY,
    SELL,
    NEW,
    NONE,
    GTX,
    LIMIT,
    DEPTH_EVENT,
    TRADE_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_SNAPSHOT_EVENT,
    BUY_EVENT,
    SELL_EVENT,
    LOCAL_EVENT,
)
from hftbacktest.data.validation import correct_event_order, validate_event_order
from hftbacktest.types import event_dtype

TICK = 0.01
LOT = 0.001
LATENCY_NS = 20_000_000


def convert_receive_clock(path):
    """The capture as hftbacktest events stamped with the receive time on
    both clocks, plus the receive times of depth messages (diffs and the
    snapshot) and of the first snapshot."""
    rows = []
    depth_ts = []
    snapshot_ts = None
    with gzip.open(path, "rt") as f:
        for line in f:
            ts_text, _, body = line.partition(" ")
            ts = int(ts_text)
            msg = json.loads(body)
            data = msg.get("data")
            if data is None:
                if "bids" not in msg:
                    continue
                if snapshot_ts is None:
                    snapshot_ts = ts
                depth_ts.append(ts)
                for side_flag, levels in ((BUY_EVENT, msg["bids"]), (SELL_EVENT, msg["asks"])):
                    if levels:
                        rows.append((DEPTH_CLEAR_EVENT | side_flag, ts, ts, float(levels[-1][0]), 0.0, 0, 0, 0.0))
                        for px, qty in levels:
                            rows.append((DEPTH_SNAPSHOT_EVENT | side_flag, ts, ts, float(px), float(qty), 0, 0, 0.0))
                continue
            e = data.get("e")
            if e == "trade":
                if data.get("X", "MARKET") != "MARKET":
                    continue
                flag = SELL_EVENT if data["m"] else BUY_EVENT
                rows.append((TRADE_EVENT | flag, ts, ts, float(data["p"]), float(data["q"]), 0, 0, 0.0))
            elif e == "depthUpdate":
                depth_ts.append(ts)
                for px, qty in data["b"]:
                    rows.append((DEPTH_EVENT | BUY_EVENT, ts, ts, float(px), float(qty), 0, 0, 0.0))
                for px, qty in data["a"]:
                    rows.append((DEPTH_EVENT | SELL_EVENT, ts, ts, float(px), float(qty), 0, 0, 0.0))
    tmp = np.array(rows, dtype=event_dtype)
    data = correct_event_order(
        tmp, np.argsort(tmp["exch_ts"], kind="mergesort"), np.argsort(tmp["local_ts"], kind="mergesort")
    )
    validate_event_order(data)
    return data, np.array(sorted(set(depth_ts)), dtype=np.int64), snapshot_ts


@njit
def run_strategy(hbt, depth_ts, start_ts, ticks, out):
    n = len(depth_ts)
    i = 0
    next_id = 1
    orders_sent = 0
    cancels_sent = 0
    # Unacked orders the client wants cancelled as soon as the ack is back.
    deferred = Dict.empty(key_type=nbt.uint64, value_type=nbt.int64)
    while True:
        r = hbt.wait_next_feed(True, 1_000_000_000_000)
        if r == 1:
            break
        if r != 0 and r != 2 and r != 3:
            break
        now = hbt.current_timestamp
        orders = hbt.orders(0)
        # Cancels waiting for an ack.
        if len(deferred) > 0:
            done = []
            for oid in deferred.keys():
                o = orders.get(oid)
                if o is None:
                    done.append(oid)
                elif o.req == NONE:
                    if o.status == NEW:
                        hbt.cancel(0, oid, False)
                    done.append(oid)
            for oid in done:
                deferred.pop(oid)
        # Only depth messages make decisions.
        fresh = False
        while i < n and depth_ts[i] <= now:
            i += 1
            fresh = True
        if not fresh or now < start_ts:
            continue
        depth = hbt.depth(0)
        bb = depth.best_bid_tick
        ba = depth.best_ask_tick
        if bb >= ba:
            continue
        out[7] = (bb + ba) * TICK / 2.0
        orders = hbt.orders(0)
        for side in (BUY, SELL):
            want = bb - ticks if side == BUY else ba + ticks
            pending_id = np.uint64(0)
            pending_tick = 0
            working_id = np.uint64(0)
            working_tick = 0
            values = orders.values()
            while values.has_next():
                o = values.get()
                if o.side != side:
                    continue
                if o.req == NEW:
                    pending_id = o.order_id
                    pending_tick = o.price_tick
                elif o.status == NEW and o.req == NONE and o.order_id not in deferred:
                    working_id = o.order_id
                    working_tick = o.price_tick
            if pending_id != 0:
                if pending_tick != want and pending_id not in deferred:
                    deferred[pending_id] = now
                    cancels_sent += 1
                continue
            if working_id != 0:
                if working_tick == want:
                    continue
                hbt.cancel(0, working_id, False)
                cancels_sent += 1
            if side == BUY:
                hbt.submit_buy_order(0, next_id, want * TICK, LOT, GTX, LIMIT, False)
            else:
                hbt.submit_sell_order(0, next_id, want * TICK, LOT, GTX, LIMIT, False)
            next_id += 1
            orders_sent += 1
        hbt.clear_inactive_orders(0)
    sv = hbt.state_values(0)
    out[0] = orders_sent
    out[1] = cancels_sent
    out[2] = sv.num_trades
    out[3] = sv.trading_volume
    out[4] = sv.position
    out[5] = sv.trading_value
    out[6] = sv.balance
    return True


def hftbacktest_run(data, depth_ts, start_ts, ticks, model):
    asset = BacktestAsset().data([data]).linear_asset(1.0).constant_order_latency(LATENCY_NS, LATENCY_NS)
    if model == "risk_averse":
        asset = asset.risk_adverse_queue_model()
    elif model == "power":
        asset = asset.power_prob_queue_model(2.0)
    else:
        asset = asset.log_prob_queue_model()
    asset = (
        asset.no_partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(TICK)
        .lot_size(LOT)
        .last_trades_capacity(0)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    out = np.zeros(8, np.float64)
    run_strategy(hbt, depth_ts, start_ts, ticks, out)
    hbt.close()
    return {
        "orders": int(out[0]),
        "cancels": int(out[1]),
        "fills": int(out[2]),
        "volume": f"{out[5]:.5f}",
        "position": f"{out[4]:.3f}",
        # Balance plus the position at the last mid the strategy saw.
        "pnl": f"{out[6] + out[4] * out[7]:.6f}",
    }


def convert_exchange_clock(path):
    """The capture through hftbacktest's own converter: exch_ts = Binance's
    transaction time T, local_ts = receive time shifted so the fastest
    message has no feed latency; plus the local times of depth messages
    and of the first snapshot."""
    from hftbacktest.data.utils import binancefutures

    data = binancefutures.convert(path, combined_stream=True)
    local = (data["ev"] & LOCAL_EVENT) != 0
    depth = (data["ev"] & (DEPTH_EVENT | DEPTH_SNAPSHOT_EVENT)) != 0
    snap = (data["ev"] & DEPTH_SNAPSHOT_EVENT) == DEPTH_SNAPSHOT_EVENT
    depth_ts = np.unique(data["local_ts"][local & depth])
    start_ts = int(data["local_ts"][local & snap].min())
    return data, depth_ts, start_ts


def mmbot_run(mmbot, capture, ticks, model, clock):
    text = open("docs/hftbacktest_compare/mmbot.toml").read()
    text = text.replace("ticks = 0.0", f"ticks = {ticks:.1f}").replace('"risk_averse"', f'"{model}"')
    text = text.replace('clock = "receive"', f'clock = "{clock}"')
    with tempfile.NamedTemporaryFile("w", suffix=".toml") as cfg, tempfile.NamedTemporaryFile(suffix=".json") as rep:
        cfg.write(text)
        cfg.flush()
        subprocess.run(
            [mmbot, "backtest", capture, "--config", cfg.name, "--script",
             "docs/hftbacktest_compare/fixed_half_spread.rhai", "--report", rep.name],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        t = json.load(open(rep.name))["trading"]
    return {k: t[k] for k in ("orders", "cancels", "fills", "volume", "position", "pnl")}


def main():
    capture, mmbot = sys.argv[1], sys.argv[2]
    models = sys.argv[3].split(",") if len(sys.argv) > 3 else ["risk_averse"]
    clock = sys.argv[4] if len(sys.argv) > 4 else "receive"
    if clock == "receive":
        data, depth_ts, start_ts = convert_receive_clock(capture)
    else:
        data, depth_ts, start_ts = convert_exchange_clock(capture)
    print(f"clock {clock}: events {len(data)}, depth messages {len(depth_ts)}, first snapshot at {start_ts}")
    for model in models:
        for ticks in (0, 1):
            h = hftbacktest_run(data, depth_ts, start_ts, ticks, model)
            m = mmbot_run(mmbot, capture, ticks, model, clock)
            diff = (m["fills"] - h["fills"]) / max(h["fills"], 1) * 100
            print(f"{model} ticks={ticks}")
            print(f"  hftbacktest {h}")
            print(f"  mmbot       {m}")
            print(f"  fills differ by {diff:+.2f}%")


if __name__ == "__main__":
    main()

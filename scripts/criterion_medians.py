#!/usr/bin/env python3
"""Prints the median of every criterion benchmark saved under target/criterion
(criterion's summary line shows the mean; the project quotes medians)."""
import glob
import json
import os

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "target", "criterion")
for path in sorted(glob.glob(os.path.join(root, "**", "new", "estimates.json"), recursive=True)):
    name = os.path.relpath(os.path.dirname(os.path.dirname(path)), root)
    est = json.load(open(path))["median"]
    ns = est["point_estimate"]
    lo, hi = est["confidence_interval"]["lower_bound"], est["confidence_interval"]["upper_bound"]
    unit, div = ("ms", 1e6) if ns >= 1e6 else ("us", 1e3) if ns >= 1e3 else ("ns", 1)
    print(f"{name:60} median {ns / div:9.3f} {unit}  [{lo / div:.3f} .. {hi / div:.3f}]")

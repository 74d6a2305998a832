#!/usr/bin/env bash
# Replay speed versus decompression: times `zcat FILE` and `mmbot book FILE`
# (output to /dev/null) alternately, RUNS times each, and prints the medians
# and their ratio. Decompression is the floor of any replay; the goal is
# mmbot book <= 1.5x zcat.
#
# usage: scripts/bench_replay.sh [FILE.gz] [RUNS]
#   FILE defaults to target/long.gz, built from the real captures by
#   scripts/make_long_recording.py when absent.
set -euo pipefail
cd "$(dirname "$0")/.."
file=${1:-target/long.gz}
runs=${2:-7}
if [ ! -f "$file" ]; then
  echo "building $file from ../shared/data/recordings ..." >&2
  python3 scripts/make_long_recording.py "$file" 400
fi
cargo build --release --quiet
bin=target/release/mmbot

secs() { local s e; s=$(date +%s%N); "$@" > /dev/null 2>&1; e=$(date +%s%N); echo "scale=3; ($e - $s) / 1000000000" | bc; }
median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

z=(); m=()
for _ in $(seq "$runs"); do
  z+=("$(secs zcat "$file")")
  m+=("$(secs "$bin" book "$file")")
done
zm=$(printf '%s\n' "${z[@]}" | median)
mm=$(printf '%s\n' "${m[@]}" | median)
echo "file:        $file ($(du -h "$file" | cut -f1) gzip, $(zcat "$file" | wc -l) lines)"
echo "zcat:        median ${zm} s  (runs: ${z[*]})"
echo "mmbot book:  median ${mm} s  (runs: ${m[*]})"
echo "ratio:       $(echo "scale=2; $mm / $zm" | bc)x zcat (goal <= 1.5x)"
"$bin" book "$file" 2>&1 >/dev/null | sed 's/^/  /'

#!/usr/bin/env bash
# Issue 6, "keyed on topk only": tunes topk 2048 at s_q 1024, 4096 and 16384 (one cache each),
# then prints, per h_q, each s_q's winner and how far the winner of every other s_q is from the
# best at that s_q (the tuner's medians: first pass, close contenders re-timed in rounds).
#   BUILD=build-dev OUT=/tmp/out tools/probes/mla_sq_table.sh
set -uo pipefail
cd "$(dirname "$0")/../.."
B=${BUILD:-build-dev}
OUT=${OUT:-/tmp/mla-sq}
mkdir -p "$OUT"
export LD_LIBRARY_PATH="$PWD/$B"
for sq in 1024 4096 16384; do
  "$B/nsa-tune" --cache "$OUT/sq$sq.sqlite" tune --topk 2048 --s-q $sq >"$OUT/tune$sq.log" 2>&1
  echo "tune s_q $sq: rc=$?"
  "$B/nsa-tune" --cache "$OUT/sq$sq.sqlite" show --topk 2048 2>&1 |
    awk -v sq=$sq '$1 == "h_q" && $4 == sq && $6 == "ok" {print $2, $5, $7}' \
    >"$OUT/cands$sq.txt"
done
python3 - "$OUT" <<'PY'
import sys, collections
out = sys.argv[1]
times = collections.defaultdict(dict)  # (h_q, s_q) -> {variant: ms}
for sq in (1024, 4096, 16384):
    for line in open(f"{out}/cands{sq}.txt"):
        hq, variant, ms = line.split()
        times[(int(hq), sq)][variant] = float(ms)
print(f"{'h_q':>4} {'tuned at':>8}  {'winner':<48} " + " ".join(f"{'at ' + str(s):>9}" for s in (1024, 4096, 16384)))
for hq in (16, 32, 64, 128):
    for tuned in (1024, 4096, 16384):
        t = times.get((hq, tuned))
        if not t:
            continue
        win = min(t, key=t.get)
        cells = []
        for sq in (1024, 4096, 16384):
            other = times.get((hq, sq), {})
            if win in other:
                cells.append(f"{other[win] / min(other.values()):>9.3f}")
            else:
                cells.append(f"{'-':>9}")
        print(f"{hq:>4} {tuned:>8}  {win.replace('nsa_fwd_sm90a_d576_', ''):<48} " + " ".join(cells))
print("cells: the winner's time / the best variant's time at that s_q (1.000 = it is the best there)")
PY

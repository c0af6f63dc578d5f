#!/usr/bin/env python3
"""Top CUDA source lines of an `ncu --page source --csv --print-source cuda` export, by warp
stall samples: python3 ncu_top_lines.py file.csv [title]."""
import csv
import sys

rows = list(csv.reader(open(sys.argv[1], encoding="utf-8", errors="replace")))
title = sys.argv[2] if len(sys.argv) > 2 else ""
header_at = next((i for i, r in enumerate(rows) if any("Sampling" in c for c in r)), None)
if header_at is None:
    print("no sampling columns; first rows:", rows[:3])
    sys.exit(0)
head = rows[header_at]
col = {name: i for i, name in enumerate(head)}
samples = next(i for i, n in enumerate(head) if n.startswith("Warp Stall Sampling (All"))
executed = next((i for i, n in enumerate(head) if n.startswith("Instructions Executed")), None)
src = col.get("Source", 1)
line_col = col.get("#", 0)
stall_cols = [(i, n) for i, n in enumerate(head)
              if "stall" in n.lower() and not n.startswith("Warp Stall Sampling")]
if not stall_cols:
    print("   columns:", "; ".join(head)[:600])
data = []
reasons = {}
for r in rows[header_at + 1:]:
    try:
        s = float(r[samples] or 0)
    except (ValueError, IndexError):
        continue
    ex = float(r[executed] or 0) if executed is not None and r[executed] else 0.0
    top = []
    for i, n in stall_cols:
        try:
            v = float(r[i] or 0)
        except (ValueError, IndexError):
            continue
        reasons[n] = reasons.get(n, 0.0) + v
        top.append((v, n))
    top.sort(reverse=True)
    why = ",".join(f"{n.replace('stall_', '')[:14]}={int(v)}" for v, n in top[:2] if v > 0)
    data.append((s, ex, r[line_col], r[src].strip()[:70] + "  " + why))
total = sum(d[0] for d in data) or 1
print(f"== {title}: {int(total)} samples")
if reasons:
    tot = sum(reasons.values()) or 1
    print("   stall reasons:", ", ".join(f"{n.replace('stall_', '')}={100 * v / tot:.0f}%"
                                        for n, v in sorted(reasons.items(), key=lambda x: -x[1])[:8]))
for s, ex, ln, text in sorted(data, reverse=True)[:22]:
    print(f"{100 * s / total:5.1f}% {int(ex):>9} L{ln:<5} {text}")

"""Aggregate repeated runs of bench/aat_fmnist.py (one JSON per seed) into a mean ± std table, netsculpt vs NNCF.

Usage:
    for s in 0 1 2; do .venv/bin/python bench/aat_fmnist.py --seed $s --out bench/results/aat_fmnist_seed$s.json; done
    .venv/bin/python bench/aat_seeds.py bench/results/aat_fmnist_seed*.json
Prints a markdown table and writes bench/results/aat_fmnist_seeds.md.
"""

from __future__ import annotations

import json
import statistics
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).resolve().parent / "results" / "aat_fmnist_seeds.md"


def _ms(values: list[float]) -> str:
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.3f} ± {sd:.3f}"


def main(paths: list[str]) -> None:
    runs: list[dict[str, Any]] = [json.loads(Path(p).read_text()) for p in sorted(paths)]
    rows = ["| library | seeds | final pruning rate | final top-1 | epochs | epoch-0 top-1 (rate 0.1) | stop reasons |",
            "|---|---|---|---|---|---|---|"]
    for name, pick in (("netsculpt", lambda r: r), ("nncf 2.19", lambda r: r["nncf"])):
        recs = [pick(r) for r in runs if "error" not in pick(r)]
        if not recs:
            continue
        rate = [float(r.get("final_compression_rate") or 0.0) for r in recs]
        top1 = [100 * float(r["final_top1"]) for r in recs]
        epochs = [float(r["epochs"]) for r in recs]
        first = [100 * float(r["history"][0]["accuracy"]) for r in recs]
        reasons = sorted({str(r["stop_reason"]) for r in recs})
        rows.append(f"| {name} | {len(recs)} | {_ms(rate)} | {_ms(top1)} | {_ms(epochs)} | {_ms(first)} | "
                    f"{'; '.join(reasons)} |")  # fmt: skip
    fp32 = [100 * float(r["fp32_top1"]) for r in runs]
    text = "\n".join(rows) + f"\n\nFP32 top-1 {_ms(fp32)} ({len(runs)} runs: {', '.join(sorted(paths))})\n"
    print(text)
    OUT.write_text(text)


if __name__ == "__main__":
    main(sys.argv[1:])

"""The report side of bench/pruning_fmnist.py: the markdown table it prints and ``--merge``.

``print_table`` prints one row per arm of a result dict (the JSON the script writes) plus the notes on
Torch-Pruning's ratio search and NNCF's own statistics; ``merge_runs`` adds the arms of a new run to an earlier
result file of the same settings. Nothing here trains or counts; the arm names come from
bench/_pruning_common.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from _pruning_common import ARM_SPECS


def print_table(res: dict[str, Any]) -> None:
    """Markdown table of every arm."""
    fp32 = res["fp32"]
    print(
        f"FP32 {res['model']}: top-1 {100 * fp32['top1']:.2f} %, {fp32['macs'] / 1e6:.2f} M MACs, "
        f"{fp32['params']:,} params; fine-tuning: {res['epochs']} epoch(s) on {res['train_samples']} images, "
        f"SGD lr {res['lr']} cosine, batch {res['batch_size']}"
    )
    print(
        "| arm | library | FLOPs removed | params | top-1 before FT | top-1 after FT | drop vs FP32 | prune s "
        "| fine-tune s |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for arm, r in res["arms"].items():
        lib = r.get("library", ARM_SPECS[arm][0])
        version = res.get("versions", {}).get(lib)
        lib = f"{lib} {version}" if version and version != "unavailable" else lib
        if "error" in r:
            print(f"| {arm} | {lib} | failed: {str(r['error'])[:100]} | | | | | | |")
            continue
        removed = 1.0 - r["macs"] / fp32["macs"]
        mark = " (masks)" if lib.startswith("nncf") else ""
        print(
            f"| {arm} | {lib} | {100 * removed:.1f} %{mark} | {r['params']:,} | {100 * r['top1_before']:.2f} "
            f"| {100 * r['top1_after']:.2f} | {100 * (fp32['top1'] - r['top1_after']):.2f} pt "
            f"| {r['prune_s']:.2f} | {r['finetune_s']:.1f} |"
        )
    for arm, r in res["arms"].items():
        if "pruning_ratio" in r:
            print(
                f"{arm}: {'global' if r['global_pruning'] else 'uniform'} pruning_ratio {r['pruning_ratio']:.4f} "
                f"found by bisection in {r['ratio_search_s']:.1f} s (not in prune s)"
            )
        if "claimed" in r and r.get("library") == "nncf":
            c = r["claimed"]
            print(
                f"{arm}: counted on the masked model (filters zeroed, not removed); NNCF's own statistics: "
                f"{100 * c['flops_pruning_level']:.1f} % FLOPs, {100 * c['params_pruning_level']:.1f} % params, "
                f"{100 * c['filter_pruning_level']:.1f} % filters removed"
            )
    if "error" in res.get("peers", {}):
        print(res["peers"]["error"])


def merge_runs(out: Path, res: dict[str, Any]) -> dict[str, Any]:
    """``--merge``: the result in ``out`` with the arms of ``res`` added (same settings and FP32 model checked)."""
    old: dict[str, Any] = json.loads(out.read_text())
    for key in ("model", "epochs", "lr", "seed", "train_samples", "test_samples", "flops_target"):
        if old.get(key) != res.get(key):
            raise SystemExit(f"--merge: {out} has {key}={old.get(key)!r}, this run {res.get(key)!r}")
    if abs(old["fp32"]["top1"] - res["fp32"]["top1"]) > 1e-9:
        raise SystemExit(f"--merge: {out} starts from another FP32 model")
    old["arms"].update(res["arms"])
    old.setdefault("merged_runs", []).append({k: res[k] for k in ("total_s", "load_avg", "versions")})
    return old

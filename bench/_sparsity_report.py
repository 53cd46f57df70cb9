"""bench/sparsity_fmnist.py's printed table and ``--merge`` (adding the arms of a run to an earlier result file)."""

from __future__ import annotations

import argparse
from typing import Any

MERGE_KEYS = ("model", "fp32_epochs", "epochs", "seed", "fp32_seed", "lr", "mask_lr", "lr_schedule", "train_samples",
              "test_samples", "loss_scale")  # fmt: skip


def print_table(res: dict[str, Any]) -> None:
    """Markdown table of both libraries' arms."""
    print(
        "| arm | library | FP32 top-1 | compressed top-1 | drop | sparsity | train step vs FP32 | gzip size vs FP32 |"
    )
    print("|---|---|---|---|---|---|---|---|")
    libs = [("netsculpt", res["netsculpt"])]
    if isinstance(res.get("nncf"), dict) and "arms" in res["nncf"]:
        libs.append((f"nncf {res['nncf'].get('version', '')}", res["nncf"]))
    for arm in res["arms"]:
        for name, lib in libs:
            if arm not in lib["arms"]:
                continue
            r = lib["arms"][arm]
            fp32 = lib["fp32_top1"]
            size = f"{r['gzip_vs_fp32']:.2f}x" if "gzip_vs_fp32" in r else "-"
            sparse = f"{100 * r['sparsity']:.1f} %" if "sparsity" in r else "-"
            step = f"{r['step']['ratio']:.2f}x" if "step" in r else "-"
            print(
                f"| {arm} | {name} | {100 * fp32:.2f} | {100 * r['top1']:.2f} | {100 * (fp32 - r['top1']):.2f} pt "
                f"| {sparse} | {step} | {size} |"
            )
    if isinstance(res.get("nncf"), dict) and "error" in res["nncf"]:
        print(res["nncf"]["error"])


def merge(old: dict[str, Any], new: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """``--merge``: the earlier run ``old`` with the arms run now added or replaced (same settings checked)."""
    old.setdefault("lr_schedule", "constant")  # runs before --lr-schedule existed used a constant LR
    for key in MERGE_KEYS:
        if old.get(key) != new.get(key):
            raise SystemExit(f"--merge: {args.out} has {key}={old.get(key)!r}, this run {new.get(key)!r}")
    if abs(old["netsculpt"]["fp32_top1"] - new["netsculpt"]["fp32_top1"]) > 1e-9:
        raise SystemExit(f"--merge: {args.out} starts from another FP32 model")
    for lib in ("netsculpt", "nncf"):
        if isinstance(new.get(lib), dict) and "arms" in new[lib]:
            if isinstance(old.get(lib), dict) and "arms" in old[lib]:
                old[lib]["arms"].update(new[lib]["arms"])
            else:
                old[lib] = new[lib]
    old["arms"] = [*old["arms"], *(a for a in new["arms"] if a not in old["arms"])]
    old["configs"] = new["configs"]
    old.setdefault("merged_runs", []).append({k: new[k] for k in ("arms", "host", "threads", "load_avg")})
    return old

"""Aggregate repeated runs of bench/aat_fmnist.py (one JSON per seed) into mean ± std per library, netsculpt vs NNCF.

Every seed starts from the same FP32 model (``--fp32-seed``, 0 by default) and differs in data order and
compression init. The nominal pruning rates of the two libraries are not comparable (NNCF 2.19 rounds kept filters
up to a multiple of 8, see bench/aat_fmnist.py), so the comparison that counts is what the final model's masks
remove: FLOPs removed (primary) and Conv2d filters removed, next to the final top-1 and whether it meets the
accuracy criterion. Statistics and the met / tie / missed rule come from bench/_stats.py; the target is
"netsculpt removes at least as much as NNCF on the same budget" (paired per-seed difference ours − NNCF).

Usage:
    for s in 0 1 2; do .venv/bin/python bench/aat_fmnist.py --seed $s --out bench/results/aat_fmnist_seed$s.json; done
    # optional like-for-like rounding arm (netsculpt only, paired by seed with the NNCF results above):
    for s in 0 1 2; do .venv/bin/python bench/aat_fmnist.py --seed $s --round-to 8 --nncf off \
        --out bench/results/aat_fmnist_r8_seed$s.json; done
    # NNCF's own rounding (kept filters up to a multiple of 8): the same filter counts at every nominal rate
    for s in 0 1 2; do .venv/bin/python bench/aat_fmnist.py --seed $s --round-to 8 --round-mode up --nncf off \
        --out bench/results/aat_fmnist_r8up_seed$s.json; done
    .venv/bin/python bench/aat_seeds.py bench/results/aat_fmnist_seed*.json bench/results/aat_fmnist_r8_seed*.json \
        bench/results/aat_fmnist_r8up_seed*.json
Prints a markdown table and writes bench/results/aat_fmnist_seeds.md and bench/results/aat_fmnist_seeds.json
(per library: one value per seed; mean/std; paired differences and status), which make_readme_table.py reads.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from _stats import fmt, mean_std, paired, status

RESULTS = Path(__file__).resolve().parent / "results"
OUT_MD = RESULTS / "aat_fmnist_seeds.md"
OUT_JSON = RESULTS / "aat_fmnist_seeds.json"
#: metric -> (label, higher is better, scale for the table)
METRICS = {
    "flops_removed": ("FLOPs removed", True, 100.0),
    "filters_removed": ("Conv2d filters removed", True, 100.0),
    "rate": ("nominal rate found", True, 1.0),
    "top1": ("final top-1", True, 100.0),
}
TARGETS = ("flops_removed", "filters_removed", "rate")  # "at least as much as NNCF"; top-1 is reported only


def _record(run: dict[str, Any], lib: dict[str, Any]) -> dict[str, Any]:
    """One library's values of one run (``lib`` is the run itself for netsculpt, ``run["nncf"]`` for NNCF)."""
    pruned = lib.get("pruned") or {}
    max_drop = float(run["args"]["max_drop"])
    tolerable = float(lib.get("minimal_tolerable_accuracy") or run["fp32_top1"] * (1 - 0.01 * max_drop))
    top1 = float(lib["final_top1"])
    return {
        "rate": float(lib.get("final_compression_rate") or 0.0),
        "flops_removed": float(pruned.get("flops_removed", float("nan"))),
        "filters_removed": float(pruned.get("filters_removed", float("nan"))),
        "top1": top1,
        "meets_criterion": top1 >= tolerable - 1e-12,
        "epochs": int(lib["epochs"]),
        "stop_reason": str(lib["stop_reason"]),
    }


def _lib(recs: list[dict[str, Any]]) -> dict[str, Any]:
    lib: dict[str, Any] = {k: [rec[k] for rec in recs] for k in (*METRICS, "meets_criterion", "epochs", "stop_reason")}
    lib["summary"] = {k: dict(zip(("mean", "std"), mean_std(lib[k]))) for k in METRICS if lib[k]}
    return lib


def _compare(ours: dict[str, Any], peer: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """Paired differences ours − peer per metric and the met / tie / missed status per target."""
    diffs: dict[str, Any] = {}
    states: dict[str, str] = {}
    for k, (_, higher, _) in METRICS.items():
        if not ours[k]:
            continue
        diff = paired(ours[k], peer[k])
        diffs[k] = {"mean": diff[0], "std": diff[1]}
        if k in TARGETS:
            target_met = (diff[0] >= 0) if higher else (diff[0] <= 0)
            states[k] = status(target_met, diff, higher)
    return diffs, states


def _rounding(run: dict[str, Any]) -> tuple[int, str]:
    """``(round_to, round_mode)`` of a netsculpt-only arm run (runs before ``--round-mode`` were "nearest")."""
    return int(run["args"]["round_to"]), str(run["args"].get("round_mode", "nearest"))


def collect(paths: list[str]) -> dict[str, Any]:
    """Per-seed lists per library, mean/std, paired differences (netsculpt − NNCF) and the status per target.

    Runs made with ``--round-to N --nncf off`` (a netsculpt-only arm) are paired by seed with the NNCF results of
    the main runs and reported as ``netsculpt_round_to_N`` (``arms``; ``..._up`` with ``--round-mode up``).
    """
    paths = [p for p in paths if Path(p).resolve() != OUT_JSON.resolve()]  # the shell glob seed*.json matches it
    runs = {p: json.loads(Path(p).read_text()) for p in sorted(paths)}
    pairs = [r for r in runs.values() if isinstance(r.get("nncf"), dict) and "error" not in r["nncf"]]
    arm_runs = [r for r in runs.values() if r.get("nncf") is None and int(r["args"].get("round_to", 1)) > 1]
    left = len(runs) - len(pairs) - len(arm_runs)
    if left:
        print(f"aat_seeds: {left} run(s) without an NNCF result are left out")
    peer_recs = [_record(r, r["nncf"]) for r in pairs]
    out: dict[str, Any] = {
        "files": sorted(paths),
        "seeds": [int(r["args"]["seed"]) for r in pairs],
        "fp32_seed": [int(r["args"].get("fp32_seed", r["args"]["seed"])) for r in pairs],
        "fp32_top1": [float(r["fp32_top1"]) for r in pairs],
        "nncf_version": pairs[0]["nncf"].get("version") if pairs else None,
        "budget_epochs": int(pairs[0]["args"]["max_epochs"]) if pairs else None,
        "max_relative_drop_pct": float(pairs[0]["args"]["max_drop"]) if pairs else None,
        "libraries": {"netsculpt": _lib([_record(r, r) for r in pairs]), "nncf": _lib(peer_recs)},
        "arms": {},
    }
    out["paired"], out["status"] = _compare(out["libraries"]["netsculpt"], out["libraries"]["nncf"])
    for rt, mode in sorted({_rounding(r) for r in arm_runs}):
        by_seed = {int(r["args"]["seed"]): r for r in arm_runs if _rounding(r) == (rt, mode)}
        if not pairs or any(seed not in by_seed for seed in out["seeds"]):
            print(f"aat_seeds: round_to={rt} round_mode={mode} arm lacks some of seeds {out['seeds']}; left out")
            continue
        arm = _lib([_record(by_seed[seed], by_seed[seed]) for seed in out["seeds"]])
        diffs, states = _compare(arm, out["libraries"]["nncf"])
        name = f"netsculpt_round_to_{rt}" + ("_up" if mode == "up" else "")
        out["arms"][name] = {**arm, "paired": diffs, "status": states}
    return out


def _rows(ours: dict[str, Any], peer: dict[str, Any], diffs: dict[str, Any], states: dict[str, str],
          n: int, budget: Any) -> list[str]:  # fmt: skip
    lines = []
    for k, (label, _, scale) in METRICS.items():
        if k not in diffs:
            continue
        digits = 3 if scale == 1.0 else 2
        unit = " (%)" if scale != 1.0 else ""
        d = diffs[k]
        lines.append(
            f"| {label}{unit} | {fmt([scale * v for v in ours[k]], digits)} | {fmt([scale * v for v in peer[k]], digits)} "
            f"| {scale * d['mean']:+.{digits}f} ± {scale * d['std']:.{digits}f} | {states.get(k, '-')} |"
        )
    lines.append(f"| final top-1 meets the criterion | {sum(ours['meets_criterion'])} of {n} "
                 f"| {sum(peer['meets_criterion'])} of {n} | | |")  # fmt: skip
    lines.append(f"| epochs used (budget {budget}) | {fmt(ours['epochs'], 1)} | {fmt(peer['epochs'], 1)} | | |")
    return lines


def table(res: dict[str, Any]) -> str:
    """Markdown: one row per metric, both libraries, the paired difference and the status; then each arm."""
    ours, peer = res["libraries"]["netsculpt"], res["libraries"]["nncf"]
    n, budget = len(res["seeds"]), res["budget_epochs"]
    head = "| status |\n|---|---|---|---|---|"
    lines = [
        f"| metric ({n} seeds, same FP32 start) | netsculpt | NNCF {res['nncf_version']} | netsculpt − NNCF (paired) "
        + head,
        *_rows(ours, peer, res["paired"], res["status"], n, budget),
    ]
    for name, arm in res["arms"].items():
        lines += ["", f"| metric, {name} arm | {name} | NNCF {res['nncf_version']} | {name} − NNCF (paired) " + head,
                  *_rows(arm, peer, arm["paired"], arm["status"], n, budget)]  # fmt: skip
    per_seed = ["", "Per seed (nominal rate / FLOPs removed % / filters removed % / top-1 %):", ""]
    libs = [("netsculpt", ours), *res["arms"].items(), ("NNCF", peer)]
    for i, seed in enumerate(res["seeds"]):
        cells = [
            f"{name} {lib['rate'][i]:.4f} / {100 * lib['flops_removed'][i]:.1f} / {100 * lib['filters_removed'][i]:.1f}"
            f" / {100 * lib['top1'][i]:.2f}"
            for name, lib in libs
        ]
        per_seed.append(f"- seed {seed}: {'; '.join(cells)}")
    reasons = [f"- {name} stop reasons: {'; '.join(lib['stop_reason'])}" for name, lib in libs]
    fp32 = f"FP32 top-1 {fmt([100 * v for v in res['fp32_top1']])} % (FP32 seed {sorted(set(res['fp32_seed']))})"
    return "\n".join([*lines, *per_seed, "", *reasons, "", fp32, f"Runs: {', '.join(res['files'])}", ""])


def main(paths: list[str]) -> None:
    res = collect(paths)
    text = table(res)
    print(text)
    OUT_MD.write_text(text)
    OUT_JSON.write_text(json.dumps(res, indent=2))
    print(f"wrote {OUT_MD} and {OUT_JSON}")


if __name__ == "__main__":
    main(sys.argv[1:])

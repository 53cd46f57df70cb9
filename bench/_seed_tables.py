"""README tables of the repeated-seed accuracy benches: mean ± std per arm, paired differences, target status.

Each renderer reads the per-seed JSON files a bench wrote (``bench/results/<bench>_seed<N>.json``), pairs the
runs by seed (same data order in every arm of one seed) and applies ``_stats.status``; the measured cause and
fix of each gap is kept as prose in ``bench/notes/<bench>.md`` and printed under the table.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from _seed_io import RESULTS, diff_cell, note, seed_runs, seeds_cell
from _seed_sparsity import sparsity_sections
from _stats import fmt, mean_std, paired, status

__all__ = ["SEED_SECTIONS", "seed_runs"]


# ---------------------------------------------------------------------------------------------- pruning


PRUNING_PEERS = ("tp_l1", "nncf_l1_global")


def _pruning(runs: list[dict[str, Any]]) -> list[str]:
    r0 = runs[0]
    fp32 = 100 * r0["fp32"]["top1"]
    arms = [a for a in r0["arms"] if all("top1_after" in r["arms"].get(a, {}) for r in runs)]
    arms.sort(key=lambda a: r0["arms"][a].get("library") != "netsculpt")  # netsculpt's arms first
    out = [
        f"### Filter pruning accuracy at 50 % FLOPs on Fashion-MNIST, {len(runs)} seeds (`bench/pruning_fmnist.py`)",
        "",
        f"{r0['model']}, {r0['train_samples']} training / {r0['test_samples']} test images; every arm and seed "
        f"starts from the same FP32 model (top-1 {fp32:.2f}), prunes at once (no BN adaptation) and gets the same "
        f"{r0['epochs']}-epoch fine-tune (SGD, lr {r0['lr']}, cosine; seeds {seeds_cell(runs)} set the data order). "
        "Target: netsculpt ≥ Torch-Pruning L1 and ≥ NNCF (global, the FLOPs-matched arm: NNCF's uniform mode keeps "
        "multiples of 8 channels and lands at 75 %). Paired columns: netsculpt − peer top-1 per seed, mean ± std.",
        "",
        "| arm | library | FLOPs removed (%) | top-1 before fine-tune | train loss, epoch 1 | top-1 after | vs TP L1 (pt) "
        "| vs NNCF global (pt) | status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for arm in arms:
        recs = [r["arms"][arm] for r in runs]
        lib = recs[0].get("library", "?")
        after = [100 * a["top1_after"] for a in recs]
        flops = [100 * (1 - a["macs"] / r["fp32"]["macs"]) for a, r in zip(recs, runs)]
        before = [100 * a["top1_before"] for a in recs]
        loss1 = [a["epochs_log"][0]["loss"] for a in recs]
        cells = [f"{mean_std(flops)[0]:.1f}", fmt(before), fmt(loss1, 3), fmt(after)]
        if lib != "netsculpt":
            out.append(f"| {arm} | {lib} | {' | '.join(cells)} | | | |")
            continue
        diffs, verdicts = [], []
        for peer in PRUNING_PEERS:
            if peer not in arms:
                diffs.append("-")
                continue
            d = paired(after, [100 * r["arms"][peer]["top1_after"] for r in runs])
            diffs.append(diff_cell(d))
            verdicts.append(status(True, d))
        order = ("missed", "tie", "met")
        verdict = min(verdicts, key=order.index) if verdicts else "-"
        out.append(f"| {arm} | {lib} | {' | '.join(cells)} | {' | '.join(diffs)} | **{verdict}** |")
    return out + _pruning_diagnosis() + note("pruning_fmnist")


def _pruning_diagnosis() -> list[str]:
    path = RESULTS / "pruning_diagnose.json"
    if not path.exists():
        return []
    d = json.loads(path.read_text())
    share = {}
    for scope, per_bn in d["overlap"].items():
        share[scope] = (sum(v["shared"] for v in per_bn.values()), sum(v["tp"] for v in per_bn.values()))
    ft = d["finetune"]
    losses = {k: ", ".join(f"{x:.3f}" for x in v["losses"]) for k, v in ft.items()}
    return [
        "",
        f"Diagnosis (`bench/pruning_diagnose.py`, seed {d['seed']}): of the channels Torch-Pruning keeps (summed over "
        f"every BatchNorm), netsculpt keeps {share['filters'][0]} of {share['filters'][1]} with `importance_scope: "
        f"filters` and {share['filters_and_inputs'][0]} with `filters_and_inputs`. The netsculpt-pruned model "
        f"fine-tuned masked (losses per epoch {losses['masked']}, top-1 {100 * ft['masked']['top1']:.2f}) and "
        f"stripped (losses {losses['stripped']}, top-1 {100 * ft['stripped']['top1']:.2f}) train alike.",
    ]


# ---------------------------------------------------------------------------------------------- binarization


def _binarization(runs: list[dict[str, Any]]) -> list[str]:
    r0 = runs[0]
    ref = r0["nncf_published"]
    drop = [r["drop_pt"] for r in runs]
    verdict = status(mean_std(drop)[0] <= ref["drop_pt"])
    return [
        f"### {r0['mode'].upper()} binarization on Fashion-MNIST, {len(runs)} seeds (`bench/binarization_fmnist.py`)",
        "",
        f"{r0['model']}, {r0['train_samples']} training images, one FP32 model ({r0['fp32_epochs']} epochs), then "
        f"per seed ({seeds_cell(runs)}) {r0['bin_epochs']} epochs of the staged recipe in the bench's JSON. NNCF 2.9, "
        "the last release with binarization, does not install beside torch 2.13, so its published ImageNet drop is "
        "the target.",
        "",
        "| run | FP32 top-1 | binarized top-1 | ONNX Runtime | drop (pt) | binarized MACs | status (drop ≤ NNCF's) |",
        "|---|---|---|---|---|---|---|",
        f"| netsculpt {r0['model']}, Fashion-MNIST | {100 * r0['fp32_top1']:.2f} | "
        f"{fmt([100 * r['binarized_top1'] for r in runs])} | "
        f"{fmt([100 * r['binarized_onnxruntime_top1'] for r in runs])} | **{fmt(drop)}** | "
        f"{100 * r0['binarized_macs_share']:.1f} % | **{verdict}** |",
        f"| NNCF published {ref['model']}, {ref['dataset']} | {ref['fp32_top1']:.2f} | {ref['binarized_top1']:.2f} "
        f"| - | {ref['drop_pt']:.2f} | - | - |",
        *note("binarization_fmnist"),
    ]


# ---------------------------------------------------------------------------------------------- adaptive AAT


def _aat(runs: list[dict[str, Any]]) -> list[str]:
    """The tables ``bench/aat_seeds.py`` wrote (it pairs the runs by seed and applies ``_stats.status``)."""
    summary = RESULTS / "aat_fmnist_seeds.md"
    if not summary.exists():
        return []
    args = runs[0].get("args", {})
    tables = summary.read_text().split("\n\nPer seed")[0].strip().splitlines()
    return [
        f"### Adaptive compression level on Fashion-MNIST, beside NNCF 2.19, {len(runs)} seeds (`bench/aat_fmnist.py`, "
        "`bench/aat_seeds.py`)",
        "",
        f"{runs[0]['model']} filter pruning driven by `adaptive_compression_level` (maximal relative degradation "
        f"{args.get('max_drop', 1.0)} %, at most {args.get('max_epochs', '?')} epochs of {runs[0]['steps_per_epoch']} "
        "steps), the same FP32 model for every seed, the same callbacks, data and LR in both libraries. Target: "
        "netsculpt removes at least what NNCF removes on the same budget. The nominal rates mean different things "
        "(NNCF rounds kept filters up to multiples of 8), so FLOPs and filters removed by the final masks are "
        "compared; per-seed values in `bench/results/aat_fmnist_seeds.md`.",
        "",
        *tables,
        *note("aat_fmnist"),
    ]


# ---------------------------------------------------------------------------------------------- HAWQ


def _hawq(runs: list[dict[str, Any]]) -> list[str]:
    r0 = runs[0]

    def arm(run: dict[str, Any], key: str, metric: str) -> float:
        rows = [a for a in run["arms"] if a["arm"] == key or (key == "random" and a["arm"].startswith("random"))]
        return 100 * float(sum(a[metric] for a in rows)) / len(rows)  # random: the mean of the draws

    n_random = sum(a["arm"].startswith("random") for a in r0["arms"])
    out = [
        f"### HAWQ-v2 vs reversed-trace vs random bits, {len(runs)} seeds (`bench/hawq_fmnist.py`)",
        "",
        f"{r0['model']}, bits {r0.get('bits', [2, 4, 8])}, target compression ratio {r0['target_ratio']} (vs INT8 "
        f"bit-complexity); every arm and seed starts from the same FP32 model (top-1 {100 * r0['fp32_top1']:.2f}), "
        f"the same range init, then the same {r0['ft_steps']}-step fine-tune (seeds {seeds_cell(runs)}: data order; "
        f"the random arm averages {n_random} random bit draws per seed, different for every seed). HAWQ should beat "
        "both baselines; paired columns: HAWQ − baseline per seed.",
        "",
        "| arm | top-1 after init | top-1 after fine-tune | HAWQ − arm after fine-tune (pt, paired) | status |",
        "|---|---|---|---|---|",
    ]
    hawq_ft = [arm(r, "hawq", "top1_after_finetune") for r in runs]
    for key in ("hawq", "reversed-trace", "random"):
        init = [arm(r, key, "top1_after_init") for r in runs]
        ft = [arm(r, key, "top1_after_finetune") for r in runs]
        if key == "hawq":
            out.append(f"| {key} | {fmt(init)} | {fmt(ft)} | | |")
            continue
        d = paired(hawq_ft, ft)
        out.append(f"| {key} | {fmt(init)} | {fmt(ft)} | {diff_cell(d)} | **{status(True, d)}** |")
    return out + note("hawq_fmnist")


# ---------------------------------------------------------------------------------------------- INT8 QAT accuracy


ACCURACY_ARMS = (
    ("fp32_finetune", "FP32 fine-tune (control)"),
    ("netsculpt_int8", "INT8 QAT"),
    ("nncf_int8", "INT8 QAT"),
)


def _epochs(n: int) -> str:
    return f"{n} epoch{'' if n == 1 else 's'}"


def _accuracy(runs: list[dict[str, Any]]) -> list[str]:
    r0 = runs[0]
    cfg = r0["config"]["compression"]
    fp32 = [100 * r["fp32_top1"] for r in runs]

    def col(arm: str, key: str) -> list[float] | None:
        vals = [r["arms"].get(arm, {}).get(key) for r in runs]
        return None if any(v is None for v in vals) else [100 * float(v) for v in vals]  # type: ignore[arg-type]

    out = [
        f"### INT8 QAT accuracy on Fashion-MNIST, beside NNCF 2.19, {len(runs)} seeds (`bench/accuracy_fmnist.py`)",
        "",
        f"{r0['model']}, {r0['train_samples']} training / {r0['test_samples']} test images; one FP32 model "
        f"({_epochs(r0['fp32_epochs'])}, lr {r0.get('fp32_lr', 0.1)}, top-1 {mean_std(fp32)[0]:.2f}), then per seed "
        f"({seeds_cell(runs)}: data order) {_epochs(r0['qat_epochs'])} of SGD (lr {r0['qat_lr']}, momentum 0.9, wd 5e-4, cosine) with the "
        f"same data order in every arm. Both libraries get the same config: 8-bit, per-channel weights, range init "
        f"on {cfg['initializer']['range']['num_init_samples']} samples, BN adaptation on "
        f"{cfg['initializer']['batchnorm_adaptation']['num_bn_adaptation_samples']}. The control fine-tunes the "
        "FP32 model the same way without quantization. Mean ± std over seeds; paired columns per seed "
        "(INT8 − control top-1: the loss due to quantization; netsculpt − NNCF drop, negative is better for "
        "netsculpt). Target: INT8 QAT drop ≤ 0.3 pt and ≤ NNCF's. Status: met when the mean meets the target and "
        "the paired difference is beyond one std in netsculpt's favour; tie within one std.",
        "",
        "| arm | library | top-1 after init | top-1 | ONNX Runtime top-1 | drop vs FP32 (pt) | vs control (pt, paired) "
        "| drop − NNCF's (pt, paired) | status |",
        "|---|---|---|---|---|---|---|---|---|",
        f"| FP32 start | - | - | {mean_std(fp32)[0]:.2f} | - | - | - | - | |",
    ]
    control = col("fp32_finetune", "top1")
    nncf = col("nncf_int8", "top1")
    for arm, label in ACCURACY_ARMS:
        top1 = col(arm, "top1")
        if top1 is None:
            have = sum(arm in r["arms"] for r in runs)
            out.append(f"| {label} | {arm.split('_')[0]} | missing runs ({have} of {len(runs)}) | | | | | | |")
            continue
        lib = next(r["arms"][arm]["library"] for r in runs)
        drop = [f - t for f, t in zip(fp32, top1)]
        init, ort = col(arm, "top1_after_init"), col(arm, "onnxruntime_top1")
        vs_control = diff_cell(paired(top1, control)) if control and arm != "fp32_finetune" else "-"
        cells = f"{fmt(init) if init else '-'} | {fmt(top1)} | {fmt(ort) if ort else '-'} | {fmt(drop)} | {vs_control}"
        if arm != "netsculpt_int8":
            out.append(f"| {label} | {lib} | {cells} | | |")
            continue
        diff = paired(drop, [f - t for f, t in zip(fp32, nncf)]) if nncf else None
        verdict = status(mean_std(drop)[0] <= 0.3, diff, higher_is_better=False)
        verdict = f"**{verdict}**" if diff else f"**{verdict}** (0.3 pt only: no NNCF runs)"
        out.append(f"| {label} | {lib} | {cells} | {diff_cell(diff) if diff else '-'} | {verdict} |")
    return out + note("accuracy_fmnist")


SEED_SECTIONS: dict[str, Callable[[list[dict[str, Any]]], list[str]]] = {
    "hawq_fmnist": _hawq,
    "aat_fmnist": _aat,
    "sparsity_fmnist": sparsity_sections,
    "pruning_fmnist": _pruning,
    "binarization_fmnist": _binarization,
    "accuracy_fmnist": _accuracy,
}

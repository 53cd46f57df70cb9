"""README tables of the repeated-seed accuracy benches: mean ± std per arm, paired differences, target status.

Each renderer reads the per-seed JSON files a bench wrote (``bench/results/<bench>_seed<N>.json``), pairs the
runs by seed (same data order in every arm of one seed) and applies ``_stats.status``; the measured cause and
fix of each gap is kept as prose in ``bench/notes/<bench>.md`` and printed under the table.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _stats import fmt, mean_std, paired, status

RESULTS = Path(__file__).resolve().parent / "results"
NOTES = Path(__file__).resolve().parent / "notes"

__all__ = ["SEED_SECTIONS", "seed_runs"]


def seed_runs(bench: str) -> list[dict[str, Any]]:
    """The per-seed results of ``bench``, ordered by seed."""
    paths = [p for p in RESULTS.glob(f"{bench}_seed*.json") if re.fullmatch(rf"{bench}_seed\d+\.json", p.name)]
    runs = [json.loads(p.read_text()) for p in paths]
    return sorted(runs, key=lambda r: int(r.get("seed", r.get("args", {}).get("seed", 0))))


def _note(bench: str) -> list[str]:
    path = NOTES / f"{bench}.md"
    return ["", *path.read_text().strip().splitlines()] if path.exists() else []


def _seeds(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(r.get("seed", "?")) for r in runs)


def _diff(d: tuple[float, float]) -> str:
    return f"{d[0]:+.2f} ± {d[1]:.2f}"


# ---------------------------------------------------------------------------------------------- sparsity


SPARSITY_TARGETS = {"magnitude_50": (0.3, None), "rb_50": (0.5, (0.48, 0.52)), "magnitude_50+int8": (0.5, None)}
SPARSITY_CONTROL = "dense_finetune"


def _sparsity_arm(runs: list[dict[str, Any]], lib: str, arm: str, fp32: float) -> dict[str, list[Any]] | None:
    """Per-seed top-1, drop, sparsity, data-order digests and per-epoch means of one arm of one library; ``None``
    when a seed lacks it."""
    recs = [r[lib]["arms"].get(arm) for r in runs if isinstance(r.get(lib), dict) and "arms" in r[lib]]
    recs = [a for a in recs if isinstance(a, dict) and "top1" in a]
    if len(recs) != len(runs):
        return None
    top1 = [100 * a["top1"] for a in recs]
    v = {"top1": top1, "drop": [fp32 - t for t in top1], "sparsity": [100 * a.get("sparsity", 0.0) for a in recs]}
    traces = [a.get("trace") or [] for a in recs]
    v["order"] = [tuple(e.get("order") for e in t) for t in traces]
    for key in ("sparsity", "top1"):  # per-epoch means, when every seed logged them
        if all(t and all(key in e for e in t) for t in traces):
            v[f"{key}_trace"] = [mean_std([100 * e[key] for e in col])[0] for col in zip(*traces)]
    return v


def _sparsity_pair(a: dict[str, list[Any]], b: dict[str, list[Any]]) -> str:
    """Paired drop difference ``a − b``; marked † unless every seed's epochs saw the same data order in both."""
    same = all(x and None not in x and x == y for x, y in zip(a["order"], b["order"]))
    return _diff(paired(a["drop"], b["drop"])) + ("" if same else " †")


def _sparsity(runs: list[dict[str, Any]]) -> list[str]:
    r0 = runs[0]
    fp32 = 100 * r0["netsculpt"]["fp32_top1"]
    arms = [a for a in r0["arms"] if a != SPARSITY_CONTROL]
    control = _sparsity_arm(runs, "netsculpt", SPARSITY_CONTROL, fp32)
    out = [
        f"### Sparsity on Fashion-MNIST, beside NNCF 2.19, {len(runs)} seeds (`bench/sparsity_fmnist.py`)",
        "",
        f"{r0['model']}, {r0['train_samples']} training / {r0['test_samples']} test images; one FP32 model "
        f"({r0['fp32_epochs']} epochs, top-1 {fp32:.2f}) fine-tuned {r0['epochs']} epochs per arm and seed (seeds "
        f"{_seeds(runs)}: data order and mask init) with the same config, data order and optimizer (Adam lr "
        f"{r0.get('lr', '?')}, RB mask logits lr {r0.get('mask_lr', '?')}) in both libraries. `{SPARSITY_CONTROL}` "
        "is the control: the same fine-tune of the FP32 model without compression. Mean ± std over seeds; the "
        "paired columns pair the runs by seed: drop − the control's (the part of the drop due to sparsity) and "
        "netsculpt − NNCF drop (negative is better for netsculpt). Targets: magnitude 50 % drop ≤ 0.3 pt and ≤ NNCF; "
        "RB reaches 50 ± 2 % with drop ≤ 0.5 pt and ≤ NNCF. Status: met when the mean meets the target and the "
        "paired difference to NNCF is beyond one std in netsculpt's favour; tie within one std.",
        "",
        "| arm | library | top-1 | drop vs FP32 (pt) | sparsity (%) | sparsity after each epoch (%) "
        "| top-1 after each epoch | drop − control's (pt, paired) | drop − NNCF's (pt, paired) | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if control is None:
        out.append(f"| {SPARSITY_CONTROL} | netsculpt | missing runs | | | | | | | |")
    else:
        per_epoch = " → ".join(f"{x:.2f}" for x in control.get("top1_trace", [])) or "-"
        cells = f"{fmt(control['top1'])} | {fmt(control['drop'])} | - | - | {per_epoch}"
        out.append(f"| {SPARSITY_CONTROL} (control) | netsculpt | {cells} | | | |")
    for arm in arms:
        per_lib = {lib: _sparsity_arm(runs, lib, arm, fp32) for lib in ("netsculpt", "nncf")}
        for lib, v in per_lib.items():
            if v is None:
                out.append(f"| {arm} | {lib} | missing runs | | | | | | | |")
                continue
            trace = " → ".join(f"{x:.1f}" for x in v.get("sparsity_trace", [])) or "-"
            per_epoch = " → ".join(f"{x:.2f}" for x in v.get("top1_trace", [])) or "-"
            vs_control = _sparsity_pair(v, control) if control else "-"
            cells = f"{fmt(v['top1'])} | {fmt(v['drop'])} | {fmt(v['sparsity'], 1)} | {trace} | {per_epoch}"
            cells += f" | {vs_control}"
            if lib != "netsculpt":
                out.append(f"| {arm} | nncf {r0['nncf'].get('version', '')} | {cells} | | |")
                continue
            max_drop, band = SPARSITY_TARGETS.get(arm, (float("inf"), None))
            level = mean_std(v["sparsity"])[0] / 100
            ok = mean_std(v["drop"])[0] <= max_drop and (band is None or band[0] <= level <= band[1])
            nncf = per_lib["nncf"]
            diff = paired(v["drop"], nncf["drop"]) if nncf else None
            shown = _sparsity_pair(v, nncf) if nncf else "-"
            out.append(f"| {arm} | netsculpt | {cells} | {shown} | **{status(ok, diff, higher_is_better=False)}** |")
    if any(" †" in line for line in out):
        out += [
            "",
            "† Not the same data order on every seed (runs without the per-epoch `order` digest predate the "
            "loader-state fix in `run_arms`), so pairing by seed does not remove the data-order noise.",
        ]
    return out + _sparsity_diagnosis(runs) + _note("sparsity_fmnist")


def _epoch_means(traces: list[list[dict[str, Any]]]) -> str:
    """Mean test top-1 after each epoch over the seeds, with the mean sparsity (%) in brackets where non-zero."""
    if not all("top1" in e for t in traces for e in t):
        return "-"
    cells = []
    for col in zip(*traces):
        top1, sparse = mean_std([100 * e["top1"] for e in col])[0], [100 * e.get("sparsity", 0.0) for e in col]
        cells.append(f"{top1:.2f}" + (f" ({mean_std(sparse)[0]:.0f})" if any(sparse) else ""))
    return " → ".join(cells)


def _sparsity_diagnosis(runs: list[dict[str, Any]]) -> list[str]:
    """The RB diagnostic runs (``sparsity_fmnist_rbdiag_<name>_seed<N>.json``, netsculpt only) beside the main
    protocol on the same seeds; each arm is paired with the control of its own file, else the main run's."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("sparsity_fmnist_rbdiag_*_seed*.json")):
        name = path.stem.split("_rbdiag_")[1].rsplit("_seed", 1)[0]
        groups.setdefault(name, []).append(json.loads(path.read_text()))
    if not groups:
        return []
    main = {r["seed"]: r for r in runs}
    seeds = sorted({d["seed"] for g in groups.values() for d in g})
    out = [
        "",
        "RB diagnostics (`--epoch-eval`, netsculpt only; the main protocol restricted to the same seeds):",
        "",
        "| run | arm | seeds | top-1 | sparsity (%) | top-1 (sparsity %) after each epoch | drop − control's (pt, paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group in [("main protocol", [main[s] for s in seeds if s in main]), *sorted(groups.items())]:
        group = sorted(group, key=lambda d: d["seed"])
        d0 = group[0]
        label = f"{name}: {d0['epochs']} epochs, lr {d0['lr']}, RB penalty × {d0.get('loss_scale', 1.0)}"
        for arm in d0["netsculpt"]["arms"]:
            if name == "main protocol" and arm not in ("rb_50", SPARSITY_CONTROL):
                continue
            recs = [d["netsculpt"]["arms"][arm] for d in group]
            top1 = [100 * a["top1"] for a in recs]
            per_epoch = _epoch_means([a["trace"] for a in recs])
            if arm == SPARSITY_CONTROL:
                out.append(f"| {label} | {arm} | {_seeds(group)} | {fmt(top1)} | - | {per_epoch} | |")
                continue
            ctrl = [d if SPARSITY_CONTROL in d["netsculpt"]["arms"] else main[d["seed"]] for d in group]
            ctrl_top1 = [100 * c["netsculpt"]["arms"][SPARSITY_CONTROL]["top1"] for c in ctrl]
            vs = _diff(mean_std([c - t for c, t in zip(ctrl_top1, top1)]))
            sparse = fmt([100 * a["sparsity"] for a in recs], 1)
            out.append(f"| {label} | {arm} | {_seeds(group)} | {fmt(top1)} | {sparse} | {per_epoch} | {vs} |")
    return out


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
        f"{r0['epochs']}-epoch fine-tune (SGD, lr {r0['lr']}, cosine; seeds {_seeds(runs)} set the data order). "
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
            diffs.append(_diff(d))
            verdicts.append(status(True, d))
        order = ("missed", "tie", "met")
        verdict = min(verdicts, key=order.index) if verdicts else "-"
        out.append(f"| {arm} | {lib} | {' | '.join(cells)} | {' | '.join(diffs)} | **{verdict}** |")
    return out + _pruning_diagnosis() + _note("pruning_fmnist")


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
        f"per seed ({_seeds(runs)}) {r0['bin_epochs']} epochs of the staged recipe in the bench's JSON. NNCF 2.9, "
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
        *_note("binarization_fmnist"),
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
        *_note("aat_fmnist"),
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
        f"the same range init, then the same {r0['ft_steps']}-step fine-tune (seeds {_seeds(runs)}: data order; "
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
        out.append(f"| {key} | {fmt(init)} | {fmt(ft)} | {_diff(d)} | **{status(True, d)}** |")
    return out + _note("hawq_fmnist")


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
        f"({_seeds(runs)}: data order) {_epochs(r0['qat_epochs'])} of SGD (lr {r0['qat_lr']}, momentum 0.9, wd 5e-4, cosine) with the "
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
        vs_control = _diff(paired(top1, control)) if control and arm != "fp32_finetune" else "-"
        cells = f"{fmt(init) if init else '-'} | {fmt(top1)} | {fmt(ort) if ort else '-'} | {fmt(drop)} | {vs_control}"
        if arm != "netsculpt_int8":
            out.append(f"| {label} | {lib} | {cells} | | |")
            continue
        diff = paired(drop, [f - t for f, t in zip(fp32, nncf)]) if nncf else None
        verdict = status(mean_std(drop)[0] <= 0.3, diff, higher_is_better=False)
        verdict = f"**{verdict}**" if diff else f"**{verdict}** (0.3 pt only: no NNCF runs)"
        out.append(f"| {label} | {lib} | {cells} | {_diff(diff) if diff else '-'} | {verdict} |")
    return out + _note("accuracy_fmnist")


SEED_SECTIONS: dict[str, Callable[[list[dict[str, Any]]], list[str]]] = {
    "hawq_fmnist": _hawq,
    "aat_fmnist": _aat,
    "sparsity_fmnist": _sparsity,
    "pruning_fmnist": _pruning,
    "binarization_fmnist": _binarization,
    "accuracy_fmnist": _accuracy,
}

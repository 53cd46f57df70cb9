"""README tables of ``bench/sparsity_fmnist.py``: one table per fine-tuning protocol, paired by seed.

The main protocol's runs are ``sparsity_fmnist_seed<N>.json`` (cosine LR decay); the earlier constant-LR runs
are ``sparsity_fmnist_constant_seed<N>.json``, shown below them with the RB diagnostic runs
(``sparsity_fmnist_rbdiag_<name>_seed<N>.json``, constant LR, netsculpt only). An arm run on fewer seeds than the
others is shown over its own seeds (``n=``) and paired on the seeds both sides have.
"""

from __future__ import annotations

import json
from typing import Any

from _seed_io import RESULTS, diff_cell, note, seed_runs, seeds_cell
from _stats import fmt, mean_std, paired, status

__all__ = ["sparsity_sections"]

TARGETS = {"magnitude_50": (0.3, None), "rb_50": (0.5, (0.48, 0.52)), "magnitude_50+int8": (0.5, None)}
CONTROL = "dense_finetune"
Arm = dict[str, Any]


def _schedule(run: dict[str, Any]) -> str:
    """The fine-tune's LR schedule (runs before ``--lr-schedule`` existed used a constant LR)."""
    return str(run.get("lr_schedule", "constant"))


def _arm(runs: list[dict[str, Any]], lib: str, arm: str, fp32: float) -> Arm | None:
    """Per-seed top-1, drop, sparsity, data-order digests and per-epoch means of one arm of one library, over the
    seeds that ran it; ``None`` when none did."""
    recs = []
    for r in runs:
        a = r[lib]["arms"].get(arm) if isinstance(r.get(lib), dict) and "arms" in r[lib] else None
        if isinstance(a, dict) and "top1" in a:
            recs.append((r.get("seed"), a))
    if not recs:
        return None
    top1 = [100 * a["top1"] for _, a in recs]
    v: Arm = {
        "seeds": [s for s, _ in recs],
        "top1": top1,
        "drop": [fp32 - t for t in top1],
        "sparsity": [100 * a.get("sparsity", 0.0) for _, a in recs],
    }
    traces = [a.get("trace") or [] for _, a in recs]
    v["order"] = [tuple(e.get("order") for e in t) for t in traces]
    for key in ("sparsity", "top1"):  # per-epoch means, when every seed logged them
        if all(t and all(key in e for e in t) for t in traces):
            v[f"{key}_trace"] = [mean_std([100 * e[key] for e in col])[0] for col in zip(*traces)]
    return v


def _pair(a: Arm, b: Arm | None) -> tuple[tuple[float, float], bool, int] | None:
    """Paired drop difference ``a − b`` on the seeds both ran, whether every such seed's epochs saw the same data
    order in both, and the number of pairs; ``None`` without ``b`` or a common seed."""
    common = [s for s in a["seeds"] if b is not None and s in b["seeds"]]
    if b is None or not common:
        return None
    ia = [a["seeds"].index(s) for s in common]
    ib = [b["seeds"].index(s) for s in common]
    d = paired([a["drop"][i] for i in ia], [b["drop"][j] for j in ib])
    same = all(a["order"][i] and None not in a["order"][i] and a["order"][i] == b["order"][j] for i, j in zip(ia, ib))
    return d, same, len(common)


def _pair_cell(a: Arm, b: Arm | None) -> str:
    """The paired cell, with the number of pairs when it differs from the arm's seeds; marked † unless the data
    order was the same."""
    pair = _pair(a, b)
    if pair is None:
        return "-"
    d, same, n = pair
    return diff_cell(d) + (f" (n={n})" if n != len(a["seeds"]) else "") + ("" if same else " †")


def _intro(runs: list[dict[str, Any]], fp32: float) -> str:
    r0 = runs[0]
    lr = f"Adam lr {r0.get('lr', '?')}, " + (
        "decayed per step to 0 by one cosine over the fine-tune" if _schedule(r0) == "cosine" else "constant"
    )
    return (
        f"{r0['model']}, {r0['train_samples']} training / {r0['test_samples']} test images; one FP32 model "
        f"({r0['fp32_epochs']} epochs, top-1 {fp32:.2f}) fine-tuned {r0['epochs']} epochs per arm and seed (seeds "
        f"{seeds_cell(runs)}: data order and mask init) with the same config, data order and optimizer ({lr}; RB "
        f"mask logits lr {r0.get('mask_lr', '?')}) in both libraries. `{CONTROL}` is the control: the same "
        "fine-tune of the FP32 model without compression. Mean ± std over seeds; the paired columns pair the runs by "
        "seed: drop − the control's (the part of the drop due to sparsity) and netsculpt − NNCF drop (negative is "
        "better for netsculpt). Targets: magnitude 50 % drop ≤ 0.3 pt and ≤ NNCF; RB reaches 50 ± 2 % with drop "
        "≤ 0.5 pt and ≤ NNCF. The drop is judged as drop − control's where the control ran (the stricter reading: "
        "the fine-tune alone can move top-1 either way), else as drop vs FP32. Status: met when the mean meets the "
        "target and the paired difference to NNCF is beyond one std in netsculpt's favour; tie within one std."
    )


def _table(runs: list[dict[str, Any]], heading: str) -> list[str]:
    r0 = runs[0]
    fp32 = 100 * r0["netsculpt"]["fp32_top1"]
    arms = list(dict.fromkeys(a for r in runs for a in r["arms"] if a != CONTROL))
    control = _arm(runs, "netsculpt", CONTROL, fp32)
    out = [
        heading,
        "",
        _intro(runs, fp32),
        "",
        "| arm | library | top-1 | drop vs FP32 (pt) | sparsity (%) | sparsity after each epoch (%) "
        "| top-1 after each epoch | drop − control's (pt, paired) | drop − NNCF's (pt, paired) | status |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    if control is None:
        out.append(f"| {CONTROL} | netsculpt | missing runs | | | | | | | |")
    else:
        per_epoch = " → ".join(f"{x:.2f}" for x in control.get("top1_trace", [])) or "-"
        cells = f"{fmt(control['top1'])} | {fmt(control['drop'])} | - | - | {per_epoch}"
        out.append(f"| {CONTROL} (control) | netsculpt | {cells} | | | |")
    nncf_name = f"nncf {r0['nncf'].get('version', '')}" if isinstance(r0.get("nncf"), dict) else "nncf"
    all_seeds = [r.get("seed") for r in runs]
    fewer = []
    for arm in arms:
        per_lib = {lib: _arm(runs, lib, arm, fp32) for lib in ("netsculpt", "nncf")}
        for lib, v in per_lib.items():
            if v is None:
                out.append(f"| {arm} | {lib} | missing runs | | | | | | | |")
                continue
            trace = " → ".join(f"{x:.1f}" for x in v.get("sparsity_trace", [])) or "-"
            per_epoch = " → ".join(f"{x:.2f}" for x in v.get("top1_trace", [])) or "-"
            cells = f"{fmt(v['top1'])} | {fmt(v['drop'])} | {fmt(v['sparsity'], 1)} | {trace} | {per_epoch}"
            cells += f" | {_pair_cell(v, control)}"
            if lib != "netsculpt":
                out.append(f"| {arm} | {nncf_name} | {cells} | | |")
                continue
            if v["seeds"] != all_seeds:
                fewer.append(f"`{arm}` (seeds {', '.join(str(x) for x in v['seeds'])})")
            max_drop, band = TARGETS.get(arm, (float("inf"), None))
            level = mean_std(v["sparsity"])[0] / 100
            vs_control, vs_nncf = _pair(v, control), _pair(v, per_lib["nncf"])
            cost = vs_control[0][0] if vs_control else mean_std(v["drop"])[0]
            ok = cost <= max_drop and (band is None or band[0] <= level <= band[1])
            verdict = status(ok, vs_nncf[0] if vs_nncf else None, higher_is_better=False)
            out.append(f"| {arm} | netsculpt | {cells} | {_pair_cell(v, per_lib['nncf'])} | **{verdict}** |")
    if fewer:
        out += ["", f"Run on fewer seeds: {', '.join(fewer)}; its paired cells pair those seeds."]
    if any(" †" in line for line in out):
        out += [
            "",
            "† Not the same data order on every seed (runs without the per-epoch `order` digest predate the "
            "loader-state fix in `run_arms`), so pairing by seed does not remove the data-order noise.",
        ]
    return out


def _epoch_means(traces: list[list[dict[str, Any]]]) -> str:
    """Mean test top-1 after each epoch over the seeds, with the mean sparsity (%) in brackets where non-zero."""
    if not all("top1" in e for t in traces for e in t):
        return "-"
    cells = []
    for col in zip(*traces):
        top1, sparse = mean_std([100 * e["top1"] for e in col])[0], [100 * e.get("sparsity", 0.0) for e in col]
        cells.append(f"{top1:.2f}" + (f" ({mean_std(sparse)[0]:.0f})" if any(sparse) else ""))
    return " → ".join(cells)


def _diagnosis(runs: list[dict[str, Any]]) -> list[str]:
    """The RB diagnostic runs of the same LR schedule as ``runs`` beside them on the same seeds; each arm is
    paired with the control of its own file, else the main run's."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(RESULTS.glob("sparsity_fmnist_rbdiag_*_seed*.json")):
        d = json.loads(path.read_text())
        if _schedule(d) == _schedule(runs[0]):
            groups.setdefault(path.stem.split("_rbdiag_")[1].rsplit("_seed", 1)[0], []).append(d)
    if not groups:
        return []
    main = {r["seed"]: r for r in runs}
    seeds = sorted({d["seed"] for g in groups.values() for d in g})
    out = [
        "",
        "RB diagnostics (`--epoch-eval`, netsculpt only; the protocol above restricted to the same seeds):",
        "",
        "| run | arm | seeds | top-1 | sparsity (%) | top-1 (sparsity %) after each epoch | drop − control's (pt, paired) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, group in [("main protocol", [main[s] for s in seeds if s in main]), *sorted(groups.items())]:
        group = sorted(group, key=lambda d: d["seed"])
        d0 = group[0]
        label = f"{name}: {d0['epochs']} epochs, lr {d0['lr']}, RB penalty × {d0.get('loss_scale', 1.0)}"
        for arm in d0["netsculpt"]["arms"]:
            if name == "main protocol" and arm not in ("rb_50", CONTROL):
                continue
            recs = [d["netsculpt"]["arms"][arm] for d in group]
            top1 = [100 * a["top1"] for a in recs]
            per_epoch = _epoch_means([a["trace"] for a in recs])
            if arm == CONTROL:
                out.append(f"| {label} | {arm} | {seeds_cell(group)} | {fmt(top1)} | - | {per_epoch} | |")
                continue
            ctrl = [d if CONTROL in d["netsculpt"]["arms"] else main[d["seed"]] for d in group]
            ctrl_top1 = [100 * c["netsculpt"]["arms"][CONTROL]["top1"] for c in ctrl]
            vs = diff_cell(mean_std([c - t for c, t in zip(ctrl_top1, top1)]))
            sparse = fmt([100 * a["sparsity"] for a in recs], 1)
            out.append(f"| {label} | {arm} | {seeds_cell(group)} | {fmt(top1)} | {sparse} | {per_epoch} | {vs} |")
    return out


def sparsity_sections(runs: list[dict[str, Any]]) -> list[str]:
    """The main (cosine) table with its note, then the constant-LR runs with the RB diagnostics and their note."""
    out = _table(
        runs, f"### Sparsity on Fashion-MNIST, beside NNCF 2.19, {len(runs)} seeds (`bench/sparsity_fmnist.py`)"
    )
    out += _diagnosis(runs) + note("sparsity_fmnist")
    constant = seed_runs("sparsity_fmnist_constant")
    if constant:
        heading = (
            f"#### The same bench with a constant LR (the earlier protocol, `--lr-schedule constant`), "
            f"{len(constant)} seeds"
        )
        out += ["", *_table(constant, heading), *_diagnosis(constant), *note("sparsity_fmnist_constant")]
    return out

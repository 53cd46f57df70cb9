"""Regenerate the README's benchmark section from bench/results/*.json (no number is typed by hand).

.venv/bin/python bench/make_readme_table.py
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _seed_tables import SEED_SECTIONS, seed_runs

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
BEGIN, END = "<!-- BENCH:BEGIN -->", "<!-- BENCH:END -->"


def _loads(r: dict[str, Any]) -> str:
    if "loadavg_before_after" in r:
        before, after = r["loadavg_before_after"]
        return f"{before[0]:.1f} / {after[0]:.1f}"
    return ", ".join(f"{part} {v[0][0]:.1f} / {v[1][0]:.1f}" for part, v in sorted(r.get("loadavg", {}).items()))


def _qat_speed(r: dict[str, Any]) -> list[str]:
    out = [
        "### QAT cost and INT8 speed (`bench/qat_speed.py`, run in `.venv-bench` beside nncf 2.19.0)",
        "",
        f"{r['threads']} threads, torch {r['torch']}; 1-min load average before/after each part: {_loads(r)}. "
        "Models alternate in rounds, so the ratios are side by side on the same machine state.",
        "",
        "| model (batch 64) | FP32 step | netsculpt QAT step | ratio (target ≤ 1.3x) | NNCF 2.19 QAT step | NNCF ratio |",
        "|---|---|---|---|---|---|",
    ]
    for s in r["steps"]:
        out.append(
            f"| {s['model']} | {1000 * s['fp32_s']:.0f} ms | {1000 * s['netsculpt_s']:.0f} ms | "
            f"**{s['netsculpt_ratio']:.2f}x** | {1000 * s['nncf_s']:.0f} ms | {s['nncf_ratio']:.2f}x |"
        )
    out += [
        "",
        "ONNX Runtime latency, 2 threads (speed-up over the FP32 ONNX in brackets; target ≥ 1.6x):",
        "",
        "| model | batch | FP32 ONNX | netsculpt INT8 | NNCF 2.19 INT8 | ORT quantize_static |",
        "|---|---|---|---|---|---|",
    ]
    for lat in r["latency"]:
        for b in (1, 64):
            cells = [
                f"{lat[f'b{b}_{k}_ms']:.2f} ms ({lat[f'b{b}_{k}_speedup']:.2f}x)"
                for k in ("fp32", "netsculpt_int8", "nncf_int8", "ort_quantize_static")
            ]
            out.append(f"| {lat['model']} | {b} | " + " | ".join(cells) + " |")
    c = r["create"]
    out += [
        "",
        f"`create_compressed_model` for a ResNet-50-shaped model ({c['params'] / 1e6:.1f}M parameters, 224x224, "
        f"no init data): netsculpt **{c['netsculpt_s']:.2f} s** (target ≤ 2 s), NNCF 2.19 {c['nncf_s']:.2f} s.",
    ]
    return out


def _accuracy(r: dict[str, Any]) -> list[str]:
    return [
        "### Fashion-MNIST accuracy, FP32 vs INT8 QAT (`bench/accuracy_fmnist.py`)",
        "",
        f"{r['model']}, {r['train_samples']} training images, FP32 {r['fp32_epochs']} epochs, then "
        f"{r['qat_epochs']} QAT epoch(s); 10k test images.",
        "",
        "| model | FP32 top-1 | INT8 after range init + BN adaptation | INT8 after QAT | INT8 ONNX in ONNX Runtime | drop (target ≤ 0.3 pt) |",
        "|---|---|---|---|---|---|",
        f"| {r['model']} | {100 * r['fp32_top1']:.2f} | {100 * r['int8_after_init_top1']:.2f} | "
        f"{100 * r['int8_qat_top1']:.2f} | {100 * r['int8_onnxruntime_top1']:.2f} | **{r['drop_pt']:.2f} pt** |",
    ]


def _pct(v: float) -> str:
    return f"{100 * v:.2f}"


def _sparsity(r: dict[str, Any]) -> list[str]:
    out = [
        "### Sparsity on Fashion-MNIST, beside NNCF 2.19 (`bench/sparsity_fmnist.py`)",
        "",
        f"{r['model']}, {r['train_samples']} training images; one FP32 model ({r['fp32_epochs']} epochs) fine-tuned "
        f"{r['epochs']} epochs per arm with the same config, data order and optimizer in both libraries. Targets: "
        "magnitude 50 % ≤ 0.3 pt, RB 50 % ≤ 0.5 pt, 50 % + INT8 ≤ 0.5 pt. Unstructured zeros shrink the "
        "compressed file (gzip column) but do not speed up ONNX Runtime: its dense kernels multiply the zeros too.",
        "",
        "| arm | library | FP32 top-1 | compressed top-1 | drop | sparsity | train step vs FP32 | gzip size vs FP32 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    libs = [("netsculpt", r["netsculpt"])]
    if isinstance(r.get("nncf"), dict) and "arms" in r["nncf"]:
        libs.append((f"nncf {r['nncf'].get('version', '')}", r["nncf"]))
    for arm in r["arms"]:
        for name, lib in libs:
            a = lib["arms"].get(arm)
            if not isinstance(a, dict) or "top1" not in a:
                out.append(f"| {arm} | {name} | failed: {str(a)[:80]} | | | | | |")
                continue
            fp32 = lib["fp32_top1"]
            size = f"{a['gzip_vs_fp32']:.2f}x" if "gzip_vs_fp32" in a else "-"
            drop = f"**{100 * (fp32 - a['top1']):.2f} pt**" if name == "netsculpt" else f"{100 * (fp32 - a['top1']):.2f} pt"
            out.append(
                f"| {arm} | {name} | {_pct(fp32)} | {_pct(a['top1'])} | {drop} | {100 * a['sparsity']:.1f} % "
                f"| {a['step']['ratio']:.2f}x | {size} |"
            )
    if isinstance(r.get("nncf"), dict) and "error" in r["nncf"]:
        out += ["", f"NNCF arm failed: {str(r['nncf']['error'])[:300]}"]
    return out


def _binarization(r: dict[str, Any]) -> list[str]:
    ref = r["nncf_published"]
    return [
        f"### {r['mode'].upper()} binarization on Fashion-MNIST (`bench/binarization_fmnist.py`)",
        "",
        f"{r['model']}, {r['train_samples']} training images, FP32 {r['fp32_epochs']} epochs then "
        f"{r['bin_epochs']} epochs of NNCF's staged recipe (first conv, 1x1 downsample convs and FC stay FP32). "
        "NNCF 2.9, the last release with binarization, does not install beside torch 2.13, so its published "
        "ImageNet numbers are the reference.",
        "",
        "| run | FP32 top-1 | binarized top-1 | ONNX Runtime | drop | binarized MACs | train step vs FP32 |",
        "|---|---|---|---|---|---|---|",
        f"| netsculpt {r['model']}, Fashion-MNIST | {_pct(r['fp32_top1'])} | {_pct(r['binarized_top1'])} | "
        f"{_pct(r['binarized_onnxruntime_top1'])} | **{r['drop_pt']:.2f} pt** | "
        f"{100 * r['binarized_macs_share']:.1f} % | {r['step_ratio']:.2f}x |",
        f"| NNCF published {ref['model']}, {ref['dataset']} | {ref['fp32_top1']:.2f} | {ref['binarized_top1']:.2f} "
        f"| - | {ref['drop_pt']:.2f} pt | - | - |",
    ]


def _hawq(r: dict[str, Any]) -> list[str]:
    out = [
        "### HAWQ-v2 vs reversed-trace vs random bits (`bench/hawq_fmnist.py`)",
        "",
        f"{r['model']}, bits {r['bits']}, target compression ratio {r['target_ratio']} (vs INT8 bit-complexity); "
        f"every arm: same FP32 model (top-1 {_pct(r['fp32_top1'])}), same range init, then the same "
        f"{r['ft_steps']}-step fine-tune. HAWQ should beat both baselines.",
        "",
        "| arm | ratio | layers per bits | top-1 after init | top-1 after fine-tune |",
        "|---|---|---|---|---|",
    ]
    for a in r["arms"]:
        out.append(
            f"| {a['arm']} | {a['ratio']:.3f} | {a['layers_per_bits']} | {_pct(a['top1_after_init'])} | "
            f"{_pct(a['top1_after_finetune'])} |"
        )
    return out


def _pruning(r: dict[str, Any]) -> list[str]:
    out = [
        "### Filter pruning at ~50 % FLOPs, beside Torch-Pruning 1.6.1 and NNCF 2.19 (`bench/pruning.py`)",
        "",
        "Params and MACs counted on the model that is exported; ONNX Runtime latency of all files interleaved in "
        "one process, 2 threads. Target: ORT speed-up ≥ 0.85 × the FLOPs reduction ratio (last two columns: "
        "speed-up ÷ FLOPs ratio). NNCF 2.x only zeroes filters: its ONNX keeps every channel.",
        "",
        "| model | method | prune s | params | MACs (M) | FLOPs removed | ORT b1 speed-up | ORT b64 speed-up "
        "| b1 / FLOPs ratio | b64 / FLOPs ratio |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, rows in r["models"].items():
        base = rows["fp32"]
        for key, row in rows.items():
            if "error" in row:
                out.append(f"| {name} | {key} | failed: {row['error'][:80]} | | | | | | | |")
                continue
            lat = row.get("latency", {})
            sp = [base["latency"][b] / lat[b] if b in lat else float("nan") for b in ("b1", "b64")]
            flops_ratio = base["macs"] / row["macs"]
            eff = [v / flops_ratio for v in sp]
            out.append(
                f"| {name} | {key} | {row.get('seconds', 0):.2f} | {row['params']:,} | {row['macs'] / 1e6:.1f} | "
                f"{1 - row['macs'] / base['macs']:.1%} | {sp[0]:.2f}x | {sp[1]:.2f}x | {eff[0]:.2f} | {eff[1]:.2f} |"
            )
    return out


def _pruning_fmnist(r: dict[str, Any]) -> list[str]:
    fp32 = r["fp32"]
    out = [
        "### Filter pruning accuracy at 50 % FLOPs on Fashion-MNIST (`bench/pruning_fmnist.py`)",
        "",
        f"{r['model']}, {r['train_samples']} training / {r['test_samples']} test images; every arm starts from the "
        f"same FP32 model (top-1 {_pct(fp32['top1'])}), prunes at once (no BN adaptation) and gets the same "
        f"{r['epochs']}-epoch fine-tune (SGD, lr {r['lr']}, same data order). Target: netsculpt ≥ Torch-Pruning L1 "
        "and ≥ NNCF. NNCF 2.19's uniform mode keeps multiples of 8 channels and lands at 75 %, so its global "
        "(`all_weights`) arm is the like-for-like one.",
        "",
        "| arm | library | FLOPs removed | params | top-1 before fine-tune | top-1 after | drop vs FP32 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, a in r["arms"].items():
        if "top1_after" not in a:
            out.append(f"| {name} | {a.get('library', '?')} | failed: {str(a.get('error', a))[:80]} | | | | |")
            continue
        drop = 100 * (fp32["top1"] - a["top1_after"])
        bold = "**" if a.get("library") == "netsculpt" else ""
        out.append(
            f"| {name} | {a['library']} | {100 * (1 - a['macs'] / fp32['macs']):.1f} % | {a['params']:,} | "
            f"{_pct(a['top1_before'])} | {_pct(a['top1_after'])} | {bold}{drop:.2f} pt{bold} |"
        )
    return out


def _aat(r: dict[str, Any]) -> list[str]:
    args = r.get("args", {})
    out = [
        "### Adaptive compression level on Fashion-MNIST, beside NNCF 2.19 (`bench/aat_fmnist.py`)",
        "",
        f"{r['model']} filter pruning driven by `adaptive_compression_level` (maximal relative degradation "
        f"{args.get('max_drop', 1.0)} %, at most {args.get('max_epochs', '?')} epochs of "
        f"{r['steps_per_epoch']} steps); the same FP32 model, callbacks, data and LR in both libraries.",
        "",
        "| library | FP32 top-1 | final top-1 | pruning rate found | epochs used | stop |",
        "|---|---|---|---|---|---|",
        f"| netsculpt | {_pct(r['fp32_top1'])} | {_pct(r['final_top1'])} | **{r['final_compression_rate']:.3f}** | "
        f"{r['epochs']} | {r['stop_reason']} |",
    ]
    n = r.get("nncf")
    if isinstance(n, dict) and "final_top1" in n:
        out.append(
            f"| nncf {n.get('version', '')} | {_pct(n['fp32_top1'])} | {_pct(n['final_top1'])} | "
            f"{n['final_compression_rate']:.3f} | {n['epochs']} | {n['stop_reason']} |"
        )
    elif isinstance(n, dict) and "error" in n:
        out.append(f"| nncf | failed: {str(n['error'])[:100]} | | | | |")
    return out


def _search_platform(r: dict[str, Any]) -> list[str]:
    ev, co, ap, lg, m = r["evaluate"], r["cost"], r["apply_strip"], r["legr"], r["machine"]
    out = [
        "### Search platform (`bench/search_platform.py`)",
        "",
        f"{m['cpu']} ({', '.join(m['flags']) or 'no AVX flags'}), {m['cores']} cores, torch {m['torch']}; 1-min load "
        f"{m['load_1min']:.1f} before, {m.get('load_1min_after', float('nan')):.1f} after. One candidate: ResNet-20 / "
        "Fashion-MNIST, random pruning + mixed-precision policy, BN recalibration on 512 images + 10 SGD steps + "
        f"top-1 on 1,000 images; {ev['candidates']} candidates per arm.",
        "",
        "| measure | result | target |",
        "|---|---|---|",
        f"| `evaluate()` vs a hand-written loop doing the same work (alternating, median per candidate) | "
        f"{ev['evaluate_s']:.2f} s vs {ev['handwritten_s']:.2f} s: overhead **{100 * ev['overhead']:+.1f} %**; "
        f"metrics differ by at most {ev['handwritten_vs_evaluate_max_metric_diff']:.4f} | ≤ 10 % |",
    ]
    for name, e in ev["executors"].items():
        steady = e.get("steady_per_minute")
        extra = f"; steady state {steady:.1f}/min, first result after {e['first_result_s']:.0f} s" if steady else ""
        out.append(
            f"| `evaluate_many`, {name.replace('_', ' ')} | **{e['per_minute']:.1f} candidates/min** "
            f"({e['wall_s']:.0f} s incl. start-up{extra}; max metric difference to serial "
            f"{e['max_metric_diff_vs_serial']:.4f}) | - |"
        )
    if ev.get("one_thread_serial_vs_pool_max_diff") is not None:
        out.append(
            "| serial re-run with 1 torch thread (as each pool worker) vs the pool, first 3 candidates | max metric "
            f"difference {ev['one_thread_serial_vs_pool_max_diff']:.4f} | 0 |"
        )
    out += [
        f"| `cost()`, ResNet-56 ({co['groups']} groups, {co['quantizers']} quantizers), 1 thread | "
        f"**{co['cost_per_s']:,.0f} policies/s**; `cost_many()` {co['cost_many_per_s']:,.0f}/s | ≥ 10,000/s |",
        f"| `DifferentiableCost` forward + backward, same model | {co['differentiable_per_s']:,.0f}/s | - |",
        f"| `apply_policy` + `strip()`, ResNet-50-shaped ({ap['params'] / 1e6:.1f}M parameters, 224x224) | "
        f"{ap['apply_policy_s']:.2f} s + {ap['strip_s']:.2f} s = **{ap['total_s']:.2f} s** | ≤ 1 s |",
        f"| LeGR candidate reward through `evaluate()` vs the pre-platform reward ({lg['candidates']} candidates) | "
        f"max difference {lg['max_reward_diff']:.4f}; {lg['platform_s']:.2f} s vs {lg['reference_s']:.2f} s each | "
        "equal |",
    ]
    return out


SECTIONS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "qat_speed.json": _qat_speed,
    "accuracy_fmnist.json": _accuracy,
    "sparsity_fmnist.json": _sparsity,
    "binarization_fmnist.json": _binarization,
    "pruning.json": _pruning,
    "pruning_fmnist.json": _pruning_fmnist,
    "hawq_fmnist.json": _hawq,
    "aat_fmnist.json": _aat,
    "search_platform.json": _search_platform,
}


def main() -> None:
    lines: list[str] = []
    for name, render in SECTIONS.items():
        path = RESULTS / name
        runs = seed_runs(path.stem)
        if path.stem in SEED_SECTIONS and runs:  # repeated seeds replace the single run
            lines += SEED_SECTIONS[path.stem](runs) + [""]
        elif path.exists():
            lines += render(json.loads(path.read_text())) + [""]
    readme = ROOT / "README.md"
    text = readme.read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    body = "\n".join(["", "(generated by `bench/make_readme_table.py` from `bench/results/*.json`)", "", *lines])
    readme.write_text(head + BEGIN + body + END + tail)


if __name__ == "__main__":
    main()

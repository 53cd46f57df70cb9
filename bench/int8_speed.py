"""INT8 speed in ONNX Runtime, explained: netsculpt's QDQ export vs ``quantize_static`` vs FP32, kernel by kernel.

For ResNet-20 (the cached 3-epoch Fashion-MNIST FP32 baseline of ``bench/_fp32.py``) and ResNet-18-CIFAR (random
weights, BN statistics re-estimated on the calibration images), both on the Fashion-MNIST input 1x28x28:
  * arms: FP32 ONNX; netsculpt INT8 (QAT config, per-channel weights, range init on the calibration images, no
    training: speed does not depend on trained weights; ``ctrl.export_model``), and the same file with the
    pool-input Q/DQ of ``netsculpt.export.qdq_pool`` removed (the export before it); ``quantize_static`` after
    ``quant_pre_process`` on the same FP32 graph with the same calibration images, per-tensor / per-channel x QDQ /
    QOperator (QUInt8 activations, QInt8 weights, MinMax);
  * latency at 1 and 2 intra-op threads, batch 1 and 64: arms interleaved in rounds (rotating order), the median of
    every run of every round; speed-up = FP32 median / arm median;
  * session options at batch 1 (spinning, inter-op threads + parallel mode, graph optimisation level);
  * node types of each arm's ORT-optimised graph (``optimized_model_filepath``): integer kernels, float compute,
    QuantizeLinear / DequantizeLinear, layout ops;
  * top-1 agreement with FP32 and test accuracy on 1000 Fashion-MNIST test images.

    flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/int8_speed.py [--quick] [--rounds 3]
    (the README's figures: --rounds 7 --runs-b1 200, ~6 min)

Writes bench/results/int8_speed.json and bench/results/int8_speed.md (the tables it prints).
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _fp32 import fp32_baseline  # noqa: E402
from _machine import machine_info  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.data import make_loaders  # noqa: E402
from netsculpt.models import create_model  # noqa: E402

OUT = Path(__file__).parent / "results"
SHAPE = (1, 28, 28)
MODELS = ("resnet20", "resnet18_cifar")
INT_KERNELS = frozenset({
    "QLinearConv", "ConvInteger", "QLinearMatMul", "MatMulInteger", "MatMulIntegerToFloat", "QGemm", "QLinearAdd",
    "QLinearMul", "QLinearGlobalAveragePool", "QLinearAveragePool", "QLinearConcat", "QLinearSigmoid",
    "QLinearLeakyRelu", "DynamicQuantizeMatMul", "DynamicQuantizeLinear",
})  # fmt: skip
LAYOUT = frozenset({"Transpose", "ReorderInput", "ReorderOutput", "Flatten", "Reshape", "Squeeze", "Unsqueeze"})
QDQ = frozenset({"QuantizeLinear", "DequantizeLinear"})
OPTION_ARMS = ("fp32", "netsculpt", "netsculpt_float_tail", "qs_qdq_pc", "qs_qop_pc")
LEVELS = {"basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC, "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
          "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL}  # fmt: skip
log = logging.getLogger("bench.int8_speed")


# ---- models and files ----------------------------------------------------------------------------------
def build_model(name: str, calib: list[torch.Tensor]) -> tuple[nn.Module, str]:
    if name == "resnet20":
        model, _ = fp32_baseline("resnet20", 3, 10000)
        return model.eval(), "trained 3 epochs on 10k Fashion-MNIST images (bench/_fp32.py cache)"
    torch.manual_seed(0)
    model = create_model(name, in_channels=SHAPE[0], num_classes=10)
    for m in model.modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.reset_running_stats()
            m.momentum = None  # cumulative average over the calibration batches
    model.train()
    with torch.no_grad():
        for x in calib:
            model(x)
    return model.eval(), "random weights (seed 0), BN statistics re-estimated on the calibration images"


class _Reader(CalibrationDataReader):  # type: ignore[misc]
    def __init__(self, name: str, calib: list[torch.Tensor]) -> None:
        self._it = iter([{name: x.numpy()} for x in calib])

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._it, None)


def export_arms(model: nn.Module, calib: list[torch.Tensor], tmp: Path, name: str) -> dict[str, Path]:
    paths = {"fp32": tmp / f"{name}_fp32.onnx"}
    torch.onnx.export(
        copy.deepcopy(model), (calib[0][:1],), str(paths["fp32"]), dynamo=False, opset_version=17,
        input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
    )  # fmt: skip
    loader = [(x, torch.zeros(len(x), dtype=torch.long)) for x in calib]
    cfg = {
        "input_info": {"sample_size": [1, *SHAPE]},
        "compression": {
            "algorithm": "quantization",
            "weights": {"per_channel": True},
            "initializer": {
                "range": {"num_init_samples": sum(len(x) for x in calib)},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
            },
        },
    }
    ctrl, _ = create_compressed_model(copy.deepcopy(model), register_default_init_args(cfg, loader))
    paths["netsculpt"] = Path(ctrl.export_model(tmp / f"{name}_netsculpt.onnx"))
    paths["netsculpt_float_tail"] = float_tail(paths["netsculpt"], tmp / f"{name}_netsculpt_float_tail.onnx")
    pre = tmp / f"{name}_pre.onnx"
    quant_pre_process(str(paths["fp32"]), str(pre))
    for fmt, qfmt in (("qdq", QuantFormat.QDQ), ("qop", QuantFormat.QOperator)):
        for gran, per_channel in (("pc", True), ("pt", False)):
            arm = f"qs_{fmt}_{gran}"
            paths[arm] = tmp / f"{name}_{arm}.onnx"
            quantize_static(
                str(pre), str(paths[arm]), _Reader("input", calib), quant_format=qfmt, per_channel=per_channel,
                activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
            )  # fmt: skip
    return paths


def float_tail(src: Path, dst: Path) -> Path:
    """Our export without the pool-input Q/DQ pair (``netsculpt.export.qdq_pool``): the export before that change."""
    proto = onnx.load(str(src))
    g = proto.graph
    for q in [n for n in g.node if n.name.endswith("/pool_QuantizeLinear")]:
        dq = next(n for n in g.node if n.input and n.input[0] == q.output[0])
        for n in g.node:
            for k, i in enumerate(n.input):
                if i == dq.output[0]:
                    n.input[k] = q.input[0]
        g.node.remove(q)
        g.node.remove(dq)
    onnx.save(proto, str(dst))
    return dst


# ---- ORT sessions, timing, graphs ----------------------------------------------------------------------
def session(path: Path, threads: int, *, spin: int = 1, inter: int = 1, level: str = "all",
            optimized: Path | None = None, extra: dict[str, str] | None = None) -> ort.InferenceSession:  # fmt: skip
    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = inter
    so.execution_mode = ort.ExecutionMode.ORT_PARALLEL if inter > 1 else ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = LEVELS[level]
    so.add_session_config_entry("session.intra_op.allow_spinning", str(spin))
    so.log_severity_level = 3
    for key, value in (extra or {}).items():
        so.add_session_config_entry(key, value)
    if optimized is not None:
        so.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def interleaved(sessions: dict[str, ort.InferenceSession], x: np.ndarray, rounds: int, runs: int) -> dict[str, Any]:
    """Median latency (s) per arm over ``rounds`` rounds of ``runs`` runs, arms in rotating order each round."""
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    times: dict[str, list[float]] = {k: [] for k in sessions}
    per_round: dict[str, list[float]] = {k: [] for k in sessions}
    for k, s in sessions.items():  # warm-up
        for _ in range(3):
            s.run(None, feeds[k])
    keys = list(sessions)
    for r in range(rounds):
        for k in keys[r % len(keys) :] + keys[: r % len(keys)]:
            ts = []
            for _ in range(runs):
                t0 = time.perf_counter()
                sessions[k].run(None, feeds[k])
                ts.append(time.perf_counter() - t0)
            times[k] += ts
            per_round[k].append(statistics.median(ts))
    return {k: {"median_s": statistics.median(v), "round_medians_s": per_round[k]} for k, v in times.items()}


def op_counts(path: Path) -> dict[str, Any]:
    nodes = collections.Counter(n.op_type for n in onnx.load(str(path)).graph.node)
    cat = {"integer": 0, "float": 0, "quantize": nodes.get("QuantizeLinear", 0),
           "dequantize": nodes.get("DequantizeLinear", 0), "layout": 0}  # fmt: skip
    for op, c in nodes.items():
        if op in INT_KERNELS:
            cat["integer"] += c
        elif op in LAYOUT:
            cat["layout"] += c
        elif op not in QDQ:
            cat["float"] += c
    return {"ops": dict(sorted(nodes.items())), **cat}


def agreement(paths: dict[str, Path], images: np.ndarray, labels: np.ndarray) -> dict[str, dict[str, float]]:
    preds = {k: session(p, 2).run(None, {"input": images})[0] for k, p in paths.items()}
    ref = preds["fp32"]
    return {
        k: {
            "top1_vs_fp32": float((v.argmax(1) == ref.argmax(1)).mean()),
            "test_top1": float((v.argmax(1) == labels).mean()),
            "max_abs_vs_fp32": float(np.abs(v - ref).max()),
        }  # fmt: skip
        for k, v in preds.items()
    }


def bench_model(name: str, calib: list[torch.Tensor], test: tuple[np.ndarray, np.ndarray], tmp: Path,
                args: argparse.Namespace) -> dict[str, Any]:  # fmt: skip
    model, weights = build_model(name, calib)
    paths = export_arms(model, calib, tmp, name)
    res: dict[str, Any] = {"model": name, "weights": weights, "arms": list(paths), "graphs": {}, "latency": []}
    for arm, p in paths.items():
        opt = tmp / f"{name}_{arm}_opt.onnx"
        session(p, 2, optimized=opt)
        res["graphs"][arm] = op_counts(opt)
        if args.keep_graphs:
            (OUT / "int8_speed_graphs").mkdir(parents=True, exist_ok=True)
            opt.replace(OUT / "int8_speed_graphs" / opt.name)
    res["agreement"] = agreement(paths, *test)
    rng = np.random.default_rng(0)
    for threads in (1, 2):
        for b in (1, 64):
            x = rng.standard_normal((b, *SHAPE)).astype(np.float32) * 0.5
            runs = args.runs_b1 if b == 1 else max(2, round(args.runs_b64 * (4 if name == "resnet20" else 1)))
            sessions = {k: session(p, threads) for k, p in paths.items()}
            lat = interleaved(sessions, x, args.rounds, runs)
            fp = lat["fp32"]["median_s"]
            for v in lat.values():
                v["speedup"] = fp / v["median_s"]
                v["round_speedups"] = [f / a for f, a in zip(lat["fp32"]["round_medians_s"], v["round_medians_s"])]
            res["latency"].append({"threads": threads, "batch": b, "runs_per_round": runs, "load_1min": os.getloadavg()[0],
                                   "arms": lat})  # fmt: skip
            print(
                f"  {name} t{threads} b{b}: " + ", ".join(f"{k} {v['speedup']:.2f}x" for k, v in lat.items()),
                flush=True,
            )
    variants: list[tuple[str, dict[str, Any]]] = [("default (spin 1, inter 1, all)", {}), ("spin 0", {"spin": 0}), ("inter 2, parallel", {"inter": 2}),
                ("level extended", {"level": "extended"}),
                ("dynamic_block_base 4", {"extra": {"session.dynamic_block_base": "4"}}), ("level basic", {"level": "basic"})]  # fmt: skip
    x = rng.standard_normal((1, *SHAPE)).astype(np.float32) * 0.5
    res["options_b1_t2"] = []
    for label, kw in variants:
        arms = OPTION_ARMS
        lat = interleaved({k: session(paths[k], 2, **kw) for k in arms}, x, args.rounds, args.runs_b1)
        res["options_b1_t2"].append({"options": label, **{k: 1000 * v["median_s"] for k, v in lat.items()}})
    return res


# ---- output --------------------------------------------------------------------------------------------
def tables(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    arms = ["netsculpt", "netsculpt_float_tail", "qs_qdq_pc", "qs_qdq_pt", "qs_qop_pc", "qs_qop_pt"]
    out = [f"CPU {m['cpu']} ({m['cores']} cores; flags {', '.join(m['flags'])}), onnxruntime {res['onnxruntime']}; "
           f"1-min load {res['load_before']:.2f} before, {res['load_after']:.2f} after; {res['rounds']} rounds. "
           "Cells: median latency (speed-up over FP32, range of the per-round speed-ups).", "",
           "| model | threads | batch | FP32 | netsculpt | netsculpt, float tail | qs QDQ per-ch | qs QDQ per-tensor "
           "| qs QOp per-ch | qs QOp per-tensor |", "|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in res["models"]:
        for lat in r["latency"]:
            a = lat["arms"]
            cells = [f"{1000 * a['fp32']['median_s']:.2f} ms"] + [
                f"{1000 * a[k]['median_s']:.3g} ms ({a[k]['speedup']:.2f}x, "
                f"{min(a[k]['round_speedups']):.2f}-{max(a[k]['round_speedups']):.2f})"
                for k in arms
            ]
            out.append(f"| {r['model']} | {lat['threads']} | {lat['batch']} | " + " | ".join(cells) + " |")
    out += ["", "| model | arm | integer kernels | float ops | Q / DQ | layout | top-1 vs FP32 | test top-1 | ORT-optimised nodes |",
            "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in res["models"]:
        for arm, g in r["graphs"].items():
            ag = r["agreement"][arm]
            ops = ", ".join(f"{k} {v}" for k, v in g["ops"].items())
            out.append(f"| {r['model']} | {arm} | {g['integer']} | {g['float']} | {g['quantize']} / {g['dequantize']} | "
                       f"{g['layout']} | {100 * ag['top1_vs_fp32']:.1f} % | {100 * ag['test_top1']:.1f} % | {ops} |")  # fmt: skip
    out += ["", "| model | session options (batch 1, 2 threads) | FP32 | netsculpt | netsculpt, float tail | qs QDQ per-ch "
            "| qs QOp per-ch |", "|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in res["models"]:
        for o in r["options_b1_t2"]:
            cells = [f"{o[k]:.3f} ms" for k in OPTION_ARMS]
            out.append(f"| {r['model']} | {o['options']} | " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1 round, few runs (smoke test)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--runs-b1", type=int, default=100)
    ap.add_argument("--runs-b64", type=int, default=5, help="runs per round at batch 64 (x4 for ResNet-20)")
    ap.add_argument("--calib", type=int, default=256, help="Fashion-MNIST training images for calibration")
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--keep-graphs", action="store_true", help="keep the ORT-optimised graphs in results/")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.runs_b1, args.runs_b64 = 1, 5, 1
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(2)
    train, test = make_loaders("fashion_mnist", 64, train_limit=args.calib, test_limit=1000)
    calib = [x for x, _ in train]
    tx, ty = zip(*test)
    test_np = (torch.cat(tx).numpy(), torch.cat(ty).numpy())
    res: dict[str, Any] = {"machine": machine_info(2), "onnxruntime": ort.__version__, "input": list(SHAPE),
                           "input_data": "Fashion-MNIST 1x28x28 (calibration: real images; timing: random normal x0.5)",
                           "calibration_images": args.calib,
                           "session": "CPU EP; intra_op_num_threads = threads, inter_op_num_threads 1, sequential, "
                           "ORT_ENABLE_ALL, session.intra_op.allow_spinning 1 (ORT's default)", "rounds": args.rounds, "load_before": os.getloadavg()[0],
                           "models": []}  # fmt: skip
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        for name in args.models:
            res["models"].append(bench_model(name, calib, test_np, Path(d), args))
    res["load_after"], res["wall_s"] = os.getloadavg()[0], time.perf_counter() - t0
    lines = tables(res)
    out = OUT / ("int8_speed_quick.json" if args.quick else "int8_speed.json")
    OUT.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()

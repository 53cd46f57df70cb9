"""Transformers INT8 on ONNX Runtime: a tiny BERT and a tiny ViT, netsculpt's QDQ export vs ORT's own quantizers.

For each model (random weights, fixed seed, built from a ``transformers`` config, no downloads):
  * INT8: netsculpt (``create_compressed_model`` + range init on 64 random samples + ``export_model``) vs
    ``onnxruntime.quantization.quantize_dynamic`` and ``quantize_static`` (QDQ, per-channel, after
    ``quant_pre_process``, calibrated on the same 64 samples), all from the same FP32 graph (netsculpt's FP32
    export). ORT latency at batch 1 and 32 (interleaved rounds, median), ratios to FP32, integer kernels in the
    ORT-optimised graph, top-1 agreement / max |error| with PyTorch FP32 on 256 random inputs.
  * sparsity (magnitude, 50 %) and filter pruning (50 %): achieved level vs target, masked-vs-stripped error,
    parameters, ORT latency of the stripped FP32 export (a refusal is recorded with its message).

    flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/hf_int8.py [--quick] [--threads 1]

Writes bench/results/hf_int8.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import collections
import copy
import json
import logging
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
import transformers
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _machine import machine_info  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.export import export_onnx  # noqa: E402

OUT = Path(__file__).parent / "results"
SEQ, IMG = 32, 32
INT_KERNELS = ("MatMulIntegerToFloat", "QLinearMatMul", "DynamicQuantizeMatMul", "MatMulInteger", "QGemm",
               "QLinearConv", "QAttention")  # fmt: skip
log = logging.getLogger("bench.hf_int8")


# ---- models and inputs --------------------------------------------------------------------------------------
def bert() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.BertConfig(
        vocab_size=1000, hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=128,
        max_position_embeddings=SEQ, num_labels=8, attn_implementation="eager",
    )  # fmt: skip
    return transformers.BertForSequenceClassification(cfg).eval()


def vit() -> nn.Module:
    torch.manual_seed(0)
    cfg = transformers.ViTConfig(
        image_size=IMG, patch_size=4, hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=128, num_labels=8, attn_implementation="eager",
    )  # fmt: skip
    return transformers.ViTForImageClassification(cfg).eval()


def inputs(name: str, n: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if name == "bert":
        return torch.randint(0, 1000, (n, SEQ), generator=g)
    return torch.randn(n, 3, IMG, IMG, generator=g)


MODELS: dict[str, Callable[[], nn.Module]] = {"bert": bert, "vit": vit}


def logits(model: nn.Module, x: torch.Tensor) -> np.ndarray:
    with torch.no_grad():
        return np.concatenate([model(x[i : i + 64]).logits.numpy() for i in range(0, len(x), 64)])


# ---- ONNX files -----------------------------------------------------------------------------------------------
def quant_config(name: str) -> dict[str, Any]:
    shape = [2, SEQ] if name == "bert" else [2, 3, IMG, IMG]
    info: dict[str, Any] = {"sample_size": shape, **({"type": "long"} if name == "bert" else {})}
    return {
        "input_info": info,
        "compression": {
            "algorithm": "quantization",
            "preset": "mixed",  # asymmetric (uint8) activations: ORT's u8s8 kernels
            "overflow_fix": "disable",  # 8-bit weights, as ORT's quantizers (reduce_range=False); VNNI CPUs
            "weights": {"mode": "symmetric", "per_channel": True},
            "initializer": {
                "range": {"num_init_samples": 64},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
            },
        },
    }


def loader(x: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor]]:
    return [(x[i : i + 16], torch.zeros(len(x[i : i + 16]), dtype=torch.long)) for i in range(0, len(x), 16)]


def ort_static(fp32: Path, out: Path, calib: torch.Tensor, name: str) -> Path:
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):  # type: ignore[misc]
        def __init__(self) -> None:
            self.batches = iter([{"input": b.numpy()} for b, _ in loader(calib)])

        def get_next(self) -> dict[str, np.ndarray] | None:
            return next(self.batches, None)

    pre = out.with_name(out.stem + "_pre.onnx")
    quant_pre_process(str(fp32), str(pre))
    quantize_static(str(pre), str(out), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)  # fmt: skip
    return out


def ort_dynamic(fp32: Path, out: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8)
    return out


def session(path: Path, threads: int, optimized: Path | None = None) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    if optimized is not None:
        opts.optimized_model_filepath = str(optimized)
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def kernel_counts(path: Path, tmp: Path) -> dict[str, int]:
    """Integer kernels, float MatMul/Gemm and Q/DQ nodes left in the ORT-optimised graph."""
    opt = tmp / (path.stem + "_opt.onnx")
    session(path, 1, opt)
    ops = collections.Counter(n.op_type for n in onnx.load(str(opt)).graph.node)
    return {
        "int_kernels": sum(ops[k] for k in INT_KERNELS),
        "float_matmul": ops["MatMul"] + ops["Gemm"] + ops["FusedGemm"] + ops["FusedMatMul"],
        "q": ops["QuantizeLinear"] + ops["DynamicQuantizeLinear"],
        "dq": ops["DequantizeLinear"],
        "ops": dict(ops),
    }


def ort_logits(path: Path, x: torch.Tensor, threads: int) -> np.ndarray:
    s = session(path, threads)
    name = s.get_inputs()[0].name
    return np.concatenate([s.run(None, {name: x[i : i + 64].numpy()})[0] for i in range(0, len(x), 64)])


def agreement(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    return {"top1": float((got.argmax(1) == ref.argmax(1)).mean()), "max_err": float(np.abs(got - ref).max()),
            "ref_max": float(np.abs(ref).max())}  # fmt: skip


def latency(paths: dict[str, Path], x: np.ndarray, threads: int, rounds: int, repeats: int) -> dict[str, float]:
    """Median seconds per run, models alternated in rounds so that load drift hits all alike."""
    sess = {k: session(p, threads) for k, p in paths.items()}
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sess.items()}
    for k, s in sess.items():
        for _ in range(3):
            s.run(None, feeds[k])
    times: dict[str, list[float]] = {k: [] for k in sess}
    for _ in range(rounds):
        for k, s in sess.items():
            for _ in range(repeats):
                t0 = time.perf_counter()
                s.run(None, feeds[k])
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


# ---- the runs -----------------------------------------------------------------------------------------------
def int8_run(name: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    base = MODELS[name]()
    calib, test = inputs(name, 64, seed=1), inputs(name, args.samples, seed=2)
    ref = logits(base, test)
    fp32 = export_onnx(copy.deepcopy(base), (calib[:2],), tmp / f"{name}_fp32.onnx")
    cfg = register_default_init_args(quant_config(name), loader(calib))
    ctrl, qmodel = create_compressed_model(copy.deepcopy(base), cfg)
    paths = {
        "fp32": fp32,
        "netsculpt": ctrl.export_model(tmp / f"{name}_ns.onnx"),
        "ort_dynamic": ort_dynamic(fp32, tmp / f"{name}_dyn.onnx"),
        "ort_static": ort_static(fp32, tmp / f"{name}_static.onnx", calib, name),
    }
    res: dict[str, Any] = {"model": name, "params": sum(p.numel() for p in base.parameters())}
    for k, p in paths.items():
        res[f"{k}_graph"] = kernel_counts(p, tmp)
        res[f"{k}_vs_torch_fp32"] = agreement(ort_logits(p, test, args.threads), ref)
    res["netsculpt_torch_qat_vs_fp32"] = agreement(logits(qmodel.eval(), test), ref)
    for b in (1, 32):
        x = inputs(name, b, seed=3).numpy()
        lat = latency(paths, x, args.threads, args.rounds, args.repeats if b == 1 else max(2, args.repeats // 4))
        for k, v in lat.items():
            res[f"b{b}_{k}_ms"] = 1000 * v
            res[f"b{b}_{k}_speedup"] = lat["fp32"] / v
    return res


def structure_run(name: str, algo: str, tmp: Path, args: argparse.Namespace) -> dict[str, Any]:
    base = MODELS[name]()
    test = inputs(name, 64, seed=2)
    comp: dict[str, Any] = (
        {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}
        if algo == "sparsity" else {"algorithm": "filter_pruning", "pruning_init": 0.5}
    )  # fmt: skip
    cfg = {**quant_config(name), "compression": comp}
    res: dict[str, Any] = {"model": name, "algorithm": algo, "target": 0.5}
    try:
        ctrl, masked = create_compressed_model(copy.deepcopy(base), cfg)
        stripped = ctrl.strip()
    except Exception as err:  # noqa: BLE001 - a refusal is a result here
        res["refused"] = f"{type(err).__name__}: {str(err)[:300]}"
        return res
    stats = ctrl.statistics().as_dict()
    level = next((v for k, v in stats.items() if k.endswith(("sparsity", "pruning"))), {})
    res["statistics"] = {k: v for k, v in level.items() if isinstance(v, (int, float))}
    res["masked_vs_stripped_max_err"] = float(np.abs(logits(masked.eval(), test) - logits(stripped, test)).max())
    res["params"] = sum(p.numel() for p in stripped.parameters())
    res["params_fp32"] = sum(p.numel() for p in base.parameters())
    res["nonzero"] = sum(int((p != 0).sum()) for p in stripped.parameters())
    fp32 = export_onnx(copy.deepcopy(base), (test[:2],), tmp / f"{name}_{algo}_base.onnx")
    out = export_onnx(stripped, (test[:2],), tmp / f"{name}_{algo}.onnx")
    lat = latency({"fp32": fp32, algo: out}, inputs(name, 32, seed=3).numpy(), args.threads, args.rounds,
                  max(2, args.repeats // 4))  # fmt: skip
    res["b32_fp32_ms"], res["b32_ms"] = 1000 * lat["fp32"], 1000 * lat[algo]
    return res


def table(results: dict[str, Any]) -> str:
    rows = ["| model | variant | b1 ms | b1 vs FP32 | b32 ms | b32 vs FP32 | int kernels / float MatMul left | "
            "top-1 vs PyTorch FP32 | max abs err |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in results["int8"]:
        for k in ("fp32", "netsculpt", "ort_dynamic", "ort_static"):
            g, a = r[f"{k}_graph"], r[f"{k}_vs_torch_fp32"]
            rows.append(
                f"| {r['model']} | {k} | {r[f'b1_{k}_ms']:.3f} | {r[f'b1_{k}_speedup']:.2f}x | {r[f'b32_{k}_ms']:.2f} "
                f"| {r[f'b32_{k}_speedup']:.2f}x | {g['int_kernels']} / {g['float_matmul']} | {a['top1']:.3f} "
                f"| {a['max_err']:.3g} |"
            )
    rows += [
        "",
        "| model | algorithm | achieved (target 0.5) | masked vs stripped max err | params / non-zero (FP32) | "
        "b32 ms stripped / FP32 |",
        "|---|---|---|---|---|---|",
    ]
    for r in results["structure"]:
        if "refused" in r:
            rows.append(f"| {r['model']} | {r['algorithm']} | refused: {r['refused'][:120]} | | | |")
            continue
        s = r["statistics"]
        if r["algorithm"] == "sparsity":
            level = f"{s['sparsity_level_for_layers']:.3f} of sparsified layers ({s['sparsity_level']:.3f} of all)"
        else:
            level = f"{s['pruning_level']:.3f} of prunable filters ({s['flops_removed']:.3f} of FLOPs)"
        rows.append(
            f"| {r['model']} | {r['algorithm']} | {level} | {r['masked_vs_stripped_max_err']:.3g} "
            f"| {r['params']} / {r['nonzero']} ({r['params_fp32']}) | {r['b32_ms']:.2f} / {r['b32_fp32_ms']:.2f} |"
        )
    return "\n".join(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="few rounds (smoke test)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--samples", type=int, default=256, help="random inputs for the agreement check")
    args = ap.parse_args()
    args.rounds, args.repeats = (2, 5) if args.quick else (7, 40)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"machine": machine_info(args.threads), "int8": [], "structure": []}
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for name in MODELS:
            results["int8"].append(int8_run(name, tmp, args))
            for algo in ("sparsity", "pruning"):
                results["structure"].append(structure_run(name, algo, tmp, args))
    results["seconds"] = time.perf_counter() - t0
    results["command"] = "flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/hf_int8.py " + " ".join(sys.argv[1:])
    OUT.mkdir(exist_ok=True)
    stem = "hf_int8_quick" if args.quick else "hf_int8"
    (OUT / f"{stem}.json").write_text(json.dumps(results, indent=2, default=str))
    md = table(results)
    (OUT / f"{stem}.md").write_text(md + "\n")
    m = results["machine"]
    print(f"CPU: {m['cpu']} ({', '.join(m['flags'])}), {args.threads} thread(s), load {m['load_1min']:.2f}")
    print(md)


if __name__ == "__main__":
    main()

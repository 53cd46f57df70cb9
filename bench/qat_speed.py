"""QAT cost and INT8 deployment speed, netsculpt side by side with NNCF 2.19 and ONNX Runtime's quantize_static.

Measures, in one run on the same machine (ratios, not absolute times, are what to compare):
  1. training step time of 8-bit QAT / FP32 step (ResNet-20, ResNet-18-CIFAR; batch 64),
  2. ONNX Runtime latency of FP32 vs INT8 exports (batch 1 and 64, 2 threads),
  3. time to create the compressed model for a ~25M-parameter ResNet-50-shaped model.

Run in the bench venv (it has nncf 2.19.0; netsculpt installed there with --no-deps):
    OMP_WAIT_POLICY=PASSIVE .venv-bench/bin/python bench/qat_speed.py [--quick]
Writes bench/results/qat_speed.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import _onnx_peers  # noqa: E402
import _peers  # noqa: E402
from _models import ResNet50Shaped  # noqa: E402

from netsculpt import create_compressed_model, register_default_init_args  # noqa: E402
from netsculpt.models import create_model  # noqa: E402

OUT = Path(__file__).parent / "results"
SHAPE = (3, 32, 32)


def ns_config(sample: tuple[int, ...], per_channel: bool) -> dict[str, Any]:
    """Our 8-bit config matching the NNCF one (symmetric per-tensor), plus per-channel weights for export."""
    return {
        "input_info": {"sample_size": [1, *sample]},
        "compression": {
            "algorithm": "quantization",
            "weights": {"per_channel": per_channel},
            "initializer": {
                "range": {"num_init_samples": 64},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 0},
            },
        },
    }


def batch(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, *SHAPE, generator=g), torch.randint(0, 10, (n,), generator=g)


def step_times(
    models: dict[str, nn.Module], data: tuple[torch.Tensor, torch.Tensor], rounds: int, steps: int
) -> dict[str, float]:
    """Median step time per model, alternating models every ``steps`` steps for ``rounds`` rounds."""
    opts = {k: torch.optim.SGD(m.parameters(), lr=0.01, momentum=0.9) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    x, y = data
    for k, m in models.items():  # warm-up
        m.train()
        for _ in range(2):
            opts[k].zero_grad()
            F.cross_entropy(m(x), y).backward()
            opts[k].step()
    for _ in range(rounds):
        for k, m in models.items():
            for _ in range(steps):
                t0 = time.perf_counter()
                opts[k].zero_grad()
                F.cross_entropy(m(x), y).backward()
                opts[k].step()
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def bench_steps(name: str, rounds: int, steps: int) -> dict[str, Any]:
    torch.manual_seed(0)
    base = create_model(name)
    data = batch(64)
    loader = [data]
    cfg = register_default_init_args(ns_config(SHAPE, per_channel=False), loader)
    _, ours = create_compressed_model(copy.deepcopy(base), cfg)
    _, nncf_model, _ = _peers.nncf_qat_wrap(lambda: copy.deepcopy(base), (64, *SHAPE), init_loader=data)
    t = step_times({"fp32": base, "netsculpt": ours, "nncf": nncf_model}, data, rounds, steps)
    return {
        "model": name,
        "batch": 64,
        **{f"{k}_s": v for k, v in t.items()},
        "netsculpt_ratio": t["netsculpt"] / t["fp32"],
        "nncf_ratio": t["nncf"] / t["fp32"],
    }


def bench_latency(name: str, tmp: Path, repeats: int, rounds: int) -> dict[str, Any]:
    torch.manual_seed(0)
    base = create_model(name).eval()
    calib = [batch(32, seed=s)[0] for s in range(4)]
    loader = [(x, torch.zeros(len(x), dtype=torch.long)) for x in calib]
    paths: dict[str, str] = {"fp32": _onnx_peers.fp32_export_onnx(copy.deepcopy(base), tmp / f"{name}_fp32.onnx", SHAPE)}
    cfg = register_default_init_args(ns_config(SHAPE, per_channel=True), loader)
    ctrl, _ = create_compressed_model(copy.deepcopy(base), cfg)
    paths["netsculpt_int8"] = str(ctrl.export_model(tmp / f"{name}_ns.onnx"))
    nctrl, _, _ = _peers.nncf_qat_wrap(
        lambda: copy.deepcopy(base), (1, *SHAPE), init_loader=loader[0], num_init_samples=128
    )
    paths["nncf_int8"] = _onnx_peers.nncf_export_onnx(nctrl, tmp / f"{name}_nncf.onnx", dynamic_batch=True)
    paths["ort_quantize_static"] = _onnx_peers.ort_quantize_static(paths["fp32"], tmp / f"{name}_qs.onnx", calib)
    res: dict[str, Any] = {"model": name}
    for b in (1, 64):
        lat = _onnx_peers.ort_latency_interleaved(paths, SHAPE, threads=2, batch=b, repeats=repeats, rounds=rounds)
        for k, v in lat.items():
            res[f"b{b}_{k}_ms"] = 1000 * v
            res[f"b{b}_{k}_speedup"] = lat["fp32"] / v
    res["qlinearconv_netsculpt"] = _onnx_peers.ort_optimized_op_counts(paths["netsculpt_int8"]).get("QLinearConv", 0)
    res["conv_fp32"] = _onnx_peers.onnx_op_counts(paths["fp32"]).get("Conv", 0)
    return res


def bench_create(repeats: int) -> dict[str, Any]:
    base = ResNet50Shaped().eval()
    params = sum(p.numel() for p in base.parameters())
    ours, theirs = [], []
    for _ in range(repeats):
        m = copy.deepcopy(base)
        t0 = time.perf_counter()
        create_compressed_model(
            m, {"input_info": {"sample_size": [1, 3, 224, 224]}, "compression": {"algorithm": "quantization"}}
        )
        ours.append(time.perf_counter() - t0)
        _, _, s = _peers.nncf_qat_wrap(lambda: copy.deepcopy(base), (1, 3, 224, 224))
        theirs.append(s)
    return {"params": params, "netsculpt_s": statistics.median(ours), "nncf_s": statistics.median(theirs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="tiny repeat counts (smoke test)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only", choices=["steps", "latency", "create"], nargs="+", default=None,
                    help="re-measure only these parts and keep the others from the existing JSON")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    _peers.ensure_nncf_env()
    _peers.nncf_build_extension()
    rounds, steps = (1, 2) if args.quick else (5, 4)
    load_before = os.getloadavg()
    out = OUT / ("qat_speed_quick.json" if args.quick else "qat_speed.json")
    parts = set(args.only or ("steps", "latency", "create"))
    res: dict[str, Any] = json.loads(out.read_text()) if args.only and out.exists() else {}
    res.update({"host": platform.node(), "threads": args.threads, "torch": torch.__version__})
    if "steps" in parts:
        res["steps"] = [bench_steps(m, rounds, steps) for m in ("resnet20", "resnet18_cifar")]
    if "latency" in parts:
        with tempfile.TemporaryDirectory() as d:
            res["latency"] = [
                bench_latency(m, Path(d), 5 if args.quick else 20, 2 if args.quick else 5)
                for m in ("resnet20", "resnet18_cifar")
            ]
    if "create" in parts:
        res["create"] = bench_create(1 if args.quick else 3)
    res.setdefault("loadavg", {})
    if not isinstance(res["loadavg"], dict):
        res["loadavg"] = {}
    for part in parts:
        res["loadavg"][part] = [load_before, os.getloadavg()]
    res.pop("loadavg_before_after", None)
    OUT.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2))
    print("| model | FP32 step | netsculpt QAT step | ratio | NNCF 2.19 QAT step | ratio |")
    print("|---|---|---|---|---|---|")
    for r in res["steps"]:
        print(
            f"| {r['model']} | {1000 * r['fp32_s']:.0f} ms | {1000 * r['netsculpt_s']:.0f} ms | {r['netsculpt_ratio']:.2f}x "
            f"| {1000 * r['nncf_s']:.0f} ms | {r['nncf_ratio']:.2f}x |"
        )
    print()
    print("| model | batch | FP32 | netsculpt INT8 | NNCF 2.19 INT8 | ORT quantize_static |")
    print("|---|---|---|---|---|---|")
    for r in res["latency"]:
        for b in (1, 64):
            cells = [
                f"{r[f'b{b}_{k}_ms']:.2f} ms ({r[f'b{b}_{k}_speedup']:.2f}x)"
                for k in ("fp32", "netsculpt_int8", "nncf_int8", "ort_quantize_static")
            ]
            print(f"| {r['model']} | {b} | " + " | ".join(cells) + " |")
    c = res["create"]
    print(
        f"\ncreate_compressed_model, ResNet-50-shaped ({c['params'] / 1e6:.1f}M params): "
        f"netsculpt {c['netsculpt_s']:.2f} s, NNCF 2.19 {c['nncf_s']:.2f} s"
    )


if __name__ == "__main__":
    main()

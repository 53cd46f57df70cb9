"""Fashion-MNIST: HAWQ-v2 bits vs reversed-trace bits vs random bits at the same compression ratio.

Every arm starts from the same FP32 model, gets the same range init / BN adaptation and the same short
fine-tune; only the bits per layer differ. HAWQ traces are computed once and reused (the reversed arm gives
the layer with the k-th lowest trace the k-th highest trace value, so low bits go to the most sensitive layers).

Usage:
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/hawq_fmnist.py [--model resnet20] [--fp32-epochs 3]
        [--ratio 1.5] [--bits 2 4 8] [--ft-steps 200] [--random-seeds 3] [--train-limit N] [--test-limit N]

Prints a table and writes bench/results/hawq_fmnist.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _fp32 import fp32_baseline
from torch import nn

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.algorithms.quantization.precision.search import compression_ratio
from netsculpt.data import dataset_info, make_loaders
from netsculpt.graph.trace import format_address
from netsculpt.metrics.macs import count_macs
from netsculpt.train import evaluate, make_optimizer, train_epoch

OUT = Path(__file__).parent / "results"


def _config(args: argparse.Namespace, precision: dict[str, Any], log_dir: str | None = None) -> dict[str, Any]:
    info = dataset_info("fashion_mnist")
    cfg: dict[str, Any] = {
        "input_info": {"sample_size": [1, info.in_channels, *info.image_size]},
        "compression": {
            "algorithm": "quantization",
            "weights": {"per_channel": True},
            "initializer": {
                "range": {"num_init_samples": 256},
                "batchnorm_adaptation": {"num_bn_adaptation_samples": 512},
                "precision": {"bits": args.bits, "compression_ratio": args.ratio, **precision},
            },
        },
    }
    if log_dir is not None:
        cfg["log_dir"] = log_dir
    return cfg


def _achieved(ctrl: Any, model: nn.Module) -> tuple[float, dict[int, int]]:
    per_op = count_macs(model, ctrl.example_inputs, graph=ctrl.graph).per_op
    weights = [i for i in ctrl.child_ctrls[0].infos if i.group == "weights"]
    flops = [max(1, sum(per_op.get(format_address(a), 0) for a, _ in w.uses)) for w in weights]
    bits = [w.export_bits for w in weights]
    return float(compression_ratio(flops, bits)[0]), {b: bits.count(b) for b in sorted(set(bits))}


def _arm(
    name: str,
    fp32: nn.Module,
    args: argparse.Namespace,
    precision: dict[str, Any],
    loaders: Any,
    log_dir: str | None = None,
) -> dict[str, Any]:
    train, test = loaders
    model = copy.deepcopy(fp32)
    cfg = register_default_init_args(_config(args, precision, log_dir), train, criterion=nn.CrossEntropyLoss())
    t0 = time.perf_counter()
    ctrl, model = create_compressed_model(model, cfg)
    ratio, counts = _achieved(ctrl, model)
    init_acc = evaluate(model, test, progress=False).accuracy
    opt = make_optimizer(model, "sgd", lr=args.ft_lr, weight_decay=5e-4, momentum=0.9)
    ctrl.scheduler.epoch_step()
    train_epoch(model, train, opt, F.cross_entropy, ctrl=ctrl, progress=False, max_steps=args.ft_steps)
    acc = evaluate(model, test, progress=False).accuracy
    return {
        "arm": name,
        "ratio": ratio,
        "layers_per_bits": counts,
        "top1_after_init": init_acc,
        "top1_after_finetune": acc,
        "seconds": time.perf_counter() - t0,
    }


def _reversed_traces(path: Path, out: Path) -> Path:
    traces: dict[str, float] = json.loads(path.read_text())["traces"]
    names = sorted(traces, key=lambda n: traces[n])
    values = sorted(traces.values(), reverse=True)
    out.write_text(json.dumps({"traces": dict(zip(names, values))}))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--ratio", type=float, default=1.5)
    ap.add_argument("--bits", type=int, nargs="+", default=[2, 4, 8])
    ap.add_argument("--iter-number", type=int, default=50)
    ap.add_argument("--num-data-points", type=int, default=128)
    ap.add_argument("--ft-steps", type=int, default=200)
    ap.add_argument("--ft-lr", type=float, default=0.005)
    ap.add_argument("--random-seeds", type=int, default=3)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0, help="data order, fine-tune and random-arm draws")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 start (same for every --seed)")
    ap.add_argument("--out", type=Path, default=None, help="JSON path (default bench/results/hawq_fmnist.json)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    dataset_info("fashion_mnist")
    loaders = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    fp32, t_fp32 = fp32_baseline(args.model, args.fp32_epochs, args.train_limit, args.fp32_seed)
    fp32_acc = evaluate(fp32, loaders[1], progress=False).accuracy

    with tempfile.TemporaryDirectory() as tmp:
        hawq = {"type": "hawq", "iter_number": args.iter_number, "num_data_points": args.num_data_points}
        rows = [_arm("hawq", fp32, args, {**hawq, "dump_init_precision_data": True}, loaders, tmp)]
        traces = Path(tmp) / "hawq_dumps" / "precision_init.json"
        rows[0]["traces"] = json.loads(traces.read_text())["traces"]
        rev = _reversed_traces(traces, Path(tmp) / "reversed.json")
        rows.append(_arm("reversed-trace", fp32, args, {"type": "hawq", "traces_per_layer_path": str(rev)}, loaders))
        for i in range(args.random_seeds):  # different random draws for every --seed
            s = args.seed * args.random_seeds + i
            rows.append(_arm(f"random (seed {s})", fp32, args, {"type": "random", "seed": s}, loaders))

    res = {
        "model": args.model,
        "seed": args.seed,
        "fp32_seed": args.fp32_seed,
        "bits": args.bits,
        "target_ratio": args.ratio,
        "fp32_epochs": args.fp32_epochs,
        "ft_steps": args.ft_steps,
        "train_samples": len(loaders[0].dataset),  # type: ignore[arg-type]
        "test_samples": len(loaders[1].dataset),  # type: ignore[arg-type]
        "fp32_top1": fp32_acc,
        "fp32_train_s": t_fp32,
        "arms": rows,
        "host": platform.node(),
    }
    out = args.out if args.out is not None else OUT / "hawq_fmnist.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=2, default=str))
    print(f"{args.model}, FP32 top-1 {100 * fp32_acc:.2f}, bits {args.bits}, target ratio {args.ratio}")
    print(f"| arm | ratio | layers per bits | top-1 after init | top-1 after {args.ft_steps}-step fine-tune |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['arm']} | {r['ratio']:.3f} | {r['layers_per_bits']} | {100 * r['top1_after_init']:.2f} "
            f"| {100 * r['top1_after_finetune']:.2f} |"
        )


if __name__ == "__main__":
    main()

"""Fashion-MNIST accuracy: FP32 ResNet vs netsculpt INT8 QAT (and the exported INT8 ONNX in ONNX Runtime).

Usage:
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/accuracy_fmnist.py [--model resnet20] [--fp32-epochs 3]
        [--qat-epochs 1] [--train-limit N]

Prints a table and writes bench/results/accuracy_fmnist.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.data import dataset_info, make_loaders
from netsculpt.models import create_model
from netsculpt.train import evaluate, fit_baseline, make_optimizer, train_epoch
from netsculpt.train.fit import cosine_schedule

OUT = Path(__file__).parent / "results"
QAT_CONFIG: dict[str, Any] = {
    "algorithm": "quantization",
    "weights": {"per_channel": True},
    "initializer": {"range": {"num_init_samples": 512}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 2048}},
}


def ort_accuracy(path: Path, loader: Any) -> float:
    """Top-1 accuracy of an ONNX model in ONNX Runtime (2 threads)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 2
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    correct = total = 0
    for x, y in loader:
        out = sess.run(None, {name: x.numpy()})[0]
        correct += int((out.argmax(1) == y.numpy()).sum())
        total += len(y)
    return correct / total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="resnet20")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--qat-epochs", type=int, default=1)
    ap.add_argument("--qat-lr", type=float, default=0.005)
    ap.add_argument("--train-limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = make_loaders("fashion_mnist", args.batch_size, train_limit=args.train_limit, seed=args.seed)
    model = create_model(args.model, in_channels=info.in_channels, num_classes=info.num_classes)
    t0 = time.perf_counter()
    fit = fit_baseline(model, train, test, args.fp32_epochs, lr=0.1, progress=args.progress)
    fp32_acc = evaluate(model, test, progress=False).accuracy
    t_fp32 = time.perf_counter() - t0

    t0 = time.perf_counter()
    qmodel = copy.deepcopy(model)
    c, h, w = 1, *info.image_size
    cfg = register_default_init_args({"input_info": {"sample_size": [1, c, h, w]}, "compression": QAT_CONFIG}, train)
    ctrl, qmodel = create_compressed_model(qmodel, cfg)
    init_acc = evaluate(qmodel, test, progress=False).accuracy
    opt = make_optimizer(qmodel, "sgd", lr=args.qat_lr, weight_decay=5e-4, momentum=0.9)
    steps = args.qat_epochs * len(train)
    sched = cosine_schedule(opt, steps, warmup_steps=0)
    for _ in range(args.qat_epochs):
        ctrl.scheduler.epoch_step()
        train_epoch(
            qmodel, train, opt, torch.nn.functional.cross_entropy, ctrl=ctrl, progress=args.progress, lr_scheduler=sched
        )
    int8_acc = evaluate(qmodel, test, progress=False).accuracy
    t_qat = time.perf_counter() - t0
    OUT.mkdir(parents=True, exist_ok=True)
    onnx_path = ctrl.export_model(OUT / f"{args.model}_fmnist_int8.onnx")
    ort_acc = ort_accuracy(onnx_path, test)
    onnx_path.unlink()
    res = {
        "model": args.model,
        "fp32_epochs": args.fp32_epochs,
        "qat_epochs": args.qat_epochs,
        "train_samples": len(train.dataset),  # type: ignore[arg-type]
        "fp32_top1": fp32_acc,
        "int8_after_init_top1": init_acc,
        "int8_qat_top1": int8_acc,
        "int8_onnxruntime_top1": ort_acc,
        "drop_pt": 100 * (fp32_acc - int8_acc),
        "fp32_train_s": t_fp32,
        "qat_s": t_qat,
        "fp32_history": [e.__dict__ if hasattr(e, "__dict__") else str(e) for e in fit.history],
        "host": platform.node(),
    }
    (OUT / "accuracy_fmnist.json").write_text(json.dumps(res, indent=2, default=str))
    print(f"| model | FP32 top-1 | INT8 after init | INT8 QAT ({args.qat_epochs} ep) | INT8 ONNX Runtime | drop |")
    print("|---|---|---|---|---|---|")
    print(
        f"| {args.model} | {100 * fp32_acc:.2f} | {100 * init_acc:.2f} | {100 * int8_acc:.2f} | {100 * ort_acc:.2f} "
        f"| {res['drop_pt']:.2f} pt |"
    )


if __name__ == "__main__":
    main()

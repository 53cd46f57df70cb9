"""Fashion-MNIST: XNOR (or DoReFa) binarization of a ResNet-20 vs its FP32 baseline; accuracy drop and step time.

NNCF's staged recipe, scaled down: FP32 fine-tuning, then binary activations from ``--act-start``, binary
weights from ``--weight-start``, a polynomial LR drop over the last ``--lr-drop-duration`` epochs (Adam,
base LR 1e-3, weight decay off with the drop). The first conv, the 1x1 downsample convs and the FC stay in
floating point, as in NNCF's ResNet-18 recipe. Activation scales use the library's default init (the
least-squares ``{0, s}`` fit of the first batch; ``ActivationBinarizer`` documents why not NNCF's top-0.1 %).
Every ``--seed`` starts from the same FP32 model (``--fp32-seed``, default 0); the seed changes the data order
and the binarizers' init batch. The binarized model is exported to ONNX and re-evaluated in
ONNX Runtime. NNCF's published ResNet-18 / ImageNet numbers (ALGORITHMS.md §8.8) are printed for reference:
NNCF 2.9 (the last release with binarization) does not run next to this repository's torch.

Usage (full run: tens of minutes on 2 cores):
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/binarization_fmnist.py [--mode xnor] [--fp32-epochs 3]
        [--bin-epochs 6] [--act-start 1] [--weight-start 2] [--train-limit 10000] [--seed 0] [--fp32-seed 0]
        [--out PATH]

Smoke run (about a minute):
    .venv/bin/python bench/binarization_fmnist.py --fp32-epochs 1 --bin-epochs 2 --act-start 0 --weight-start 1 \
        --lr-drop-duration 1 --train-limit 512 --test-limit 512 --timing-steps 4 --out /tmp/bin_smoke.json

Prints a table and writes bench/results/binarization_fmnist.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from _fp32 import fp32_baseline
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.algorithms.binarization import ActivationBinarizer
from netsculpt.data import dataset_info, make_loaders
from netsculpt.train import evaluate, train_epoch

OUT = Path(__file__).parent / "results" / "binarization_fmnist.json"
# ALGORITHMS.md §8.8 (NNCF README, commit c094cc4): ResNet-18, ImageNet, top-1, FP32 -> binarized.
NNCF_PUBLISHED = {
    "xnor": {"model": "ResNet-18", "dataset": "ImageNet", "fp32_top1": 69.76, "binarized_top1": 61.61},
    "dorefa": {"model": "ResNet-18", "dataset": "ImageNet", "fp32_top1": 69.76, "binarized_top1": 61.59},
}
IGNORED = ["conv1", "layers.1.0.downsample", "layers.2.0.downsample", "fc"]  # ResNet-20 names of NNCF's choice


def binarization_config(args: argparse.Namespace, sample: list[int]) -> dict[str, Any]:
    """NNCF-dialect config of the run."""
    drop_start = args.bin_epochs - args.lr_drop_duration
    params = {
        "activations_quant_start_epoch": args.act_start,
        "weights_quant_start_epoch": args.weight_start,
        "lr_poly_drop_start_epoch": drop_start,
        "lr_poly_drop_duration_epochs": args.lr_drop_duration,
        "disable_wd_start_epoch": drop_start,
        "base_lr": args.lr,
        "base_wd": 1e-5,
    }
    comp = {"algorithm": "binarization", "mode": args.mode, "params": params, "ignored_scopes": IGNORED,
            "activation_scale_init": args.act_scale_init}
    return {"input_info": {"sample_size": sample}, "compression": comp}


def step_times(models: dict[str, nn.Module], batch: tuple[torch.Tensor, torch.Tensor], steps: int) -> dict[str, float]:
    """Median training-step time per model (forward, backward, SGD step), models alternated step by step."""
    opts = {k: torch.optim.SGD(m.parameters(), lr=1e-4) for k, m in models.items()}
    times: dict[str, list[float]] = {k: [] for k in models}
    x, y = batch
    for m in models.values():
        m.train()
    for i in range(steps + 2):
        for k, m in models.items():
            t0 = time.perf_counter()
            loss = F.cross_entropy(m(x), y)
            opts[k].zero_grad(set_to_none=True)
            loss.backward()
            opts[k].step()
            if i >= 2:  # warm-up steps are not counted
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(v) for k, v in times.items()}


def ort_accuracy(path: Path, loader: Any, threads: int) -> float:
    """Top-1 accuracy of an ONNX model in ONNX Runtime."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
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
    ap.add_argument("--mode", choices=["xnor", "dorefa"], default="xnor")
    ap.add_argument("--fp32-epochs", type=int, default=3)
    ap.add_argument("--bin-epochs", type=int, default=6)
    ap.add_argument("--act-start", type=int, default=1)
    ap.add_argument("--weight-start", type=int, default=2)
    ap.add_argument("--lr-drop-duration", type=int, default=2)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--train-limit", type=int, default=10000)
    ap.add_argument("--test-limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--timing-steps", type=int, default=20)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--act-scale-init", choices=["mse", "top_fraction"], default="mse",
        help="activation scale init: the library default 'mse' or NNCF's 'top_fraction' (for the ablation)",
    )
    ap.add_argument("--seed", type=int, default=0, help="data order and binarizer init")
    ap.add_argument("--fp32-seed", type=int, default=0, help="seed of the shared FP32 starting model")
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--progress", action="store_true")
    args = ap.parse_args()
    if not 0 < args.lr_drop_duration <= args.bin_epochs:
        ap.error("--lr-drop-duration must be in [1, --bin-epochs]")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    info = dataset_info("fashion_mnist")
    train, test = make_loaders(
        "fashion_mnist", args.batch_size, train_limit=args.train_limit, test_limit=args.test_limit, seed=args.seed
    )
    model, t_fp32 = fp32_baseline(
        args.model, args.fp32_epochs, args.train_limit, args.fp32_seed, progress=args.progress
    )
    fp32_acc = evaluate(model, test, progress=False).accuracy

    t0 = time.perf_counter()
    sample = [1, info.in_channels, *info.image_size]
    ctrl, bmodel = create_compressed_model(copy.deepcopy(model), binarization_config(args, sample))
    act_bins = [m for m in bmodel.modules() if isinstance(m, ActivationBinarizer)]
    opt = torch.optim.Adam(bmodel.parameters(), lr=args.lr)
    ctrl.child_ctrls[0].scheduler.attach_optimizer(opt)  # type: ignore[attr-defined]
    history = []
    for epoch in range(args.bin_epochs):
        ctrl.scheduler.epoch_step()
        res = train_epoch(bmodel, train, opt, F.cross_entropy, ctrl=ctrl, progress=args.progress, desc=f"bin{epoch}")
        acc = evaluate(bmodel, test, progress=False).accuracy
        history.append(
            {
                "epoch": epoch,
                "stage": ctrl.compression_stage().name,
                "train_loss": res.loss,
                "test_top1": acc,
                "lr": opt.param_groups[0]["lr"],
            }
        )
    bin_acc = evaluate(bmodel, test, progress=False).accuracy
    t_bin = time.perf_counter() - t0
    stats = ctrl.statistics().as_dict()["binarization"]

    onnx_path = ctrl.export_model(args.out.with_suffix(".onnx"))
    ort_acc = ort_accuracy(onnx_path, test, args.threads)
    onnx_path.unlink()

    batch = next(iter(train))
    times = step_times({"fp32": copy.deepcopy(model), "binarized": bmodel}, batch, args.timing_steps)
    ref = NNCF_PUBLISHED[args.mode]
    res_all = {
        "model": args.model,
        "mode": args.mode,
        "fp32_epochs": args.fp32_epochs,
        "bin_epochs": args.bin_epochs,
        "seed": args.seed,
        "fp32_seed": args.fp32_seed,
        "train_samples": len(train.dataset),  # type: ignore[arg-type]
        "test_samples": len(test.dataset),  # type: ignore[arg-type]
        "config": binarization_config(args, sample),
        "fp32_top1": fp32_acc,
        "binarized_top1": bin_acc,
        "binarized_onnxruntime_top1": ort_acc,
        "drop_pt": 100 * (fp32_acc - bin_acc),
        "binarized_macs_share": stats["binarized_macs_share"],
        "activation_scale_init": sorted({b.scale_init for b in act_bins}),
        "activation_scales": [round(float(b.scale.detach()), 4) for b in act_bins],
        "step_s": times,
        "step_ratio": times["binarized"] / times["fp32"],
        "fp32_train_s": t_fp32,
        "binarization_train_s": t_bin,
        "history": history,
        "nncf_published": {**ref, "drop_pt": ref["fp32_top1"] - ref["binarized_top1"]},
        "host": platform.node(),
        "threads": args.threads,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res_all, indent=2, default=str))
    print(f"| run | FP32 top-1 | {args.mode.upper()} top-1 | ONNX Runtime | drop | binarized MACs | step vs FP32 |")
    print("|---|---|---|---|---|---|---|")
    print(
        f"| netsculpt {args.model}, Fashion-MNIST ({args.fp32_epochs}+{args.bin_epochs} ep) | {100 * fp32_acc:.2f} "
        f"| {100 * bin_acc:.2f} | {100 * ort_acc:.2f} | {res_all['drop_pt']:.2f} pt "
        f"| {100 * stats['binarized_macs_share']:.1f} % | {res_all['step_ratio']:.2f}x "
        f"({1000 * times['binarized']:.0f} / {1000 * times['fp32']:.0f} ms) |"
    )
    print(
        f"| NNCF published {ref['model']}, {ref['dataset']} | {ref['fp32_top1']:.2f} | {ref['binarized_top1']:.2f} "
        f"| - | {ref['fp32_top1'] - ref['binarized_top1']:.2f} pt | - | - |"
    )
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Detection and segmentation samples: FP32 vs INT8 QAT vs 50 % filter pruning (issue 14).

One FP32 model per task is trained on Fashion-MNIST canvases (netsculpt.tasks: 64x64, 1-3 items, seeded), then
each arm fine-tunes a copy with the sample configs (examples/<task>/configs/int8.json, pruning.json): Adam at
``--finetune-lr``, ``--int8-epochs`` / ``--prune-epochs`` epochs; a control arm (``fp32_ft``) fine-tunes the FP32
model as long as the INT8 arm without compression, and INT8's drop is measured against it. Reported per arm: mAP@0.5 (pycocotools) or mIoU
(torchmetrics) on the test canvases, parameters and MACs of the deployed (stripped) model, ONNX Runtime latency
(median, batch 1 and 32, ``--threads`` threads) of the exported file, and how often ONNX Runtime's decoded
answers agree with PyTorch's (detections within 2 px / mask pixels).

Usage (6 min on 2 cores, 20 min when other jobs share them; run it under the shared CPU lock):
    flock /tmp/netsculpt-cpu.lock .venv/bin/python bench/samples.py
Smoke run (a minute): .venv/bin/python bench/samples.py --smoke --out /tmp/samples_smoke.json

Prints a table and writes bench/results/samples.json and samples.md (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from _machine import machine_info
from torch import nn

import netsculpt
from netsculpt.metrics import count_macs, count_params, ort_latency
from netsculpt.models import create_model
from netsculpt.tasks import fit, get_task
from netsculpt.tasks.agreement import onnx_output

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "samples.json"
TASKS = ("detection", "segmentation")
BATCHES = (1, 32)


def config(task: str, arm: str) -> dict[str, Any]:
    """The sample config of an arm."""
    return json.loads((ROOT / "examples" / task / "configs" / f"{arm}.json").read_text())


def measure(task: Any, model: nn.Module, onnx_path: Path, test: Any, args: argparse.Namespace) -> dict[str, Any]:
    """Metric, params, MACs, ORT latency and ORT/PyTorch agreement of a deployed model and its ONNX file."""
    size = [1, 1, *task.info().image_size]
    x = next(iter(test))[0][:32]
    with torch.no_grad():
        agreement = task.agreement(onnx_output(onnx_path, x), model.eval()(x))
    return {
        "metric": task.evaluate(model, test).metric,
        "params": count_params(model),
        "macs": count_macs(model, (torch.zeros(size),)).total,
        "latency_ms": {str(b): 1e3 * ort_latency(onnx_path, [b, *size[1:]], threads=args.threads,
                                                 repeats=args.repeats)["median_s"] for b in BATCHES},
        "ort_agreement": agreement,
    }


def export_fp32(task: Any, model: nn.Module, path: Path) -> Path:
    torch.onnx.export(model.eval(), (torch.zeros(1, 1, *task.info().image_size),), str(path),
                      input_names=["input"], output_names=["output"], dynamic_axes={"input": {0: "batch"}},
                      dynamo=False)
    return path


def run_arm(task: Any, fp32: nn.Module, arm: str, epochs: int, train: Any, test: Any, tmp: Path,
            args: argparse.Namespace) -> dict[str, Any]:
    """Compress a copy of ``fp32`` with the arm's config (``fp32_ft``: no compression, the control), fine-tune,
    export, measure."""
    torch.manual_seed(args.seed)
    ctrl, model = None, copy.deepcopy(fp32)
    if arm != "fp32_ft":
        cfg = netsculpt.register_default_init_args(netsculpt.NNCFConfig.from_dict(config(task.name, arm)), train)
        ctrl, model = netsculpt.create_compressed_model(model, cfg)
    opt = torch.optim.Adam(model.parameters(), lr=args.finetune_lr)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        if ctrl is not None:
            ctrl.scheduler.epoch_step()
        task.train_epoch(model, train, opt, ctrl=ctrl, max_steps=args.steps, desc=f"{arm} {epoch + 1}/{epochs}")
    seconds = time.perf_counter() - t0
    if ctrl is None:
        res = measure(task, model, export_fp32(task, model, tmp / f"{task.name}_{arm}.onnx"), test, args)
    else:
        path = ctrl.export_model(tmp / f"{task.name}_{arm}.onnx")
        res = measure(task, ctrl.strip(do_copy=True), path, test, args)
    res.update(finetune_epochs=epochs, finetune_s=seconds)
    return res


def run_task(name: str, args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    task = get_task(name)
    torch.manual_seed(args.seed)
    train, test = task.loaders(args.batch_size, train_limit=args.train_size, test_limit=args.test_size,
                               seed=args.seed)
    model = create_model(task.default_model, num_classes=task.num_outputs, in_channels=1)
    epochs = args.det_epochs if name == "detection" else args.seg_epochs
    t0 = time.perf_counter()
    fit(task, model, train, epochs, max_steps_per_epoch=args.steps)
    fp32_s = time.perf_counter() - t0
    path = export_fp32(task, model, tmp / f"{name}_fp32.onnx")
    arms = {"fp32": {**measure(task, model, path, test, args), "train_epochs": epochs, "train_s": fp32_s}}
    # control: the FP32 model fine-tuned as long as the INT8 arm, without compression (INT8's drop is against it)
    arms["fp32_ft"] = run_arm(task, model, "fp32_ft", args.int8_epochs, train, test, tmp, args)
    arms["int8"] = run_arm(task, model, "int8", args.int8_epochs, train, test, tmp, args)
    arms["pruning"] = run_arm(task, model, "pruning", args.prune_epochs, train, test, tmp, args)
    print(f"{name}: done", flush=True)
    return {"metric": task.metric_name, "arms": arms}


REFERENCE = {"fp32_ft": "fp32", "int8": "fp32_ft", "pruning": "fp32"}
"""The arm each arm's drop is measured against: INT8 against FP32 fine-tuned as long (same budget)."""


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task and arm over the seeds: metric mean ± std and the paired drop against the arm's reference (the
    other columns - params, MACs, latency, agreement - are seed 0's)."""
    tasks: dict[str, Any] = {}
    for name, first in runs[0]["tasks"].items():
        arms: dict[str, Any] = {}
        for arm, a in first["arms"].items():
            vals = [r["tasks"][name]["arms"][arm]["metric"] for r in runs]
            rec = {**a, "metric": statistics.mean(vals), "metric_std": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                   "metric_per_seed": vals}
            ref = REFERENCE.get(arm)
            if ref is not None:
                drops = [r["tasks"][name]["arms"][ref]["metric"] - r["tasks"][name]["arms"][arm]["metric"] for r in runs]
                rec["drop"] = statistics.mean(drops)
                rec["drop_std"] = statistics.stdev(drops) if len(drops) > 1 else 0.0
            arms[arm] = rec
        tasks[name] = {"metric": first["metric"], "arms": arms}
    return tasks


def table(res: dict[str, Any]) -> str:
    head = ("| Task | Arm | Metric (mean ± std) | Drop (pt) vs | Params | MACs | ORT batch 1 (ms) | ORT batch 32 (ms) | "
            "ORT = PyTorch | Training |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---|")
    rows = [head]
    for name, t in res["tasks"].items():
        for arm, a in t["arms"].items():
            budget = (f"{a['train_epochs']} epochs" if arm == "fp32"
                      else f"FP32 + {a['finetune_epochs']} epoch(s), Adam {res['finetune_lr']:g}")
            ref = REFERENCE.get(arm)
            drop = "-" if ref is None else f"{100 * a['drop']:+.2f} ± {100 * a['drop_std']:.2f} vs {ref}"
            rows.append(f"| {name} | {arm} | {t['metric']} {100 * a['metric']:.2f} ± {100 * a['metric_std']:.2f} | "
                        f"{drop} | {a['params'] / 1e3:.1f} k | {a['macs'] / 1e6:.2f} M | {a['latency_ms']['1']:.3f} | "
                        f"{a['latency_ms']['32']:.2f} | {100 * a['ort_agreement']:.1f} % | {budget} |")
    return "\n".join(rows)


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    ap.add_argument("--tasks", nargs="+", choices=TASKS, default=list(TASKS))
    ap.add_argument("--train-size", type=int, default=3000, help="training canvases")
    ap.add_argument("--test-size", type=int, default=500, help="test canvases")
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--det-epochs", type=int, default=6, help="FP32 epochs of the detector")
    ap.add_argument("--seg-epochs", type=int, default=4, help="FP32 epochs of the U-Net")
    ap.add_argument("--int8-epochs", type=int, default=1)
    ap.add_argument("--prune-epochs", type=int, default=2)
    ap.add_argument("--finetune-lr", type=float, default=3e-4)
    ap.add_argument("--steps", type=int, default=None, help="at most this many batches per epoch")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=30, help="timed ORT runs per latency cell")
    ap.add_argument("--seeds", type=int, default=3, help="repeats (seed 0, 1, ...: data order, init, canvases)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: checks the script runs")
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    if args.smoke:
        args.train_size, args.test_size, args.steps, args.repeats = 128, 64, 2, 3
        args.det_epochs = args.seg_epochs = args.int8_epochs = args.prune_epochs = 1
        args.seeds = 1
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    res: dict[str, Any] = {"train_size": args.train_size, "test_size": args.test_size, "seeds": args.seeds,
                           "finetune_lr": args.finetune_lr, "batch_size": args.batch_size,
                           "machine": machine_info(args.threads)}
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            args.seed = seed
            runs.append({"seed": seed, "tasks": {name: run_task(name, args, Path(tmp)) for name in args.tasks}})
    res["tasks"] = aggregate(runs)
    res["runs"] = runs
    res["seconds"] = time.perf_counter() - start
    text = table(res)
    print(text)
    print(f"{res['seconds']:.0f} s on {res['machine']['cpu']}, {args.threads} threads, {args.seeds} seed(s)")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(res, indent=2, default=str) + "\n")
    args.out.with_suffix(".md").write_text(text + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()

"""Detection sample: a single-shot detector finds Fashion-MNIST items on 64x64 canvases; compress it with an NNCF
config, fine-tune, report mAP@0.5 (pycocotools), export to ONNX and check ONNX Runtime against PyTorch.

    python examples/detection/train.py --config examples/detection/configs/int8.json
    python examples/detection/train.py --smoke          # a few steps on a few canvases (CI)

Needs the samples extra: pip install 'netsculpt[samples]'.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import torch

import netsculpt
from netsculpt.models import create_model
from netsculpt.tasks import fit, get_task
from netsculpt.tasks.agreement import onnx_output

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=HERE / "configs" / "int8.json", help="NNCF JSON config")
    p.add_argument("--epochs", type=int, default=6, help="FP32 training epochs")
    p.add_argument("--finetune-epochs", type=int, default=2, help="compressed fine-tuning epochs")
    p.add_argument("--train-size", type=int, default=6000, help="training canvases")
    p.add_argument("--test-size", type=int, default=1000, help="test canvases")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3, help="FP32 Adam learning rate")
    p.add_argument("--finetune-lr", type=float, default=3e-4, help="fine-tuning Adam learning rate")
    p.add_argument("--steps", type=int, default=None, help="at most this many batches per epoch")
    p.add_argument("--checkpoint", type=Path, default=None, help="FP32 state_dict to start from (skips training)")
    p.add_argument("--out", type=Path, default=Path("runs/example-detection"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="64 canvases, 2 steps per epoch: checks the script runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.train_size, args.test_size, args.steps, args.epochs, args.finetune_epochs = 64, 32, 2, 1, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    args.out.mkdir(parents=True, exist_ok=True)
    task = get_task("detection")  # data, loss (focal + L1) and mAP@0.5 of netsculpt.tasks.detection
    train_loader, test_loader = task.loaders(args.batch_size, train_limit=args.train_size,
                                             test_limit=args.test_size, seed=args.seed)
    model = create_model("tiny_detector", num_classes=10, in_channels=1)

    # 1. FP32 model: trained here, or loaded.
    if args.checkpoint is not None:
        model.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    else:
        fit(task, model, train_loader, args.epochs, args.lr, max_steps_per_epoch=args.steps)
        torch.save(model.state_dict(), args.out / "fp32.pt")
    fp32_map = task.evaluate(model, test_loader).metric
    print(f"FP32 mAP@0.5: {100 * fp32_map:.2f}")

    # 2. Compression: the NNCF config, initialised on training data (quantizer ranges, BN adaptation).
    config = netsculpt.NNCFConfig.from_json(args.config)
    config = netsculpt.register_default_init_args(config, train_loader)
    ctrl, model = netsculpt.create_compressed_model(model, config)

    # 3. Fine-tuning: ctrl.scheduler steps and ctrl.loss() added to the task loss, as in any NNCF loop.
    def train_epoch_fn(compression_ctrl: Any, model: torch.nn.Module, epoch: int, optimizer: Any,
                       lr_scheduler: Any = None) -> None:
        model.train()
        for step, (x, y) in enumerate(train_loader):
            if args.steps is not None and step >= args.steps:
                break
            compression_ctrl.scheduler.step()
            loss = task.loss(model(x), y) + compression_ctrl.loss()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def make_optimizer() -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.Adam(model.parameters(), lr=args.finetune_lr), None

    if config.get("accuracy_aware_training") is not None:  # the loop picks the epochs (and compression rate)
        loop = netsculpt.create_accuracy_aware_training_loop(config, ctrl, uncompressed_model_accuracy=fp32_map)
        model = loop.run(model, train_epoch_fn=train_epoch_fn,
                         validate_fn=lambda m, epoch: task.evaluate(m, test_loader).metric,
                         configure_optimizers_fn=make_optimizer, log_dir=args.out / "accuracy_aware")
    else:
        optimizer, _ = make_optimizer()
        for epoch in range(args.finetune_epochs):
            ctrl.scheduler.epoch_step()
            train_epoch_fn(ctrl, model, epoch, optimizer)
    compressed_map = task.evaluate(model, test_loader).metric
    print(ctrl.statistics())
    print(f"compressed mAP@0.5: {100 * compressed_map:.2f} (FP32 {100 * fp32_map:.2f})")

    # 4. Export (BN folded, int8 QDQ, pruned channels removed), checked in ONNX Runtime by export_model;
    #    then the decoded boxes of ONNX Runtime and PyTorch are compared.
    onnx_path = ctrl.export_model(args.out / "detector.onnx")
    deployed = ctrl.strip(do_copy=True).eval()
    x = next(iter(test_loader))[0]
    with torch.no_grad():
        agreement = task.agreement(onnx_output(onnx_path, x), deployed(x))
    print(f"ONNX Runtime vs PyTorch: {100 * agreement:.1f} % of the detections agree; model in {onnx_path}")
    summary = {"fp32_map50": fp32_map, "compressed_map50": compressed_map, "ort_agreement": agreement,
               "onnx": str(onnx_path), "statistics": ctrl.statistics().as_dict()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    return summary


if __name__ == "__main__":
    main()

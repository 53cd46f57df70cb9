"""Classification sample: ResNet-8 on Fashion-MNIST (what `netsculpt compress` runs, as a script to copy); compress
it with an NNCF config, fine-tune, report top-1, export to ONNX and check ONNX Runtime against PyTorch.

    python examples/classification/train.py --config examples/classification/configs/int8.json
    python examples/classification/train.py --smoke          # a few steps on a few images (CI)
    torchrun --standalone --nproc-per-node 2 examples/classification/train.py --config ...   # DDP (gloo on CPU)
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import DataLoader, DistributedSampler

import netsculpt
from netsculpt.models import create_model
from netsculpt.tasks import fit, get_task
from netsculpt.tasks.agreement import onnx_output

HERE = Path(__file__).resolve().parent


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", type=Path, default=HERE / "configs" / "int8.json", help="NNCF JSON config")
    p.add_argument("--epochs", type=int, default=2, help="FP32 training epochs")
    p.add_argument("--finetune-epochs", type=int, default=1, help="compressed fine-tuning epochs")
    p.add_argument("--train-size", type=int, default=10000, help="training images")
    p.add_argument("--test-size", type=int, default=2000, help="test images")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=0.1, help="FP32 SGD learning rate")
    p.add_argument("--finetune-lr", type=float, default=5e-3, help="fine-tuning SGD learning rate")
    p.add_argument("--steps", type=int, default=None, help="at most this many batches per epoch")
    p.add_argument("--checkpoint", type=Path, default=None, help="FP32 state_dict to start from (skips training)")
    p.add_argument("--out", type=Path, default=Path("runs/example-classification"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--smoke", action="store_true", help="64 images, 2 steps per epoch: checks the script runs")
    args = p.parse_args(argv)
    if args.smoke:
        args.train_size, args.test_size, args.steps, args.epochs, args.finetune_epochs = 64, 32, 2, 1, 1
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    # Under torchrun: one process per device (gloo on CPU, nccl on CUDA), each on its own shard of the data.
    ddp = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if ddp:
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    main_process = not ddp or dist.get_rank() == 0
    args.out.mkdir(parents=True, exist_ok=True)
    task = get_task("classification")  # Fashion-MNIST loaders, cross-entropy, top-1
    train_loader, test_loader = task.loaders(args.batch_size, train_limit=args.train_size,
                                             test_limit=args.test_size, seed=args.seed)
    if ddp:
        sampler = DistributedSampler(train_loader.dataset, shuffle=True, seed=args.seed)
        train_loader = DataLoader(train_loader.dataset, batch_size=args.batch_size, sampler=sampler)
    model = create_model("resnet8", num_classes=10, in_channels=1)

    # 1. FP32 model: trained here, or loaded.
    if args.checkpoint is not None:
        model.load_state_dict(torch.load(args.checkpoint, weights_only=True))
    else:
        fp32_net = torch.nn.parallel.DistributedDataParallel(model) if ddp else model  # DDP keeps ranks equal
        fit(task, fp32_net, train_loader, args.epochs, args.lr, max_steps_per_epoch=args.steps)
        if main_process:
            torch.save(model.state_dict(), args.out / "fp32.pt")
    fp32_top1 = task.evaluate(model, test_loader).metric
    if main_process:
        print(f"FP32 top-1: {100 * fp32_top1:.2f} %")

    # 2. Compression: the NNCF config, initialised on training data (quantizer ranges, BN adaptation).
    config = netsculpt.NNCFConfig.from_json(args.config)
    config = netsculpt.register_default_init_args(config, train_loader)
    ctrl, model = netsculpt.create_compressed_model(model, config)
    net: torch.nn.Module = model
    if ddp:
        ctrl.distributed()  # as in NNCF; statistics are pooled and rank 0's decisions shared at creation
        net = torch.nn.parallel.DistributedDataParallel(model)

    # 3. Fine-tuning: ctrl.scheduler steps and ctrl.loss() added to the task loss, as in any NNCF loop.
    def train_epoch_fn(compression_ctrl: Any, model: torch.nn.Module, epoch: int, optimizer: Any,
                       lr_scheduler: Any = None) -> None:
        model.train()
        for step, (x, y) in enumerate(train_loader):
            if args.steps is not None and step >= args.steps:
                break
            compression_ctrl.scheduler.step()
            loss = task.loss(net(x), y) + compression_ctrl.loss()  # net: the DDP wrapper under torchrun
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    def make_optimizer() -> tuple[torch.optim.Optimizer, None]:
        return torch.optim.SGD(model.parameters(), lr=args.finetune_lr, momentum=0.9), None

    if config.get("accuracy_aware_training") is not None:  # the loop picks the epochs (and compression rate)
        loop = netsculpt.create_accuracy_aware_training_loop(config, ctrl, uncompressed_model_accuracy=fp32_top1)
        model = loop.run(model, train_epoch_fn=train_epoch_fn,
                         validate_fn=lambda m, epoch: task.evaluate(m, test_loader).metric,
                         configure_optimizers_fn=make_optimizer, log_dir=args.out / "accuracy_aware")
    else:
        optimizer, _ = make_optimizer()
        for epoch in range(args.finetune_epochs):
            if ddp:
                sampler.set_epoch(epoch)
            ctrl.scheduler.epoch_step()
            train_epoch_fn(ctrl, model, epoch, optimizer)
    compressed_top1 = task.evaluate(model, test_loader).metric
    if not main_process:  # rank 0 reports and exports; the replicas are identical
        dist.barrier()
        dist.destroy_process_group()
        return {"compressed_top1": compressed_top1}
    print(ctrl.statistics())
    print(f"compressed top-1: {100 * compressed_top1:.2f} % (FP32 {100 * fp32_top1:.2f} %)")

    # 4. Export (BN folded, int8 QDQ, pruned channels removed), checked in ONNX Runtime by export_model;
    #    then the predicted classes of ONNX Runtime and PyTorch are compared.
    onnx_path = ctrl.export_model(args.out / "resnet8.onnx")
    deployed = ctrl.strip(do_copy=True).eval()
    x = next(iter(test_loader))[0]
    with torch.no_grad():
        agreement = task.agreement(onnx_output(onnx_path, x), deployed(x))
    print(f"ONNX Runtime vs PyTorch: {100 * agreement:.1f} % of the predicted classes agree; model in {onnx_path}")
    summary = {"fp32_top1": fp32_top1, "compressed_top1": compressed_top1, "ort_agreement": agreement,
               "onnx": str(onnx_path), "statistics": ctrl.statistics().as_dict()}
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    if ddp:
        dist.barrier()
        dist.destroy_process_group()
    return summary


if __name__ == "__main__":
    main()

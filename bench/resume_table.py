"""Resume table (issue 10): is a checkpointed and resumed run the same run, for every algorithm and stack?

For each row, a SmallCNN (Fashion-MNIST, a small training subset) is compressed and trained one epoch (run A,
the README's loop: ``epoch_step``, ``step`` per batch, ``loss + ctrl.loss()``, SGD with momentum). A checkpoint is
taken as a user would take it: ``model.state_dict()``, ``ctrl.get_compression_state()``, the optimizer state and
the torch RNG state, written with ``torch.save`` and read back with ``torch.load(weights_only=True)``. A fresh
model (the same FP32 weights the run started from) is then resumed from it (run B:
``create_compressed_model(..., compression_state=...)`` + ``load_state(..., is_resume=True)``), and both runs
train one more epoch on the same batches in the same order. Checked, bit for bit (``torch.equal``, ``==``):

- **resume**: B's outputs on a fixed evaluation batch equal A's at the checkpoint;
- **+1 epoch**: after the second epoch, B's outputs equal A's (uninterrupted);
- **strip**: ``ctrl.strip()`` of both give equal outputs;
- **statistics**: ``ctrl.statistics().as_dict()`` of B equals A's at the checkpoint and after the second epoch
  (and the scheduler's epoch and step counters agree).

Usage (about 1-2 min on 2 cores; wrap it in ``flock /tmp/netsculpt-cpu.lock`` on a shared machine):
    .venv/bin/python bench/resume_table.py [--train-limit 1024] [--batch-size 64] [--eval-size 256]
        [--rows int8_qat ...] [--out bench/results/resume_table.json]
Writes the JSON and ``resume_table.md`` (a table for the README) next to it; exits 1 when a row fails.
"""

from __future__ import annotations

import argparse
import copy
import io
import json
import math
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model, load_state, register_default_init_args
from netsculpt.controller import CompressionController
from netsculpt.data import load_dataset
from netsculpt.models import create_model

INPUT = {"sample_size": [1, 1, 28, 28]}
_INIT = {"range": {"num_init_samples": 64}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}
_BN = {"batchnorm_adaptation": {"num_bn_adaptation_samples": 64}}
_QAT = {"algorithm": "quantization", "initializer": _INIT}
# schedules chosen so that something changes between the first and the second epoch (levels, stages)
_MAGNITUDE = {"algorithm": "magnitude_sparsity", "sparsity_init": 0.2, "initializer": _BN,
              "params": {"schedule": "polynomial", "sparsity_target": 0.6, "sparsity_target_epoch": 2,
                         "sparsity_freeze_epoch": 3}}
_PRUNING = {"algorithm": "filter_pruning", "pruning_init": 0.2, "initializer": _BN,
            "params": {"pruning_target": 0.5, "pruning_steps": 2}}

#: Row name -> compression section (every algorithm and the main stacks).
ROWS: dict[str, Any] = {
    "int8_qat": _QAT,
    "mixed_precision_manual": {"algorithm": "quantization", "initializer": {
        **_INIT, "precision": {"type": "manual", "bitwidth_per_scope": [[4, "block2.0"], [6, "block3.0"]]}}},
    "mixed_precision_hawq": {"algorithm": "quantization", "initializer": {
        **_INIT, "precision": {"type": "hawq", "bits": [4, 8], "num_data_points": 32, "iter_number": 4}}},
    "magnitude_sparsity": _MAGNITUDE,
    "rb_sparsity": {"algorithm": "rb_sparsity", "sparsity_init": 0.2,
                    "params": {"schedule": "exponential", "sparsity_target": 0.5, "sparsity_target_epoch": 2}},
    "const_sparsity": {"algorithm": "const_sparsity"},
    "filter_pruning": _PRUNING,
    "binarization": {"algorithm": "binarization", "ignored_scopes": ["block1.0"],
                     "params": {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 1}},
    "knowledge_distillation": {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0},
    "kd+qat": [{"algorithm": "knowledge_distillation", "type": "mse"}, _QAT],
    "pruning+sparsity": [_PRUNING, _MAGNITUDE],
    "pruning+qat": [_PRUNING, _QAT],
    "sparsity+qat": [_MAGNITUDE, _QAT],
}


@dataclass
class Data:
    """The training subset, the init loader and a fixed evaluation batch."""

    train: TensorDataset
    eval_x: torch.Tensor
    batch_size: int
    seed: int = 0

    def epoch_loader(self, epoch: int) -> DataLoader[Any]:
        """The batches of one epoch: the same order in every run (seeded by the epoch)."""
        gen = torch.Generator().manual_seed(self.seed * 1000 + epoch)
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=True, generator=gen)

    def init_loader(self) -> DataLoader[Any]:
        return DataLoader(self.train, batch_size=self.batch_size, shuffle=False)


def load_data(train_limit: int, eval_size: int, batch_size: int) -> Data:
    """Fashion-MNIST from the local files (``netsculpt.data``): the first ``train_limit`` training images."""
    train = load_dataset("fashion_mnist", "train", limit=train_limit)
    test = load_dataset("fashion_mnist", "test", limit=eval_size)
    return Data(train, test.tensors[0], batch_size)


@dataclass
class Row:
    """One line of the table: what matched, and how far apart it was when it did not."""

    name: str
    resume: bool = False
    epoch: bool = False
    strip: bool = False
    statistics: bool = False
    max_diff: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.resume and self.epoch and self.strip and self.statistics and not self.notes


def _fp32_model(name: str) -> nn.Module:
    torch.manual_seed(0)
    model = create_model("small_cnn", in_channels=1)
    if name == "const_sparsity":  # const sparsity keeps the zeros it finds: make 30 % of each conv weight zero
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Conv2d):
                    w = m.weight
                    w.masked_fill_(w.abs() <= w.abs().flatten().kthvalue(int(0.3 * w.numel())).values, 0.0)
    return model


def _config(section: Any, data: Data) -> Any:
    return register_default_init_args({"input_info": INPUT, "compression": copy.deepcopy(section)},
                                      data.init_loader(), criterion=nn.CrossEntropyLoss())


def _train_epoch(ctrl: CompressionController, model: nn.Module, opt: torch.optim.Optimizer, data: Data,
                 epoch: int) -> None:
    ctrl.scheduler.epoch_step()
    model.train()
    for x, y in data.epoch_loader(epoch):
        ctrl.scheduler.step()
        loss = nn.functional.cross_entropy(model(x), y) + ctrl.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()


def _outputs(model: nn.Module, data: Data) -> torch.Tensor:
    was = model.training
    model.eval()
    with torch.no_grad():
        out = model(data.eval_x)
    model.train(was)
    return out


def _stats(ctrl: CompressionController) -> dict[str, Any]:
    stats = ctrl.statistics().as_dict()
    stats["_counters"] = {"current_epoch": ctrl.scheduler.current_epoch,
                          "current_step": getattr(ctrl.scheduler, "current_step", None)}
    return stats


def _roundtrip(obj: Any) -> Any:
    buf = io.BytesIO()
    torch.save(obj, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


def _diff(a: torch.Tensor, b: torch.Tensor) -> float:
    if a.shape != b.shape:
        return math.inf
    return float((a - b).abs().max())


def _stat_diffs(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out = [f"{path}.{k}: only in one" for k in sorted(set(a) ^ set(b), key=str)]
        for k in a:
            if k in b:
                out += _stat_diffs(a[k], b[k], f"{path}.{k}" if path else str(k))
        return out
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return []
    return [] if a == b else [f"{path}: {a!r} != {b!r}"]


def _optimizer(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)


def run_row(name: str, section: Any, data: Data) -> Row:
    """Run A (two epochs) and run B (resumed after the first); compare (see the module docstring)."""
    start = time.perf_counter()
    row = Row(name)
    fp32 = _fp32_model(name)
    initial = copy.deepcopy(fp32.state_dict())
    # run A: one epoch, checkpoint, one more epoch
    ctrl_a, model_a = create_compressed_model(fp32, _config(section, data))
    opt_a = _optimizer(model_a)
    _train_epoch(ctrl_a, model_a, opt_a, data, 0)
    ckpt = _roundtrip({"model_state": model_a.state_dict(), "compression_state": ctrl_a.get_compression_state(),
                       "optimizer": opt_a.state_dict(), "rng": torch.get_rng_state()})
    out_a0, stats_a0 = _outputs(model_a, data), _stats(ctrl_a)
    torch.set_rng_state(ckpt["rng"])
    _train_epoch(ctrl_a, model_a, opt_a, data, 1)
    out_a1, stats_a1 = _outputs(model_a, data), _stats(ctrl_a)
    strip_a = _outputs(ctrl_a.strip(), data)
    # run B: a fresh model with the FP32 weights the run started from, resumed from the checkpoint
    fresh = create_model("small_cnn", in_channels=1)
    fresh.load_state_dict(initial)
    ctrl_b, model_b = create_compressed_model(fresh, _config(section, data),
                                              compression_state=ckpt["compression_state"])
    load_state(model_b, ckpt["model_state"], is_resume=True)
    opt_b = _optimizer(model_b)
    opt_b.load_state_dict(ckpt["optimizer"])
    out_b0, stats_b0 = _outputs(model_b, data), _stats(ctrl_b)
    row.resume = torch.equal(out_a0, out_b0)
    row.max_diff["resume"] = _diff(out_a0, out_b0)
    torch.set_rng_state(ckpt["rng"])
    _train_epoch(ctrl_b, model_b, opt_b, data, 1)
    out_b1, stats_b1 = _outputs(model_b, data), _stats(ctrl_b)
    row.epoch = torch.equal(out_a1, out_b1)
    row.max_diff["epoch"] = _diff(out_a1, out_b1)
    strip_b = _outputs(ctrl_b.strip(), data)
    row.strip = torch.equal(strip_a, strip_b)
    row.max_diff["strip"] = _diff(strip_a, strip_b)
    stat_diffs = [f"at resume: {d}" for d in _stat_diffs(stats_a0, stats_b0)]
    stat_diffs += [f"after +1 epoch: {d}" for d in _stat_diffs(stats_a1, stats_b1)]
    row.statistics = not stat_diffs
    row.notes += stat_diffs[:6]
    row.seconds = time.perf_counter() - start
    return row


def run_rows(names: list[str], data: Data, on_error: Callable[[str, BaseException], Row] | None = None) -> list[Row]:
    """Every row; an exception becomes a failed row with the error as its note (or goes to ``on_error``)."""
    rows = []
    for name in names:
        try:
            rows.append(run_row(name, ROWS[name], data))
        except Exception as err:  # a crash is a result of the table, not the end of it
            if on_error is not None:
                rows.append(on_error(name, err))
                continue
            rows.append(Row(name, notes=[f"{type(err).__name__}: {err}"]))
    return rows


def _mark(ok: bool) -> str:
    return "yes" if ok else "**NO**"


def markdown(rows: list[Row], args: argparse.Namespace) -> str:
    """The README table."""
    lines = [
        f"Resume table (`bench/resume_table.py`): SmallCNN on {args.train_limit} Fashion-MNIST training images, "
        f"batch {args.batch_size}, SGD; checkpoint after epoch 1 (state dict, compression state, optimizer, RNG), "
        f"resumed into a fresh model; outputs on {args.eval_size} test images compared bit for bit.",
        "",
        "| algorithm / stack | outputs at resume | after +1 epoch | after strip | statistics | notes |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        note = "; ".join(r.notes)[:160].replace("|", "/")
        lines.append(f"| {r.name} | {_mark(r.resume)} | {_mark(r.epoch)} | {_mark(r.strip)} | "
                     f"{_mark(r.statistics)} | {note} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train-limit", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--eval-size", type=int, default=256)
    parser.add_argument("--rows", nargs="*", default=list(ROWS), choices=list(ROWS))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "resume_table.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(min(2, torch.get_num_threads()))
    data = load_data(args.train_limit, args.eval_size, args.batch_size)
    rows = run_rows(args.rows, data)
    table = markdown(rows, args)
    sys.stdout.write(table)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"settings": {k: (str(v) if isinstance(v, Path) else v)
                                                 for k, v in vars(args).items()},
                                    "torch": torch.__version__,
                                    "rows": [{**asdict(r), "ok": r.ok} for r in rows]}, indent=2, default=str))
    args.out.with_suffix(".md").write_text(table)
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

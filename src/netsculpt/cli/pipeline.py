"""The compress pipeline shared by ``netsculpt compress`` and ``netsculpt demo``.

FP32 baseline (trained or loaded) -> evaluation -> FP32 ONNX -> ``create_compressed_model`` -> fine-tuning
-> evaluation -> compressed ONNX -> ORT checks and latency -> checkpoint -> report.
"""

from __future__ import annotations

import copy
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from netsculpt.checkpoint import read_checkpoint
from netsculpt.cli.accuracy_aware import AccuracyAwareResult, run_accuracy_aware
from netsculpt.cli.export_fp32 import export_fp32_onnx
from netsculpt.cli.preflight import check_data_root, check_input_info, check_out_dir, check_schedule, data_source
from netsculpt.cli.report_build import RunFacts, build_report, finish_report, load_average
from netsculpt.config.nncf_config import NNCFConfig
from netsculpt.data._download import Verify
from netsculpt.errors import ConfigError, NetsculptError

__all__ = [
    "EXIT_NOT_COMPRESSED",
    "LATENCY_BATCHES",
    "CompressOptions",
    "algorithms_tag",
    "compression_status",
    "exit_status",
    "run_compression",
]

LATENCY_BATCHES = (1, 64)
LATENCY_WARMUP = 3


EXIT_NOT_COMPRESSED = 3
"""Exit status of ``compress``/``demo`` when every output was written but the model is not fully compressed."""


def exit_status(report: dict[str, Any]) -> int:
    """0 when ``report["status"]`` is ``ok``; else :data:`EXIT_NOT_COMPRESSED` after a line on stderr."""
    import sys

    status = report.get("status", "ok")
    if status == "ok":
        return 0
    print(f"error: {status.replace('_', ' ')}: {report.get('status_detail', '')}", file=sys.stderr)
    return EXIT_NOT_COMPRESSED


@dataclass
class CompressOptions:
    """Everything ``netsculpt compress`` takes from its command line."""

    config: NNCFConfig
    model: str
    dataset: str
    out: Path
    config_path: str | None = None
    epochs: int = 2
    finetune_epochs: int = 1
    checkpoint: Path | None = None
    batch_size: int = 128
    lr: float = 0.1
    finetune_lr: float = 1e-3
    train_limit: int | None = None
    test_limit: int | None = None
    threads: int = 2
    download: bool = False
    verify: Verify = "strict"  # local dataset files that differ from the official release are refused
    data_root: str | None = None
    seed: int = 0
    progress: bool = True
    latency_repeats: int = 20
    ekg: Path | None = None  # EKG settings: search + memory-bank fine-tuning (docs/EKG.md)
    task: str = "classification"  # or detection / segmentation (netsculpt.tasks)


def algorithms_tag(config: NNCFConfig) -> str:
    """``quantization`` or ``quantization_filter_pruning``: the algorithms of a config, for directory names."""
    names = [str(getattr(a, "algorithm", type(a).__name__)) for a in config.algorithms]
    return "_".join(names) or "none"


def with_input_info(config: NNCFConfig, sample_size: list[int]) -> NNCFConfig:
    """The config with ``input_info`` set to ``sample_size`` when it has none (call before registering loaders)."""
    if config.input_infos:
        return config
    return NNCFConfig.from_dict({**dict(config), "input_info": {"sample_size": sample_size}})


def _load_baseline(model: nn.Module, path: Path, expected: str = "") -> None:
    state = read_checkpoint(path, "--checkpoint")
    if isinstance(state, dict) and isinstance(state.get("model_state"), dict):
        state = state["model_state"]
    if not isinstance(state, dict):
        raise ConfigError(f"--checkpoint: expected a state_dict; got {type(state).__name__} in {path}")
    state = {str(k).removeprefix("module."): v for k, v in state.items()}
    own = model.state_dict()
    wrong = [f"{k} {list(v.shape)} (model: {list(own[k].shape)})" for k, v in state.items()
             if k in own and isinstance(v, torch.Tensor) and v.shape != own[k].shape]
    if wrong:
        raise ConfigError(f"--checkpoint: {path} was trained for another input or class count; got "
                          f"{'; '.join(wrong[:3])}{'...' if len(wrong) > 3 else ''}. {expected}Pass the "
                          "checkpoint of this --model on this --dataset, or omit --checkpoint to train one.")
    try:
        model.load_state_dict(state)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        raise ConfigError(f"--checkpoint: {path} does not fit the model: {detail}") from None


def _tb_writer(log_dir: Path) -> Any:
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(log_dir=str(log_dir))


def _first_batch(loader: Any, n: int) -> torch.Tensor:
    xs: list[torch.Tensor] = []
    for x, _ in loader:
        xs.append(x)
        if sum(t.shape[0] for t in xs) >= n:
            break
    return torch.cat(xs)[:n]


def _say(message: str) -> None:
    print(message, flush=True)


def _with_baseline_note(err: Exception, baseline: Path) -> NetsculptError:
    """``err`` as a netsculpt error whose message says the trained baseline was kept and how to reuse it."""
    note = (f" (The FP32 baseline trained before this failure is saved in {baseline}: after fixing the cause, "
            f"add --checkpoint {baseline} to skip FP32 training.)")
    text = str(err) if isinstance(err, NetsculptError) else f"{type(err).__name__}: {err}"
    cls = type(err) if isinstance(err, NetsculptError) else ConfigError
    try:
        return cls(text + note)
    except Exception:  # noqa: BLE001 - an error class with a different constructor
        return ConfigError(text + note)


def compression_status(ctrl: Any) -> tuple[str, str]:
    """``(status, detail)`` of a controller after fine-tuning: ``ok``, ``partially_compressed`` or ``not_compressed``.

    Quantizers that are still disabled make the model partially compressed (the staged schedule never reached
    their start epoch); a controller whose compression stage is ``UNCOMPRESSED`` compressed nothing.
    """
    from netsculpt.algorithms.base import CompressionStage

    disabled: list[str] = []
    for part in getattr(ctrl, "child_ctrls", [ctrl]):
        quantizers = getattr(part, "_quantizers", None)
        if quantizers is None:
            continue
        for group in ("weights", "activations"):
            qs = quantizers(group)
            off = sum(not bool(q.enabled) for _, q in qs)
            if off:
                disabled.append(f"{off} of {len(qs)} {group} quantizers")
    try:
        stage = ctrl.compression_stage()
    except Exception:  # noqa: BLE001 - a controller without stages: judge by quantizers only
        stage = None
    if stage == CompressionStage.UNCOMPRESSED:
        return "not_compressed", ("compression never switched on (compression stage UNCOMPRESSED): the exported "
                                  "model is the FP32 model; check the schedule's start epochs against "
                                  "--finetune-epochs")
    if disabled:
        return "partially_compressed", (f"{' and '.join(disabled)} were never enabled and stay floating point "
                                        "(staged schedule start epoch not reached); pass more --finetune-epochs")
    return "ok", ""


class _Phases:
    """Wall time of each pipeline phase (``report["timing"]``)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def run_compression(opts: CompressOptions, echo: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run the whole pipeline; write everything under ``opts.out``; return the report dict.

    Args:
        opts: the options (``opts.task``: classification, detection or segmentation).
        echo: where progress messages go (default: ``print`` to stdout, flushed).

    Raises:
        NetsculptError: bad config, model, dataset or checkpoint; failed export.
    """
    from netsculpt.models import create_model
    from netsculpt.tasks import fit, get_task
    from netsculpt.train import fit_baseline

    if echo is None:
        echo = _say
    start = time.perf_counter()
    phase = _Phases()
    task = get_task(opts.task, dataset=opts.dataset)
    info = task.info()
    if opts.ekg is not None and task.name != "classification":
        raise ConfigError(f"--ekg: EKG fine-tunes classifiers with a memory bank of logits; got --task {task.name}. "
                          "Drop --ekg or use --task classification.")
    # Everything that can be checked without data is checked before any training.
    check_data_root(opts.data_root)
    check_input_info(opts.config, info, opts.config_path)
    check_schedule(opts.config, opts.finetune_epochs, opts.config_path)
    torch.manual_seed(opts.seed)
    model = create_model(opts.model, num_classes=task.num_outputs, in_channels=info.in_channels)
    out = opts.out
    check_out_dir(out)
    with phase("data"):
        train_loader, test_loader = task.loaders(
            opts.batch_size, root=opts.data_root, download=opts.download, train_limit=opts.train_limit,
            test_limit=opts.test_limit, seed=opts.seed, verify=opts.verify,
        )
    source = data_source(opts.dataset, opts.data_root)
    tb = _tb_writer(out / "tb")
    n_train = len(train_loader.dataset)
    n_test = len(test_loader.dataset)
    unit = "images" if task.name == "classification" else "canvases"
    echo(f"task {task.name}, model {opts.model}, dataset {opts.dataset} ({n_train} train / {n_test} test {unit}), "
         f"compression: {algorithms_tag(opts.config)}, output: {out}")
    echo(f"data: {opts.dataset} read from {source}")

    # ---- FP32 baseline ---------------------------------------------------------------------------
    if opts.checkpoint is not None:
        _load_baseline(model, opts.checkpoint, f"This model takes {info.in_channels}-channel "
                       f"{info.image_size[0]}x{info.image_size[1]} images and has {info.num_classes} classes "
                       f"(dataset {info.name}). ")
        echo(f"loaded FP32 baseline from {opts.checkpoint}")
    else:
        echo(f"training the FP32 baseline for {opts.epochs} epoch(s)...")
        with phase("fp32 training"):
            if task.name == "classification":
                fit_baseline(model, train_loader, None, opts.epochs, opts.lr, progress=opts.progress, tb_writer=tb)
            else:
                fit(task, model, train_loader, opts.epochs, opts.lr, progress=opts.progress, tb_writer=tb)
        torch.save(model.state_dict(), out / "baseline.pt")
        echo(f"FP32 baseline saved to {out / 'baseline.pt'} (reuse it with --checkpoint)")
    try:
        return _compress_and_report(opts, task, model, train_loader, test_loader, info, out, tb, phase, start, echo,
                                    source, n_train, n_test)
    except (NetsculptError, OSError) as err:
        if opts.checkpoint is not None:
            raise
        raise _with_baseline_note(err, out / "baseline.pt") from err


def _finetune(opts: CompressOptions, task: Any, ctrl: Any, model: nn.Module, train_loader: Any, tb: Any,
              phase: _Phases, ekg_run: Any) -> list[dict[str, Any]]:
    """``--finetune-epochs`` epochs of the task's compression-aware training step; the per-epoch summaries."""
    from netsculpt.train import train_epoch
    from netsculpt.train.fit import cosine_schedule

    optimizer = task.optimizer(model, opts.finetune_lr)
    sched = cosine_schedule(optimizer, len(train_loader) * opts.finetune_epochs)
    step = 0
    history: list[dict[str, Any]] = []
    for epoch in range(opts.finetune_epochs):
        ctrl.scheduler.epoch_step()
        desc = f"finetune epoch {epoch + 1}/{opts.finetune_epochs}"
        with phase("fine-tuning"):
            if ekg_run is not None:
                res = train_epoch(model, ekg_run.loader, optimizer, ekg_run.criterion, ctrl=ctrl,
                                  progress=opts.progress, desc=desc, tb_writer=tb, global_step=step,
                                  lr_scheduler=sched)
            else:
                res = task.train_epoch(model, train_loader, optimizer, ctrl=ctrl, progress=opts.progress, desc=desc,
                                       tb_writer=tb, global_step=step, lr_scheduler=sched)
        step = res.global_step
        history.append(res.as_dict())
        if tb is not None:
            for key, value in ctrl.statistics().items():
                tb.add_scalar(f"compression/{key}", value, epoch + 1)
    return history


def _compress_and_report(opts: CompressOptions, task: Any, model: nn.Module, train_loader: Any, test_loader: Any,
                         info: Any, out: Path, tb: Any, phase: _Phases, start: float, echo: Callable[[str], None],
                         source: str, n_train: int, n_test: int) -> dict[str, Any]:
    """Everything after the FP32 baseline exists (trained or loaded)."""
    from netsculpt.api import create_compressed_model, register_default_init_args
    from netsculpt.export import check_onnx
    from netsculpt.metrics import count_macs, ort_latency
    from netsculpt.tasks.agreement import onnx_output

    metric = "top-1 accuracy" if task.name == "classification" else task.metric_name
    sample_size = [1, info.in_channels, *info.image_size]
    with phase("evaluation"):
        fp32_eval = task.evaluate(model, test_loader, progress=opts.progress, desc="fp32 eval")
    echo(f"FP32 {metric}: {100 * fp32_eval.accuracy:.2f} %")
    fp32_model = copy.deepcopy(model).eval()
    check_batch = _first_batch(test_loader, 64)
    example = (torch.zeros(sample_size),)
    macs = count_macs(fp32_model, example)
    with phase("export"):
        fp32_onnx = export_fp32_onnx(fp32_model, example, out / "fp32.onnx")
        fp32_check = check_onnx(fp32_onnx, fp32_model, (check_batch,))

    # ---- compression and fine-tuning -------------------------------------------------------------
    config = with_input_info(opts.config, sample_size)
    criterion = nn.CrossEntropyLoss() if task.name == "classification" else task.loss
    config = register_default_init_args(config, train_loader, criterion)
    with phase("create_compressed_model"):
        ctrl, model = create_compressed_model(model, config)
    ekg_run = None
    if opts.ekg is not None:
        from netsculpt.search.ekg.cli import prepare_ekg

        with phase("ekg search"):
            ekg_run = prepare_ekg(opts.ekg, ctrl, train_loader, out, progress=opts.progress, echo=echo, seed=opts.seed)
    with phase("evaluation"):
        init_eval = task.evaluate(model, test_loader, progress=opts.progress, desc="compressed eval (init)")
    echo(f"compressed {metric} after initialisation: {100 * init_eval.accuracy:.2f} %")
    history: list[dict[str, Any]] = []
    aat: AccuracyAwareResult | None = None
    if config.accuracy_aware_training is not None:
        with phase("fine-tuning"):
            model, aat = run_accuracy_aware(
                config, ctrl, model, train_loader, test_loader, criterion, fp32_accuracy=fp32_eval.accuracy,
                lr=opts.finetune_lr, out=out, progress=opts.progress, tb_writer=tb, echo=echo,
                task=None if task.name == "classification" else task,
            )
    elif opts.finetune_epochs > 0:
        history = _finetune(opts, task, ctrl, model, train_loader, tb, phase, ekg_run)
    with phase("evaluation"):
        comp_eval = task.evaluate(model, test_loader, progress=opts.progress, desc="compressed eval")
    echo(f"compressed {metric}: {100 * comp_eval.accuracy:.2f} %")
    echo(ctrl.statistics().to_str())
    status, status_detail = compression_status(ctrl)
    if status != "ok":
        echo(f"WARNING: {status.upper().replace('_', ' ')}: {status_detail}")

    # ---- export, checks, latency -----------------------------------------------------------------
    with phase("export"):
        comp_onnx = ctrl.export_model(out / "compressed.onnx")
        stripped = ctrl.strip(do_copy=True)
        comp_check = check_onnx(comp_onnx, stripped, (check_batch,))
        with torch.no_grad():
            agreement = {"fp32": task.agreement(onnx_output(fp32_onnx, check_batch), fp32_model(check_batch)),
                         "compressed": task.agreement(onnx_output(comp_onnx, check_batch),
                                                      stripped.eval()(check_batch))}
    torch.save({"model_state": model.state_dict(), "compression_state": ctrl.get_compression_state()},
               out / "compressed.pt")
    for side, chk in (("FP32", fp32_check), ("compressed", comp_check)):
        echo(f"ONNX Runtime vs PyTorch, {side}: max |diff| {chk.max_abs_diff:.3g}, "
             f"same answers {100 * agreement[side.lower()]:.2f} % on {check_batch.shape[0]} test images")
    echo(f"measuring ONNX Runtime latency ({opts.threads} threads, batch {' and '.join(map(str, LATENCY_BATCHES))})...")
    latency: dict[str, dict[str, Any]] = {"fp32": {}, "compressed": {}}
    load_before = load_average()
    with phase("latency"):
        # FP32 and compressed alternate per batch size, so a change in machine load hits both columns alike.
        for b in LATENCY_BATCHES:
            for side, path in (("fp32", fp32_onnx), ("compressed", comp_onnx)):
                latency[side][str(b)] = ort_latency(path, [b, *sample_size[1:]], threads=opts.threads,
                                                    repeats=opts.latency_repeats, warmup=LATENCY_WARMUP)
    latency_conditions = {
        "threads": opts.threads, "repeats": opts.latency_repeats, "warmup": LATENCY_WARMUP,
        "statistic": "median", "spread": "p10-p90", "cpus": os.cpu_count(),
        "load_avg_before": load_before, "load_avg_after": load_average(),
    }
    facts = RunFacts(
        fp32_model=fp32_model, stripped=stripped, ctrl=ctrl, config=dict(config), fp32_eval=fp32_eval,
        init_eval=init_eval, comp_eval=comp_eval, macs=macs, comp_macs=count_macs(stripped, example),
        fp32_onnx=fp32_onnx, comp_onnx=comp_onnx, fp32_check=fp32_check, comp_check=comp_check, latency=latency,
        latency_conditions=latency_conditions, history=history, aat=aat, status=status,
        status_detail=status_detail, source=source, n_train=n_train, n_test=n_test, agreement=agreement,
    )
    report = build_report(opts, facts, task, out, algorithms_tag(opts.config))
    if tb is not None:
        tb.add_scalar("eval/fp32_accuracy", fp32_eval.accuracy, 0)
        tb.add_scalar("eval/compressed_accuracy", comp_eval.accuracy, opts.finetune_epochs)
        tb.close()
    return finish_report(report, opts, out, phase, start, echo)

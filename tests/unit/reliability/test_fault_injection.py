"""Fault injection (issue 10, "Benchmarks / figures"): an exception at any stage leaves the model as it was.

An ``InjectedFault`` (a ``RuntimeError``, as torch raises) is raised from inside each stage of
``create_compressed_model`` (config parse, graph trace, each algorithm's check and part construction, mixed
precision, range init, BN adaptation, controller construction, load_state), of ``ctrl.strip`` and
``ctrl.export_model``, and from the user's data loader and accuracy-aware callbacks. Each time:

- the error is a ``NetsculptError`` with the injected exception on its ``__cause__`` chain;
- the model is byte-identical to what it was before the call (state dict, classes, attributes, hooks, train
  flags) and, when the call was to compress it, hook-free; an accuracy-aware loop restores the best checkpoint.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.unit.reliability._model_state import ModelRecord, hook_problems
from tests.zoo import TinyResNet, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netsculpt.algorithms  # noqa: F401  (registers the algorithms)
from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.accuracy_aware import create_accuracy_aware_training_loop
from netsculpt.algorithms.base import registered_algorithms
from netsculpt.controller import CompressionController
from netsculpt.errors import DatasetError, NetsculptError

SIZE = [1, 3, 8, 8]
_INIT = {"range": {"num_init_samples": 8}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 8}}
_BN = {"batchnorm_adaptation": {"num_bn_adaptation_samples": 8}}

#: One config per algorithm and the main stacks; each touches the model in its own way.
ALGOS: dict[str, Any] = {
    "quantization": {"algorithm": "quantization", "initializer": _INIT},
    "mixed_precision": {"algorithm": "quantization", "initializer": {
        **_INIT, "precision": {"type": "hawq", "bits": [4, 8], "num_data_points": 4, "iter_number": 2}}},
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.3, "initializer": _BN},
    "rb_sparsity": {"algorithm": "rb_sparsity", "sparsity_init": 0.3},
    "const_sparsity": {"algorithm": "const_sparsity"},
    "filter_pruning": {"algorithm": "filter_pruning", "pruning_init": 0.3, "initializer": _BN},
    "binarization": {"algorithm": "binarization"},
    "knowledge_distillation": {"algorithm": "knowledge_distillation", "type": "softmax"},
    "pruning+sparsity+qat": [{"algorithm": "filter_pruning", "pruning_init": 0.3, "initializer": _BN},
                             {"algorithm": "magnitude_sparsity", "sparsity_init": 0.3},
                             {"algorithm": "quantization", "initializer": _INIT}],
    "kd+qat": [{"algorithm": "knowledge_distillation", "type": "mse"},
               {"algorithm": "quantization", "initializer": _INIT}],
}


class InjectedFault(RuntimeError):
    """What every injection raises."""


def _raise(*_: Any, **__: Any) -> Any:
    raise InjectedFault("injected")


def _after(original: Callable[..., Any]) -> Callable[..., Any]:
    """``original`` runs (and changes what it changes), then the fault: the worst moment to fail."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        original(*args, **kwargs)
        raise InjectedFault("injected after the stage did its work")

    return wrapper


class FailingLoader:
    """A DataLoader-like object whose iterator raises after ``good`` batches (a broken file, a dead worker)."""

    def __init__(self, good: int) -> None:
        gen = torch.Generator().manual_seed(0)
        self.data = [(torch.randn(4, 3, 8, 8, generator=gen), torch.arange(4)) for _ in range(4)]
        self.good = good
        self.batch_size = 4

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i, batch in enumerate(self.data):
            if i >= self.good:
                raise InjectedFault(f"the data loader failed at batch {i}")
            yield batch

    def __len__(self) -> int:
        return len(self.data)


def _loader() -> DataLoader[Any]:
    gen = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(16, 3, 8, 8, generator=gen), torch.arange(16) % 10), batch_size=4)


def _config(algo: str, loader: Any = None) -> Any:
    cfg = {"input_info": {"sample_size": SIZE}, "compression": ALGOS[algo]}
    return register_default_init_args(cfg, loader if loader is not None else _loader(),
                                      criterion=nn.CrossEntropyLoss())


def _assert_chained(err: BaseException) -> None:
    assert isinstance(err, NetsculptError), f"{type(err).__name__} is not a NetsculptError: {err}"
    cause: BaseException | None = err
    while cause is not None and not isinstance(cause, InjectedFault):
        cause = cause.__cause__
    assert cause is not None, f"the injected exception is not on the __cause__ chain of {type(err).__name__}: {err}"


def _assert_untouched(model: nn.Module, before: ModelRecord) -> None:
    problems = before.differences(model) + hook_problems(model)
    assert not problems, problems


# ---- create_compressed_model -------------------------------------------------------------------------
@dataclass(frozen=True)
class Stage:
    name: str
    algos: tuple[str, ...]
    install: Callable[[pytest.MonkeyPatch, str], None]
    loader: Callable[[], Any] | None = None
    plain_dict: bool = False  # pass the config as a dict (parsed inside create_compressed_model)
    expect: type[NetsculptError] = NetsculptError

    def __str__(self) -> str:
        return self.name


def _resolve(target: str) -> tuple[Any, str]:
    """``pkg.module.Class.attr`` -> (``Class``, ``"attr"``)."""
    parts = target.split(".")
    for i in range(len(parts) - 1, 0, -1):
        try:
            owner: Any = importlib.import_module(".".join(parts[:i]))
        except ImportError:
            continue
        for name in parts[i:-1]:
            owner = getattr(owner, name)
        return owner, parts[-1]
    raise AssertionError(target)


def _patch(target: str, make: Callable[[Any], Any] = lambda _: _raise) -> Callable[[pytest.MonkeyPatch, str], None]:
    def install(mp: pytest.MonkeyPatch, algo: str) -> None:
        owner, attr = _resolve(target)
        mp.setattr(owner, attr, make(getattr(owner, attr)))

    return install


def _algorithm_method(method: str, after: bool) -> Callable[[pytest.MonkeyPatch, str], None]:
    """Every registered algorithm's ``check`` / ``apply`` fails (``after``: once it has done its work)."""

    def install(mp: pytest.MonkeyPatch, algo: str) -> None:
        for cls in registered_algorithms().values():
            mp.setattr(cls, method, _after(getattr(cls, method)) if after else _raise)

    return install


def _last_algorithm_apply_fails(mp: pytest.MonkeyPatch, algo: str) -> None:
    """In a stack, the last part fails after the earlier ones changed the model."""
    names = [a["algorithm"] for a in ALGOS[algo]] if isinstance(ALGOS[algo], list) else [ALGOS[algo]["algorithm"]]
    for cls in registered_algorithms().values():
        if cls.name == names[-1]:
            mp.setattr(cls, "apply", _after(cls.apply))


def _fail_bn_adaptation(mp: pytest.MonkeyPatch, algo: str) -> None:
    import netsculpt.algorithms.quantization.init as init

    original = init.run_batch

    def run_batch(model: nn.Module, args: Any, kwargs: Any, index: int, purpose: str) -> None:
        original(model, args, kwargs, index, purpose)
        if purpose == "BN adaptation":
            raise InjectedFault("injected in BN adaptation")

    mp.setattr(init, "run_batch", run_batch)


ALL = tuple(ALGOS)
QUANT = ("quantization", "mixed_precision", "pruning+sparsity+qat", "kd+qat")
STAGES = [
    Stage("config parse", ALL, _patch("netsculpt.config.nncf_config._parse_compression"), plain_dict=True),
    Stage("graph trace (op recording)", ALL, _patch("netsculpt.graph.trace._Builder.record")),
    Stage("graph trace (graph construction)", ALL, _patch("netsculpt.graph.trace.ModelGraph.__init__")),
    Stage("algorithm check", ALL, _algorithm_method("check", after=False)),
    Stage("part construction (start)", ALL, _algorithm_method("apply", after=False)),
    Stage("part construction (after the model changed)", ALL, _algorithm_method("apply", after=True)),
    Stage("last part of a stack", ("pruning+sparsity+qat", "kd+qat"), _last_algorithm_apply_fails),
    Stage("mixed precision init", ("mixed_precision",),
          _patch("netsculpt.algorithms.quantization.algorithm.init_precision")),
    Stage("range init (statistics)", QUANT,
          _patch("netsculpt.algorithms.quantization.algorithm.collect_activation_ranges", _after)),
    Stage("range init (data loader fails)", QUANT, lambda mp, a: None, loader=lambda: FailingLoader(good=1),
          expect=DatasetError),
    Stage("BN adaptation (after a batch reset and updated the statistics)",
          ("quantization", "magnitude_sparsity", "filter_pruning", "pruning+sparsity+qat"), _fail_bn_adaptation),
    Stage("controller construction", ALL, _patch("netsculpt.controller.CompositeScheduler.__init__")),
    Stage("controller construction (after)", ALL, _patch("netsculpt.controller.CompressionController.__init__",
                                                         _after)),
]
CASES = [pytest.param(s, a, id=f"{s.name}-{a}") for s in STAGES for a in s.algos]


@pytest.mark.parametrize(("stage", "algo"), CASES)
def test_create_compressed_model_fault(monkeypatch: pytest.MonkeyPatch, stage: Stage, algo: str) -> None:
    cfg = _config(algo, stage.loader() if stage.loader is not None else None)
    if stage.plain_dict:
        cfg = dict(cfg)
    model = seeded(TinyResNet())
    before = ModelRecord.take(model)
    stage.install(monkeypatch, algo)
    with pytest.raises(Exception) as info:  # noqa: PT011 - the type is what is checked
        create_compressed_model(model, cfg)
    monkeypatch.undo()
    _assert_chained(info.value)
    assert isinstance(info.value, stage.expect), f"{type(info.value).__name__}: {info.value}"
    _assert_untouched(model, before)
    ctrl, _ = create_compressed_model(model, _config(algo))  # still compressible
    assert ctrl.child_ctrls


@pytest.mark.parametrize("algo", ["quantization", "filter_pruning", "pruning+sparsity+qat", "kd+qat"])
@pytest.mark.parametrize("where", ["apply (builder state)", "load_state", "scheduler load_state"])
def test_resume_fault(monkeypatch: pytest.MonkeyPatch, algo: str, where: str) -> None:
    cfg = _config(algo)
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), cfg)
    ctrl.scheduler.epoch_step()
    state = ctrl.get_compression_state()
    model = seeded(TinyResNet())  # the same weights: a KD teacher must match the saved one
    before = ModelRecord.take(model)
    if where == "apply (builder state)":
        _algorithm_method("apply", after=True)(monkeypatch, algo)
    elif where == "load_state":
        monkeypatch.setattr(CompressionController, "load_state", _raise)
    else:
        monkeypatch.setattr("netsculpt.controller.CompositeScheduler.load_state", _raise)
        monkeypatch.setattr(type(ctrl.child_ctrls[0].scheduler), "load_state", _raise)
    with pytest.raises(Exception) as info:  # noqa: PT011
        create_compressed_model(model, cfg, compression_state=state)
    _assert_chained(info.value)
    _assert_untouched(model, before)


# ---- strip and export ---------------------------------------------------------------------------------
def _compressed(algo: str) -> tuple[CompressionController, nn.Module]:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _config(algo))
    ctrl.scheduler.epoch_step()
    return ctrl, model


def _fail_last_strip(mp: pytest.MonkeyPatch, ctrl: CompressionController) -> None:
    """The part stripped last fails after the earlier parts (and itself) changed the model."""
    order = {"structural": 0, "mask": 1, "quant": 2}
    last = sorted(ctrl.child_ctrls, key=lambda p: order.get(getattr(p, "kind", "quant"), 3))[-1]
    mp.setattr(type(last), "strip", _after(type(last).strip))


@pytest.mark.parametrize("algo", ALL)
@pytest.mark.parametrize("do_copy", [True, False], ids=["copy", "in_place"])
def test_strip_fault(monkeypatch: pytest.MonkeyPatch, algo: str, do_copy: bool) -> None:
    ctrl, model = _compressed(algo)
    x = torch.randn(2, 3, 8, 8)
    with torch.no_grad():
        expected = model.eval()(x)
        reference = ctrl.strip(do_copy=True)(x)
    before = ModelRecord.take(model)
    _fail_last_strip(monkeypatch, ctrl)
    with pytest.raises(Exception) as info:  # noqa: PT011
        ctrl.strip(do_copy=do_copy)
    monkeypatch.undo()
    _assert_chained(info.value)
    assert not before.differences(model), before.differences(model)
    with torch.no_grad():
        assert torch.equal(model(x), expected)
    with torch.no_grad():  # the controller still works: strip again, for real
        assert torch.equal(ctrl.strip(do_copy=do_copy)(x), reference)


@pytest.mark.parametrize("algo", ["quantization", "filter_pruning", "pruning+sparsity+qat"])
@pytest.mark.parametrize("where", ["strip", "torch.onnx.export", "onnx check"])
def test_export_fault(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, algo: str, where: str) -> None:
    ctrl, model = _compressed(algo)
    before = ModelRecord.take(model)
    if where == "strip":
        _fail_last_strip(monkeypatch, ctrl)
    elif where == "torch.onnx.export":
        monkeypatch.setattr(torch.onnx, "export", _raise)
    else:
        import onnxruntime

        monkeypatch.setattr(onnxruntime, "InferenceSession", _raise)
    with pytest.raises(Exception) as info:  # noqa: PT011
        ctrl.export_model(tmp_path / "m.onnx")
    _assert_chained(info.value)
    assert not before.differences(model), before.differences(model)


# ---- accuracy-aware loops -----------------------------------------------------------------------------
_LOOPS = {
    "early_exit": ({"algorithm": "magnitude_sparsity", "sparsity_init": 0.1,
                    "params": {"sparsity_target": 0.5, "sparsity_target_epoch": 1}},
                   {"mode": "early_exit", "params": {"maximal_absolute_accuracy_degradation": 0.0,
                                                     "maximal_total_epochs": 6}}),
    "adaptive_compression_level": ({"algorithm": "filter_pruning", "pruning_init": 0.1,
                                    "params": {"pruning_target": 0.3, "pruning_steps": 1}},
                                   {"mode": "adaptive_compression_level",
                                    "params": {"maximal_absolute_accuracy_degradation": 0.0, "maximal_total_epochs": 6,
                                               "initial_training_phase_epochs": 1, "patience_epochs": 1}}),
}


class Callbacks:
    """train_epoch_fn nudges the weights; validate_fn scores epochs 90, 95, 92...; one of them fails."""

    def __init__(self, fail: str, at_epoch: int) -> None:
        self.fail = fail
        self.at_epoch = at_epoch
        self.epochs = 0
        self.validations = 0
        self.snapshots: dict[float, dict[str, torch.Tensor]] = {}

    def train_epoch_fn(self, compression_ctrl: Any, model: nn.Module, epoch: int | None = None,
                       optimizer: Any = None, lr_scheduler: Any = None) -> None:
        self.epochs += 1
        if self.fail == "train_epoch_fn" and self.epochs > self.at_epoch:
            raise InjectedFault(f"train_epoch_fn failed in epoch {self.epochs}")
        with torch.no_grad():
            for p in model.parameters():
                p.add_(0.01 * self.epochs)

    def validate_fn(self, model: nn.Module, epoch: int | None = None) -> float:
        self.validations += 1
        if self.fail == "validate_fn" and self.validations > self.at_epoch:
            raise InjectedFault(f"validate_fn failed at call {self.validations}")
        score = [90.0, 95.0, 92.0, 91.0, 93.0, 94.0, 90.5, 90.2][(self.validations - 1) % 8]
        self.snapshots[score] = {k: v.detach().clone() for k, v in model.state_dict().items()}
        return score


@pytest.mark.parametrize("mode", sorted(_LOOPS))
@pytest.mark.parametrize("fail", ["train_epoch_fn", "validate_fn"])
def test_loop_callback_fault_restores_best_and_writes_statistics(tmp_path: Path, mode: str, fail: str) -> None:
    algo_cfg, aat = _LOOPS[mode]
    cfg = register_default_init_args({"input_info": {"sample_size": SIZE}, "compression": algo_cfg,
                                      "accuracy_aware_training": aat, "log_dir": str(tmp_path)}, _loader())
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    # early exit stops once the criterion is met: never meet it; adaptive keeps the best epoch that meets it
    loop = create_accuracy_aware_training_loop(cfg, ctrl, uncompressed_model_accuracy=100.0 if mode == "early_exit"
                                               else 93.0)
    calls = Callbacks(fail, at_epoch=3)
    with pytest.raises(Exception) as info:  # noqa: PT011
        loop.run(model, train_epoch_fn=calls.train_epoch_fn, validate_fn=calls.validate_fn, log_dir=tmp_path)
    _assert_chained(info.value)
    stats = tmp_path / "accuracy_aware_statistics.json"
    assert stats.exists(), "no statistics file after the failure"
    best = json.loads(stats.read_text())["best_accuracy"]
    assert best in calls.snapshots, f"no best epoch recorded before the failure (best_accuracy {best})"
    restored = model.state_dict()
    assert all(torch.equal(restored[k], v) for k, v in calls.snapshots[best].items()), "best checkpoint not restored"

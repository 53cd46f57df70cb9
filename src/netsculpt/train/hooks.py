"""One training contract: train steps, validation and the optimizer, as a typed object (searches, LeGR and the
accuracy-aware loops).

Users already have callbacks in two shapes: the accuracy-aware loop's ``validate_fn(model, epoch)`` and the
init-args ``validate_fn(model, val_loader)`` (LeGR, NNCF's ``register_default_init_args``). ``TrainHooks``
adapts both (``from_epoch_validate``, ``from_loader_validate``) and supplies defaults for the rest: SGD steps
with cross-entropy on ``train_loader``, top-1 on ``val_loader``. Every hook is a plain callable so the whole
object pickles for process-pool and Dask workers when the user's callables and loaders do.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from netsculpt.algorithms.quantization.init import adapt_batchnorm, to_device
from netsculpt.config.checks import describe
from netsculpt.errors import ConfigError
from netsculpt.graph.outputs import main_output
from netsculpt.init_args import wrap_loader

__all__ = ["TrainHooks", "metric_value", "top1"]

TrainStepsFn = Callable[[nn.Module, torch.optim.Optimizer, int], None]
ValidateFn = Callable[[nn.Module], float]
OptimizerFn = Callable[[nn.Module], torch.optim.Optimizer]


@dataclass
class TrainHooks:
    """How a search trains, validates and optimises a candidate.

    Attributes:
        train_loader: batches for BatchNorm recalibration and the default training steps.
        val_loader: batches for the default metric (top-1).
        criterion: loss of the default training steps, ``criterion(output, target)`` (default cross-entropy).
        train_steps_fn: ``train_steps_fn(model, optimizer, steps)`` replaces the default training steps.
        validate_fn: ``validate_fn(model) -> float`` (higher is better) replaces the default top-1.
        configure_optimizer: ``configure_optimizer(model) -> optimizer`` (default SGD, lr 1e-3, momentum 0.9).
        device: where batches go (default: the device of the model's first parameter).
        max_val_batches: validate on at most this many batches (``None``: all).
    """

    train_loader: Iterable[Any] | None = None
    val_loader: Iterable[Any] | None = None
    criterion: Callable[[Any, Any], torch.Tensor] | None = None
    train_steps_fn: TrainStepsFn | None = None
    validate_fn: ValidateFn | None = None
    configure_optimizer: OptimizerFn | None = None
    device: str | None = None
    max_val_batches: int | None = None

    # ---- adapters for the callback shapes users have -------------------------------------------
    @classmethod
    def from_epoch_validate(cls, validate_fn: Callable[..., float], **kwargs: Any) -> TrainHooks:
        """From the accuracy-aware loop's ``validate_fn(model, epoch)`` (``validate(model, epoch)`` passes it on;
        a search's ``validate(model)`` passes epoch 0)."""
        return cls(validate_fn=_EpochValidate(validate_fn), **kwargs)

    @classmethod
    def from_loader_validate(
        cls, validate_fn: Callable[[nn.Module, Any], Any], val_loader: Any, **kwargs: Any
    ) -> TrainHooks:
        """From the init-args ``validate_fn(model, val_loader)`` (a tuple result counts by its first element)."""
        return cls(val_loader=val_loader, validate_fn=_LoaderValidate(validate_fn, val_loader), **kwargs)

    # ---- the contract ----------------------------------------------------------------------------
    def model_device(self, model: nn.Module) -> torch.device:
        """The device batches are moved to."""
        if self.device is not None:
            return torch.device(self.device)
        return next((p.device for p in model.parameters()), torch.device("cpu"))

    def optimizer(self, model: nn.Module) -> torch.optim.Optimizer:
        """A fresh optimizer for ``model``."""
        if self.configure_optimizer is not None:
            return self.configure_optimizer(model)
        params = [p for p in model.parameters() if p.requires_grad]
        return torch.optim.SGD(params, lr=1e-3, momentum=0.9)

    def train_steps(self, model: nn.Module, optimizer: torch.optim.Optimizer, steps: int) -> None:
        """Train ``steps`` steps (the user's ``train_steps_fn`` or SGD on ``criterion`` over ``train_loader``)."""
        if steps <= 0:
            return
        model.train()
        if self.train_steps_fn is not None:
            self.train_steps_fn(model, optimizer, steps)
            return
        if self.train_loader is None:
            raise ConfigError("TrainHooks: training steps need train_loader (or train_steps_fn)")
        loader = wrap_loader(self.train_loader)
        device = self.model_device(model)
        batches = _cycle(loader)
        for _ in range(steps):
            batch = next(batches)
            args, kwargs = to_device(loader.get_inputs(batch), device)
            target = to_device(loader.get_target(batch), device)
            out = model(*args, **kwargs)
            if self.criterion is not None:
                loss = self.criterion(out, target)  # the raw outputs, as the user's loss expects them
            else:
                loss = nn.functional.cross_entropy(_logits(out), target)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    def validate(self, model: nn.Module, epoch: int = 0) -> float:
        """The metric of ``model`` (higher is better); ``epoch`` reaches an epoch-aware ``validate_fn``."""
        if isinstance(self.validate_fn, _EpochValidate):
            return self.validate_fn(model, epoch)
        if self.validate_fn is not None:
            return metric_value(self.validate_fn(model))
        if self.val_loader is None:
            raise ConfigError("TrainHooks: validation needs val_loader (or validate_fn)")
        return top1(model, self.val_loader, self.model_device(model), self.max_val_batches)

    def generators(self) -> list[torch.Generator]:
        """The random generators the loaders shuffle with (``DataLoader(generator=...)``, a sampler's own)."""
        found: list[torch.Generator] = []
        for loader in (self.train_loader, self.val_loader):
            _collect_generators(loader, found, depth=0)
        return found

    def recalibrate_bn(self, model: nn.Module, num_samples: int) -> int:
        """Re-estimate BatchNorm statistics on ``num_samples`` training samples; returns the BN count."""
        if num_samples <= 0:
            return 0
        if self.train_loader is None:
            raise ConfigError("TrainHooks: BatchNorm recalibration needs train_loader")
        return adapt_batchnorm(model, wrap_loader(self.train_loader), num_samples, self.model_device(model))


def _collect_generators(obj: Any, found: list[torch.Generator], depth: int) -> None:
    """Generators reachable from a loader: its own, its sampler's, and those of loaders it wraps."""
    if obj is None or depth > 4:
        return
    g = getattr(obj, "generator", None)
    if isinstance(g, torch.Generator) and all(g is not x for x in found):
        found.append(g)
    for attr in ("sampler", "batch_sampler", "loader", "data_loader"):
        inner = getattr(obj, attr, None)
        if inner is not None and inner is not obj:
            _collect_generators(inner, found, depth + 1)


def metric_value(value: Any, where: str = "validate_fn") -> float:
    """A validation result as a float: a real number (Python, NumPy or a one-element tensor).

    Raises:
        ConfigError: anything else (a string, ``None``, a bool, a list...), naming ``where`` and what was given.
    """
    if not isinstance(value, (str, bytes, bool)) and value is not None:
        try:
            return float(value)
        except (TypeError, ValueError, RuntimeError):
            pass
    raise ConfigError(f"{where}: must return the metric as a number (higher is better); got {describe(value)}")


class _EpochValidate:
    def __init__(self, fn: Callable[..., float]) -> None:
        self.fn = fn

    def __call__(self, model: nn.Module, epoch: int = 0) -> float:
        return metric_value(self.fn(model, epoch=epoch))


class _LoaderValidate:
    def __init__(self, fn: Callable[[nn.Module, Any], Any], loader: Any) -> None:
        self.fn, self.loader = fn, loader

    def __call__(self, model: nn.Module) -> float:
        result = self.fn(model, self.loader)
        return metric_value(result[0] if isinstance(result, (list, tuple)) and result else result)


def _cycle(loader: Iterable[Any]) -> Iterator[Any]:
    while True:
        seen = False
        for batch in loader:
            seen = True
            yield batch
        if not seen:
            raise ConfigError("TrainHooks: train_loader yielded no batch")


def _logits(out: Any) -> torch.Tensor:
    """The logits of a model output: :func:`netsculpt.graph.outputs.main_output` (the tensor itself, a
    ``ModelOutput``'s or dict's ``logits``, else the first tensor)."""
    return main_output(out)


def top1(model: nn.Module, batches: Iterable[Any], device: torch.device, max_batches: int | None = None) -> float:
    """Top-1 accuracy (a fraction) of ``model`` in eval mode over ``(inputs, targets)`` batches."""
    loader = wrap_loader(batches)
    correct = total = 0
    was = model.training
    model.eval()
    try:
        with torch.no_grad():
            for n, batch in enumerate(loader):
                if max_batches is not None and n >= max_batches:
                    break
                args, kwargs = to_device(loader.get_inputs(batch), device)
                target = loader.get_target(batch)
                if not isinstance(target, torch.Tensor):
                    raise ConfigError("top-1 needs (inputs, targets) batches; give validate_fn for other data")
                out = model(*args, **kwargs)
                logits = _logits(out)
                correct += int((logits.argmax(dim=1) == target.to(logits.device)).sum())
                total += int(target.numel())
    finally:
        model.train(was)
    return correct / total if total else 0.0

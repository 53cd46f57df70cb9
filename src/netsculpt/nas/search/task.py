"""Gene encoding of subnet configs, and the evaluation of one subnet as a platform ``EvalTask``.

Encoding: one integer gene per elastic width group and per elastic conv (an index into its choice list, largest
first: 0 is the largest) and one per skippable block (0 kept, 1 skipped). The evaluation task plugs into the
platform's executors (``netsculpt.search.executors``: serial, process pool, Dask): ``run(config)`` activates the
subnet, recalibrates BatchNorm, validates, prices it and restores the supernet (active config, BN statistics,
train/eval mode), so results do not depend on the order candidates are evaluated in.
"""

from __future__ import annotations

import math
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from netsculpt.nas.config import SearchSpace, SubnetConfig
from netsculpt.search.cost import Cost
from netsculpt.search.evaluate import EvalResult
from netsculpt.search.executors import EvalTask
from netsculpt.train.hooks import TrainHooks, metric_value

__all__ = ["Encoding", "SubnetTask", "config_key", "subnet_cost"]

_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


def config_key(cfg: Mapping[str, Any]) -> str:
    """A canonical string of a full config (dictionary keys sorted)."""
    return repr(sorted((k, sorted(v.items()) if isinstance(v, Mapping) else list(v)) for k, v in cfg.items()))


class Encoding:
    """Integer genes of a ``SearchSpace`` (see the module docstring); ``lower`` is 0, ``upper`` choices - 1."""

    def __init__(self, space: SearchSpace) -> None:
        self.space = space
        self.genes: list[tuple[str, str]] = (
            [("width", g) for g in space.width]
            + [("kernel", c) for c in space.kernel]
            + [("depth", b) for b in space.depth]
        )
        sizes = [len(self._choices(d, n)) for d, n in self.genes]
        self.lower = np.zeros(len(self.genes), dtype=np.int64)
        self.upper = np.asarray([s - 1 for s in sizes], dtype=np.int64)

    def _choices(self, dim: str, name: str) -> list[Any]:
        if dim == "width":
            return self.space.width[name]
        if dim == "kernel":
            return self.space.kernel[name]
        return [False, True]  # skipped?

    def decode(self, x: np.ndarray) -> SubnetConfig:
        """The full config of gene vector ``x``."""
        cfg: SubnetConfig = {"width": {}, "depth": [], "kernel": {}}
        for (dim, name), v in zip(self.genes, x, strict=True):
            value = self._choices(dim, name)[int(v)]
            if dim == "depth":
                if value:
                    cfg["depth"].append(name)
            else:
                cfg[dim][name] = int(value)
        return self.space.validate(cfg)

    def encode(self, cfg: Mapping[str, Any]) -> np.ndarray:
        """Gene vector of ``cfg`` (validated first; missing entries are the maximum)."""
        full = self.space.validate(cfg)
        skipped = set(full["depth"])
        out = [
            int(name in skipped) if dim == "depth" else self._choices(dim, name).index(full[dim][name])
            for dim, name in self.genes
        ]
        return np.asarray(out, dtype=np.int64)

    @property
    def size(self) -> int:
        """Number of distinct configs."""
        return int(np.prod((self.upper + 1).astype(np.float64)))


def subnet_cost(
    supernet: Any, cfg: Mapping[str, Any], metric: str, bits: int = 8, latency_threads: int = 1
) -> tuple[Cost, dict[str, float]]:
    """The cost of subnet ``cfg`` counted on its extracted model (``netsculpt.metrics.macs.count_macs``, the
    counter the platform's cost model is built from), as a platform ``Cost``: ``bops`` and ``bit_complexity`` with
    weights and activations at ``bits``, ``size_bytes`` with parameters at ``bits``. ``metric == "latency"`` also
    exports the subnet to ONNX and measures ONNX Runtime's median latency (``extra["latency_ms"]``)."""
    from netsculpt.metrics.macs import bops, count_macs

    sub = supernet.extract(cfg)
    args, kwargs = supernet.example
    report = count_macs(sub, args, kwargs)
    cost = Cost(
        macs=report.total,
        params=report.params,
        bops=bops(report.per_module, bits, bits),
        bit_complexity=report.total * bits,
        size_bytes=math.ceil(report.params * bits / 8),
    )
    extra: dict[str, float] = {}
    if metric == "latency":
        extra["latency_ms"] = _latency_ms(sub, args, latency_threads)
    return cost, extra


def _latency_ms(model: nn.Module, args: tuple[Any, ...], threads: int) -> float:
    from netsculpt.export.onnx import export_onnx
    from netsculpt.metrics.latency import ort_latency

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subnet.onnx"
        export_onnx(model.eval(), args, path, check=False)
        res = ort_latency(path, tuple(args[0].shape), threads=threads, repeats=20, warmup=3)
    return res["median_s"] * 1e3


class SubnetTask(EvalTask):
    """Evaluates subnet configs of one supernet (``policy`` = a config dict); runs on any platform executor.

    Args:
        supernet: the ``ElasticSupernet``.
        validate: ``validate(model) -> float`` (higher is better), called in eval mode without gradients.
        bn_loader: batches for BatchNorm recalibration (``None``: no recalibration).
        bn_batches: batches per recalibration.
        cost_metric: ``macs``, ``bops`` or ``latency``.
        bits: bits of BOPs.
        seed: torch seed each evaluation runs under (same recalibration batches for every candidate).
    """

    def __init__(
        self,
        supernet: Any,
        validate: Callable[[nn.Module], Any],
        *,
        bn_loader: Iterable[Any] | None,
        bn_batches: int,
        cost_metric: str = "macs",
        bits: int = 8,
        seed: int = 0,
    ) -> None:
        super().__init__(supernet, TrainHooks(validate_fn=validate), bn_recalibration_samples=bn_batches, seed=seed)
        self.supernet = supernet
        self.validate = validate
        self.bn_loader = bn_loader
        self.bn_batches = int(bn_batches)
        self.cost_metric = cost_metric
        self.bits = int(bits)

    def settings(self) -> dict[str, Any]:
        return {"bn_batches": self.bn_batches, "cost_metric": self.cost_metric, "bits": self.bits, "seed": self.seed}

    def run(self, policy: dict[str, Any]) -> EvalResult:
        """Activate ``policy`` (a subnet config), recalibrate, validate, price, restore."""
        if self._lock is None:  # dropped by pickling (EvalTask.__getstate__)
            self._lock = threading.Lock()
        with self._lock:
            return self._run(policy)

    def _run(self, cfg: dict[str, Any]) -> EvalResult:
        net, model = self.supernet, self.supernet.model
        t0 = time.perf_counter()
        full = net.search_space.validate(cfg)
        before = net.get_active_config()
        stats = _bn_state(model)
        modes = {m: m.training for m in model.modules()}
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                net.activate_subnet_for_config(full)
                if self.bn_loader is not None and self.bn_batches > 0:
                    net.recalibrate_bn(self.bn_loader, self.bn_batches)
                model.eval()
                with torch.no_grad():
                    acc = metric_value(self.validate(model))
            cost, extra = subnet_cost(net, full, self.cost_metric, self.bits)
        finally:
            _restore_bn(model, stats)
            for m, training in modes.items():
                m.training = training
            net.activate_subnet_for_config(before)
        return EvalResult(full, acc, cost, time.perf_counter() - t0, dict(extra))


def _bn_state(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            for b in _BN_BUFFERS:
                t = getattr(m, b, None)
                if isinstance(t, torch.Tensor):
                    out[f"{name}.{b}"] = t.detach().clone()
    return out


def _restore_bn(model: nn.Module, stats: dict[str, torch.Tensor]) -> None:
    with torch.no_grad():
        for key, value in stats.items():
            name, buf = key.rsplit(".", 1)
            getattr(model.get_submodule(name), buf).copy_(value)

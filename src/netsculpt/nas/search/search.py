"""``search_subnets``: NSGA-II over a supernet's subnets, BN-recalibrated accuracy against MACs, BOPs or latency.

As NNCF BootstrapNAS (ALGORITHMS.md §2.9): ``num_evals // population`` generations of ``population`` candidates,
the first drawn uniformly, the rest bred by tournament, SBX and polynomial mutation (``nsga2``); the chosen
subnet is the cheapest with accuracy above ``ref_acc - acc_delta`` (``ref_acc`` -1: the full model's). Candidates
are evaluated on a platform executor (``netsculpt.search.executors``); a config seen before is not evaluated
again.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import numpy as np
import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.nas.search.measure import Measured, cost_value
from netsculpt.nas.search.nsga2 import run_nsga2
from netsculpt.nas.search.params import SearchParams
from netsculpt.nas.search.predictor_search import predictor_search
from netsculpt.nas.search.result import SearchPoint, SearchResult, choose_best
from netsculpt.nas.search.task import Encoding, SubnetTask
from netsculpt.search.executors import SearchExecutor, SerialExecutor
from netsculpt.train.hooks import top1
from netsculpt.train.progress import progress_bar

__all__ = ["search_subnets"]

logger = logging.getLogger(__name__)


def search_subnets(
    supernet: Any,
    validate_fn: Callable[..., Any] | None,
    *,
    params: SearchParams | Mapping[str, Any] | None = None,
    val_loader: Iterable[Any] | None = None,
    bn_loader: Iterable[Any] | None = None,
    executor: SearchExecutor | None = None,
    progress: bool = False,
) -> SearchResult:
    """Search the subnets of ``supernet`` for the accuracy / cost Pareto front and NNCF's chosen subnet.

    Args:
        supernet: an ``ElasticSupernet`` (trained). Its active config is left as it was.
        validate_fn: ``validate_fn(model) -> float`` (higher is better; NNCF's form ``validate_fn(model,
            val_loader)`` when it takes two arguments). ``None``: top-1 on ``val_loader``. Accuracy and
            ``acc_delta`` share units (NNCF: percent, so ``acc_delta`` 1 is one point).
        params: ``SearchParams`` or NNCF's ``bootstrapNAS.search`` section (``SearchParams.from_dict``).
        val_loader: validation batches (for NNCF's two-argument ``validate_fn`` or the default top-1).
        bn_loader: batches to recalibrate BatchNorm with before each evaluation
            (``batchnorm_adaptation.num_bn_adaptation_samples`` samples); ``None``: no recalibration (warned).
        executor: where candidates are evaluated (default ``SerialExecutor``); started here, not shut down.
            A process pool needs a picklable supernet and ``validate_fn`` (module-level functions).
        progress: show a progress bar over generations.

    Returns:
        A ``SearchResult`` (``best_config``, ``pareto``, ``points``, ``to_dict()``, ``plot(path)``).

    Raises:
        ConfigError: bad parameters (located, e.g. ``search.population: must be >= 2; got 1``), no way to
            validate, or a supernet with nothing elastic.
    """
    p = params if isinstance(params, SearchParams) else SearchParams.from_dict(params)
    p.check()
    validate = _validator(validate_fn, val_loader)
    enc = Encoding(supernet.search_space)
    if not len(enc.genes):
        raise ConfigError("search_subnets.supernet: has no elastic dimension to search")
    bn_batches = _bn_batches(bn_loader, p.num_bn_adaptation_samples)
    task = SubnetTask(
        supernet,
        validate,
        bn_loader=bn_loader,
        bn_batches=bn_batches,
        cost_metric=p.cost_metric,
        bits=p.bits,
        seed=p.seed,
    )
    ex = executor if executor is not None else SerialExecutor()
    ex.start(task)
    measured = Measured(ex)
    full = measured.evaluate([supernet.get_maximum_config()], -1)[0]
    ref_acc = full.metric if p.ref_acc == -1 else p.ref_acc
    if ref_acc - p.acc_delta < 0 < p.acc_delta and abs(full.metric) <= 1.0:
        logger.warning(
            "search: accuracy %.4f looks like a fraction while acc_delta is %g; NNCF's acc_delta is "
            "in the units validate_fn returns (percent in NNCF)",
            full.metric,
            p.acc_delta,
        )
    bar = progress_bar(
        range(1, p.generations), total=max(p.generations - 1, 0), desc="subnet search", enabled=progress, unit="gen"
    )
    try:
        if p.algorithm.upper() == "PREDICTOR":
            info = predictor_search(supernet, p, enc, measured, bar)
        else:
            _nsga2(p, enc, measured, bar)
            info = {}
    finally:
        bar.close()
    cache, order, generation_of = measured.cache, measured.order, measured.generation_of
    results = [cache[k] for k in order]
    points = [SearchPoint(r.policy, r.metric, cost_value(r, p.cost_metric)) for r in results]
    best = choose_best(points, ref_acc, p.acc_delta)
    if best is None:
        logger.warning(
            "search: no subnet has accuracy > ref_acc - acc_delta = %g; returning the maximum subnet",
            ref_acc - p.acc_delta,
        )
        best = 0  # the full model, evaluated first
    logger.info(
        "search: %d subnets evaluated; chosen subnet: accuracy %.4g, %s %.4g",
        len(points),
        points[best].accuracy,
        p.cost_metric,
        points[best].cost,
    )
    return SearchResult(
        points=points,
        best_config=points[best].config,
        best_accuracy=points[best].accuracy,
        best_cost=points[best].cost,
        ref_acc=float(ref_acc),
        acc_delta=p.acc_delta,
        cost_metric=p.cost_metric,
        details=[{**r.cost.as_dict(), **r.extra, "seconds": r.seconds} for r in results],
        generations=[generation_of[k] for k in order],
        params=p.as_dict(),
        info=info,
    )


def _nsga2(p: SearchParams, enc: Encoding, measured: Measured, bar: Any) -> None:
    """NSGA-II on measured accuracy and cost; generation numbers come from ``bar``."""
    state = {"generation": 0}

    def objectives(X: np.ndarray) -> np.ndarray:
        results = measured.evaluate([enc.decode(x) for x in X], state["generation"])
        return np.asarray([[cost_value(r, p.cost_metric), -r.metric] for r in results], dtype=np.float64)

    def generation_numbers() -> Iterator[int]:
        for gen in bar:
            state["generation"] = gen
            yield gen

    def report(gen: int, X: np.ndarray, F: np.ndarray) -> None:
        bar.set_postfix(evaluated=len(measured.order), best_acc=f"{-F[:, 1].min():.4g}")

    run_nsga2(
        objectives,
        enc.lower,
        enc.upper,
        rng=np.random.default_rng(p.seed),
        population=p.population,
        generations=generation_numbers(),
        crossover_prob=p.crossover_prob,
        crossover_eta=p.crossover_eta,
        mutation_prob=p.mutation_prob,
        mutation_eta=p.mutation_eta,
        on_generation=report,
    )


class _TwoArg:
    """NNCF's ``validate_fn(model, val_loader)`` as ``validate(model)`` (picklable)."""

    def __init__(self, fn: Callable[..., Any], loader: Any) -> None:
        self.fn, self.loader = fn, loader

    def __call__(self, model: nn.Module) -> Any:
        out = self.fn(model, self.loader)
        return out[0] if isinstance(out, (tuple, list)) and out else out


class _Top1:
    def __init__(self, loader: Iterable[Any]) -> None:
        self.loader = loader

    def __call__(self, model: nn.Module) -> float:
        device = next((t.device for t in model.parameters()), torch.device("cpu"))
        return 100.0 * top1(model, self.loader, device)


def _validator(fn: Callable[..., Any] | None, loader: Iterable[Any] | None) -> Callable[[nn.Module], Any]:
    if fn is None:
        if loader is None:
            raise ConfigError("search_subnets: give validate_fn(model) -> float or a val_loader (top-1, in percent)")
        return _Top1(loader)
    if not callable(fn):
        raise ConfigError(f"search_subnets.validate_fn: must be callable; got {type(fn).__name__}")
    try:
        required = [
            q
            for q in inspect.signature(fn).parameters.values()
            if q.default is q.empty and q.kind in (q.POSITIONAL_ONLY, q.POSITIONAL_OR_KEYWORD)
        ]
    except (TypeError, ValueError):  # builtins without a signature: call with the model only
        required = []
    if len(required) >= 2:
        if loader is None:
            raise ConfigError("search_subnets.val_loader: validate_fn takes (model, val_loader); give val_loader")
        return _TwoArg(fn, loader)
    return fn


def _bn_batches(loader: Iterable[Any] | None, samples: int) -> int:
    """Batches holding ``samples`` samples (from the size of the loader's first batch)."""
    if samples <= 0:
        return 0
    if loader is None:
        logger.warning("search: no bn_loader given; subnets are evaluated without BatchNorm recalibration")
        return 0
    first = next(iter(loader), None)
    if first is None:
        raise ConfigError("search_subnets.bn_loader: yielded no batch")
    x = first[0] if isinstance(first, (tuple, list)) else first
    size = int(x.shape[0]) if isinstance(x, torch.Tensor) and x.dim() else 1
    return max(1, math.ceil(samples / max(size, 1)))

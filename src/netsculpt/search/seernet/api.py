"""SeerNet's steps (label, fit, select, search, export) and the whole loop (``run``).

``run``: label ``initial`` random policies; then ``rounds`` times fit the predictor, select the ``per_round``
policies it is least sure about (or random ones with ``active=False``) and label them; fit a last time; search
one policy per budget (seconds each, no new labels). Labels go to the ``ResultLog``, so a second ``run`` with
other budgets, or after a crash, measures nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.search.evaluate import EvalResult
from netsculpt.search.executors import EvalTask, SearchExecutor
from netsculpt.search.log import ResultLog
from netsculpt.search.policy import Policy
from netsculpt.search.seernet.barrier import BarrierConfig, Metric, SearchResult, barrier_search
from netsculpt.search.seernet.encoding import PolicyEncoding
from netsculpt.search.seernet.labels import dataset, label
from netsculpt.search.seernet.predictor import MLPPredictor, PredictorConfig, fit_predictor, save_predictor
from netsculpt.search.seernet.select import SelectConfig, select_uncertain
from netsculpt.search.space import SearchSpace

__all__ = [
    "SeerNetConfig",
    "SeerNetRun",
    "export",
    "fit",
    "make_space",
    "reference_cost",
    "run",
    "search",
    "select",
]

logger = logging.getLogger(__name__)


@dataclass(frozen=True, kw_only=True)
class SeerNetConfig:
    """Settings of a SeerNet run.

    Args:
        initial: random policies labelled first.
        rounds: active-selection rounds after them.
        per_round: policies labelled per round (k).
        active: pick each round's policies by predictor uncertainty (False: at random, the ablation).
        spread: draw the random policies spread over the whole cost range (``PolicyEncoding.random``) instead
            of uniform levels, so every budget has labels near it.
        seed: seed of the random policies and of the selection.
        predictor: predictor training settings.
        select: evolutionary selection settings.
        search: barrier search settings.
    """

    initial: int = 20
    rounds: int = 1
    per_round: int = 20
    active: bool = True
    spread: bool = True
    seed: int = 0
    predictor: PredictorConfig = field(default_factory=PredictorConfig)
    select: SelectConfig = field(default_factory=SelectConfig)
    search: BarrierConfig = field(default_factory=BarrierConfig)

    def __post_init__(self) -> None:
        if self.initial < 2 or self.rounds < 0 or self.per_round < 1:
            raise ConfigError(
                f"seernet: need initial >= 2, rounds >= 0, per_round >= 1; got {self.initial}, {self.rounds}, "
                f"{self.per_round}"
            )

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], where: str = "seernet") -> SeerNetConfig:
        """Read ``{"initial": 20, ..., "predictor": {...}, "select": {...}, "search": {...}}`` (unknown keys are
        located errors)."""
        nested = {"predictor": PredictorConfig, "select": SelectConfig, "search": BarrierConfig}
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key in nested:
                if not isinstance(value, Mapping):
                    raise ConfigError(f"{where}.{key}: expected an object; got {value!r}")
                kwargs[key] = _build(nested[key], value, f"{where}.{key}")
            else:
                kwargs[key] = value
        config: SeerNetConfig = _build(cls, kwargs, where)
        return config


def _build(cls: Any, data: Mapping[str, Any], where: str) -> Any:
    names = {f.name: f for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            raise ConfigError(f"{where}: unknown key '{key}'; known keys: {', '.join(sorted(names))}")
    for key, value in data.items():
        default = names[key].default
        int_for_float = isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool)
        wrong = isinstance(default, (bool, int, float)) and type(value) is not type(default) and not int_for_float
        if wrong:
            raise ConfigError(f"{where}.{key}: expected {type(default).__name__}; got {value!r}")
    return cls(**data)


@dataclass
class SeerNetRun:
    """What ``run`` produced: the encoding, the final predictor, the labels it was fitted on, one search per
    budget."""

    encoding: PolicyEncoding
    predictor: MLPPredictor
    labels: list[EvalResult]
    searches: list[SearchResult]


def make_space(
    ctrl: Any,
    *,
    keep_ratios: Sequence[float] | None = (0.25, 0.5, 0.75, 1.0),
    weight_bits: Sequence[int] = (2, 4, 6, 8),
    activation_bits: Sequence[int] = (4, 6, 8),
    keep_first_layer: bool = True,
    layer_inputs_only: bool = True,
) -> SearchSpace:
    """The SeerNet search space of a controller: keep ratios per channel group and bits per quantizer.

    Args:
        ctrl: the controller (filter pruning and/or quantization).
        keep_ratios: allowed keep ratios per group (pruning ratios ``1 − keep``).
        weight_bits: allowed weight bits.
        activation_bits: allowed activation bits.
        keep_first_layer: the first weighted layer's weight and input quantizers keep their bits (8).
        layer_inputs_only: activation quantizers that feed no conv/linear/matmul (e.g. before a residual add)
            keep their bits: they do not change BOPs and only add dimensions the predictor must learn.
    """
    space = SearchSpace.from_controller(ctrl, weight_bits=weight_bits, activation_bits=activation_bits,
                                        keep_ratios=keep_ratios)
    if space.tables is None:
        return space
    t = space.tables
    nq = len(space.quantizers)
    fixed: set[str] = set()
    weights = [i for i, q in enumerate(space.quantizers) if q.group == "weights"]
    if keep_first_layer and weights:
        fixed.add(space.quantizers[weights[0]].name)
        for mi in np.flatnonzero(t.module_weight == weights[0]):
            fixed |= {space.quantizers[j].name for j in t.module_acts[mi] if j < nq}
    if layer_inputs_only:
        feeding = {int(j) for mi in np.flatnonzero(t.module_weight < nq) for j in t.module_acts[mi] if j < nq}
        fixed |= {q.name for j, q in enumerate(space.quantizers) if q.group == "activations" and j not in feeding}
    if not fixed:
        return space
    logger.info("seernet: %d quantizers keep their bits: %s", len(fixed), sorted(fixed))
    return SearchSpace.from_controller(ctrl, weight_bits=weight_bits, activation_bits=activation_bits,
                                       keep_ratios=keep_ratios, fixed=sorted(fixed))


def reference_cost(space: SearchSpace, metric: str = "bops", bits: int = 8) -> float:
    """``metric`` of the unpruned model with every quantizer at ``bits`` (8/8-bit BOPs by default): budgets given
    as a fraction are fractions of this."""
    if space.tables is None:
        raise ConfigError("seernet: the SearchSpace has no cost tables; make it with with_costs=True")
    pruned = np.zeros((1, len(space.groups)), dtype=np.int64)
    all_bits = np.full((1, len(space.quantizers)), float(bits))
    return float(space.tables.evaluate_batch(pruned, all_bits)[metric][0])


def fit(encoding: PolicyEncoding, results: Iterable[EvalResult], config: PredictorConfig | None = None) -> MLPPredictor:
    """Train the predictor on labelled results (those outside the encoding's space are skipped)."""
    idx, x, y = dataset(encoding, results)
    return fit_predictor(x, y, config, encoding, idx)


def select(
    predictor: nn.Module,
    encoding: PolicyEncoding,
    k: int,
    *,
    labelled: Iterable[EvalResult] = (),
    seed: int = 0,
    config: SelectConfig | None = None,
) -> list[Policy]:
    """The ``k`` policies (not yet labelled) whose neighbourhood the predictor is least sure about."""
    idx, _, _ = dataset(encoding, labelled)
    rows = select_uncertain(predictor, encoding, k, rng=np.random.default_rng(seed), exclude=encoding.keys(idx),
                            config=config)
    return [encoding.policy(r) for r in rows]


def search(
    predictor: nn.Module,
    encoding: PolicyEncoding,
    budget: float,
    *,
    metric: Metric = "bops",
    config: BarrierConfig | None = None,
) -> SearchResult:
    """The best predicted policy within ``budget`` (absolute, in ``metric`` units; see ``reference_cost``)."""
    return barrier_search(predictor, encoding, budget, metric=metric, config=config)


def random_policies(encoding: PolicyEncoding, n: int, rng: np.random.Generator,
                    exclude: Iterable[bytes] = (), *, spread: bool = False) -> list[Policy]:
    """``n`` distinct random policies of the space, none in ``exclude`` (``spread``: see ``PolicyEncoding.random``)."""
    seen = set(exclude)
    out: list[Policy] = []
    for _ in range(100):
        for row in encoding.random(max(n, 8), rng, spread=spread):
            key = encoding.keys(row[None])[0]
            if key not in seen and len(out) < n:
                seen.add(key)
                out.append(encoding.policy(row))
        if len(out) >= n:
            break
    return out


def run(
    task: EvalTask,
    space: SearchSpace,
    budgets: Sequence[float],
    *,
    metric: Metric = "bops",
    config: SeerNetConfig | None = None,
    executor: SearchExecutor | None = None,
    log: ResultLog | None = None,
    predictor_path: str | Path | None = None,
    progress: bool = True,
) -> SeerNetRun:
    """Label, fit, select (``rounds`` times), fit, and search one policy per budget.

    Args:
        task: controller, training hooks and evaluation settings (``EvalTask``).
        space: the search space (``make_space``).
        budgets: absolute budgets in ``metric`` units (e.g. ``0.4 * reference_cost(space)``).
        metric: ``"bops"``, ``"macs"`` or ``"bit_complexity"``.
        config: run settings.
        executor: where labels are measured.
        log: the result log (labels of earlier runs with the same model and settings are reused).
        predictor_path: where to save the final predictor (default: next to the log, ``<log>.predictor.pt``).
        progress: progress bars.
    """
    cfg = config or SeerNetConfig()
    store = log if log is not None else ResultLog()
    encoding = PolicyEncoding(space)
    rng = np.random.default_rng(cfg.seed)
    labelled = label(task, random_policies(encoding, cfg.initial, rng, spread=cfg.spread), executor=executor,
                     log=store, progress=progress)
    predictor = fit(encoding, labelled, cfg.predictor)
    for r in range(cfg.rounds):
        done = encoding.keys(dataset(encoding, labelled)[0])
        if cfg.active:
            new = select(predictor, encoding, cfg.per_round, labelled=labelled, seed=cfg.seed + 1 + r,
                         config=cfg.select)
        else:
            new = random_policies(encoding, cfg.per_round, rng, exclude=done, spread=cfg.spread)
        logger.info("seernet: round %d/%d, labelling %d %s policies", r + 1, cfg.rounds, len(new),
                    "uncertain" if cfg.active else "random")
        labelled = labelled + label(task, new, executor=executor, log=store, progress=progress)
        predictor = fit(encoding, labelled, cfg.predictor)
    path = predictor_path
    if path is None and store.path is not None:
        path = store.path.with_suffix(".predictor.pt")
    if path is not None:
        save_predictor(predictor, path, cfg.predictor, {"labels": len(labelled), "model": task.fingerprint})
    searches = [search(predictor, encoding, float(b), metric=metric, config=cfg.search) for b in budgets]
    return SeerNetRun(encoding, predictor, labelled, searches)


def export(ctrl: Any, policy: Policy, base_config: Mapping[str, Any], space: SearchSpace,
           out_dir: str | Path, *, onnx: bool = True) -> dict[str, Path]:
    """Apply ``policy`` to the live model and write ``policy.json``, ``config.json`` (filter pruning per group +
    quantization ``bitwidth_per_scope``: fine-tune it in your own loop) and ``model.onnx`` (physically pruned,
    mixed-precision QDQ, checked in ONNX Runtime).

    Returns:
        ``{"policy": path, "config": path, "onnx": path}`` (no ``"onnx"`` with ``onnx=False``).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    full = ctrl.apply_policy(policy)
    paths = {"policy": out / "policy.json", "config": out / "config.json"}
    paths["policy"].write_text(json.dumps(full.to_dict(), indent=2))
    paths["config"].write_text(json.dumps(full.to_config(dict(base_config), space), indent=2))
    if onnx:
        paths["onnx"] = Path(ctrl.export_model(out / "model.onnx"))
    return paths

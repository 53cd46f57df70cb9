"""Policy search for one budget: gradient ascent on the predictor under a log-barrier, rounding, repair.

Maximise ``Φ(x) = log f(x) + μ · log(1 − C(x) / B)`` over the continuous policy vector, where ``C`` is the
differentiable cost (``DifferentiableCost``: BOPs, MACs or bit complexity, a polynomial in ``x``) and ``B`` the
budget. Start from a uniform policy scaled (by bisection) until ``C < 0.9 B``; take Adam-style steps (momentum
0.9, second moment 0.999, bias-corrected, step 0.01) clipped to each coordinate's range; when a step leaves the
feasible set, halve it back toward the previous point (strict feasibility, so the barrier stays finite); halve
``μ`` every 50 steps (``μ0 = 0.1``). Keep the feasible iterate with the best prediction, snap every coordinate to
its nearest allowed level, then

* **repair**: while the exact cost exceeds ``B``, move the coordinate whose one-level cheaper move (fewer bits
  or more pruning) loses the least predicted metric per unit of cost saved (terminates: each move lowers the
  cost and the cheapest policy is feasible, checked first);
* **fill** (optional, on by default): while a one-level dearer move both fits the budget and raises the
  prediction, take the one with the best gain per unit cost (rounding down leaves budget unused).

The result is always within budget by the exact cost model (``netsculpt.search.cost``).
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.search.cost import Cost, DifferentiableCost
from netsculpt.search.policy import Policy
from netsculpt.search.seernet._threads import one_thread
from netsculpt.search.seernet.encoding import PolicyEncoding

__all__ = ["BarrierConfig", "SearchResult", "barrier_search", "repair"]

logger = logging.getLogger(__name__)
Metric = Literal["bops", "macs", "bit_complexity"]
_METRICS = ("bops", "macs", "bit_complexity")


@dataclass(frozen=True, kw_only=True)
class BarrierConfig:
    """Settings of the barrier search (the [D] defaults of ALGORITHMS.md §5.5)."""

    steps: int = 300
    step_size: float = 0.01
    momentum: float = 0.9
    beta2: float = 0.999
    mu0: float = 0.1
    mu_every: int = 50
    start_fraction: float = 0.9
    fill: bool = True

    def __post_init__(self) -> None:
        if self.steps < 0 or self.mu_every < 1 or not self.step_size > 0:
            raise ConfigError(
                f"seernet.search: need steps >= 0, mu_every >= 1, step_size > 0; got {self.steps}, "
                f"{self.mu_every}, {self.step_size}"
            )
        if not 0.0 < self.start_fraction < 1.0:
            raise ConfigError(f"seernet.search.start_fraction: must be in (0, 1); got {self.start_fraction}")


@dataclass(frozen=True)
class SearchResult:
    """The policy found for one budget.

    Attributes:
        policy: the complete policy (allowed levels only; within budget).
        predicted: the predictor's value for it.
        cost: its exact cost.
        budget: the budget, in ``metric`` units.
        metric: the constrained cost (``bops``, ``macs`` or ``bit_complexity``).
        seconds: wall time of the search.
        trace: per gradient step ``{"step", "predicted", "cost", "mu"}`` (continuous iterate).
        repair_moves: one-level moves the repair step made; fill_moves: those the fill step made.
    """

    policy: Policy
    predicted: float
    cost: Cost
    budget: float
    metric: str
    seconds: float
    trace: list[dict[str, float]] = field(default_factory=list)
    repair_moves: int = 0
    fill_moves: int = 0

    def as_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return {"policy": self.policy.to_dict(), "predicted": self.predicted, "cost": self.cost.as_dict(),
                "budget": self.budget, "metric": self.metric, "seconds": self.seconds,
                "repair_moves": self.repair_moves, "fill_moves": self.fill_moves}


def barrier_search(
    predictor: nn.Module,
    encoding: PolicyEncoding,
    budget: float,
    *,
    metric: Metric = "bops",
    config: BarrierConfig | None = None,
) -> SearchResult:
    """The best predicted policy whose exact ``metric`` is at most ``budget``.

    Runs on one torch thread (restored afterwards): every op is tiny, and thread hand-offs would dominate.

    Raises:
        ConfigError: an unknown metric, or a budget below the cheapest policy of the space.
    """
    with one_thread():
        return _barrier_search(predictor, encoding, budget, metric, config or BarrierConfig())


def _barrier_search(
    predictor: nn.Module, encoding: PolicyEncoding, budget: float, metric: str, cfg: BarrierConfig
) -> SearchResult:
    start = time.perf_counter()
    if metric not in _METRICS:
        raise ConfigError(f"seernet.search: metric must be one of {list(_METRICS)}; got {metric!r}")
    cheapest = _cheapest(encoding)
    floor = float(encoding.exact_cost(cheapest[None], metric)[0])
    if not budget >= floor:
        raise ConfigError(
            f"seernet.search: budget {budget:.4g} {metric} is below the cheapest policy of the space ({floor:.4g}: "
            "most pruning, fewest bits everywhere). Raise the budget or allow fewer bits / more pruning"
        )
    diff = DifferentiableCost(encoding.space)
    lo, hi = torch.as_tensor(encoding.lo), torch.as_tensor(encoding.hi)

    def rel_cost(x: torch.Tensor) -> torch.Tensor:
        return diff(*encoding.continuous(x))[metric] / budget

    def log_f(x: torch.Tensor) -> torch.Tensor:
        return torch.log(predictor(x.float()[None])[0].double().clamp_min(1e-4))

    x = _feasible_start(encoding, rel_cost, cfg.start_fraction)
    trace: list[dict[str, float]] = []
    best_x, best_f = x.clone(), -math.inf
    if float(rel_cost(x)) < 1.0:
        m, v, mu = torch.zeros_like(x), torch.zeros_like(x), cfg.mu0
        for t in range(1, cfg.steps + 1):
            xg = x.clone().requires_grad_(True)
            c = rel_cost(xg)
            lf = log_f(xg)
            phi = lf + mu * torch.log1p(-c)
            (g,) = torch.autograd.grad(phi, xg)
            f_now = math.exp(float(lf.detach()))
            if f_now > best_f:
                best_x, best_f = x.clone(), f_now
            trace.append({"step": float(t), "predicted": f_now, "cost": float(c.detach()) * budget, "mu": mu})
            m = cfg.momentum * m + (1 - cfg.momentum) * g
            v = cfg.beta2 * v + (1 - cfg.beta2) * g * g
            step = cfg.step_size * (m / (1 - cfg.momentum**t)) / ((v / (1 - cfg.beta2**t)).sqrt() + 1e-8)
            x = _feasible_step(x, torch.minimum(torch.maximum(x + step, lo), hi), rel_cost)
            if t % cfg.mu_every == 0:
                mu *= 0.5
    idx = encoding.snap(best_x.numpy())[0]
    idx, n_repair = repair(predictor, encoding, idx, budget, metric=metric)
    n_fill = 0
    if cfg.fill:
        idx, n_fill = _fill(predictor, encoding, idx, budget, metric)
    policy = encoding.policy(idx)
    pruned, bits = encoding.arrays(idx[None])
    assert encoding.space.tables is not None
    exact = encoding.space.tables.evaluate(pruned[0], bits[0])
    predicted = float(_predict(predictor, encoding, idx[None])[0])
    seconds = time.perf_counter() - start
    logger.info("seernet: budget %.4g %s -> %s %d, predicted %.4f, %d repair + %d fill moves, %.2f s", budget, metric,
                metric, getattr(exact, metric), predicted, n_repair, n_fill, seconds)
    return SearchResult(policy, predicted, exact, float(budget), metric, seconds, trace, n_repair, n_fill)


def repair(
    predictor: nn.Module, encoding: PolicyEncoding, idx: np.ndarray, budget: float, *, metric: str = "bops"
) -> tuple[np.ndarray, int]:
    """Make level indices ``idx`` fit ``budget``: repeatedly take the one-level cheaper move with the smallest
    predicted loss per unit of cost saved. Returns the feasible indices and the number of moves.

    Raises:
        ConfigError: the budget is below the cheapest policy (nothing can repair it).
    """
    idx = np.asarray(idx, dtype=np.int64).copy()
    moves = 0
    current = float(encoding.exact_cost(idx[None], metric)[0])
    while current > budget:
        cand = _moves(encoding, idx, encoding.cheaper)
        if not len(cand):
            raise ConfigError(
                f"seernet.repair: no cheaper policy left and {metric} {current:.4g} > budget {budget:.4g}"
            )
        costs = encoding.exact_cost(cand, metric)
        saved = current - costs
        loss = float(_predict(predictor, encoding, idx[None])[0]) - _predict(predictor, encoding, cand)
        ok = saved > 0
        if not ok.any():
            raise ConfigError(f"seernet.repair: no move lowers {metric} below {current:.4g}")
        score = np.where(ok, loss / np.where(ok, saved, 1.0), np.inf)
        best = int(np.argmin(score))
        idx, current = cand[best], float(costs[best])
        moves += 1
    return idx, moves


def _fill(predictor: nn.Module, encoding: PolicyEncoding, idx: np.ndarray, budget: float,
          metric: str) -> tuple[np.ndarray, int]:
    """Greedy use of the budget left after rounding: dearer one-level moves that fit and raise the prediction."""
    moves = 0
    current = float(encoding.exact_cost(idx[None], metric)[0])
    f_now = float(_predict(predictor, encoding, idx[None])[0])
    for _ in range(int(encoding.n_levels.sum())):
        cand = _moves(encoding, idx, -encoding.cheaper)
        if not len(cand):
            break
        costs = encoding.exact_cost(cand, metric)
        gain = _predict(predictor, encoding, cand) - f_now
        ok = (costs <= budget) & (gain > 0)
        if not ok.any():
            break
        extra = np.maximum(costs - current, 1e-9 * max(budget, 1.0))
        best = int(np.argmax(np.where(ok, gain / extra, -np.inf)))
        idx, current, f_now = cand[best], float(costs[best]), f_now + float(gain[best])
        moves += 1
    return idx, moves


def _moves(encoding: PolicyEncoding, idx: np.ndarray, direction: np.ndarray) -> np.ndarray:
    """Every policy one level away from ``idx`` along ``direction`` (per coordinate ±1), within the tables."""
    target = idx + direction
    possible = np.flatnonzero((target >= 0) & (target < encoding.n_levels))
    cand = np.repeat(idx[None], len(possible), axis=0)
    cand[np.arange(len(possible)), possible] = target[possible]
    return cand


def _predict(predictor: nn.Module, encoding: PolicyEncoding, idx: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        out = predictor(torch.as_tensor(encoding.values(idx), dtype=torch.float32))
    return np.asarray(out.double().numpy())


def _cheapest(encoding: PolicyEncoding) -> np.ndarray:
    return np.where(encoding.cheaper > 0, encoding.n_levels - 1, 0).astype(np.int64)


def _feasible_start(encoding: PolicyEncoding, rel_cost: Any, fraction: float) -> torch.Tensor:
    """The uniform policy ``(1 − s)·best + s·cheapest`` with the smallest ``s`` whose cost is below
    ``fraction · B`` (bisection); the cheapest corner when none is."""
    best = torch.as_tensor(np.where(encoding.cheaper > 0, encoding.lo, encoding.hi))
    cheap = torch.as_tensor(np.where(encoding.cheaper > 0, encoding.hi, encoding.lo))
    with torch.no_grad():
        if float(rel_cost(best)) < fraction:
            return best.double()
        if float(rel_cost(cheap)) >= fraction:
            return cheap.double()
        a, b = 0.0, 1.0
        for _ in range(40):
            s = 0.5 * (a + b)
            a, b = (a, s) if float(rel_cost((1 - s) * best + s * cheap)) < fraction else (s, b)
        return ((1 - b) * best + b * cheap).double()


def _feasible_step(x: torch.Tensor, proposal: torch.Tensor, rel_cost: Any) -> torch.Tensor:
    """``proposal`` if strictly within budget, else halved back toward ``x`` until it is (or ``x``)."""
    with torch.no_grad():
        for _ in range(30):
            if float(rel_cost(proposal)) < 1.0:
                return proposal
            proposal = 0.5 * (proposal + x)
    return x

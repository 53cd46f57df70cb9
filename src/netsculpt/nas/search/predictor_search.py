"""The ``PREDICTOR`` search mode: evolution over an accuracy predictor (OFA's pipeline, ALGORITHMS.md §2.6, §3.5).

1. Measure ``predictor_samples`` random subnets (BN-recalibrated accuracy, on the executor), plus the full model.
2. Fit ``AccuracyPredictor`` (one-hot MLP, OFA's 3 x 400) on those (genes, accuracy) pairs.
3. Evolve with NSGA-II on (exact cost, *predicted* accuracy): ``num_evals`` cheap predictions instead of
   measurements. OFA runs a single-objective genetic search under one constraint; one NSGA-II run gives the
   predicted front for every budget at once and reuses NNCF's operators and defaults.
4. Measure up to ``verify`` (0: ``population``) subnets spread along the predicted front; the result's points are
   only measured subnets, so NNCF's choice rule applies to real accuracies.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from netsculpt.nas.search.measure import Measured, cost_value
from netsculpt.nas.search.nsga2 import non_dominated_sort, random_population, run_nsga2
from netsculpt.nas.search.params import SearchParams
from netsculpt.nas.search.predictor import AccuracyPredictor
from netsculpt.nas.search.task import Encoding, config_key, subnet_cost

__all__ = ["predictor_search"]

logger = logging.getLogger(__name__)


def predictor_search(supernet: Any, p: SearchParams, enc: Encoding, measured: Measured, bar: Any) -> dict[str, Any]:
    """Run the mode (the full model is already measured); returns the predictor's statistics for
    ``SearchResult.info``. Measured samples are generation 0, verified front subnets generation 1."""
    rng = np.random.default_rng(p.seed)
    X = random_population(rng, enc.lower, enc.upper, p.predictor_samples)
    samples = measured.evaluate([enc.decode(x) for x in X], 0)
    full_key = measured.order[0]
    train_X = np.vstack([enc.encode(measured.cache[full_key].policy)[None, :], X])
    train_y = np.asarray([measured.cache[full_key].metric] + [r.metric for r in samples])
    predictor = AccuracyPredictor(enc.upper, p.predictor_hidden, p.seed)
    rmse = predictor.fit(train_X, train_y, p.predictor_epochs)
    logger.info("search: accuracy predictor fitted on %d subnets, training RMSE %.4g", len(train_y), rmse)
    costs = {k: cost_value(r, p.cost_metric) for k, r in measured.cache.items()}

    def cost_of(x: np.ndarray) -> float:
        cfg = enc.decode(x)
        key = config_key(cfg)
        if key not in costs:
            cost, extra = subnet_cost(supernet, cfg, p.cost_metric, p.bits)
            costs[key] = (
                float(extra["latency_ms"]) if p.cost_metric == "latency" else float(getattr(cost, p.cost_metric))
            )
        return costs[key]

    def objectives(Xq: np.ndarray) -> np.ndarray:
        return np.column_stack([[cost_of(x) for x in Xq], -predictor.predict(Xq)])

    def report(gen: int, Xp: np.ndarray, F: np.ndarray) -> None:
        bar.set_postfix(predicted_best=f"{-F[:, 1].min():.4g}", priced=len(costs))

    Xf, Ff = run_nsga2(
        objectives,
        enc.lower,
        enc.upper,
        rng=rng,
        population=p.population,
        generations=iter(bar),
        crossover_prob=p.crossover_prob,
        crossover_eta=p.crossover_eta,
        mutation_prob=p.mutation_prob,
        mutation_eta=p.mutation_eta,
        on_generation=report,
    )
    front = non_dominated_sort(Ff)[0]
    front = front[np.argsort(Ff[front, 0], kind="stable")]
    k = min(p.verify or p.population, len(front))
    picks = front[np.unique(np.linspace(0, len(front) - 1, k).round().astype(np.int64))] if k else front[:0]
    verified = measured.evaluate([enc.decode(x) for x in Xf[picks]], 1)
    predicted = -Ff[picks, 1]
    errors = np.asarray([r.metric for r in verified]) - predicted
    return {
        "predictor_samples": len(train_y),
        "predictor_train_rmse": rmse,
        "verified": len(verified),
        "verify_rmse": float(np.sqrt(np.mean(errors**2))) if len(errors) else None,
        "predicted_front": [
            {"config": r.policy, "predicted": float(a), "measured": r.metric} for r, a in zip(verified, predicted)
        ],
    }

"""Measured evaluations of subnet configs on a platform executor, each config once, and their cost value."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

from netsculpt.nas.search.task import config_key
from netsculpt.search.evaluate import EvalResult
from netsculpt.search.executors import SearchExecutor

__all__ = ["Measured", "cost_value"]


class Measured:
    """Real evaluations on the executor, each config once, in submission order."""

    def __init__(self, ex: SearchExecutor) -> None:
        self.ex = ex
        self.cache: dict[str, EvalResult] = {}
        self.order: list[str] = []
        self.generation_of: dict[str, int] = {}

    def evaluate(self, configs: list[dict[str, Any]], generation: int) -> list[EvalResult]:
        keys = [config_key(c) for c in configs]
        pending: dict[cf.Future[EvalResult], str] = {}
        for key, cfg in zip(keys, configs, strict=True):
            if key not in self.cache and key not in pending.values():
                pending[self.ex.submit(cfg)] = key
        for future, key in pending.items():  # submission order: results are logged deterministically
            self.cache[key] = future.result()
            self.order.append(key)
            self.generation_of[key] = generation
        return [self.cache[k] for k in keys]


def cost_value(r: EvalResult, metric: str) -> float:
    if metric == "latency":
        return float(r.extra["latency_ms"])
    return float(getattr(r.cost, metric))

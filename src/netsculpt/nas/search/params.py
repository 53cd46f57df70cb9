"""Parameters of the subnet search (NNCF BootstrapNAS ``bootstrapNAS.search`` keys and code defaults).

``SearchParams.from_dict(section)`` reads NNCF's keys (ALGORITHMS.md §2.9): ``algorithm``, ``num_evals`` (3000,
rounded down to a multiple of ``population``), ``population`` (40), ``crossover_prob`` (0.9), ``crossover_eta``
(10), ``mutation_prob`` (0.02), ``mutation_eta`` (3), ``acc_delta`` (1), ``ref_acc`` (-1: the full model's
accuracy), ``seed`` (0) and ``batchnorm_adaptation.num_bn_adaptation_samples`` (2000), plus netsculpt's
``cost_metric`` (``macs`` | ``bops`` | ``latency``), ``bits`` (weight and activation bits of BOPs) and the
``PREDICTOR`` mode's ``predictor_samples`` (100 measured random subnets), ``predictor_hidden`` (400, OFA),
``predictor_epochs`` (500) and ``verify`` (predicted-front subnets measured; 0: ``population``). NNCF's code
raises ``KeyError`` when ``algorithm`` is missing; here it defaults to ``NSGA2`` as NNCF's docs say. Every bad
value raises a :class:`~netsculpt.errors.ConfigError` whose message starts with the key's path
(``search.population: ...``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

from netsculpt.errors import ConfigError, NotSupportedYetError

__all__ = ["ALGORITHMS", "COST_METRICS", "SearchParams"]

ALGORITHMS = ("NSGA2", "PREDICTOR")
COST_METRICS = ("macs", "bops", "latency")
_LATER = ("RNSGA2",)
_KEYS = {
    "algorithm",
    "num_evals",
    "population",
    "crossover_prob",
    "crossover_eta",
    "mutation_prob",
    "mutation_eta",
    "acc_delta",
    "ref_acc",
    "seed",
    "batchnorm_adaptation",
    "cost_metric",
    "bits",
    "predictor_samples",
    "predictor_hidden",
    "predictor_epochs",
    "verify",
    # RNSGA2 keys: read by NNCF, accepted and unused here (the algorithm itself is refused)
    "aspiration_points",
    "epsilon",
    "weights",
    "extreme_points_as_ref_points",
}


@dataclass(frozen=True)
class SearchParams:
    """How the search runs (NNCF defaults). ``ref_acc`` -1 means "the full model's accuracy"."""

    algorithm: str = "NSGA2"
    num_evals: int = 3000
    population: int = 40
    crossover_prob: float = 0.9
    crossover_eta: float = 10.0
    mutation_prob: float = 0.02
    mutation_eta: float = 3.0
    acc_delta: float = 1.0
    ref_acc: float = -1.0
    seed: int = 0
    num_bn_adaptation_samples: int = 2000
    cost_metric: str = "macs"
    bits: int = 8
    predictor_samples: int = 100
    predictor_hidden: int = 400
    predictor_epochs: int = 500
    verify: int = 0

    @property
    def generations(self) -> int:
        """Number of generations: ``num_evals // population`` (NNCF rounds ``num_evals`` down the same way)."""
        return self.num_evals // self.population

    def check(self, where: str = "search") -> None:
        """Raises ``ConfigError`` located at ``where.<key>``."""
        if self.algorithm.upper() in _LATER:
            raise NotSupportedYetError(f"{where}.algorithm: {self.algorithm!r} is not supported yet; use NSGA2")
        if self.algorithm.upper() not in ALGORITHMS:
            raise ConfigError(f"{where}.algorithm: must be one of {', '.join(ALGORITHMS)}; got {self.algorithm!r}")
        if self.population < 2:
            raise ConfigError(f"{where}.population: must be >= 2; got {self.population}")
        if self.num_evals < self.population:
            raise ConfigError(f"{where}.num_evals: must be >= population ({self.population}); got {self.num_evals}")
        for key in ("crossover_prob", "mutation_prob"):
            v = getattr(self, key)
            if not 0.0 <= v <= 1.0:
                raise ConfigError(f"{where}.{key}: must be in [0, 1]; got {v}")
        for key in ("crossover_eta", "mutation_eta"):
            v = getattr(self, key)
            if not (math.isfinite(v) and v >= 0):
                raise ConfigError(f"{where}.{key}: must be a finite number >= 0; got {v}")
        if not (math.isfinite(self.acc_delta) and self.acc_delta >= 0):
            raise ConfigError(f"{where}.acc_delta: must be a finite number >= 0; got {self.acc_delta}")
        if not math.isfinite(self.ref_acc):
            raise ConfigError(f"{where}.ref_acc: must be a finite number (-1: the full model's); got {self.ref_acc}")
        if self.num_bn_adaptation_samples < 0:
            raise ConfigError(
                f"{where}.batchnorm_adaptation.num_bn_adaptation_samples: must be >= 0; "
                f"got {self.num_bn_adaptation_samples}"
            )
        if self.cost_metric not in COST_METRICS:
            raise ConfigError(
                f"{where}.cost_metric: must be one of {', '.join(COST_METRICS)}; got {self.cost_metric!r}"
            )
        for key in ("predictor_samples", "predictor_hidden", "predictor_epochs"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1; got {getattr(self, key)}")
        if self.verify < 0:
            raise ConfigError(f"{where}.verify: must be >= 0 (0: population); got {self.verify}")
        if not 1 <= self.bits <= 32:
            raise ConfigError(f"{where}.bits: must be in [1, 32]; got {self.bits}")

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``from_dict`` reads it back)."""
        d = asdict(self)
        d["batchnorm_adaptation"] = {"num_bn_adaptation_samples": d.pop("num_bn_adaptation_samples")}
        return d

    @classmethod
    def from_dict(cls, section: Mapping[str, Any] | None, where: str = "search") -> SearchParams:
        """Read NNCF's ``bootstrapNAS.search`` section (unknown keys are errors); the result is checked."""
        d = dict(section or {})
        if not isinstance(section, Mapping) and section is not None:
            raise ConfigError(f"{where}: must be an object; got {section!r}")
        for key in d:
            if key not in _KEYS:
                raise ConfigError(f"{where}.{key}: unknown key; known: {', '.join(sorted(_KEYS))}")
        bn = d.get("batchnorm_adaptation", {})
        if not isinstance(bn, Mapping):
            raise ConfigError(f"{where}.batchnorm_adaptation: must be an object; got {bn!r}")
        algorithm = d.get("algorithm", "NSGA2")
        if not isinstance(algorithm, str):
            raise ConfigError(f"{where}.algorithm: must be a string; got {algorithm!r}")
        algorithm = algorithm.upper()
        metric = d.get("cost_metric", "macs")
        if not isinstance(metric, str):
            raise ConfigError(f"{where}.cost_metric: must be a string; got {metric!r}")
        p = cls(
            algorithm=algorithm,
            num_evals=_int(d, "num_evals", 3000, where),
            population=_int(d, "population", 40, where),
            crossover_prob=_float(d, "crossover_prob", 0.9, where),
            crossover_eta=_float(d, "crossover_eta", 10.0, where),
            mutation_prob=_float(d, "mutation_prob", 0.02, where),
            mutation_eta=_float(d, "mutation_eta", 3.0, where),
            acc_delta=_float(d, "acc_delta", 1.0, where),
            ref_acc=_float(d, "ref_acc", -1.0, where),
            seed=_int(d, "seed", 0, where),
            num_bn_adaptation_samples=_int(bn, "num_bn_adaptation_samples", 2000, f"{where}.batchnorm_adaptation"),
            cost_metric=metric,
            bits=_int(d, "bits", 8, where),
            predictor_samples=_int(d, "predictor_samples", 100, where),
            predictor_hidden=_int(d, "predictor_hidden", 400, where),
            predictor_epochs=_int(d, "predictor_epochs", 500, where),
            verify=_int(d, "verify", 0, where),
        )
        p.check(where)
        return p


def _int(d: Mapping[str, Any], key: str, default: int, where: str) -> int:
    v = d.get(key, default)
    if isinstance(v, float) and v.is_integer():
        v = int(v)  # NNCF's annotations say float for counts
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}.{key}: must be an integer; got {v!r}")
    return v


def _float(d: Mapping[str, Any], key: str, default: float, where: str) -> float:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}.{key}: must be a number; got {v!r}")
    return float(v)

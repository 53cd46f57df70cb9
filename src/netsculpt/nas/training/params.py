"""Parameters of the supernet training schedules (OFA progressive shrinking, BigNAS, DεpS).

``ScheduleParams.from_dict`` reads a plain section; every bad value raises a
:class:`~netsculpt.errors.ConfigError` whose message starts with the key's path (``nas_training.warmup_fraction:
...``). OFA stages use NNCF BootstrapNAS's ``list_stage_descriptions`` keys and code defaults (ALGORITHMS.md §2.9).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from netsculpt.errors import ConfigError, NotSupportedYetError
from netsculpt.nas.params import DIMS

__all__ = ["DEFAULT_STAGES", "SCHEDULES", "ScheduleParams", "StageParams"]

SCHEDULES = ("deps", "bignas", "ofa")
AGGREGATIONS = ("sum",)
_LATER_AGGREGATIONS = ("avg", "avg_sqrt")  # DεpS's other options, not implemented yet


@dataclass(frozen=True)
class StageParams:
    """One progressive-shrinking stage (NNCF ``list_stage_descriptions[i]``, code defaults).

    ``width_indicator`` k: widths drawn from each group's k largest choices (-1: all). ``depth_indicator`` k: only
    the last k blocks of each run of blocks (blocks sharing a parent module) may be skipped, and only together with
    every block after them (NNCF's progressive rule). ``subnets_per_step`` is a netsculpt extension (OFA's table
    trains 1, 2 or 4 per step; NNCF one); a new subnet is drawn every ``sample_rate`` steps. ``init_lr`` None: the
    schedule's ``lr``; the LR follows one cosine from ``init_lr`` to 0 over ``epochs_lr`` (default ``epochs``).
    """

    train_dims: tuple[str, ...] = ("kernel",)
    epochs: int = 1
    depth_indicator: int = 1
    width_indicator: int = 1
    reorg_weights: bool = False
    bn_adapt: bool = False
    sample_rate: int = 1
    init_lr: float | None = None
    epochs_lr: int | None = None
    subnets_per_step: int = 1

    def check(self, where: str) -> None:
        """Raises ``ConfigError`` located at ``where.<key>``."""
        if not self.train_dims:
            raise ConfigError(f"{where}.train_dims: must name at least one of {', '.join(DIMS)}; got []")
        for i, d in enumerate(self.train_dims):
            if d not in DIMS:
                raise ConfigError(f"{where}.train_dims[{i}]: must be one of {', '.join(DIMS)}; got {d!r}")
        for key in ("epochs", "sample_rate", "subnets_per_step"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1; got {getattr(self, key)}")
        for key in ("depth_indicator", "width_indicator"):
            v = getattr(self, key)
            if v == 0 or v < -1:
                raise ConfigError(f"{where}.{key}: must be -1 (all) or >= 1; got {v}")
        if self.init_lr is not None and self.init_lr <= 0:
            raise ConfigError(f"{where}.init_lr: must be > 0; got {self.init_lr}")
        if self.epochs_lr is not None and self.epochs_lr < self.epochs:
            raise ConfigError(f"{where}.epochs_lr: must be >= epochs ({self.epochs}); got {self.epochs_lr}")

    @classmethod
    def from_dict(cls, d: Any, where: str) -> StageParams:
        """A stage from NNCF's keys (plus ``subnets_per_step``)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be an object; got {d!r}")
        _known(d, {f for f in cls.__dataclass_fields__}, where)
        dims = d.get("train_dims", ["kernel"])
        if isinstance(dims, str) or not isinstance(dims, Sequence):
            raise ConfigError(f"{where}.train_dims: must be a list of dimension names; got {dims!r}")
        s = cls(
            train_dims=tuple(dims),
            epochs=_int(d, "epochs", 1, where),
            depth_indicator=_int(d, "depth_indicator", 1, where),
            width_indicator=_int(d, "width_indicator", 1, where),
            reorg_weights=_bool(d, "reorg_weights", False, where),
            bn_adapt=_bool(d, "bn_adapt", False, where),
            sample_rate=_int(d, "sample_rate", 1, where),
            init_lr=_opt_float(d, "init_lr", where),
            epochs_lr=_int(d, "epochs_lr", None, where),
            subnets_per_step=_int(d, "subnets_per_step", 1, where),
        )
        s.check(where)
        return s


# NNCF's default list when none is given: K; K+D; K+D (depth_indicator 2); K+D+W; K+D+W (width_indicator 2, reorg,
# BN adaptation), one epoch each.
DEFAULT_STAGES = (
    StageParams(train_dims=("kernel",)),
    StageParams(train_dims=("kernel", "depth")),
    StageParams(train_dims=("kernel", "depth"), depth_indicator=2),
    StageParams(train_dims=("kernel", "depth", "width")),
    StageParams(train_dims=("kernel", "depth", "width"), width_indicator=2, reorg_weights=True, bn_adapt=True),
)


@dataclass(frozen=True)
class ScheduleParams:
    """How to train one supernet.

    Common: ``epochs`` (ignored by ``ofa``: the sum of its stages' epochs), ``steps_per_epoch`` (N_b), base ``lr``,
    ``min_lr`` (floor of the one-cosine LR of ``deps`` and ``bignas``; 2.5e-3 as DεpS's released LR tables),
    ``seed`` (subnets of step g come from ``(seed, g)``, the same in every process), in-place KD
    (``kd_temperature`` T, ``kd_weight``), ``label_smoothing`` of the full model's (and OFA subnets') CE.

    ``bignas``: sandwich of largest, smallest and ``num_random`` random subnets from step 0.
    ``deps``: full model alone until epoch ``round(warmup_fraction * epochs)``, then the sandwich with subnet
    multipliers ramping over ``ramp_epochs`` (s; default ``max(1, round(0.02 * epochs))``) to ``multiplier`` (m).
    ``ofa``: the ``stages`` (NNCF's default list when not given).
    """

    schedule: str = "deps"
    epochs: int = 1
    steps_per_epoch: int = 1
    lr: float = 0.1
    min_lr: float = 2.5e-3
    seed: int = 0
    num_random: int = 2
    warmup_fraction: float = 0.5
    ramp_epochs: int | None = None
    multiplier: float = 1.0
    aggregation: str = "sum"
    kd_temperature: float = 1.0
    kd_weight: float = 1.0
    label_smoothing: float = 0.0
    stages: tuple[StageParams, ...] = field(default=DEFAULT_STAGES)

    @property
    def ramp(self) -> int:
        """s: the ε ramp's length in epochs."""
        return self.ramp_epochs if self.ramp_epochs is not None else max(1, round(0.02 * self.epochs))

    @property
    def switch_epoch(self) -> int:
        """First epoch in which DεpS runs subnets (``t_w - s``)."""
        return round(self.warmup_fraction * self.epochs)

    @property
    def teacher_warmup(self) -> int:
        """t_w: the epoch from which subnets get the full multiplier."""
        return self.switch_epoch + self.ramp

    @property
    def total_epochs(self) -> int:
        """Epochs of the whole schedule."""
        return sum(s.epochs for s in self.stages) if self.schedule == "ofa" else self.epochs

    def check(self, where: str = "nas_training") -> None:
        """Raises ``ConfigError`` located at ``where.<key>``."""
        if self.schedule not in SCHEDULES:
            raise ConfigError(f"{where}.schedule: must be one of {', '.join(SCHEDULES)}; got {self.schedule!r}")
        for key in ("epochs", "steps_per_epoch"):
            if getattr(self, key) < 1:
                raise ConfigError(f"{where}.{key}: must be >= 1; got {getattr(self, key)}")
        if not self.lr > 0:
            raise ConfigError(f"{where}.lr: must be > 0; got {self.lr}")
        if not 0 <= self.min_lr <= self.lr:
            raise ConfigError(f"{where}.min_lr: must be in [0, lr ({self.lr})]; got {self.min_lr}")
        if self.num_random < 0:
            raise ConfigError(f"{where}.num_random: must be >= 0; got {self.num_random}")
        if not 0 <= self.warmup_fraction <= 1:
            raise ConfigError(f"{where}.warmup_fraction: must be in [0, 1]; got {self.warmup_fraction}")
        if self.ramp_epochs is not None and self.ramp_epochs < 1:
            raise ConfigError(f"{where}.ramp_epochs: must be >= 1; got {self.ramp_epochs}")
        if not self.multiplier > 0:
            raise ConfigError(f"{where}.multiplier: must be > 0; got {self.multiplier}")
        if self.aggregation in _LATER_AGGREGATIONS:
            raise NotSupportedYetError(f"{where}.aggregation: {self.aggregation!r} is not supported yet; use 'sum'")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(f"{where}.aggregation: must be 'sum'; got {self.aggregation!r}")
        if not self.kd_temperature > 0:
            raise ConfigError(f"{where}.kd_temperature: must be > 0; got {self.kd_temperature}")
        if self.kd_weight < 0:
            raise ConfigError(f"{where}.kd_weight: must be >= 0; got {self.kd_weight}")
        if not 0 <= self.label_smoothing < 1:
            raise ConfigError(f"{where}.label_smoothing: must be in [0, 1); got {self.label_smoothing}")
        if self.schedule == "ofa":
            if not self.stages:
                raise ConfigError(f"{where}.stages: must hold at least one stage; got []")
            for i, s in enumerate(self.stages):
                s.check(f"{where}.stages[{i}]")

    @classmethod
    def from_dict(cls, d: Any, where: str = "nas_training") -> ScheduleParams:
        """Parse a plain section; ``stages`` may also be called ``list_stage_descriptions`` (NNCF)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{where}: must be an object; got {d!r}")
        keys = set(cls.__dataclass_fields__) | {"list_stage_descriptions"}
        _known(d, keys, where)
        kwargs: dict[str, Any] = {}
        if "schedule" in d:
            if not isinstance(d["schedule"], str):
                raise ConfigError(f"{where}.schedule: must be one of {', '.join(SCHEDULES)}; got {d['schedule']!r}")
            kwargs["schedule"] = d["schedule"]
        if "aggregation" in d:
            kwargs["aggregation"] = str(d["aggregation"])
        for key in ("epochs", "steps_per_epoch", "seed", "num_random", "ramp_epochs"):
            if key in d and (d[key] is not None or key == "ramp_epochs"):
                kwargs[key] = _int(d, key, None, where)
            elif key in d:
                raise ConfigError(f"{where}.{key}: must be an integer; got None")
        for key in ("lr", "min_lr", "warmup_fraction", "multiplier", "kd_temperature", "kd_weight", "label_smoothing"):
            if key in d:
                v = _opt_float(d, key, where)
                if v is None:
                    raise ConfigError(f"{where}.{key}: must be a number; got None")
                kwargs[key] = v
        for key in ("stages", "list_stage_descriptions"):
            if key in d:
                v = d[key]
                if not isinstance(v, list):
                    raise ConfigError(f"{where}.{key}: must be a list of stages; got {v!r}")
                kwargs["stages"] = tuple(StageParams.from_dict(s, f"{where}.{key}[{i}]") for i, s in enumerate(v))
        p = cls(**kwargs)
        p.check(where)
        return p


def _known(d: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(d) - keys)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key; expected one of {', '.join(sorted(keys))}")


def _int(d: Mapping[str, Any], key: str, default: int | None, where: str) -> Any:
    v = d.get(key, default)
    if v is None and default is None:
        return None
    if isinstance(v, bool) or not isinstance(v, int):
        raise ConfigError(f"{where}.{key}: must be an integer; got {v!r}")
    return v


def _opt_float(d: Mapping[str, Any], key: str, where: str) -> float | None:
    v = d.get(key)
    if v is None:
        return None
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where}.{key}: must be a number; got {v!r}")
    return float(v)


def _bool(d: Mapping[str, Any], key: str, default: bool, where: str) -> bool:
    v = d.get(key, default)
    if not isinstance(v, bool):
        raise ConfigError(f"{where}.{key}: must be true or false; got {v!r}")
    return v

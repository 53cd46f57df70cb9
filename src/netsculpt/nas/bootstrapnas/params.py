"""The NNCF ``"bootstrapNAS"`` config section: ``training`` and ``search``, NNCF 2.x keys and code defaults
(ALGORITHMS.md §2.9). Every bad value raises a :class:`~netsculpt.errors.ConfigError` whose message starts with the
key's path (``bootstrapNAS.training.elasticity.width.min_width: ...``).

Where NNCF's docs and code disagree the code is followed: ``filter_importance`` L1; ``width_multipliers`` win over
``width_step`` when both are given (the code never rejects the pair; netsculpt drops ``width_step`` with a warning);
``min_out_channels`` (in NNCF's own example config, read by nothing) is accepted and ignored with a warning.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from netsculpt.config.checks import fail
from netsculpt.config.distillation import KnowledgeDistillationConfig
from netsculpt.config.fields import parse
from netsculpt.errors import NotSupportedYetError
from netsculpt.nas.params import DIMS, ElasticityParams
from netsculpt.nas.training.params import DEFAULT_STAGES, SCHEDULES, ScheduleParams, StageParams

__all__ = ["DEFAULT_STAGE_LR", "BootstrapNASParams", "TrainingParams", "parse_bootstrapnas"]

logger = logging.getLogger(__name__)

DEFAULT_STAGE_LR = 3.5e-6  # NNCF's stage LR when neither a stage init_lr nor lr_schedule.params.base_lr is given
_TRAINING_KEYS = {
    "algorithm",
    "progressivity_of_elasticity",
    "batchnorm_adaptation",
    "schedule",
    "elasticity",
    "lr_schedule",
    "train_steps",
    "compression",
}
_LR_PARAMS = {"base_lr", "num_epochs", "warmup_epochs", "warmup_lr"}


@dataclass(frozen=True)
class TrainingParams:
    """``bootstrapNAS.training``, parsed.

    ``schedule``: the netsculpt schedule (``ofa`` for NNCF's progressive_shrinking; ``deps``/``bignas`` as a netsculpt
    extension); its ``steps_per_epoch`` is set by ``run`` from the loader. ``kd``: the knowledge-distillation section
    (None: NNCF's zero compression loss).
    """

    algorithm: str = "progressive_shrinking"
    progressivity: tuple[str, ...] = ("kernel", "depth", "width")
    num_bn_adaptation_samples: int = 2000
    schedule: ScheduleParams = field(
        default_factory=lambda: ScheduleParams(schedule="ofa", lr=DEFAULT_STAGE_LR, min_lr=0.0)
    )
    elasticity: ElasticityParams = field(default_factory=ElasticityParams)
    base_lr: float | None = None
    train_steps: int | None = None
    kd: KnowledgeDistillationConfig | None = None


@dataclass(frozen=True)
class BootstrapNASParams:
    """The whole section: ``training`` parsed, ``search`` kept as given (read by ``netsculpt.nas.search``)."""

    training: TrainingParams = field(default_factory=TrainingParams)
    search: Mapping[str, Any] = field(default_factory=dict)


def parse_bootstrapnas(section: Any, where: str = "bootstrapNAS") -> BootstrapNASParams:
    """Validate and parse a ``bootstrapNAS`` section (missing keys take NNCF's code defaults)."""
    d = _obj(section, where)
    _known(d, {"training", "search"}, where)
    training = parse_training(d.get("training", {}), f"{where}.training")
    search = _obj(d.get("search", {}), f"{where}.search")
    _check_search(search, f"{where}.search")
    return BootstrapNASParams(training, dict(search))


def parse_training(section: Any, where: str = "bootstrapNAS.training") -> TrainingParams:
    """Parse ``bootstrapNAS.training``."""
    d = _obj(section, where)
    _known(d, _TRAINING_KEYS, where)
    algorithm = d.get("algorithm", "progressive_shrinking")
    if algorithm != "progressive_shrinking":
        raise fail(
            f"{where}.algorithm",
            "must be 'progressive_shrinking' (NNCF's only training algorithm)",
            got=algorithm,
            hint="Choose netsculpt's deps or bignas with schedule: 'deps' / 'bignas'",
        )
    elasticity = ElasticityParams.from_dict(
        _nncf_width_compat(_obj(d.get("elasticity", {}), f"{where}.elasticity"), f"{where}.elasticity"),
        f"{where}.elasticity",
    )
    progressivity = _progressivity(d.get("progressivity_of_elasticity"), elasticity, where)
    bn = _obj(d.get("batchnorm_adaptation", {}), f"{where}.batchnorm_adaptation")
    _known(bn, {"num_bn_adaptation_samples"}, f"{where}.batchnorm_adaptation")
    num_bn = _int(bn, "num_bn_adaptation_samples", 2000, f"{where}.batchnorm_adaptation", minimum=0)
    train_steps = d.get("train_steps")
    if train_steps is not None:
        train_steps = _int(d, "train_steps", 1, where, minimum=1)
    base_lr = _lr_schedule(d.get("lr_schedule", {}), f"{where}.lr_schedule")
    kd = _kd(d.get("compression", []), f"{where}.compression")
    schedule = _schedule(d.get("schedule", {}), elasticity, base_lr, kd, f"{where}.schedule")
    return TrainingParams(algorithm, progressivity, num_bn, schedule, elasticity, base_lr, train_steps, kd)


# ---- sections ------------------------------------------------------------------------------------------------
def _nncf_width_compat(d: Mapping[str, Any], where: str) -> dict[str, Any]:
    """NNCF-code behaviour the netsculpt parser is stricter about (see the module docstring)."""
    out = dict(d)
    width = out.get("width")
    if not isinstance(width, Mapping):
        return out
    w = dict(width)
    if "min_out_channels" in w:
        logger.warning("%s.width.min_out_channels: ignored (NNCF's code never reads it); use min_width", where)
        del w["min_out_channels"]
    if "add_dynamic_inputs" in w:
        raise NotSupportedYetError(f"{where}.width.add_dynamic_inputs: not supported yet")
    if w.get("width_multipliers") is not None and "width_step" in w:
        logger.warning(
            "%s.width: width_multipliers and width_step both given; width_step is ignored (as NNCF's code does)", where
        )
        del w["width_step"]
    out["width"] = w
    return out


def _progressivity(v: Any, elasticity: ElasticityParams, where: str) -> tuple[str, ...]:
    key = f"{where}.progressivity_of_elasticity"
    if v is None:
        return ("kernel", "depth", "width")
    if not isinstance(v, list) or not v:
        raise fail(key, "must be a non-empty list of elasticity dimensions", got=v)
    for i, dim in enumerate(v):
        if dim not in DIMS:
            raise fail(f"{key}[{i}]", f"must be one of {', '.join(DIMS)}", got=dim)
        if dim in v[:i]:
            raise fail(f"{key}[{i}]", "repeats a dimension", got=dim)
    for dim in elasticity.dims:  # NNCF's builder: every available dimension needs a place in the order
        if dim not in v:
            raise fail(key, f"misses '{dim}', which elasticity.available_elasticity_dims enables", got=v)
    return tuple(v)


def _lr_schedule(v: Any, where: str) -> float | None:
    d = _obj(v, where)
    _known(d, {"params"}, where)
    p = _obj(d.get("params", {}), f"{where}.params")
    _known(p, _LR_PARAMS, f"{where}.params")
    for key in _LR_PARAMS & set(p):
        _num(p, key, f"{where}.params")
    if float(p.get("warmup_epochs", 0)) > 0:
        raise NotSupportedYetError(
            f"{where}.params.warmup_epochs: an LR warm-up is not supported yet; got {p['warmup_epochs']}"
        )
    if "base_lr" not in p:
        return None
    base_lr = _num(p, "base_lr", f"{where}.params")
    if base_lr <= 0:
        raise fail(f"{where}.params.base_lr", "must be > 0", got=base_lr)
    return base_lr


def _kd(v: Any, where: str) -> KnowledgeDistillationConfig | None:
    items = v if isinstance(v, list) else [v]
    listed = isinstance(v, list)

    def path(i: int) -> str:
        return f"{where}[{i}]" if listed else where

    out: KnowledgeDistillationConfig | None = None
    for i, item in enumerate(items):
        obj = _obj(item, path(i))
        if obj.get("algorithm") != KnowledgeDistillationConfig.NAME:
            raise fail(
                f"{path(i)}.algorithm",
                "only 'knowledge_distillation' may stand here (as in NNCF); compress "
                "the extracted subnet with other algorithms",
                got=obj.get("algorithm"),
            )
        if out is not None:
            raise fail(f"{path(i)}.algorithm", "'knowledge_distillation' appears twice")
        out = parse(KnowledgeDistillationConfig, dict(obj), path(i))
    return out


def _schedule(
    v: Any, elasticity: ElasticityParams, base_lr: float | None, kd: KnowledgeDistillationConfig | None, where: str
) -> ScheduleParams:
    if isinstance(v, str):  # netsculpt extension: "schedule": "deps"
        if v not in SCHEDULES:
            raise fail(where, f"must be an object or one of {', '.join(SCHEDULES)}", got=v)
        v = {"schedule": v}
    d = dict(_obj(v, where))
    name = d.setdefault("schedule", "ofa")
    for key in ("kd_weight", "kd_temperature"):
        if kd is not None and key in d:
            raise fail(f"{where}.{key}", "given twice: the knowledge_distillation section sets it (scale, temperature)")
    if base_lr is not None:
        if "lr" in d:
            raise fail(f"{where}.lr", "given twice: lr_schedule.params.base_lr sets it")
        d["lr"] = base_lr
    if name == "ofa":
        d.setdefault("lr", DEFAULT_STAGE_LR)
        d.setdefault("min_lr", 0.0)
        if "stages" not in d and "list_stage_descriptions" not in d:
            d["stages"] = [
                _stage_dict(s, elasticity.dims) for s in DEFAULT_STAGES if set(s.train_dims) & set(elasticity.dims)
            ]
        if kd is None:
            d.setdefault("kd_weight", 0.0)  # NNCF without a KD section: zero compression loss
    if kd is not None:
        d["kd_weight"] = kd.scale
        d["kd_temperature"] = kd.temperature
    params = ScheduleParams.from_dict(d, where)
    if params.schedule == "ofa":
        key = "list_stage_descriptions" if "list_stage_descriptions" in d else "stages"
        for i, stage in enumerate(params.stages):
            for j, dim in enumerate(stage.train_dims):
                if dim not in elasticity.dims:
                    raise fail(
                        f"{where}.{key}[{i}].train_dims[{j}]",
                        "names a dimension that elasticity.available_elasticity_dims does not enable",
                        got=dim,
                    )
            if base_lr is not None and stage.init_lr is not None:
                raise fail(
                    f"{where}.{key}[{i}].init_lr",
                    "a stage LR cannot be combined with the global lr_schedule.params.base_lr (as in NNCF)",
                    got=stage.init_lr,
                )
    return params


def _stage_dict(stage: StageParams, dims: tuple[str, ...]) -> dict[str, Any]:
    """One of NNCF's default stages, limited to the enabled dimensions (NNCF would reject the mismatch)."""
    d = {f.name: getattr(stage, f.name) for f in dataclasses.fields(stage) if getattr(stage, f.name) is not None}
    d["train_dims"] = [x for x in stage.train_dims if x in dims]
    return d


def _check_search(d: Mapping[str, Any], where: str) -> None:
    """Validate ``search`` now when the search package is there (``SearchAlgorithm`` reads it again)."""
    try:
        from netsculpt.nas.search import SearchParams  # noqa: PLC0415 (heavy: pulls in the executors)
    except ImportError:  # pragma: no cover - the search package is optional at this layer
        return
    SearchParams.from_dict(dict(d), where=where)


# ---- helpers -------------------------------------------------------------------------------------------------
def _obj(v: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(v, Mapping):
        raise fail(where, "must be an object", got=v)
    return v


def _known(d: Mapping[str, Any], keys: set[str], where: str) -> None:
    unknown = sorted(str(k) for k in set(d) - keys)
    if unknown:
        raise fail(f"{where}.{unknown[0]}", "unknown key", hint=f"Known keys: {', '.join(sorted(keys))}")


def _int(d: Mapping[str, Any], key: str, default: int, where: str, *, minimum: int) -> int:
    v = d.get(key, default)
    if isinstance(v, bool) or not isinstance(v, int):
        raise fail(f"{where}.{key}", "must be an integer", got=v)
    if v < minimum:
        raise fail(f"{where}.{key}", f"must be >= {minimum}", got=v)
    return v


def _num(d: Mapping[str, Any], key: str, where: str) -> float:
    v = d.get(key)
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise fail(f"{where}.{key}", "must be a number", got=v)
    return float(v)

"""The NNCF-dialect JSON config: ``input_info``, ``compression`` (one object or a list), ``accuracy_aware_training``.

``NNCFConfig`` is a ``dict`` (as NNCF's was) validated when it is created; ``config.algorithms`` holds the
parsed per-algorithm dataclasses in stacking order.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar

from netsculpt.config.checks import did_you_mean, fail, join_path
from netsculpt.config.fields import FieldCheckError, config_field, parse, schema_of, to_plain
from netsculpt.config.registry import PLANNED_ALGORITHMS, config_class, list_configs
from netsculpt.config.toplevel import ignored_top_level_keys
from netsculpt.errors import ConfigError, NotSupportedYetError

__all__ = ["AccuracyAwareTrainingConfig", "AccuracyAwareTrainingParams", "InputInfo", "NNCFConfig", "config_schema"]

T = TypeVar("T")
_DTYPES = ("float", "long", "int", "bool", "half", "double", "uint8")
_MAX_EXAMPLE_ELEMENTS = 2**31


@dataclass(frozen=True, kw_only=True)
class InputInfo:
    """One model input: its shape (batch first), dtype, filler and optional keyword argument name."""

    sample_size: tuple[int, ...] = config_field(doc="Shape of the example input, batch dimension first.")
    type: Literal["float", "long", "int", "bool", "half", "double", "uint8"] = config_field(
        "float", doc="Element type."
    )
    filler: Literal["zeros", "ones", "random"] | None = config_field(None, doc="How example inputs are filled.")
    keyword: str | None = config_field(None, doc="Pass this input as a keyword argument of forward().")

    def __post_init__(self) -> None:
        if not self.sample_size or any(d < 1 for d in self.sample_size):
            raise FieldCheckError(
                "sample_size", f"must be a non-empty list of positive sizes; got {list(self.sample_size)}"
            )
        if math.prod(self.sample_size) > _MAX_EXAMPLE_ELEMENTS:  # an example tensor, built before tracing
            raise FieldCheckError(
                "sample_size",
                f"must describe at most 2**31 elements (one example batch); got {list(self.sample_size)}",
            )


@dataclass(frozen=True, kw_only=True)
class AccuracyAwareTrainingParams:
    """``accuracy_aware_training.params`` (both modes)."""

    maximal_relative_accuracy_degradation: float | None = config_field(
        None, doc="Allowed drop in % of the uncompressed metric.", min=0.0, max=100.0
    )
    maximal_absolute_accuracy_degradation: float | None = config_field(
        None, doc="Allowed drop in metric units.", min=0.0
    )
    maximal_total_epochs: int = config_field(10000, doc="Epoch budget.", min=1)
    initial_training_phase_epochs: int | None = config_field(None, doc="Adaptive: first phase length (5).", min=0)
    patience_epochs: int | None = config_field(None, doc="Adaptive: epochs per phase (3).", min=1)
    initial_compression_rate_step: float | None = config_field(None, doc="Adaptive: first rate step (0.1).", min=0.0)
    compression_rate_step_reduction_factor: float | None = config_field(None, doc="Adaptive (0.5).", min=0.0, max=1.0)
    lr_reduction_factor: float | None = config_field(None, doc="Adaptive (0.5).", min=0.0, max=1.0)
    minimal_compression_rate_step: float | None = config_field(None, doc="Adaptive (0.025).", min=0.0)

    def __post_init__(self) -> None:
        rel = self.maximal_relative_accuracy_degradation
        abs_ = self.maximal_absolute_accuracy_degradation
        if (rel is None) == (abs_ is None):
            raise FieldCheckError(
                "maximal_relative_accuracy_degradation",
                "exactly one of maximal_relative_accuracy_degradation and maximal_absolute_accuracy_degradation "
                f"must be given; got {'both' if rel is not None else 'neither'}",
            )


@dataclass(frozen=True, kw_only=True)
class AccuracyAwareTrainingConfig:
    """``accuracy_aware_training``: NNCF's early-exit or adaptive-compression-level loop."""

    mode: Literal["early_exit", "adaptive_compression_level"] = config_field(doc="Which loop.")
    params: AccuracyAwareTrainingParams = config_field(doc="Loop parameters.")

    def __post_init__(self) -> None:
        adaptive_only = [
            "initial_training_phase_epochs",
            "patience_epochs",
            "initial_compression_rate_step",
            "compression_rate_step_reduction_factor",
            "lr_reduction_factor",
            "minimal_compression_rate_step",
        ]
        if self.mode == "early_exit":
            given = [k for k in adaptive_only if getattr(self.params, k) is not None]
            if given:
                raise FieldCheckError(
                    f"params.{given[0]}", "only valid with mode 'adaptive_compression_level'; got mode 'early_exit'"
                )


@dataclass(frozen=True, kw_only=True)
class _Root:
    input_info: InputInfo | tuple[InputInfo, ...] | None = config_field(None, doc="Model inputs.")
    target_device: Literal["ANY", "CPU", "GPU", "NPU", "TRIAL", "CPU_SPR"] = config_field(
        "ANY",
        doc="Hardware preset: which ops get quantizers and which modes/bits they may use "
        "(netsculpt.algorithms.quantization.hw_presets); a quantization config outside it is an error.",
    )
    compression: Any = config_field((), doc="One algorithm object or a list of them (stacking order).")
    accuracy_aware_training: AccuracyAwareTrainingConfig | None = config_field(None)
    log_dir: str | None = config_field(None, doc="Where logs, TensorBoard files and checkpoints go.")
    disable_shape_matching: bool = config_field(False, doc="Accepted for compatibility.")
    compression_lr_multiplier: float | None = config_field(None, not_supported="planned")

    __aliases__ = {"input_infos": "input_info"}


def _parse_compression(value: Any) -> tuple[Any, ...]:
    items = value if isinstance(value, (list, tuple)) else [value]
    single = not isinstance(value, (list, tuple))
    parsed = []
    seen: set[str] = set()
    for i, item in enumerate(items):
        path = "compression" if single else join_path("compression", i)
        if dataclasses.is_dataclass(item) and not isinstance(item, type):
            item = to_plain(item)
        if not isinstance(item, dict):
            raise fail(path, "expected an algorithm object", got=item)
        name = item.get("algorithm")
        if "algorithm" not in item:
            typo = next((k for k in item if isinstance(k, str) and did_you_mean(k, ["algorithm"]) == "algorithm"), None)
            if typo is not None:
                raise fail(join_path(path, typo), "unknown key", got=item[typo], hint="Did you mean 'algorithm'?")
            raise fail(join_path(path, "algorithm"), "required string key is missing", got=sorted(map(str, item))[:8],
                       hint='Every algorithm object names its algorithm, e.g. {"algorithm": "quantization"}')
        if not isinstance(name, str):
            raise fail(join_path(path, "algorithm"), "required string key is missing or not a string", got=name)
        cls = config_class(name)
        if cls is None:
            if name in PLANNED_ALGORITHMS:
                raise NotSupportedYetError(
                    f"{join_path(path, 'algorithm')}: '{name}' is a valid NNCF algorithm that netsculpt does not "
                    f"support yet ({PLANNED_ALGORITHMS[name]}). Supported: {', '.join(list_configs())}"
                )
            known = list_configs() + list(PLANNED_ALGORITHMS)
            hint = did_you_mean(name, known)
            raise fail(
                join_path(path, "algorithm"),
                f"unknown algorithm '{name}'",
                hint=(f"Did you mean '{hint}'? " if hint else "") + f"Known: {', '.join(list_configs())}",
            )
        if name in seen:
            raise fail(join_path(path, "algorithm"), f"'{name}' appears twice in the compression list")
        seen.add(name)
        parsed.append(parse(cls, item, path))
    return tuple(parsed)


#: Algorithms whose compression rate the ``adaptive_compression_level`` loop can drive (``ctrl.compression_rate``).
RATE_ALGORITHMS = ("filter_pruning", "magnitude_sparsity", "rb_sparsity")


def _check_adaptive_has_rate(aat: AccuracyAwareTrainingConfig | None, algorithms: tuple[Any, ...]) -> None:
    """Reject ``adaptive_compression_level`` over a stack with no compression rate before any model is touched."""
    if aat is None or aat.mode != "adaptive_compression_level":
        return
    names = [a.algorithm for a in algorithms]
    if not any(n in RATE_ALGORITHMS for n in names):
        raise fail(
            "accuracy_aware_training.mode",
            "'adaptive_compression_level' drives the compression rate, but no algorithm of the compression list "
            f"has one ({', '.join(names) or 'the list is empty'})",
            hint=f"Add one of {', '.join(RATE_ALGORITHMS)}, or use mode 'early_exit'",
        )


class NNCFConfig(dict[str, Any]):
    """NNCF 2.x compatible config: a dict validated on creation.

    Example:
        >>> cfg = NNCFConfig.from_dict({"input_info": {"sample_size": [1, 3, 32, 32]},
        ...                             "compression": {"algorithm": "quantization"}})
        >>> cfg.algorithms[0].weights.bits
        8
    """

    def __init__(self, *args: Any, strict: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._extra_structs: dict[type[Any], Any] = {}
        known = [f.name for f in dataclasses.fields(_Root)] + list(_Root.__aliases__)
        #: Top-level keys kept in the dict but not read (NNCF samples' training-script settings).
        self.ignored_keys = ignored_top_level_keys(self, known, strict=strict)
        self._root = parse(_Root, {k: v for k, v in self.items() if k not in self.ignored_keys}, "")
        self._algorithms = _parse_compression(self._root.compression)
        if "compression" in self:  # without a compression list the loop checks the controller it is given
            _check_adaptive_has_rate(self._root.accuracy_aware_training, self._algorithms)

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, strict: bool = False) -> NNCFConfig:
        """Validate a dict (JSON-like; algorithm config dataclasses are accepted inside ``compression``).

        Top-level keys netsculpt does not read are kept and ignored with a warning; ``strict=True`` rejects them.
        """
        if not isinstance(data, dict):
            raise fail("", "a config must be a JSON object", got=data)
        try:
            plain = json.loads(json.dumps(data, default=to_plain))
        except RecursionError:
            raise ConfigError("config: nested too deeply to be a config (recursion limit); got a structure "
                              "hundreds of levels deep. Check the generator of this config") from None
        except (TypeError, ValueError) as err:
            raise ConfigError(f"config: not JSON-like data ({err}). Use dicts, lists, strings, numbers, "
                              "booleans and null") from None
        return cls(plain, strict=strict)

    @classmethod
    def from_json(cls, path: str | Path, *, strict: bool = False) -> NNCFConfig:
        """Load and validate a JSON file (``strict``: see ``from_dict``)."""
        p = Path(path)
        try:
            data = json.loads(p.read_text())
        except FileNotFoundError:
            raise ConfigError(f"{p}: config file not found") from None
        except json.JSONDecodeError as err:
            raise ConfigError(f"{p}: not valid JSON: {err}") from None
        except RecursionError:
            raise ConfigError(f"{p}: nested too deeply to be a config (recursion limit)") from None
        try:
            return cls.from_dict(data, strict=strict)
        except ConfigError as err:
            raise type(err)(f"{p}: {err}") from None

    def path_of(self, algorithm: Any) -> str:
        """Config path of one parsed algorithm section: ``compression`` (a single dict) or ``compression[i]``."""
        if not isinstance(self.get("compression"), (list, tuple)):
            return "compression"
        index = next((i for i, a in enumerate(self.algorithms) if a is algorithm), None)
        if index is None:
            index = next((i for i, a in enumerate(self.algorithms) if a == algorithm), 0)
        return f"compression[{index}]"

    @property
    def algorithms(self) -> tuple[Any, ...]:
        """Parsed algorithm configs, in the order of the ``compression`` list."""
        return self._algorithms

    @property
    def input_infos(self) -> tuple[InputInfo, ...]:
        """``input_info`` as a tuple (empty when absent)."""
        info = self._root.input_info
        if info is None:
            return ()
        return info if isinstance(info, tuple) else (info,)

    @property
    def accuracy_aware_training(self) -> AccuracyAwareTrainingConfig | None:
        """Parsed ``accuracy_aware_training`` section."""
        return self._root.accuracy_aware_training

    @property
    def target_device(self) -> str:
        """``target_device``."""
        return self._root.target_device

    @property
    def log_dir(self) -> str | None:
        """``log_dir``."""
        return self._root.log_dir

    def register_extra_structs(self, structs: list[Any]) -> None:
        """Attach Python-only init arguments (data loaders, criteria) as NNCF does."""
        for s in structs:
            self._extra_structs[type(s)] = s

    def get_extra_struct(self, cls: type[T]) -> T:
        """The registered struct of type ``cls``; KeyError when absent."""
        return self._extra_structs[cls]  # type: ignore[no-any-return]

    def has_extra_struct(self, cls: type[Any]) -> bool:
        """Whether a struct of type ``cls`` was registered."""
        return cls in self._extra_structs

    def __copy__(self) -> NNCFConfig:
        new = NNCFConfig(dict(self))
        new._extra_structs = dict(self._extra_structs)
        return new


def config_schema() -> dict[str, Any]:
    """JSON Schema of the whole config, for editors (``netsculpt config-schema``)."""
    root = schema_of(_Root)
    algos = [schema_of(config_class(n)) for n in list_configs()]
    item = algos[0] if len(algos) == 1 else {"oneOf": algos}
    root["properties"]["compression"] = {"anyOf": [item, {"type": "array", "items": item}]}
    root["properties"].pop("compression_lr_multiplier", None)
    root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    root["title"] = "netsculpt / NNCF 2.x compression config"
    return root

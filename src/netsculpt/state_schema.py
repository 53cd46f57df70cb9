"""Schema of ``ctrl.get_compression_state()``: checked before ``create_compressed_model`` touches the model.

Errors are ``StateError`` located as ``compression_state.<path>``. Fields the schema does not know inside an
algorithm's state are left to the algorithm (they are plain data it wrote itself); known fields are checked for
type and range, and the fields an algorithm's resume reads unconditionally are required.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from typing import Any

import torch

from netsculpt.config.checks import describe, did_you_mean
from netsculpt.errors import StateError

__all__ = ["INIT_ONLY", "STATE_KEYS", "config_differences", "config_fingerprint", "state_error", "validate_state"]

Check = Callable[[Any, str], None]
HINT = "Pass the dict returned by ctrl.get_compression_state() unchanged (a checkpoint may be damaged)"
STATE_KEYS = ("version", "config", "builder_state", "ctrl_state", "fingerprint")


def state_error(path: str, problem: str, *, got: Any = ..., hint: str = HINT) -> StateError:
    """A ``StateError`` in the standard message shape, at ``compression_state.<path>``."""
    msg = f"compression_state{'.' + path if path else ''}: {problem}"
    if got is not ...:
        msg += f"; got {describe(got)}"
    return StateError(f"{msg}. {hint}" if hint else msg)


# ---- checkers ---------------------------------------------------------------------------------------
def _int(lo: int, hi: int | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        ok = not isinstance(v, bool) and (
            isinstance(v, numbers.Integral) or isinstance(v, float) and math.isfinite(v) and v.is_integer()
        )
        if not ok:
            raise state_error(path, "expected an integer", got=v)
        if int(v) < lo or hi is not None and int(v) > hi:
            raise state_error(path, f"expected an integer in [{lo}, {hi if hi is not None else 'inf'}]", got=v)

    return check


def _num(lo: float, hi: float) -> Check:
    def check(v: Any, path: str) -> None:
        if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
            raise state_error(path, "expected a finite number", got=v)
        if not lo <= float(v) <= hi:
            raise state_error(path, f"expected a number in [{lo}, {hi}]", got=v)

    return check


def _type(kind: type, name: str) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, kind):
            raise state_error(path, f"expected {name}", got=v)

    return check


def _optional(inner: Check) -> Check:
    def check(v: Any, path: str) -> None:
        if v is not None:
            inner(v, path)

    return check


def _list(item: Check, length: int | None = None) -> Check:
    def check(v: Any, path: str) -> None:
        if not isinstance(v, list):
            raise state_error(path, "expected a list", got=v)
        if length is not None and len(v) != length:
            raise state_error(path, f"expected a list of {length}", got=v)
        for i, x in enumerate(v):
            item(x, f"{path}[{i}]")

    return check


def _fields(spec: Mapping[str, tuple[Check, bool]]) -> Check:
    """A dict whose known keys are checked (``(checker, required)``); other keys are left to the algorithm."""

    def check(v: Any, path: str) -> None:
        if not isinstance(v, Mapping):
            raise state_error(path, "expected an object (dict)", got=v)
        for key, (inner, required) in spec.items():
            if key in v:
                inner(v[key], f"{path}.{key}")
            elif required:
                raise state_error(path, f"'{key}' is missing", got=sorted(map(str, v))[:8])

    return check


def _tensors(v: Any, path: str) -> None:
    if not isinstance(v, Mapping) or not all(isinstance(k, str) and isinstance(t, torch.Tensor) for k, t in v.items()):
        raise state_error(path, "expected a state dict (names to tensors)", got=v)


_STR = _type(str, "a string")
_BOOL = _type(bool, "true or false")
_LEVEL = _num(0.0, 1.0)
_COUNTER = _int(-1)
_LAYERS = (_list(_STR), True)

BUILDER: dict[str, Check] = {
    "quantization": _fields({
        "quantizers": (_list(_fields({"key": (_STR, True), "signed": (_BOOL, True)})), True),
        "infos": (_list(_fields({"key": (_STR, True), "bits": (_int(1, 32), True),
                                 "export_bits": (_int(1, 32), True)})), False),
    }),
    **{name: _fields({"layers": _LAYERS, "level": (_LEVEL, False)})
       for name in ("magnitude_sparsity", "rb_sparsity", "const_sparsity")},
    "filter_pruning": _fields({
        "layers": _LAYERS,
        "num_groups": (_int(0), False),
        "level": (_LEVEL, False),
        "ranking_coeffs": (_optional(_list(_list(_num(-1e30, 1e30), 2))), False),
        "fixed_counts": (_optional(_list(_int(0))), False),
    }),
    "binarization": _fields({"mode": (_STR, False), "layers": _LAYERS}),
    "knowledge_distillation": _fields({"teacher_fingerprint": (_STR, False), "teacher": (_tensors, False),
                                       "latest_loss": (_num(-1e30, 1e30), False)}),
}
_COUNTERS = {"current_epoch": (_COUNTER, True), "current_step": (_COUNTER, False)}
_STEPS = {"steps_per_epoch": (_optional(_int(1)), False)}
_SPARSITY_CTRL = _fields({**_COUNTERS, **_STEPS, "current_level": (_LEVEL, True), "frozen": (_BOOL, False),
                          "bad_epochs": (_int(0), False)})
CTRL: dict[str, Check] = {
    "magnitude_sparsity": _SPARSITY_CTRL,
    "rb_sparsity": _SPARSITY_CTRL,
    "filter_pruning": _fields({**_COUNTERS, "level": (_LEVEL, True)}),
}
_DEFAULT_CTRL = _fields({**_COUNTERS, **_STEPS})


def validate_state(state: Any, max_version: int) -> None:
    """Check a compression state's structure, types and ranges (nothing is touched).

    Raises:
        StateError: the first problem, located as ``compression_state.<path>``.
    """
    if not isinstance(state, Mapping):
        raise state_error("", "expected the dict returned by ctrl.get_compression_state()", got=state)
    for key in state:
        if key not in STATE_KEYS:
            guess = did_you_mean(str(key), STATE_KEYS)
            raise state_error(
                str(key), "unknown key", got=key,
                hint=f"Did you mean '{guess}'?" if guess else f"Known keys: {', '.join(STATE_KEYS)}",
            )
    if "builder_state" not in state:
        raise state_error("", "'builder_state' is missing", got=sorted(map(str, state))[:8])
    if "version" in state:
        _int(1)(state["version"], "version")
        if int(state["version"]) > max_version:
            raise state_error("version", f"is newer than this netsculpt supports ({max_version})",
                              got=state["version"], hint="Upgrade netsculpt to resume this checkpoint")
    if "config" in state:
        _type(Mapping, "an object (dict)")(state["config"], "config")
    if "fingerprint" in state:
        _type(Mapping, "an object (dict)")(state["fingerprint"], "fingerprint")
    for section, specs, default in (("builder_state", BUILDER, None), ("ctrl_state", CTRL, _DEFAULT_CTRL)):
        if section not in state:
            continue
        value = state[section]
        if not isinstance(value, Mapping):
            raise state_error(section, "expected an object (dict) with one entry per algorithm", got=value)
        for name, sub in value.items():
            check = specs.get(str(name), default or _fields({}))
            check(sub, f"{section}.{name}")


# ---- config fingerprint -------------------------------------------------------------------------------
#: Keys read only when a model is first compressed (a resume skips them): changing them is not a config change.
INIT_ONLY = (
    "initializer.range",
    "initializer.batchnorm_adaptation",
    "params.save_ranking_coeffs_path",
    "params.load_ranking_coeffs_path",
)


def _flatten(value: Any, prefix: str, out: dict[str, Any]) -> None:
    if isinstance(value, Mapping) and value:
        for k, v in value.items():
            _flatten(v, f"{prefix}.{k}" if prefix else str(k), out)
    elif not any(prefix == p or prefix.startswith(p + ".") for p in INIT_ONLY):
        out[prefix] = value


def config_fingerprint(config: Any) -> dict[str, Any]:
    """The config parts that shape the compressed model, as plain data: ``target_device`` and, per algorithm, every
    parsed key (defaults filled in) except the init-only ones (``INIT_ONLY``), flattened to dotted paths."""
    from netsculpt.config.fields import to_plain

    algorithms: dict[str, dict[str, Any]] = {}
    for algo in config.algorithms:
        flat: dict[str, Any] = {}
        _flatten(to_plain(algo), "", flat)
        algorithms[algo.algorithm] = flat
    return {"target_device": config.target_device, "algorithms": algorithms}


def config_differences(state: Mapping[str, Any], config: Any) -> list[str]:
    """``"<config path> (saved X, now Y)"`` for every key where ``config`` differs from the one the state was saved
    with (empty when the state has no fingerprint: saved by an older netsculpt).

    Raises:
        StateError: the fingerprint is malformed.
    """
    saved = state.get("fingerprint")
    if saved is None:
        return []
    algos = saved.get("algorithms") if isinstance(saved, Mapping) else None
    if not isinstance(algos, Mapping) or not all(isinstance(v, Mapping) for v in algos.values()):
        raise state_error("fingerprint.algorithms", "expected an object of objects, one per algorithm", got=algos)
    now = config_fingerprint(config)
    where = {a.algorithm: config.path_of(a) for a in config.algorithms}
    diffs = []
    if saved.get("target_device", now["target_device"]) != now["target_device"]:
        diffs.append(f"target_device (saved {saved.get('target_device')!r}, now {now['target_device']!r})")
    for name in [*now["algorithms"], *[n for n in algos if n not in now["algorithms"]]]:
        if name not in algos:
            diffs.append(f"{where[name]}: algorithm '{name}' (not in the saved config)")
            continue
        if name not in now["algorithms"]:
            diffs.append(f"compression: algorithm '{name}' (in the saved config, not in this one)")
            continue
        old, new = algos[name], now["algorithms"][name]
        for key in [*new, *[k for k in old if k not in new]]:
            a, b = old.get(key), new.get(key)
            if a != b:
                diffs.append(f"{where[name]}.{key} (saved {a!r}, now {b!r})")
    return diffs

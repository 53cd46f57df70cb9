"""Strict parsing of JSON-like data into frozen config dataclasses, and JSON Schema generation.

Each config section is a ``@dataclass(frozen=True, kw_only=True)``. Field metadata may carry:

- ``doc``: description (used in the JSON Schema);
- ``min`` / ``max`` with ``min_open`` / ``max_open``: numeric range checks;
- ``not_supported``: the key is valid NNCF but not implemented yet; giving it raises NotSupportedYetError.

A class may declare ``__aliases__ = {"alias": "canonical"}`` for keys that NNCF users write
differently from NNCF's schema; an alias is accepted with one warning naming the canonical key.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import types
import typing
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

from netsculpt.config.checks import did_you_mean, fail, join_path
from netsculpt.errors import ConfigError, NotSupportedYetError

__all__ = ["config_field", "parse", "schema_of", "to_plain"]

logger = logging.getLogger(__name__)
T = TypeVar("T")
_warned_aliases: set[str] = set()


class FieldCheckError(ConfigError):
    """Raised by ``__post_init__`` checks with a path relative to the dataclass; ``parse`` adds the prefix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def config_field(default: Any = dataclasses.MISSING, *, doc: str = "", **meta: Any) -> Any:
    """A dataclass field with netsculpt metadata (``doc``, ``min``, ``max``, ``not_supported``...)."""
    metadata = {"doc": doc, **meta}
    if isinstance(default, (list, dict, set)):
        raise TypeError("use an immutable default (tuple) for config fields")
    return dataclasses.field(default=default, metadata=metadata)


def _hints(cls: type) -> dict[str, Any]:
    return get_type_hints(cls)


def parse(cls: type[T], data: Any, path: str) -> T:
    """Parse ``data`` (a dict from JSON) into the dataclass ``cls``; errors name ``path``."""
    if not isinstance(data, dict):
        raise fail(path, "expected an object", got=data)
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    aliases: dict[str, str] = getattr(cls, "__aliases__", {})
    kwargs: dict[str, Any] = {}
    for key, value in data.items():
        name = key
        if key in aliases and key not in fields:
            name = aliases[key]
            if name in data:
                raise fail(join_path(path, key), f"both '{key}' and its canonical spelling '{name}' are given")
            where = join_path(path, key)
            if where not in _warned_aliases:
                _warned_aliases.add(where)
                logger.warning("%s: accepted as '%s' (the canonical NNCF key)", where, name)
        if name not in fields or not fields[name].init:
            known = [n for n, f in fields.items() if f.init]
            hint = did_you_mean(key, known + list(aliases))
            raise fail(
                join_path(path, key),
                "unknown key",
                hint=f"Did you mean '{hint}'?" if hint else f"Known keys: {', '.join(sorted(known))}",
            )
        field = fields[name]
        fpath = join_path(path, key)
        if field.metadata.get("not_supported"):
            raise NotSupportedYetError(f"{fpath}: not supported yet by netsculpt ({field.metadata['not_supported']})")
        parsed = _parse_value(hints[name], value, fpath)
        _check_range(field, parsed, fpath)
        kwargs[name] = parsed
    for name, field in fields.items():
        missing_default = field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING
        if field.init and name not in kwargs and missing_default:
            raise fail(join_path(path, name), "required key is missing")
    try:
        return cls(**kwargs)
    except FieldCheckError as err:
        raise ConfigError(f"{join_path(path, err.field)}: {err.message}") from None


def _check_range(field: dataclasses.Field[Any], value: Any, path: str) -> None:
    meta = field.metadata
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return
    lo, hi = meta.get("min"), meta.get("max")
    lo_open, hi_open = meta.get("min_open", False), meta.get("max_open", False)
    bad = (lo is not None and (value < lo or (lo_open and value == lo))) or (
        hi is not None and (value > hi or (hi_open and value == hi))
    )
    if bad:
        left = "(" if lo_open else "["
        right = ")" if hi_open else "]"
        span = f"{left}{'-inf' if lo is None else lo}, {'inf' if hi is None else hi}{right}"
        raise fail(path, f"must be in {span}", got=value)


def _is_union(tp: Any) -> bool:
    return get_origin(tp) in (Union, types.UnionType)


def _parse_value(tp: Any, value: Any, path: str) -> Any:  # noqa: C901 - one branch per type form
    if tp is Any:
        return value
    if _is_union(tp):
        args = get_args(tp)
        if value is None and type(None) in args:
            return None
        options = [a for a in args if a is not type(None)]
        # Pick the list form for lists, the object form for dicts (NNCF's "object or list" keys).
        if len(options) > 1:
            for opt in options:
                origin = get_origin(opt) or opt
                if (isinstance(value, list) and origin in (list, tuple)) or (
                    isinstance(value, dict) and dataclasses.is_dataclass(opt)
                ):
                    return _parse_value(opt, value, path)
            errors: list[ConfigError] = []
            for opt in options:
                try:
                    return _parse_value(opt, value, path)
                except ConfigError as err:
                    errors.append(err)
            raise errors[0]
        return _parse_value(options[0], value, path)
    origin = get_origin(tp)
    if origin is Literal:
        choices = get_args(tp)
        if value in choices and type(value) is type(choices[0]):
            return value
        hint = did_you_mean(str(value), [str(c) for c in choices]) if isinstance(value, str) else None
        raise fail(
            path,
            f"must be one of {list(choices)}",
            got=value,
            hint=f"Did you mean '{hint}'?" if hint else "",
        )
    if origin in (list, tuple):
        if not isinstance(value, list):
            raise fail(path, "expected a list", got=value)
        args = get_args(tp)
        item_tp = args[0] if args else Any
        return tuple(_parse_value(item_tp, v, join_path(path, i)) for i, v in enumerate(value))
    if origin is dict:
        if not isinstance(value, dict):
            raise fail(path, "expected an object", got=value)
        _, val_tp = get_args(tp)
        return {str(k): _parse_value(val_tp, v, join_path(path, str(k))) for k, v in value.items()}
    if dataclasses.is_dataclass(tp):
        return parse(typing.cast(type, tp), value, path)
    if tp is bool:
        if not isinstance(value, bool):
            raise fail(path, "expected true or false", got=value)
        return value
    if tp is int:
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if not isinstance(value, int) or isinstance(value, bool):
            raise fail(path, "expected an integer", got=value)
        return value
    if tp is float:
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            raise fail(path, "expected a number", got=value)
        if not math.isfinite(value):  # NaN passes every range check; inf is never a meaningful setting
            raise fail(path, "expected a finite number", got=value, hint="NaN and infinity are not accepted")
        return float(value)
    if tp is str:
        if not isinstance(value, str):
            raise fail(path, "expected a string", got=value)
        return value
    raise TypeError(f"unsupported config field type {tp!r} at {path}")


def to_plain(obj: Any) -> Any:
    """Turn a parsed config back into JSON-compatible data (tuples become lists)."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(obj):
            if not f.init or f.metadata.get("not_supported"):
                continue
            out[f.name] = to_plain(getattr(obj, f.name))
        return out
    if isinstance(obj, (list, tuple)):
        return [to_plain(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_plain(v) for k, v in obj.items()}
    return obj


def schema_of(tp: Any) -> dict[str, Any]:
    """JSON Schema (draft 2020-12 subset) for a config type."""
    if tp is Any:
        return {}
    if _is_union(tp):
        opts = [a for a in get_args(tp) if a is not type(None)]
        nullable = type(None) in get_args(tp)
        schemas = [schema_of(o) for o in opts] + ([{"type": "null"}] if nullable else [])
        return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
    origin = get_origin(tp)
    if origin is Literal:
        return {"enum": list(get_args(tp))}
    if origin in (list, tuple):
        args = get_args(tp)
        return {"type": "array", "items": schema_of(args[0]) if args else {}}
    if origin is dict:
        return {"type": "object", "additionalProperties": schema_of(get_args(tp)[1])}
    if dataclasses.is_dataclass(tp):
        hints = _hints(typing.cast(type, tp))
        props: dict[str, Any] = {}
        required = []
        for f in dataclasses.fields(tp):
            if not f.init:
                continue
            s = dict(schema_of(hints[f.name]))
            if f.metadata.get("doc"):
                s["description"] = f.metadata["doc"]
            if f.metadata.get("not_supported"):
                s["description"] = f"Not supported yet: {f.metadata['not_supported']}"
            if f.default is not dataclasses.MISSING and f.default is not None:
                s["default"] = to_plain(f.default)
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                required.append(f.name)
            for key, name in (("min", "minimum"), ("max", "maximum")):
                if key in f.metadata:
                    open_ = f.metadata.get(f"{key}_open", False)
                    s[("exclusiveM" + name[1:]) if open_ else name] = f.metadata[key]
            props[f.name] = s
        for alias, canonical in getattr(tp, "__aliases__", {}).items():
            props[alias] = {**props[canonical], "description": f"Alias of '{canonical}'."}
        out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": False}
        if required:
            out["required"] = required
        return out
    mapping = {bool: "boolean", int: "integer", float: "number", str: "string"}
    if tp in mapping:
        return {"type": mapping[tp]}
    return {}

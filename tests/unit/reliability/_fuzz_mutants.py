"""The config fuzzer's inputs: 10 valid configs and the seeded mutation operators that derive mutants from them.

Used by ``test_config_fuzz.py``; every operator edits a deep copy of a base config in place and returns the
mutated path and a description (or None when it does not apply to that config).
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from netsculpt.config.checks import join_path

SEED = 20261203
MUTANTS_PER_CONFIG = 60
INPUT = {"sample_size": [1, 3, 8, 8]}
_FAST_INIT = {"range": {"num_init_samples": 4, "type": "mean_min_max"},
              "batchnorm_adaptation": {"num_bn_adaptation_samples": 4}}

Path = tuple[str | int, ...]

#: Ten valid configs: every algorithm, the main stacks, both accuracy-aware loops (TinyResNet, 3x8x8 inputs).
CONFIGS: dict[str, dict[str, Any]] = {
    "int8_qat": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "quantization",
            "initializer": {"range": {"num_init_samples": 4, "type": "percentile",
                                      "params": {"min_percentile": 1.0, "max_percentile": 99.0}},
                            "batchnorm_adaptation": {"num_bn_adaptation_samples": 4}},
            "weights": {"mode": "symmetric", "bits": 8, "per_channel": True},
            "activations": {"mode": "asymmetric", "bits": 8},
            "quantize_inputs": True,
            "overflow_fix": "first_layer_only",
            "params": {"activations_quant_start_epoch": 1, "weights_quant_start_epoch": 2,
                       "lr_poly_drop_start_epoch": 3, "lr_poly_drop_duration_epochs": 5, "base_lr": 0.01},
            "ignored_scopes": ["fc"],
        },
    },
    "mixed_precision_hawq": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "quantization",
            "initializer": {**_FAST_INIT, "precision": {"type": "hawq", "bits": [4, 8], "compression_ratio": 1.2,
                                                        "num_data_points": 4, "iter_number": 2, "tolerance": 0.01}},
            "weights": {"per_channel": False},
        },
    },
    "mixed_precision_manual": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "quantization",
            "initializer": {**_FAST_INIT, "precision": {"type": "manual",
                                                        "bitwidth_per_scope": [[4, "conv1"], [6, "conv2"]]}},
            "scope_overrides": {"activations": {"conv1": {"bits": 6, "mode": "asymmetric"}}},
            "preset": "mixed",
        },
    },
    "magnitude_sparsity": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "magnitude_sparsity",
            "sparsity_init": 0.1,
            "params": {"schedule": "polynomial", "sparsity_target": 0.6, "sparsity_target_epoch": 3,
                       "sparsity_freeze_epoch": 4, "power": 2.0, "concave": False,
                       "weight_importance": "abs"},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 4}},
            "ignored_scopes": ["stem"],
        },
    },
    "rb_sparsity": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "rb_sparsity",
            "sparsity_init": 0.05,
            "params": {"schedule": "multistep", "multistep_steps": [1, 3],
                       "multistep_sparsity_levels": [0.1, 0.3, 0.5], "sparsity_level_setting_mode": "global"},
            "compression_lr_multiplier": 2.0,
        },
    },
    "pruning_const_sparsity": {
        "input_info": INPUT,
        "compression": [
            {"algorithm": "filter_pruning", "pruning_init": 0.25,
             "params": {"schedule": "exponential_with_bias", "pruning_target": 0.5, "pruning_steps": 3,
                        "filter_importance": "L1", "num_init_steps": 1, "round_to": 2},
             "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 4}}},
            {"algorithm": "const_sparsity", "target_scopes": ["conv1", "conv2"]},
        ],
    },
    "binarization": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "binarization",
            "mode": "dorefa",
            "params": {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 1,
                       "lr_poly_drop_start_epoch": 2, "lr_poly_drop_duration_epochs": 3, "disable_wd_start_epoch": 2},
            "ignored_scopes": ["stem", "fc"],
        },
    },
    "kd_qat": {
        "input_info": [INPUT],
        "compression": [
            {"algorithm": "knowledge_distillation", "type": "softmax", "temperature": 2.0, "scale": 0.5},
            {"algorithm": "quantization", "initializer": _FAST_INIT,
             "activations": {"ignored_scopes": ["{re}bn.*"]}},
        ],
    },
    "early_exit_sparsity_qat": {
        "input_info": INPUT,
        "target_device": "CPU",
        "compression": [
            {"algorithm": "magnitude_sparsity", "sparsity_init": 0.2,
             "params": {"schedule": "exponential", "sparsity_target": 0.5, "sparsity_target_epoch": 2}},
            {"algorithm": "quantization", "initializer": _FAST_INIT},
        ],
        "accuracy_aware_training": {
            "mode": "early_exit",
            "params": {"maximal_relative_accuracy_degradation": 1.0, "maximal_total_epochs": 5},
        },
    },
    "adaptive_pruning": {
        "input_info": INPUT,
        "compression": {
            "algorithm": "filter_pruning",
            "pruning_init": 0.1,
            "params": {"schedule": "exponential", "pruning_target": 0.4, "pruning_steps": 2,
                       "filter_importance": "geometric_median"},
            "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 4}},
        },
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {"maximal_absolute_accuracy_degradation": 0.5, "maximal_total_epochs": 6,
                       "initial_training_phase_epochs": 1, "patience_epochs": 1,
                       "initial_compression_rate_step": 0.1, "compression_rate_step_reduction_factor": 0.5,
                       "minimal_compression_rate_step": 0.025, "lr_reduction_factor": 0.5},
        },
    },
}


# ---- the config tree ---------------------------------------------------------------------------------
def _paths(node: Any, prefix: Path = ()) -> Iterator[tuple[Path, Any]]:
    """Every (path, value) below ``node``; dict keys and list indices."""
    if isinstance(node, dict):
        for k, v in node.items():
            yield (*prefix, k), v
            yield from _paths(v, (*prefix, k))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield (*prefix, i), v
            yield from _paths(v, (*prefix, i))


def _get(node: Any, path: Path) -> Any:
    for key in path:
        node = node[key]
    return node


def _set(node: Any, path: Path, value: Any) -> None:
    _get(node, path[:-1])[path[-1]] = value


def path_text(path: Path) -> str:
    """The path as netsculpt writes it in messages: ``compression[0].params.pruning_target``."""
    out = ""
    for key in path:
        out = join_path(out, key)
    return out


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


# ---- mutation operators ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Mutant:
    base: str
    index: int
    operator: str
    path: Path  # where the change was made (for a renamed key: the new key)
    config: dict[str, Any]
    note: str

    def __str__(self) -> str:
        return f"{self.base}#{self.index}:{self.operator}@{path_text(self.path) or '<root>'} ({self.note})"


Operator = Callable[[random.Random, dict[str, Any]], tuple[Path, str] | None]


def _pick(rng: random.Random, cfg: dict[str, Any], pred: Callable[[Path, Any], bool]) -> tuple[Path, Any] | None:
    found = [(p, v) for p, v in _paths(cfg) if pred(p, v)]
    return rng.choice(found) if found else None


def _dict_key(p: Path, v: Any) -> bool:
    return isinstance(p[-1], str)


def _misspell(rng: random.Random, word: str) -> str:
    kind = rng.randrange(6)
    i = rng.randrange(max(1, len(word) - 1))
    if kind == 0 and len(word) > 2:
        return word[:i] + word[i + 1] + word[i] + word[i + 2:]  # swapped letters
    if kind == 1 and len(word) > 3:
        return word[:i] + word[i + 1:]  # dropped letter
    if kind == 2:
        return word[:i] + word[i] + word[i:]  # doubled letter
    if kind == 3 and "_" in word:
        return word.replace("_", "-")
    if kind == 4:
        return word.upper() if word != word.upper() else word.lower()
    return word + "s"


def op_delete_key(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, _dict_key)
    if hit is None:
        return None
    del _get(cfg, hit[0][:-1])[hit[0][-1]]
    return hit[0], "deleted"


def op_misspell_key(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, _dict_key)
    if hit is None:
        return None
    path, value = hit
    parent = _get(cfg, path[:-1])
    old = str(path[-1])
    new = _misspell(rng, old)
    if new == old or new in parent:
        new = old + "_x"
    items = [(new if k == old else k, v) for k, v in parent.items()]
    parent.clear()
    parent.update(items)
    return (*path[:-1], new), f"{old!r} -> {new!r}"


def op_unknown_key(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    dicts = [(p, v) for p, v in _paths(cfg) if isinstance(v, dict)] + [((), cfg)]
    path, target = rng.choice(dicts)
    key = rng.choice(["extra", "enabled", "sparsity_levle", "bit", "scope", "comment", "ignored_scope"])
    while key in target:
        key += "_"
    target[key] = rng.choice([1, "x", True, [], {}])
    return (*path, key), "added"


_WRONG: list[Any] = ["0.5", "yes", 7, 0.25, True, False, None, [], {}, [1, 2], {"value": 1}]


def op_wrong_type(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: True)
    if hit is None:
        return None
    path, value = hit
    choices = [w for w in _WRONG if type(w) is not type(value)]
    new = copy.deepcopy(rng.choice(choices))
    _set(cfg, path, new)
    return path, f"{value!r} -> {new!r}"


def op_out_of_range(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: _is_number(v))
    if hit is None:
        return None
    new = rng.choice([-1, -0.5, 0, 1, 1.0, 1.5, 9, 100.5, 1e9, -1e9, 10**30])
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_non_finite(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: _is_number(v))
    if hit is None:
        return None
    new = rng.choice([math.nan, math.inf, -math.inf])
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_negative_epoch(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    def epochish(p: Path, v: Any) -> bool:
        names = [k for k in p if isinstance(k, str)]
        return bool(names) and _is_number(v) and any(w in names[-1] for w in ("epoch", "steps", "patience"))

    hit = _pick(rng, cfg, epochish)
    if hit is None:
        return None
    new = rng.choice([-1, -2, -100])
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_empty_list(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: isinstance(v, (list, dict, str)))
    if hit is None:
        return None
    _set(cfg, hit[0], [])
    return hit[0], f"{type(hit[1]).__name__} -> []"


_ALGOS = ["quantisation", "Quantization", "magnitude_sparsty", "filter-pruning", "pruning", "", "movement_sparsity",
          "bootstrapNAS", "nas", "knowledge-distillation", "binarisation", "rb"]


def op_unknown_algorithm(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: p[-1] == "algorithm")
    if hit is None:
        return None
    new = rng.choice(_ALGOS)
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_nest(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: True)
    if hit is None:
        return None
    depth = rng.choice([1, 1, 2, 5, 40])
    value: Any = hit[1]
    for _ in range(depth):
        value = {"value": value} if rng.random() < 0.5 else [value]
    _set(cfg, hit[0], value)
    return hit[0], f"nested {depth} deep"


def op_swap_container(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: isinstance(v, (list, dict)))
    if hit is None:
        return None
    path, value = hit
    new = {str(i): v for i, v in enumerate(value)} if isinstance(value, list) else list(value.values())
    _set(cfg, path, new)
    return path, f"{type(value).__name__} -> {type(new).__name__}"


def op_string_number(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: _is_number(v))
    if hit is None:
        return None
    new = rng.choice([str(hit[1]), True, False])
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_fraction_for_int(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: isinstance(v, int) and not isinstance(v, bool))
    if hit is None:
        return None
    new = hit[1] + 0.5
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


def op_duplicate_algorithm(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    comp = cfg.get("compression")
    items = comp if isinstance(comp, list) else [comp]
    i = rng.randrange(len(items))
    cfg["compression"] = [*items, copy.deepcopy(items[i])]
    return ("compression", len(items)), f"compression[{i}] repeated"


def op_bad_enum(rng: random.Random, cfg: dict[str, Any]) -> tuple[Path, str] | None:
    hit = _pick(rng, cfg, lambda p, v: isinstance(v, str) and p[-1] != "algorithm")
    if hit is None:
        return None
    new = _misspell(rng, hit[1]) if hit[1] else "x"
    _set(cfg, hit[0], new)
    return hit[0], f"{hit[1]!r} -> {new!r}"


OPERATORS: dict[str, Operator] = {
    "delete_key": op_delete_key,
    "misspell_key": op_misspell_key,
    "unknown_key": op_unknown_key,
    "wrong_type": op_wrong_type,
    "out_of_range": op_out_of_range,
    "non_finite": op_non_finite,
    "negative_epoch": op_negative_epoch,
    "empty_list": op_empty_list,
    "unknown_algorithm": op_unknown_algorithm,
    "nest": op_nest,
    "swap_list_dict": op_swap_container,
    "string_or_bool_number": op_string_number,
    "fraction_for_int": op_fraction_for_int,
    "duplicate_algorithm": op_duplicate_algorithm,
    "misspelled_value": op_bad_enum,
}


def generate(base: str, count: int = MUTANTS_PER_CONFIG, seed: int = SEED) -> list[Mutant]:
    """``count`` distinct mutants of ``CONFIGS[base]`` (deterministic for a seed)."""
    rng = random.Random(f"{seed}:{base}")
    names = sorted(OPERATORS)
    out: list[Mutant] = []
    seen: set[str] = set()
    attempts = 0
    while len(out) < count and attempts < count * 50:
        attempts += 1
        op = names[len(out) % len(names)] if attempts <= count else rng.choice(names)  # every operator, then random
        cfg = copy.deepcopy(CONFIGS[base])
        done = OPERATORS[op](rng, cfg)
        if done is None:
            continue
        key = repr(cfg)
        if key in seen or key == repr(CONFIGS[base]):
            continue
        seen.add(key)
        out.append(Mutant(base, len(out), op, done[0], cfg, done[1]))
    return out

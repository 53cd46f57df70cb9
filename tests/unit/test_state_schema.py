"""A malformed compression state is a located ``StateError`` and leaves the model exactly as it was; any failure
while resuming (controller construction, ``load_state``) rolls the model back (issue 10, finding 3)."""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.errors import ConfigError, StateError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]
ALGOS: dict[str, Any] = {
    "quantization": {"algorithm": "quantization"},
    "magnitude_sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.3},
    "rb_sparsity": {"algorithm": "rb_sparsity"},
    "const_sparsity": {"algorithm": "const_sparsity"},
    "filter_pruning": {"algorithm": "filter_pruning", "pruning_init": 0.3},
    "binarization": {"algorithm": "binarization"},
    "knowledge_distillation": {"algorithm": "knowledge_distillation", "type": "mse"},
}


def _cfg(*names: str) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": [ALGOS[n] for n in names]}


def _state(*names: str) -> dict[str, Any]:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), _cfg(*names))
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.step()
    return ctrl.get_compression_state()


def fingerprint(model: nn.Module) -> dict[str, Any]:
    """Everything a failed create_compressed_model must leave as it was."""
    return {
        "class": type(model),
        "values": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "modules": [(n, type(m), sorted(m.__dict__), len(m._forward_hooks), len(m._forward_pre_hooks),
                     len(m._backward_hooks), m.training) for n, m in model.named_modules()],
    }


def assert_untouched(model: nn.Module, before: dict[str, Any]) -> None:
    after = fingerprint(model)
    assert get_runtime(model) is None and not hasattr(model, "_netsculpt")
    assert after["class"] is before["class"] and after["modules"] == before["modules"]
    assert after["values"].keys() == before["values"].keys()
    assert all(torch.equal(after["values"][k], v) for k, v in before["values"].items())


def _del(path: tuple[Any, ...]) -> Callable[[dict[str, Any]], None]:
    def go(s: dict[str, Any]) -> None:
        for k in path[:-1]:
            s = s[k]
        del s[path[-1]]

    return go


def _set(path: tuple[Any, ...], value: Any) -> Callable[[dict[str, Any]], None]:
    def go(s: dict[str, Any]) -> None:
        for k in path[:-1]:
            s = s[k]
        s[path[-1]] = value

    return go


MUTANTS: list[tuple[str, tuple[str, ...], Callable[[dict[str, Any]], None], str]] = [
    ("missing-current_epoch", ("magnitude_sparsity",), _del(("ctrl_state", "magnitude_sparsity", "current_epoch")),
     r"compression_state\.ctrl_state\.magnitude_sparsity: 'current_epoch' is missing"),
    ("string-for-ctrl-dict", ("quantization",), _set(("ctrl_state", "quantization"), "x"),
     r"compression_state\.ctrl_state\.quantization: expected an object"),
    ("string-for-builder-dict", ("filter_pruning",), _set(("builder_state", "filter_pruning"), "x"),
     r"compression_state\.builder_state\.filter_pruning: expected an object"),
    ("string-for-ctrl_state", ("rb_sparsity",), _set(("ctrl_state",), "x"),
     r"compression_state\.ctrl_state: expected an object"),
    ("version-string", ("quantization",), _set(("version",), "2"),
     r"compression_state\.version: expected an integer; got str '2'"),
    ("version-newer", ("quantization",), _set(("version",), 99), r"compression_state\.version: is newer"),
    ("level-string", ("magnitude_sparsity",), _set(("ctrl_state", "magnitude_sparsity", "current_level"), "a"),
     r"current_level: expected a finite number"),
    ("level-nan", ("filter_pruning",), _set(("ctrl_state", "filter_pruning", "level"), float("nan")),
     r"ctrl_state\.filter_pruning\.level: expected a finite number"),
    ("layers-int", ("const_sparsity",), _set(("builder_state", "const_sparsity", "layers"), 5),
     r"builder_state\.const_sparsity\.layers: expected a list"),
    ("quantizer-signed-string", ("quantization",),
     _set(("builder_state", "quantization", "quantizers", 0, "signed"), "yes"),
     r"builder_state\.quantization\.quantizers\[0\]\.signed: expected true or false"),
    ("bits-missing", ("quantization",), _del(("builder_state", "quantization", "infos", 1, "bits")),
     r"builder_state\.quantization\.infos\[1\]: 'bits' is missing"),
    ("epoch-below-minus-one", ("binarization",), _set(("ctrl_state", "binarization", "current_epoch"), -5),
     r"ctrl_state\.binarization\.current_epoch: expected an integer in \[-1"),
    ("fixed-counts-strings", ("filter_pruning",), _set(("builder_state", "filter_pruning", "fixed_counts"), ["a"]),
     r"fixed_counts\[0\]: expected an integer"),
    ("unknown-top-key", ("quantization",), _set(("ctrl_states",), {}),
     r"compression_state\.ctrl_states: unknown key.*Did you mean 'ctrl_state'"),
    ("no-builder_state", ("quantization",), _del(("builder_state",)), r"'builder_state' is missing"),
    ("kd-after-quant-broken", ("knowledge_distillation", "quantization"),
     _set(("ctrl_state", "quantization", "current_step"), True), r"current_step: expected an integer"),
]


@pytest.mark.parametrize(("names", "mutate", "match"), [m[1:] for m in MUTANTS], ids=[m[0] for m in MUTANTS])
def test_malformed_state_is_located_and_leaves_the_model(
    names: tuple[str, ...], mutate: Callable[[dict[str, Any]], None], match: str
) -> None:
    state = copy.deepcopy(_state(*names))
    mutate(state)
    model = seeded(TinyResNet())
    before = fingerprint(model)
    with pytest.raises(StateError, match=match) as err:
        create_compressed_model(model, _cfg(*names), state)
    assert isinstance(err.value, ConfigError)  # callers catching ConfigError still do
    assert_untouched(model, before)


def test_not_a_dict_state() -> None:
    model = seeded(TinyResNet())
    with pytest.raises(StateError, match="compression_state: expected the dict returned by"):
        create_compressed_model(model, _cfg("quantization"), ["x"])  # type: ignore[arg-type]
    assert get_runtime(model) is None


@pytest.mark.parametrize("exc", [KeyError("level"), RuntimeError("boom")], ids=["raw-KeyError", "RuntimeError"])
def test_failure_in_load_state_rolls_back_everything(monkeypatch: pytest.MonkeyPatch, exc: Exception) -> None:
    """Controller construction and load_state are inside the rollback; KD's capture hooks go too."""
    names = ("knowledge_distillation", "filter_pruning", "quantization")
    state = _state(*names)
    from netsculpt.algorithms.quantization.schedule import StagedQuantizationScheduler

    def broken(self: Any, st: dict[str, Any]) -> None:
        raise exc

    monkeypatch.setattr(StagedQuantizationScheduler, "load_state", broken)
    model = seeded(TinyResNet())
    before = fingerprint(model)
    if isinstance(exc, KeyError):  # a raw error from reading the state becomes a located StateError, chained
        with pytest.raises(StateError, match=r"compression_state\.ctrl_state: cannot be restored \(KeyError") as e:
            create_compressed_model(model, _cfg(*names), state)
        assert e.value.__cause__ is exc
    else:
        with pytest.raises(RuntimeError, match="boom"):
            create_compressed_model(model, _cfg(*names), state)
    assert_untouched(model, before)


def test_sequential_model_gets_its_class_back(monkeypatch: pytest.MonkeyPatch) -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    model(torch.randn(1, 3, 8, 8))
    cfg = {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "quantization"}}
    ctrl, _ = create_compressed_model(copy.deepcopy(model), cfg)
    state = ctrl.get_compression_state()
    state["ctrl_state"]["quantization"]["steps_per_epoch"] = 0
    before = fingerprint(model)
    with pytest.raises(StateError, match=r"steps_per_epoch: expected an integer in \[1"):
        create_compressed_model(model, cfg, state)
    assert_untouched(model, before)
    from netsculpt.algorithms.quantization.schedule import StagedQuantizationScheduler

    monkeypatch.setattr(StagedQuantizationScheduler, "load_state", lambda self, st: (_ for _ in ()).throw(TypeError("x")))
    with pytest.raises(StateError):
        create_compressed_model(model, cfg, ctrl.get_compression_state())
    assert_untouched(model, before)
    assert type(model) is nn.Sequential


@pytest.mark.parametrize("names", [(n,) for n in ALGOS] + [("filter_pruning", "magnitude_sparsity", "quantization")],
                         ids=lambda n: "+".join(n))
def test_valid_states_still_resume(names: tuple[str, ...]) -> None:
    state = _state(*names)
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(*names), state)
    assert get_runtime(model) is not None or names == ("knowledge_distillation",)
    assert ctrl.get_compression_state()["builder_state"].keys() == state["builder_state"].keys()

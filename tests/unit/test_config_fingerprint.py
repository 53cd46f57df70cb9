"""A compression state saved with one config does not resume silently under another (issue 10, finding 5)."""

from __future__ import annotations

import copy
import logging
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import create_compressed_model
from netsculpt.errors import StateError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]
X = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
MANUAL_4BIT = {"algorithm": "quantization",
               "initializer": {"precision": {"type": "manual",
                                             "bitwidth_per_scope": [[4, "{re}.*"]]}}}
PRUNE = {"algorithm": "filter_pruning", "pruning_init": 0.2, "params": {"pruning_target": 0.5}}


def _cfg(*algos: dict[str, Any], single: bool = False) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": algos[0] if single else list(algos)}


def _saved(cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    return ctrl.get_compression_state(), model.state_dict()


def test_manual_4bit_state_under_plain_int8_config_is_an_error() -> None:
    state, _ = _saved(_cfg(MANUAL_4BIT, single=True))
    model = seeded(TinyResNet())
    with pytest.raises(StateError, match=r"compression_state\.fingerprint: the state was saved with a different "
                                         r"config; differs at compression\.initializer\.precision\.type "
                                         r"\(saved 'manual', now None\).*allow_config_change=True"):
        create_compressed_model(model, _cfg({"algorithm": "quantization"}, single=True), state)
    assert get_runtime(model) is None


def test_pruning_target_change_is_named_with_its_list_index() -> None:
    state, _ = _saved(_cfg({"algorithm": "quantization"}, PRUNE))
    changed = copy.deepcopy(PRUNE)
    changed["params"]["pruning_target"] = 0.2
    with pytest.raises(StateError, match=r"differs at compression\[1\]\.params\.pruning_target \(saved 0\.5, now 0\.2\)"):
        create_compressed_model(seeded(TinyResNet()), _cfg({"algorithm": "quantization"}, changed), state)


def test_added_or_removed_algorithms_and_target_device_are_named() -> None:
    state, _ = _saved(_cfg(PRUNE))
    with pytest.raises(StateError, match=r"compression\[1\]: algorithm 'quantization' \(not in the saved config\)"):
        create_compressed_model(seeded(TinyResNet()), _cfg(PRUNE, {"algorithm": "quantization"}), state)
    state, _ = _saved(_cfg(PRUNE, {"algorithm": "magnitude_sparsity"}))
    with pytest.raises(StateError, match=r"algorithm 'magnitude_sparsity' \(in the saved config, not in this one\)"):
        create_compressed_model(seeded(TinyResNet()), _cfg(PRUNE), state)
    state, _ = _saved(_cfg({"algorithm": "quantization"}))
    with pytest.raises(StateError, match=r"target_device \(saved 'ANY', now 'CPU'\)"):
        create_compressed_model(seeded(TinyResNet()), {**_cfg({"algorithm": "quantization"}), "target_device": "CPU"},
                                state)


def test_opt_out_resumes_with_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    state, sd = _saved(_cfg(PRUNE))
    changed = copy.deepcopy(PRUNE)
    changed["params"]["pruning_target"] = 0.2
    with caplog.at_level(logging.WARNING, logger="netsculpt.api"):
        ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(changed), state, allow_config_change=True)
    assert "pruning_target (saved 0.5, now 0.2)" in caplog.text
    model.load_state_dict(sd)
    assert get_runtime(model) is not None


def test_same_config_and_init_only_changes_resume() -> None:
    """Same base config resumes (also after apply_policy-like in-place changes); init-only keys may change."""
    cfg = _cfg({"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 8}}}, PRUNE)
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    ctrl.child_ctrls[1].set_pruned_counts([3])  # a per-group policy chosen after creation
    state, sd = ctrl.get_compression_state(), model.state_dict()
    model.eval()
    expected = model(X)
    other_init = _cfg({"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 64},
                                                                    "batchnorm_adaptation": {
                                                                        "num_bn_adaptation_samples": 0}}}, PRUNE)
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), other_init, state)
    model2.load_state_dict(sd)
    assert torch.equal(model2.eval()(X), expected)


def test_state_without_fingerprint_still_resumes() -> None:
    """States saved before the fingerprint existed are accepted as before."""
    state, _ = _saved(_cfg(PRUNE))
    del state["fingerprint"]
    changed = copy.deepcopy(PRUNE)
    changed["params"]["pruning_target"] = 0.2
    create_compressed_model(seeded(TinyResNet()), _cfg(changed), state)


def test_malformed_fingerprint_is_located() -> None:
    state, _ = _saved(_cfg(PRUNE))
    state["fingerprint"]["algorithms"] = {"filter_pruning": "x"}
    with pytest.raises(StateError, match=r"compression_state\.fingerprint\.algorithms: expected an object of objects"):
        create_compressed_model(seeded(TinyResNet()), _cfg(PRUNE), state)

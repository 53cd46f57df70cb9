"""Issue 10 finding 8: every scope pattern of a quantization section is checked and located at the key written."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import ConfigError, create_compressed_model
from netsculpt.errors import ScopeError, UnsupportedModelError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _cfg(**q: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": [{"algorithm": "quantization", **q}]}


def _rejects(cfg: dict[str, Any], pattern: str) -> None:
    model = seeded(TinyResNet())
    before = copy.deepcopy(model.state_dict())
    with pytest.raises(ScopeError, match=pattern) as info:
        create_compressed_model(model, cfg)
    assert isinstance(info.value, ConfigError) and isinstance(info.value, UnsupportedModelError)
    assert get_runtime(model) is None
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_algorithm_level_validate_scopes_false_is_honoured() -> None:
    create_compressed_model(seeded(TinyResNet()), _cfg(ignored_scopes=["nothing_here"], validate_scopes=False))


def test_algorithm_level_scope_is_reported_where_it_was_written() -> None:
    _rejects(_cfg(ignored_scopes=["nothing_here"]), r"^compression\[0\]\.ignored_scopes: 'nothing_here'")
    _rejects(_cfg(weights={"target_scopes": ["stemm"]}), r"^compression\[0\]\.weights\.target_scopes: 'stemm'.*'stem'")


def test_scope_override_keys_must_match() -> None:
    _rejects(_cfg(scope_overrides={"weights": {"fcc": {"bits": 4}}}),
             r"compression\[0\]\.scope_overrides\.weights\.fcc: 'fcc' matched no module\. Did you mean 'fc'")
    create_compressed_model(seeded(TinyResNet()), _cfg(scope_overrides={"weights": {"fc": {"bits": 4}}}))
    create_compressed_model(
        seeded(TinyResNet()), _cfg(scope_overrides={"weights": {"fcc": {"bits": 4}}}, validate_scopes=False)
    )


def test_range_init_entry_scopes_must_match_unless_the_entry_says_otherwise() -> None:
    ranges = [{"type": "min_max", "target_scopes": ["conv9"]}, {"type": "mean_min_max"}]
    _rejects(_cfg(initializer={"range": ranges}), r"compression\[0\]\.initializer\.range\[0\]\.target_scopes: 'conv9'")
    ranges[0]["validate_scopes"] = False
    create_compressed_model(seeded(TinyResNet()), _cfg(initializer={"range": ranges}))


def test_unified_scale_ops_patterns_must_name_an_activation_site() -> None:
    _rejects(_cfg(activations={"unified_scale_ops": [["bn2", "no_such_op"]]}),
             r"compression\[0\]\.activations\.unified_scale_ops\[0\]\[1\]: 'no_such_op' matched no activation")

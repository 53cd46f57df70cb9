"""Scopes: FQNs cover submodules, {re} regexes, NNCF 2.x scope strings, unmatched scopes are errors."""

from __future__ import annotations

import pytest

from netsculpt import UnsupportedModelError
from netsculpt.graph.scope import Scope

NAMES = ["layer1", "layer1.0", "layer1.0.conv1", "layer1.0.conv2", "layer2.0.conv1", "fc"]


def test_plain_names_cover_children_and_regex_full_match() -> None:
    s = Scope(ignored=["layer1"])
    assert "layer1.0.conv1" not in s and "layer2.0.conv1" in s
    r = Scope(ignored=["{re}layer\\d\\.0\\.conv1"])
    assert "layer1.0.conv1" not in r and "layer2.0.conv1" not in r and "layer1.0.conv2" in r
    t = Scope(target=["fc"])
    assert "fc" in t and "layer1.0.conv1" not in t


def test_nncf_scope_strings_are_converted() -> None:
    s = Scope(ignored=["ResNet/Sequential[layer1]/BasicBlock[0]/NNCFConv2d[conv1]/conv2d_0"])
    assert "layer1.0.conv1" not in s and "layer1.0.conv2" in s


def test_unmatched_scope_lists_near_matches() -> None:
    with pytest.raises(UnsupportedModelError, match=r"'layer1\.0\.conv3' matched no module\. Did you mean"):
        Scope(ignored=["layer1.0.conv3"], where="quantization").validate(NAMES)
    with pytest.raises(UnsupportedModelError, match=r"\{re\}layer5.*matched no module.*6 total"):
        Scope(target=["{re}layer5.*"], where="quantization").validate(NAMES)
    Scope(ignored=["{re}layer1.*"]).validate(NAMES)

"""did-you-mean suggestions: helpful when close, silent when not (a wrong hint is worse than none)."""

from __future__ import annotations

import pytest

from netsculpt.config.checks import describe, did_you_mean


@pytest.mark.parametrize(
    ("word", "candidates", "expected"),
    [
        ("pruning_tagret", ["pruning_target", "pruning_init", "round_to"], "pruning_target"),
        ("pruning_rato", ["round_to", "num_init_steps"], None),
        ("bitz", ["bits", "mode", "signed"], "bits"),
        ("Mixed", ["performance", "mixed"], "mixed"),
        ("xyz", ["bits", "mode"], None),
    ],
)
def test_did_you_mean(word: str, candidates: list[str], expected: str | None) -> None:
    assert did_you_mean(word, candidates) == expected


def test_describe_names_json_types() -> None:
    assert describe(True) == "bool True"
    assert describe("x") == "str 'x'"
    assert describe({"a": 1}).startswith("object")

"""The algorithm registry: keyed by config class, one algorithm per registered config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import pytest

import netsculpt.algorithms  # noqa: F401  (registers every algorithm)
from netsculpt.algorithms import base
from netsculpt.algorithms.base import get_algorithm, register_algorithm, registered_algorithms
from netsculpt.config import registry
from netsculpt.config.fields import config_field
from netsculpt.config.pruning import FilterPruningConfig
from netsculpt.config.registry import config_class, config_name, list_configs, register_config


def test_every_config_has_exactly_one_algorithm_and_vice_versa() -> None:
    algos = registered_algorithms()
    assert sorted(config_name(c) for c in algos) == list_configs()
    assert len(set(algos.values())) == len(algos)  # no algorithm class serves two configs
    for name in list_configs():
        cfg = config_class(name)
        assert cfg is not None and name == cfg.NAME
        algo = get_algorithm(name)
        assert type(algo) is algos[cfg] and algo.name == name


def test_get_algorithm_by_config_class_and_unknown_names() -> None:
    assert type(get_algorithm(FilterPruningConfig)) is type(get_algorithm("filter_pruning"))
    with pytest.raises(KeyError, match="bootstrapNAS"):
        get_algorithm("bootstrapNAS")


@pytest.fixture
def scratch_registries(monkeypatch: pytest.MonkeyPatch) -> None:
    """Registrations made by a test do not leak into the real registries."""
    monkeypatch.setattr(registry, "_CONFIGS", dict(registry._CONFIGS))
    monkeypatch.setattr(base, "_ALGORITHMS", dict(base._ALGORITHMS))


@pytest.mark.usefixtures("scratch_registries")
def test_algorithm_registers_against_its_config_and_takes_its_name() -> None:
    @register_config
    @dataclass(frozen=True, kw_only=True)
    class ToyConfig:
        NAME: ClassVar[str] = "toy_algorithm"
        algorithm: Literal["toy_algorithm"] = config_field(NAME)

    @register_algorithm(ToyConfig)
    class ToyAlgorithm:
        pass

    assert ToyAlgorithm.name == "toy_algorithm"  # type: ignore[attr-defined]
    assert "toy_algorithm" in list_configs()
    assert isinstance(get_algorithm("toy_algorithm"), ToyAlgorithm)
    with pytest.raises(KeyError, match="algorithm 'toy_algorithm' registered twice"):
        register_algorithm(ToyConfig)(type("Other", (), {}))
    with pytest.raises(KeyError, match="algorithm config 'toy_algorithm' registered twice"):
        register_config(ToyConfig)


@pytest.mark.usefixtures("scratch_registries")
def test_older_string_spellings_still_register() -> None:
    @register_config("toy_legacy")
    @dataclass(frozen=True, kw_only=True)
    class LegacyConfig:
        algorithm: Literal["toy_legacy"] = config_field("toy_legacy")

    @register_algorithm("toy_legacy")
    class LegacyAlgorithm:
        name: ClassVar[str] = "toy_legacy"

    assert LegacyConfig.NAME == "toy_legacy"  # type: ignore[attr-defined]
    assert registered_algorithms()[LegacyConfig] is LegacyAlgorithm
    with pytest.raises(KeyError, match="no config registered under that name"):
        register_algorithm("toy_unknown")


@pytest.mark.usefixtures("scratch_registries")
def test_name_mismatches_are_caught_at_import() -> None:
    with pytest.raises(TypeError, match="needs NAME"):

        @register_config
        @dataclass(frozen=True)
        class NoName:
            pass

    with pytest.raises(TypeError, match=r"'algorithm' field must be Literal\['toy_a'\]"):

        @register_config
        @dataclass(frozen=True, kw_only=True)
        class Mismatch:
            NAME: ClassVar[str] = "toy_a"
            algorithm: Literal["toy_b"] = config_field("toy_b")

    with pytest.raises(TypeError, match=r"Wrong\.name is 'other' but its config FilterPruningConfig"):

        class Wrong:
            name: ClassVar[str] = "other"

        base._ALGORITHMS.pop(FilterPruningConfig)
        register_algorithm(FilterPruningConfig)(Wrong)
    with pytest.raises(KeyError, match="is not a registered algorithm config"):
        config_name(type("Unregistered", (), {"NAME": "x"}))

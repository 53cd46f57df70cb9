"""LeGR (``interlayer_ranking_type: learned_ranking``): affine transform, global ranking, evolution, end to end."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import random
from pathlib import Path
from typing import Any

import pytest
import torch
from tests.unit.algorithms.pruning._helpers import X
from tests.unit.algorithms.pruning._zoo import ResidualNet, seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import netsculpt.algorithms.pruning.algorithm as pruning_algorithm
from netsculpt import create_compressed_model, register_default_init_args
from netsculpt.algorithms.pruning.legr import Coeffs, evolve, mutate, transform_scores
from netsculpt.algorithms.pruning.selection import Selector
from netsculpt.config.pruning import LegrParams
from netsculpt.errors import ConfigError
from netsculpt.graph import get_runtime
from netsculpt.graph.channels import ChannelGroup, PruningGraph, Unit

LEGR = {"generations": 3, "train_steps": 2, "population_size": 2, "num_samples": 1}


def _selector(sizes: list[int]) -> Selector:
    groups = tuple(
        ChannelGroup((f"l{g}",), tuple(Unit(((f"l{g}", (i,)),), ()) for i in range(n))) for g, n in enumerate(sizes)
    )
    return Selector(PruningGraph({}, groups, {}), [], 0, {}, all_weights=True)


def test_affine_transform_flips_the_global_ranking() -> None:
    scores = [torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0, 40.0])]
    identity = transform_scores(scores, [(1.0, 0.0), (1.0, 0.0)])
    assert torch.allclose(identity[0], torch.tensor([0.5, 1.0, 1.5]))  # divided by the group mean (2)
    assert torch.allclose(identity[1], torch.tensor([0.4, 0.8, 1.2, 1.6]))  # mean 25
    shifted = transform_scores(scores, [(1.0, 0.0), (2.0, 0.6)])
    assert torch.allclose(shifted[1], torch.tensor([1.4, 2.2, 3.0, 3.8]))
    sel = _selector([3, 4])
    sel.set_scores(identity)
    assert sel.counts(3 / 7) == [1, 2]  # 0.4 (g1), 0.5 (g0), 0.8 (g1)
    assert sel.select(3 / 7) == [[0], [0, 1]]
    sel.set_scores(shifted)
    assert sel.counts(3 / 7) == [2, 1]  # 0.5, 1.0 (g0), 1.4 (g1)
    assert sel.select(3 / 7) == [[0, 1], [0]]


def test_mutation_keeps_scales_positive_and_changes_something() -> None:
    rng = random.Random(0)
    start: Coeffs = ((1.0, 0.0), (1.0, 0.0), (1.0, 0.0))
    for _ in range(50):
        child = mutate(start, rng, 0.0, 1.0)  # percent 0: still exactly one coefficient moves
        assert sum(c != s for pc, ps in zip(child, start) for c, s in zip(pc, ps)) == 1
        assert all(a > 0 for a, _ in mutate(start, rng, 1.0, 3.0))


def _toy_reward(sizes: list[int], favoured: int) -> Any:
    """Reward = units of group ``favoured`` pruned by the global ranking at 50 %."""
    gen = torch.Generator().manual_seed(0)
    scores = [torch.rand(n, generator=gen) + 0.5 for n in sizes]
    sel = _selector(sizes)

    def reward(coeffs: Coeffs) -> float:
        sel.set_scores(transform_scores(scores, coeffs))
        return float(sel.counts(0.5)[favoured])

    return reward


def test_evolution_is_seeded_and_beats_the_identity() -> None:
    sizes, favoured = [6, 8, 5, 7], 1
    params = LegrParams(generations=80, population_size=8, num_samples=3, mutate_percent=0.3, random_seed=7)
    first = evolve(len(sizes), _toy_reward(sizes, favoured), params)
    again = evolve(len(sizes), _toy_reward(sizes, favoured), params)
    assert first == again
    assert len(first.rewards) == 80
    assert first.rewards[0] < sizes[favoured] - 1  # the identity does not prune group 1 as far as it can
    assert first.reward == sizes[favoured] - 1  # every unit but one
    assert first.reward == max(first.rewards)
    other = evolve(len(sizes), _toy_reward(sizes, favoured), dataclasses.replace(params, random_seed=8))
    assert other.rewards != first.rewards


# ---- end to end ------------------------------------------------------------------------------------
def _loader() -> DataLoader[Any]:
    gen = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randn(16, 3, 8, 8, generator=gen), torch.randint(0, 5, (16,), generator=gen))
    return DataLoader(data, batch_size=4)


def _cfg(section: str = "single", **params: Any) -> dict[str, Any]:
    algo = {
        "algorithm": "filter_pruning",
        "pruning_init": 0.5,
        "initializer": {"batchnorm_adaptation": {"num_bn_adaptation_samples": 0}},
        "params": {
            "prune_first_conv": True,
            "prune_downsample_convs": True,
            "interlayer_ranking_type": "learned_ranking",
            "legr_params": LEGR,
            **params,
        },
    }
    return {"input_info": {"sample_size": list(X.shape)}, "compression": algo if section == "single" else [algo]}


def _plain(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items() if "_netsculpt." not in k}


def _units_pruned(ctrl: Any) -> int:
    stats = ctrl.statistics().as_dict()["filter_pruning"]
    kept, total = stats["remaining_channels"], stats["total_channels"]
    return sum(total[n] - kept[n] for n in ("stem.0", "c1.0", "c3.0", "c4.0"))  # one layer per group


def test_end_to_end_search_restores_weights_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    model = seeded(ResidualNet())
    before = _plain(model)
    calls: list[bool] = []

    def validate(m: nn.Module, val: Any) -> tuple[float, float]:
        calls.append(not torch.equal(m.c1[0].weight, before["c1.0.weight"]))  # fine-tuned?
        return float(m.c1[0].weight.detach().sum()), 0.0  # a tuple: the first element is the reward

    coeffs_file = tmp_path / "coeffs.json"
    cfg = register_default_init_args(
        _cfg(save_ranking_coeffs_path=str(coeffs_file)), _loader(), nn.CrossEntropyLoss(), validate_fn=validate
    )
    ctrl, model = create_compressed_model(model, cfg, example_inputs=(X,))
    assert calls == [True, True, True]  # three candidates, each fine-tuned before validation
    after = _plain(model)
    assert after.keys() == before.keys()
    assert all(torch.equal(after[k], before[k]) for k in before)  # the search left the weights as they were
    assert _units_pruned(ctrl) == 20  # 50 % of the 40 units (8 + 8 + 12 + 12), one global ranking
    state = ctrl.get_compression_state()
    coeffs = state["builder_state"]["filter_pruning"]["ranking_coeffs"]
    assert len(coeffs) == 4 and all(len(c) == 2 and c[0] > 0 for c in coeffs)
    assert json.loads(coeffs_file.read_text())["c2.0"] == coeffs[0]  # stem and c2 share a group

    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "state": state}, buf)
    buf.seek(0)
    ckpt = torch.load(buf, weights_only=True)

    def no_search(*_: Any) -> Any:
        raise AssertionError("LeGR searched again")

    monkeypatch.setattr(pruning_algorithm, "learn_ranking_coeffs", no_search)
    cfg2 = register_default_init_args(_cfg(), _loader(), nn.CrossEntropyLoss())
    ctrl2, model2 = create_compressed_model(seeded(ResidualNet(), 3), cfg2, ckpt["state"], example_inputs=(X,))
    model2.load_state_dict(ckpt["model"])
    model.eval(), model2.eval()
    assert ctrl2.get_compression_state()["builder_state"] == state["builder_state"]
    assert torch.equal(model2(X), model(X))
    ctrl2.compression_rate = 0.25  # the adaptive loop's setter re-ranks with the learned coefficients
    ctrl.compression_rate = 0.25
    assert _units_pruned(ctrl2) == _units_pruned(ctrl) == 10
    assert torch.equal(model2(X), model(X))

    cfg3 = _cfg(load_ranking_coeffs_path=str(coeffs_file))  # no data needed with a coefficients file
    ctrl3, _ = create_compressed_model(seeded(ResidualNet()), cfg3, example_inputs=(X,))
    assert ctrl3.get_compression_state()["builder_state"]["filter_pruning"]["ranking_coeffs"] == coeffs


def test_default_training_and_validation_run() -> None:
    model = seeded(ResidualNet())
    before = _plain(model)
    cfg = register_default_init_args(_cfg(), _loader(), nn.CrossEntropyLoss())
    ctrl, model = create_compressed_model(model, cfg, example_inputs=(X,))
    assert all(torch.equal(v, before[k]) for k, v in _plain(model).items())
    assert _units_pruned(ctrl) == 20


@pytest.mark.parametrize("section", ["single", "list"])
def test_missing_data_is_a_config_error_and_leaves_the_model(section: str) -> None:
    model = seeded(ResidualNet())
    before = _plain(model)
    where = "compression" if section == "single" else r"compression\[0\]"
    with pytest.raises(ConfigError, match=where + r"\.params\.interlayer_ranking_type: .*register_default_init_args"):
        create_compressed_model(model, _cfg(section), example_inputs=(X,))
    assert get_runtime(model) is None
    assert all(torch.equal(v, before[k]) for k, v in _plain(model).items())
    cfg = register_default_init_args(copy.deepcopy(_cfg(section)), _loader())  # data, but no loss to train with
    with pytest.raises(ConfigError, match="criterion="):
        create_compressed_model(model, cfg, example_inputs=(X,))
    assert get_runtime(model) is None


def test_platform_reward_equals_the_direct_masked_reward() -> None:
    """LeGR's candidates run through netsculpt.search.evaluate; the reward is the one masking the global ranking,
    training and validating directly gives (the pre-platform implementation)."""
    from netsculpt.algorithms.pruning.legr_search import candidate_policy
    from netsculpt.search import TrainHooks, evaluate

    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, 8, 8, generator=g)
    y = torch.randint(0, 5, (64,), generator=g)
    train = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(1))
    val = DataLoader(TensorDataset(x[:32], y[:32]), batch_size=16)
    cfg = {
        "input_info": {"sample_size": [2, 3, 8, 8]},
        "compression": {"algorithm": "filter_pruning", "params": {"prune_first_conv": True, "all_weights": True}},
    }
    ctrl, model = create_compressed_model(seeded(ResidualNet()), cfg, example_inputs=(X,))
    part = ctrl.child_ctrls[0]
    hooks = TrainHooks(train_loader=train, val_loader=val)
    scores = part.unit_scores()
    rng = random.Random(0)
    identity = tuple((1.0, 0.0) for _ in part.pg.groups)
    for _ in range(3):
        coeffs = mutate(identity, rng, 1.0, 1.0)
        policy = candidate_policy(part, scores, coeffs, 0.5)
        platform = evaluate(ctrl, policy, hooks, bn_recalibration_samples=0, finetune_steps=3, seed=5).metric
        saved = copy.deepcopy(model.state_dict())
        with torch.random.fork_rng():
            torch.manual_seed(5)
            train.generator.manual_seed(5)
            part.mask_at(transform_scores(scores, coeffs), 0.5)
            hooks.train_steps(model, torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9), 3)
            direct = hooks.validate(model)
        model.load_state_dict(saved)
        part.set_level(0.0)
        assert platform == direct

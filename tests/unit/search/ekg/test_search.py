"""EKG search on a tiny ResNet: gates, FLOPs landing, policy/config round trip, strip."""

from __future__ import annotations

import copy

import pytest
import torch
from tests.unit.search._fixtures import X, tiny
from tests.unit.search.ekg._data import SMALL, controller, dataset, searched
from torch.utils.data import DataLoader

from netsculpt import create_compressed_model
from netsculpt.errors import ConfigError
from netsculpt.search import ProcessPoolExecutor, cost
from netsculpt.search.ekg import EKGConfig, plot_search, search
from netsculpt.search.evaluate import cost_space


def test_flops_monotone_in_keep_rates() -> None:
    ctrl, _, _ = controller()
    space = cost_space(ctrl)
    from netsculpt.search import Policy

    for g in space.groups:
        macs = [cost(space, Policy({g.name: k / g.units})).macs for k in g.kept]
        assert macs == sorted(macs) and len(set(macs)) == len(macs), g.name


def test_search_lands_on_target_within_one_channel_step() -> None:
    ctrl, _, _, res = searched(pruning_flops_target=0.5)
    space = cost_space(ctrl)
    assert res.flops_ratio <= 0.5 + 1e-9
    last = res.history[-1]
    g = space.group(last.gate)
    k = g.kept_count(last.keep[g.name])
    one_more = {**last.keep, g.name: (k + 1) / g.units}
    from netsculpt.search import Policy

    assert cost(space, Policy(one_more)).macs / res.base_macs > 0.5
    ratios = [h.flops_ratio for h in res.history]
    assert ratios == sorted(ratios, reverse=True) and ratios[0] == 1.0
    assert [len(sum(h.pruned, [])) for h in res.history] == sorted(len(sum(h.pruned, [])) for h in res.history)


def test_gates_keep_at_least_one_channel() -> None:
    ctrl, model, _, res = searched(pruning_flops_target=0.99)  # unreachable: every gate hits its minimum
    assert res.flops_ratio > 0.01
    for g, pruned in zip(ctrl.child_ctrls[0].pg.groups, res.pruned, strict=True):
        assert len(pruned) <= len(g.units) - 1
    res.apply(ctrl)
    assert all(v > 0 for v in ctrl.statistics().as_dict()["filter_pruning"]["remaining_channels"].values())


def test_search_then_strip_is_smaller_and_equal_and_config_reproduces(tmp_path: pytest.TempPathFactory) -> None:
    ctrl, model, cfg, res = searched()
    res.apply(ctrl, bn_data=DataLoader(dataset(), batch_size=32))
    model.eval()
    with torch.no_grad():
        masked = model(X)
    stripped = ctrl.strip(do_copy=True)
    with torch.no_grad():
        small = stripped(X)
    n_full = sum(p.numel() for p in tiny().parameters())
    assert sum(p.numel() for p in stripped.parameters()) < n_full
    assert torch.allclose(masked, small, atol=1e-5)
    # the config, on the weights apply() left, picks exactly EKG's channels
    weights = {k: v for k, v in model.state_dict().items() if not k.startswith("_netsculpt")}
    fresh = tiny()
    fresh.load_state_dict(weights)
    ctrl2, model2 = create_compressed_model(copy.deepcopy(fresh), res.to_config(cfg, ctrl), example_inputs=(X,))
    got = [sorted(p) for p in ctrl2.child_ctrls[0].selection_state()["pruned"]]
    assert got == [sorted(p) for p in res.pruned]
    model2.eval()
    with torch.no_grad():
        assert torch.allclose(model2(X), masked, atol=1e-5)
    assert plot_search(res, tmp_path / "ekg.png") is None or (tmp_path / "ekg.png").exists()


def test_search_is_deterministic_and_teachers_come_from_history() -> None:
    a = searched()[3]
    b = searched()[3]
    assert a.policy == b.policy and [h.loss for h in a.history] == [h.loss for h in b.history]
    t = a.teachers()
    assert len(set(t)) == len(t) <= 3 and all(0 <= i < len(a.history) - 1 for i in t)


def test_search_ensemble_is_running_mean_of_chosen_networks() -> None:
    from netsculpt.search.ekg._net import forward_logits, subnet

    ctrl, model, _, res = searched()
    ds = dataset()
    val = [(ds.tensors[0][res.val_indices], ds.tensors[1][res.val_indices])]  # one batch: SMALL batch_size 64 > 40
    chosen = []
    for h in res.history:
        with subnet(ctrl, h.pruned):
            chosen.append(forward_logits(model, val))
    assert res.ensemble is not None and len(chosen) > 2
    assert torch.allclose(res.ensemble, torch.stack(chosen).mean(0), atol=1e-5)


@pytest.mark.slow
def test_process_pool_gives_the_serial_result() -> None:
    ctrl, _, _ = controller()
    pooled = search(ctrl, dataset(), {**SMALL, "max_steps": 1}, executor=ProcessPoolExecutor(2), progress=False)
    serial = searched(max_steps=1)[3]
    assert pooled.policy == serial.policy
    assert [round(h.score, 5) for h in pooled.history] == [round(h.score, 5) for h in serial.history]


def test_located_errors() -> None:
    with pytest.raises(ConfigError, match=r"ekg\.search_stp: unknown key.*search_step"):
        EKGConfig.from_dict({"search_stp": 0.2})
    with pytest.raises(ConfigError, match=r"ekg\.pruning_flops_target: must be in \(0\.0, 1\.0\); got float 1\.5"):
        EKGConfig.from_dict({"pruning_flops_target": 1.5})
    with pytest.raises(ConfigError, match=r"ekg\.temperature"):
        EKGConfig.from_dict({"temperature": 0})
    with pytest.raises(ConfigError, match="subset_per_class"):
        EKGConfig.from_dict({"subset_per_class": 0})
    assert EKGConfig.from_dict(EKGConfig().to_dict()) == EKGConfig()
    ctrl, _ = create_compressed_model(
        tiny(),
        {"input_info": {"sample_size": list(X.shape)}, "compression": {"algorithm": "quantization"}},
        example_inputs=(X,),
    )
    with pytest.raises(ConfigError, match="filter_pruning"):
        search(ctrl, dataset(), SMALL, progress=False)

"""Magnitude sparsity on tiny models: exact levels (global, local), freeze, rate setter, state, strip, scopes."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, TinyReuseNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import CompressionStage, create_compressed_model, load_state, register_default_init_args
from netsculpt.errors import ConfigError, UnsupportedModelError
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _cfg(**algo: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "magnitude_sparsity", **algo}}


def _masks(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    rt = get_runtime(model)
    assert rt is not None
    return {k: m.mask.clone() for k, m in rt.ops.items() if k.startswith("s:")}


def _weights(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {n: p for n, p in model.named_parameters() if n.endswith("weight") and p.dim() > 1}


def _loader(n: int = 48) -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(n, 3, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)),
                      batch_size=16)


def test_global_level_equals_target_and_ranks_all_layers_together() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _cfg(params={"sparsity_target": 0.6, "sparsity_target_epoch": 1})
    )
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.epoch_step()
    masks, weights = _masks(model), _weights(model)
    total = sum(m.numel() for m in masks.values())
    zeros = sum(int((m == 0).sum()) for m in masks.values())
    assert abs(zeros - 0.6 * total) <= 1
    stats = ctrl.statistics().as_dict()["magnitude_sparsity"]
    assert stats["sparsity_level_for_layers"] == pytest.approx(zeros / total)
    assert set(stats["layers"]) == set(weights)
    assert stats["current_epoch"] == 1 and stats["target_level"] == 0.6
    assert ctrl.compression_stage() == CompressionStage.FULLY_COMPRESSED
    # one global ranking of |w| / ||W||: every pruned score is <= every kept score
    pruned, kept = [], []
    for name, w in weights.items():
        score = w.detach().abs() / w.detach().norm()
        mask = masks["s:" + name.replace(".", ":")]
        pruned.append(score[mask == 0])
        kept.append(score[mask == 1])
    assert torch.cat(pruned).max() <= torch.cat(kept).min()
    assert len({round(float((m == 0).float().mean()), 2) for m in masks.values()}) > 1  # layers differ


def test_local_mode_gives_every_layer_the_target() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()),
        _cfg(params={"sparsity_level_setting_mode": "local", "sparsity_target": 0.5, "sparsity_target_epoch": 0}),
    )
    ctrl.scheduler.epoch_step()
    for key, m in _masks(model).items():
        assert abs(int((m == 0).sum()) - 0.5 * m.numel()) <= 1, key


def test_abs_importance_masks_the_smallest_raw_magnitudes() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(sparsity_init=0.4, params={"weight_importance": "abs"}))
    masks, weights = _masks(model), _weights(model)
    pruned = torch.cat([w.detach().abs()[masks["s:" + n.replace(".", ":")] == 0] for n, w in weights.items()])
    kept = torch.cat([w.detach().abs()[masks["s:" + n.replace(".", ":")] == 1] for n, w in weights.items()])
    assert pruned.max() <= kept.min()


def test_freeze_epoch_stops_mask_updates() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _cfg(sparsity_init=0.5, params={"sparsity_target_epoch": 0, "sparsity_freeze_epoch": 2})
    )
    gen = torch.Generator().manual_seed(1)

    def shuffle_weights() -> None:
        with torch.no_grad():
            for w in _weights(model).values():
                w.copy_(torch.randn(w.shape, generator=gen))

    changed = []
    for _ in range(5):
        before = _masks(model)
        shuffle_weights()
        ctrl.scheduler.epoch_step()
        after = _masks(model)
        changed.append(any(not torch.equal(before[k], after[k]) for k in before))
    # epochs 0, 1 and 2 (the freeze epoch: last update) recompute masks from new weights; 3, 4 do not
    assert changed == [True, True, True, False, False]
    assert ctrl.statistics().as_dict()["magnitude_sparsity"]["frozen"]


def test_compression_rate_setter_recomputes_masks_and_validates() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg())
    ctrl.compression_rate = 0.3
    masks = _masks(model)
    total = sum(m.numel() for m in masks.values())
    assert abs(sum(int((m == 0).sum()) for m in masks.values()) - 0.3 * total) <= 1
    assert ctrl.compression_rate == pytest.approx(0.3)
    with pytest.raises(ConfigError, match=r"compression_rate: must be in \[0.0, 1.0\); got 1.0"):
        ctrl.compression_rate = 1.0


def test_masked_weights_get_no_gradient_and_outputs_use_masked_weights() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(sparsity_init=0.5))
    x = torch.randn(4, 3, 8, 8)
    model(x).sum().backward()
    masks = _masks(model)
    for n, w in _weights(model).items():
        assert w.grad is not None
        assert torch.all(w.grad[masks["s:" + n.replace(".", ":")] == 0] == 0), n
    reference = copy.deepcopy(model)
    ref_plain = ctrl.strip(do_copy=True)
    with torch.no_grad():
        assert torch.allclose(reference.eval()(x), ref_plain(x), atol=1e-6)


def test_strip_bakes_exact_zeros_and_leaves_a_plain_model() -> None:
    original_keys = set(seeded(TinyResNet()).state_dict())
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(sparsity_init=0.5))
    model.eval()
    x = torch.randn(4, 3, 8, 8)
    with torch.no_grad():
        expected = model(x)
    stripped = ctrl.strip()
    assert get_runtime(stripped) is None
    assert set(stripped.state_dict()) == original_keys
    with torch.no_grad():
        assert torch.equal(stripped(x), expected)
    weights = _weights(stripped)
    zeros = sum(int((w == 0).sum()) for w in weights.values())
    assert abs(zeros - 0.5 * sum(w.numel() for w in weights.values())) <= 1
    assert not any(torch.signbit(w[w == 0]).any() for w in weights.values())  # +0.0, not -0.0
    assert get_runtime(model) is not None  # do_copy: the training model keeps its masks


def test_state_round_trip_restores_masks_and_schedule() -> None:
    cfg = _cfg(params={"sparsity_target": 0.5, "sparsity_target_epoch": 3})
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    model.train()
    for _ in range(2):
        ctrl.scheduler.epoch_step()
        for x, y in _loader():
            ctrl.scheduler.step()
            loss = torch.nn.functional.cross_entropy(model(x), y) + ctrl.loss()
            opt.zero_grad()
            loss.backward()
            opt.step()
    state, sd = ctrl.get_compression_state(), copy.deepcopy(model.state_dict())
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet(), seed=5), cfg, compression_state=state)
    load_state(model2, sd, is_resume=True)
    assert ctrl2.compression_rate == pytest.approx(ctrl.compression_rate)
    assert ctrl2.child_ctrls[0].scheduler.current_epoch == 1
    x = torch.randn(4, 3, 8, 8)
    model.eval()
    model2.eval()
    with torch.no_grad():
        assert torch.equal(model(x), model2(x))
    ctrl.scheduler.epoch_step()
    ctrl2.scheduler.epoch_step()
    assert all(torch.equal(a, b) for a, b in zip(_masks(model).values(), _masks(model2).values()))


def test_shared_weight_has_one_mask_applied_at_every_use() -> None:
    model = seeded(TinyReuseNet())
    plain = copy.deepcopy(model)
    ctrl, model = create_compressed_model(
        model, {"input_info": {"sample_size": [1, 4, 8, 8]},
                "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}}
    )
    assert list(_masks(model)) == ["s:conv:weight", "s:proj"]  # the bare matmul parameter is a weight too
    model.eval()
    x = torch.randn(2, 4, 8, 8)
    with torch.no_grad():
        plain.conv.weight.mul_(_masks(model)["s:conv:weight"])
        plain.proj.mul_(_masks(model)["s:proj"])
        assert torch.allclose(model(x), plain(x), atol=1e-6)


def test_scopes_select_layers_and_unknown_scopes_are_errors() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(ignored_scopes=["fc", "{re}stem"]))
    assert sorted(_masks(model)) == ["s:conv1:weight", "s:conv2:weight"]
    with pytest.raises(UnsupportedModelError, match="ignored_scopes: 'fcc' matched no module. Did you mean 'fc'"):
        create_compressed_model(seeded(TinyResNet()), _cfg(ignored_scopes=["fcc"]))
    with pytest.raises(UnsupportedModelError, match="no conv/linear weight to sparsify"):
        create_compressed_model(seeded(TinyResNet()), _cfg(target_scopes=["bn1"]))


def test_init_level_runs_batchnorm_adaptation_with_a_loader() -> None:
    model = seeded(TinyResNet())
    before = model.bn1.running_mean.clone()
    cfg = register_default_init_args(_cfg(sparsity_init=0.5, initializer={
        "batchnorm_adaptation": {"num_bn_adaptation_samples": 32}}), _loader())
    create_compressed_model(model, cfg)
    assert not torch.allclose(model.bn1.running_mean, before)

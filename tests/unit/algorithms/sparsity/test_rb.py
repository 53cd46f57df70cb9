"""RB sparsity: sampled masks, the loss and its closed form, convergence to the level, freeze, state, strip."""

from __future__ import annotations

import copy
import math
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded

from netsculpt import create_compressed_model, load_state
from netsculpt.algorithms.sparsity.masks import RBMask
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _cfg(**algo: Any) -> dict[str, Any]:
    return {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "rb_sparsity", **algo}}


def _rb_masks(model: torch.nn.Module) -> dict[str, RBMask]:
    rt = get_runtime(model)
    assert rt is not None
    return {k: m for k, m in rt.ops.items() if isinstance(m, RBMask)}


def test_sampled_mask_keeps_each_weight_with_probability_sigmoid_of_its_logit() -> None:
    torch.manual_seed(0)
    mask = RBMask(torch.ones(40_000))
    with torch.no_grad():
        mask.logit[:20_000] = math.log(0.3 / 0.7)
        mask.logit[20_000:] = math.log(0.8 / 0.2)
    ones = torch.ones(40_000)
    mask.train()
    sampled = mask(ones).detach()
    assert set(sampled.unique().tolist()) <= {0.0, 1.0}
    assert float(sampled[:20_000].mean()) == pytest.approx(0.3, abs=0.015)
    assert float(sampled[20_000:].mean()) == pytest.approx(0.8, abs=0.015)
    assert not torch.equal(sampled, mask(ones).detach())  # fresh noise at every forward
    mask.eval()
    assert torch.equal(mask(ones), (mask.logit > 0).float())  # eval: deterministic [σ(s) > 0.5]


def test_loss_matches_the_closed_form_global_and_local() -> None:
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(sparsity_init=0.5))
    assert ctrl.loss().item() == pytest.approx(((1.0 - 0.5) / 0.05) ** 2)
    masks = list(_rb_masks(model).values())
    with torch.no_grad():
        masks[0].logit.view(-1)[:27] = -1.0  # 27 of the stem's 216 weights dropped
    total = sum(m.logit.numel() for m in masks)
    density = 1 - 27 / total
    assert ctrl.loss().item() == pytest.approx(((density - 0.5) / 0.05) ** 2, rel=1e-5)

    ctrl_l, model_l = create_compressed_model(
        seeded(TinyResNet()), _cfg(sparsity_init=0.5, params={"sparsity_level_setting_mode": "local"})
    )
    masks_l = list(_rb_masks(model_l).values())
    with torch.no_grad():
        masks_l[0].logit.view(-1)[:27] = -1.0
    deviation = (1 - 27 / 216 - 0.5) + 0.5 * (len(masks_l) - 1)
    assert ctrl_l.loss().item() == pytest.approx((deviation / 0.05) ** 2, rel=1e-5)


def test_rb_loss_drives_sparsity_to_the_target_in_a_few_dozen_steps() -> None:
    torch.manual_seed(0)
    ctrl, model = create_compressed_model(seeded(TinyResNet()), _cfg(sparsity_init=0.5, compression_lr_multiplier=1e4))
    g = torch.Generator().manual_seed(0)
    x_all, y_all = torch.randn(64, 3, 8, 8, generator=g), torch.randint(0, 10, (64,), generator=g)
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    model.train()
    first = ctrl.loss().item()
    for _ in range(40):
        ctrl.scheduler.step()
        idx = torch.randint(0, 64, (16,), generator=g)
        loss = torch.nn.functional.cross_entropy(model(x_all[idx]), y_all[idx]) + ctrl.loss()
        opt.zero_grad()
        loss.backward()
        opt.step()
    stats = ctrl.statistics().as_dict()["rb_sparsity"]
    assert stats["sparsity_level_for_layers"] == pytest.approx(0.5, abs=0.05), stats
    assert stats["loss"] < 0.05 * first


def test_compression_lr_multiplier_scales_the_logit_gradient() -> None:
    grads = []
    for mult in (None, 10.0):
        ctrl, model = create_compressed_model(
            seeded(TinyResNet()), _cfg(sparsity_init=0.5, **({"compression_lr_multiplier": mult} if mult else {}))
        )
        ctrl.loss().backward()
        grads.append(next(iter(_rb_masks(model).values())).logit.grad.clone())  # type: ignore[union-attr]
    assert torch.allclose(grads[1], 10 * grads[0])
    assert float(grads[0].abs().sum()) > 0


def test_freeze_disables_the_loss_and_fixes_the_masks() -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _cfg(sparsity_init=0.3, params={"sparsity_freeze_epoch": 1})
    )
    ctrl.scheduler.epoch_step()
    assert ctrl.loss().item() > 0
    ctrl.scheduler.epoch_step()
    assert ctrl.loss().item() == 0.0
    model.train()
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model(x), model(x))  # no sampling once frozen
    assert all(not m.logit.requires_grad for m in _rb_masks(model).values())


def test_state_round_trip_and_strip() -> None:
    cfg = _cfg(sparsity_init=0.2, params={"sparsity_freeze_epoch": 1})
    ctrl, model = create_compressed_model(seeded(TinyResNet()), cfg)
    with torch.no_grad():
        for m in _rb_masks(model).values():
            m.logit.copy_(torch.randn(m.logit.shape))
    ctrl.scheduler.epoch_step()
    ctrl.scheduler.epoch_step()
    state, sd = ctrl.get_compression_state(), copy.deepcopy(model.state_dict())
    ctrl2, model2 = create_compressed_model(seeded(TinyResNet()), cfg, compression_state=state)
    load_state(model2, sd, is_resume=True)
    assert ctrl2.statistics().as_dict()["rb_sparsity"]["frozen"]
    assert ctrl2.loss().item() == 0.0
    x = torch.randn(4, 3, 8, 8)
    model.train()
    model2.train()
    with torch.no_grad():
        assert torch.equal(model(x), model2(x))
    stripped = ctrl2.strip()
    assert get_runtime(stripped) is None
    model2.eval()
    with torch.no_grad():
        assert torch.equal(stripped(x), model2(x))
    measured = ctrl2.statistics().as_dict()["rb_sparsity"]["sparsity_level_for_layers"]
    weights = [p for n, p in stripped.named_parameters() if p.dim() > 1]
    assert sum(int((w == 0).sum()) for w in weights) / sum(w.numel() for w in weights) == pytest.approx(measured)


def test_compression_rate_sets_the_loss_target() -> None:
    ctrl, _ = create_compressed_model(seeded(TinyResNet()), _cfg())
    assert ctrl.loss().item() == 0.0
    ctrl.compression_rate = 0.4
    assert ctrl.compression_rate == pytest.approx(0.4)
    assert ctrl.loss().item() == pytest.approx((0.4 / 0.05) ** 2)


def test_freezing_below_the_level_warns_with_the_logit_arithmetic(caplog: pytest.LogCaptureFixture) -> None:
    ctrl, model = create_compressed_model(
        seeded(TinyResNet()), _cfg(sparsity_init=0.5, params={"sparsity_freeze_epoch": 1})
    )
    ctrl.scheduler.epoch_step()
    with caplog.at_level("WARNING", logger="netsculpt.algorithms.sparsity.rb"):
        ctrl.scheduler.epoch_step()  # freeze with every logit still at logit(0.99): sparsity 0 against 0.5
    assert "masks frozen at epoch 1 with sparsity 0.000, below the scheduled level 0.500" in caplog.text
    assert "'*.logit'" in caplog.text

    ctrl, model = create_compressed_model(  # negative control: the masks reached the level before the freeze
        seeded(TinyResNet()), _cfg(sparsity_init=0.5, params={"sparsity_freeze_epoch": 1})
    )
    ctrl.scheduler.epoch_step()
    for m in _rb_masks(model).values():
        with torch.no_grad():
            m.logit.view(-1)[: m.logit.numel() // 2] = -1.0
    caplog.clear()
    with caplog.at_level("WARNING", logger="netsculpt.algorithms.sparsity.rb"):
        ctrl.scheduler.epoch_step()
    assert "masks frozen" not in caplog.text

"""Channel groups on the pattern zoo: masked == physically pruned, a negative control, and refusals."""

from __future__ import annotations

import logging

import pytest
import torch
from tests.unit.algorithms.pruning._helpers import X, prune, rel
from tests.unit.algorithms.pruning._zoo import HANDLED, REFUSED, ResidualNet, seeded
from torch import nn

from netsculpt.algorithms.pruning.part import mask_key
from netsculpt.errors import UnsupportedModelError
from netsculpt.graph import get_runtime
from netsculpt.metrics.macs import count_macs


def _params(m: nn.Module) -> int:
    return sum(p.numel() for n, p in m.named_parameters() if not n.startswith("_netsculpt"))


@pytest.mark.parametrize("cls", HANDLED, ids=lambda c: c.__name__)
def test_masked_equals_physically_pruned(cls: type[nn.Module]) -> None:
    model = seeded(cls())
    before = _params(model)
    ctrl, model = prune(model, 0.5)
    masked = model(X)
    stripped = ctrl.strip()
    pruned = stripped(X)
    assert pruned.shape == masked.shape
    assert rel(pruned, masked) <= 1e-5, f"{cls.__name__}: pruned model differs from the masked one"
    assert _params(stripped) < before, f"{cls.__name__}: nothing was physically removed"
    stats = ctrl.statistics().as_dict()["filter_pruning"]
    assert 2 * count_macs(stripped, (X,)).total == stats["flops_after"], (
        "predicted FLOPs differ from the pruned model's"
    )
    assert _params(stripped) == stats["params_after"]
    kept = stats["remaining_channels"]
    mods = dict(stripped.named_modules())
    for name, n in kept.items():
        w = mods[name].weight  # type: ignore[union-attr]
        assert w.shape[1 if isinstance(mods[name], nn.ConvTranspose2d) else 0] == n, name


@pytest.mark.parametrize("cls", HANDLED, ids=lambda c: c.__name__)
def test_negative_control_filter_masks_alone_are_not_removal(cls: type[nn.Module]) -> None:
    """Zeroing filters without their norms and consumers' inputs is NOT equivalent: the check can fail."""
    ctrl, model = prune(seeded(cls()), 0.5)
    pruned = ctrl.strip()(X)
    rt = get_runtime(model)
    assert rt is not None
    for name, spec in ctrl.child_ctrls[0].pg.layers.items():  # keep only the filters' own masks
        for side in ("in",) if spec.role != "norm" else ("out",):
            key = mask_key(name, side)
            if key in rt.ops:
                rt.ops[key].mask.fill_(1.0)
    assert rel(model(X), pruned) > 1e-3, f"{cls.__name__}: the equivalence check cannot tell a broken group"


def test_negative_control_slicing_a_conv_without_its_bn_breaks_the_model() -> None:
    from netsculpt.algorithms.pruning.surgery import get_surgery

    model = seeded(ResidualNet())
    conv = model.c1[0]
    surgery = get_surgery(conv)
    assert surgery is not None
    surgery.prune_out(conv, torch.arange(4))
    surgery.prune_in(model.c2[0], torch.arange(4))
    with pytest.raises(RuntimeError):
        model(X)  # the BN of c1 still has 8 channels


@pytest.mark.parametrize("cls", list(REFUSED), ids=lambda c: c.__name__)
def test_unknown_ops_block_with_one_warning(cls: type[nn.Module], caplog: pytest.LogCaptureFixture) -> None:
    op, layers = REFUSED[cls]
    with caplog.at_level(logging.WARNING, logger="netsculpt"):
        ctrl, model = prune(seeded(cls()), 0.5)
    warnings = [r for r in caplog.records if "unknown" in r.getMessage()]
    assert len(warnings) == 1
    for name in layers:
        assert name in warnings[0].getMessage() and op in warnings[0].getMessage()
    masked = model(X)
    stripped = ctrl.strip()
    assert rel(stripped(X), masked) <= 1e-5
    mods = dict(stripped.named_modules())
    orig = dict(cls().named_modules())
    for name in layers:
        assert mods[name].weight.shape[0] == orig[name].weight.shape[0]  # type: ignore[union-attr]


@pytest.mark.parametrize("cls", list(REFUSED), ids=lambda c: c.__name__)
def test_unknown_ops_refuse_targeted_layers(cls: type[nn.Module]) -> None:
    op, layers = REFUSED[cls]
    model = seeded(cls())
    state = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(UnsupportedModelError, match=f"{layers[0]}.*{op}"):
        _prune_targeted(model, layers[0])
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    assert get_runtime(model) is None


def _prune_targeted(model: nn.Module, layer: str) -> None:
    from netsculpt import create_compressed_model

    cfg = {
        "input_info": {"sample_size": list(X.shape)},
        "compression": {"algorithm": "filter_pruning", "target_scopes": [layer], "params": {"prune_first_conv": True}},
    }
    create_compressed_model(model, cfg, example_inputs=(X,))


def test_groups_module_re_exports_graph_channels() -> None:
    import netsculpt.algorithms.pruning as pruning
    from netsculpt.algorithms.pruning import groups
    from netsculpt.graph import channels

    for name in channels.__all__:
        assert getattr(groups, name) is getattr(channels, name), name
    assert pruning.build_groups is channels.build_groups and pruning.PruningGraph is channels.PruningGraph

"""apply_policy / current_policy / set_pruning_level on the live model; strip, export and resume afterwards."""

from __future__ import annotations

import copy

import numpy as np
import onnxruntime as ort
import pytest
import torch
from tests.unit.search._fixtures import X, compressed, config, tiny

from netsculpt import ConfigError, create_compressed_model, load_state
from netsculpt.search import Policy, SearchSpace


def test_apply_then_read_back() -> None:
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    for seed in range(3):
        p = Policy.random(space, seed)
        applied = ctrl.apply_policy(p)
        assert ctrl.current_policy().validate(space) == p.validate(space) == applied


def test_apply_changes_quantizer_bits_in_place_and_keeps_ranges() -> None:
    ctrl, _ = compressed(tiny(), config(pruning=False))
    quant = ctrl.child_ctrls[0]
    info = next(i for i in quant.infos if i.group == "weights")
    q = quant.quantizer(info.key)
    scale = q.scale.detach().clone()
    ctrl.apply_policy(Policy({}, {info.target: 4}))
    assert q.bits == 4 and q.level_high == 7 and torch.equal(q.scale, scale)
    ctrl.apply_policy(Policy({}, {info.target: 8}))
    assert q.bits == (7 if info.key in quant.halved else 8)  # the overflow fix trains 8-bit weights on 7


def test_bad_policy_leaves_the_model_untouched() -> None:
    ctrl, model = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    ctrl.apply_policy(Policy.random(space, 0))
    before = copy.deepcopy(model.state_dict())
    policy = ctrl.current_policy()
    bad = Policy({**policy.keep, space.groups[0].name: 0.5}, {**policy.bits, "fc.weight": 9})
    with pytest.raises(ConfigError, match="fc.weight"):
        ctrl.apply_policy(bad)
    with pytest.raises(ConfigError, match="not a channel group"):
        ctrl.apply_policy(Policy({"nope": 0.5}, {}))
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert ctrl.current_policy() == policy


def test_set_pruning_level_per_group_as_nncf() -> None:
    ctrl, _ = compressed(tiny(), config(quant=False))
    space = SearchSpace.from_controller(ctrl)
    first, second = space.groups[0], space.groups[1]
    ctrl.set_pruning_level({first.name: 0.5})
    keep = ctrl.current_policy().keep
    assert keep[first.name] == (first.units - int(first.units * 0.5)) / first.units and keep[second.name] == 1.0
    ctrl.set_pruning_level({second.name: 0.25})
    keep = ctrl.current_policy().keep
    assert keep[first.name] < 1.0 and keep[second.name] < 1.0
    ctrl.set_pruning_level(0.0)
    assert set(ctrl.current_policy().keep.values()) == {1.0}
    with pytest.raises(
        ConfigError, match=r"set_pruning_level\['" + first.name + r"'\]: a pruning level must be in \[0, 1\); got 1.0"
    ):
        ctrl.set_pruning_level({first.name: 1.0})
    with pytest.raises(ConfigError, match="not a channel group"):
        ctrl.set_pruning_level({"nope": 0.5})


@pytest.mark.onnx
def test_strip_and_export_after_apply_give_the_pruned_mixed_precision_model(tmp_path) -> None:
    ctrl, model = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    policy = Policy.uniform(space, keep=0.5, bits=4)
    ctrl.apply_policy(policy)
    model.eval()
    with torch.no_grad():
        masked = model(X)
    stripped = ctrl.strip()
    with torch.no_grad():
        assert torch.allclose(stripped(X), masked, atol=1e-5)
    conv = dict(stripped.named_modules())[space.groups[0].name]
    assert conv.out_channels == space.groups[0].kept_count(0.5)
    path = ctrl.export_model(tmp_path / "m.onnx")
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]
    import onnx
    from onnx import numpy_helper

    m = onnx.load(str(path))
    # ONNX Runtime's integer Gemm adds the bias as int32 at scale s_x * s_w: with 4-bit weights that rounding
    # (at most half a step per output) is the only difference allowed beyond float noise
    inits = {t.name: numpy_helper.to_array(t) for t in m.graph.initializer}
    bias_steps = [float(inits[n.input[1]].max()) for n in m.graph.node
                  if n.op_type == "DequantizeLinear" and inits.get(n.input[0], np.zeros(0)).dtype == np.int32]  # fmt: skip
    tol = 1e-3 + max(bias_steps, default=0.0) / 2
    assert tol < 1e-2 and abs(got - masked.numpy()).max() < tol
    # 4-bit weights live in int8 containers: every stored weight value lies in the 4-bit range [-8, 7]
    int8 = [numpy_helper.to_array(t) for t in m.graph.initializer if t.data_type == onnx.TensorProto.INT8]
    weights = [a for a in int8 if a.ndim == 4]
    assert weights and all(a.min() >= -8 and a.max() <= 7 for a in weights)


def test_resume_after_apply_restores_masks_and_bits() -> None:
    base = config()
    ctrl, model = compressed(tiny(), base)
    space = SearchSpace.from_controller(ctrl)
    policy = Policy.random(space, 5)
    ctrl.apply_policy(policy)
    state = ctrl.get_compression_state()
    sd = copy.deepcopy(model.state_dict())
    ctrl2, model2 = create_compressed_model(tiny(), base, example_inputs=(X,), compression_state=state)
    load_state(model2, sd, is_resume=True)
    assert ctrl2.current_policy().validate(space) == policy.validate(space)
    model.eval()
    model2.eval()
    with torch.no_grad():
        assert torch.equal(model(X), model2(X))

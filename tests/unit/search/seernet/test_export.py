"""A searched policy exports to a config and an ONNX model that runs in ONNX Runtime with the policy's bits."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from tests.unit.search._fixtures import X, config, tiny
from tests.unit.search.seernet._helpers import tiny_space

from netsculpt import create_compressed_model
from netsculpt.search import seernet as sn


def _stored_bits(values: np.ndarray, allowed: tuple[int, ...]) -> int:
    """The fewest allowed bits whose signed range holds every stored weight value."""
    return next(b for b in sorted(allowed) if values.min() >= -(2 ** (b - 1)) and values.max() <= 2 ** (b - 1) - 1)


@pytest.mark.onnx
def test_searched_policy_exports_and_runs_with_the_expected_bits(tmp_path: Path) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import numpy_helper

    ctrl, space, enc = tiny_space()
    torch.manual_seed(3)
    found = sn.search(sn.MLPPredictor(enc.dim), enc, 0.35 * sn.reference_cost(space),
                      config=sn.BarrierConfig(steps=40))
    weight_bits = {q.name: found.policy.bits[q.name] for q in space.quantizers if q.group == "weights"}
    assert min(weight_bits.values()) < 8  # the budget forces sub-8-bit layers
    paths = sn.export(ctrl, found.policy, config(), space, tmp_path)
    assert json.loads(paths["policy"].read_text()) == found.policy.to_dict()
    model = ctrl.model.eval()
    with torch.no_grad():
        expected = model(X).numpy()
    sess = ort.InferenceSession(str(paths["onnx"]), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: X.numpy()})[0]
    assert np.abs(got - expected).max() < 1e-3
    stored = {t.name.removesuffix("_quantized"): numpy_helper.to_array(t)
              for t in onnx.load(str(paths["onnx"])).graph.initializer if t.name.endswith(".weight_quantized")}
    assert set(stored) == set(weight_bits)
    for name, bits in weight_bits.items():
        assert _stored_bits(stored[name], (2, 4, 6, 8)) == bits, name
        layer = name.removesuffix(".weight")
        if any(g.name == layer for g in space.groups):
            assert stored[name].shape[0] == space.group(layer).kept_count(found.policy.keep[layer])
    # the written config rebuilds the same policy through create_compressed_model
    ctrl2, _ = create_compressed_model(tiny(), json.loads(paths["config"].read_text()), example_inputs=(X,))
    assert ctrl2.current_policy() == ctrl.current_policy()

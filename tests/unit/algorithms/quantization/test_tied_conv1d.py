"""Issue 11 items 3 and 6 for quantization: a tied weight has one quantizer read by every user; a ``Conv1D``
(``addmm`` with a ``[in, out]`` weight) is quantized per output channel, on axis 1."""

from __future__ import annotations

import torch
from tests.unit.graph.test_weights import TiedLM, _ids

from netsculpt import create_compressed_model


def _quantize(per_channel: bool = True) -> tuple[object, torch.nn.Module]:
    torch.manual_seed(0)
    cfg = {"algorithm": "quantization", "weights": {"per_channel": per_channel}}
    return create_compressed_model(TiedLM().eval(), {"input_info": {"sample_size": [2, 5], "type": "long"}, "compression": cfg})


def test_a_tied_weight_has_one_quantizer_at_every_use_and_stays_tied() -> None:
    ctrl, model = _quantize()
    infos = {i.key: i for i in ctrl.child_ctrls[0].infos}  # type: ignore[attr-defined]
    assert "w:lm_head:weight" not in infos  # no second quantizer under the alias
    tied = infos["w:wte:weight"]
    assert {a[1] for a, _ in tied.uses} == {"embedding", "linear"}
    ids = _ids()
    with torch.no_grad():
        before = model(ids)
        q = model._netsculpt.ops["w:wte:weight"]  # type: ignore[union-attr,index]
        w = model.wte.weight  # type: ignore[union-attr]
        assert not torch.equal(q(w), w)  # the quantizer changes the weight (negative control for the next check)
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    assert stripped.lm_head.weight is stripped.wte.weight
    with torch.no_grad():
        assert torch.allclose(stripped(ids), before, atol=1e-5)


def test_conv1d_is_quantized_per_output_channel_on_axis_1() -> None:
    ctrl, _ = _quantize()
    infos = {i.key: i for i in ctrl.child_ctrls[0].infos}  # type: ignore[attr-defined]
    fc = infos["w:mlp:0:weight"]  # weight [in 8, out 16]
    assert (fc.per_channel, fc.axis, fc.num_channels) == (True, 1, 16)
    proj = infos["w:mlp:2:weight"]  # weight [in 16, out 8]
    assert (proj.axis, proj.num_channels) == (1, 8)
    linear = infos["w:wte:weight"]  # nn.Linear weight [out 20, in 8]: axis 0 (negative control)
    assert (linear.axis, linear.num_channels) == (0, 20)

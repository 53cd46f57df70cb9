"""Issue 11 items 3 and 6 for sparsity: a tied weight gets one mask seen by all its users; ``addmm`` linears
(Hugging Face ``Conv1D``), bare-parameter matmuls and LSTM / GRU weights are sparsified; weight norm is reported."""

from __future__ import annotations

import copy
import logging
import warnings

import pytest
import torch
from tests.unit.graph.test_weights import TiedLM, _ids
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.graph.hooks import get_runtime


def _sparse(model: nn.Module, sample: list[int], kind: str = "long", **alg: object) -> tuple[object, nn.Module]:
    cfg = {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5, **alg}
    return create_compressed_model(model, {"input_info": {"sample_size": sample, "type": kind}, "compression": cfg})


def test_a_tied_weight_has_one_mask_applied_at_both_uses_and_stays_tied() -> None:
    torch.manual_seed(0)
    model = TiedLM().eval()
    ctrl, cm = _sparse(model, [2, 5])
    part = ctrl.child_ctrls[0]  # type: ignore[attr-defined]
    tied = next(layer for layer in part.layers if layer.param == "wte.weight")
    assert {a[1] for a, _ in tied.uses} == {"embedding", "linear"}
    assert sum(layer.param in ("wte.weight", "lm_head.weight") for layer in part.layers) == 1
    ids = _ids()
    with torch.no_grad():
        masked = cm(ids)
    rt = get_runtime(cm)
    assert rt is not None
    no_emb = copy.deepcopy(cm)  # negative control: without the hook on the embedding the result differs
    rt2 = get_runtime(no_emb)
    assert rt2 is not None
    emb = next(a for a, _ in tied.uses if a[1] == "embedding")
    del rt2.pre_hooks[emb]
    with torch.no_grad():
        assert (no_emb(ids) - masked).abs().max() > 1e-3
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    with torch.no_grad():
        assert torch.equal(stripped(ids), masked)  # both users saw the mask, as both see the zeros now
    assert stripped.lm_head.weight is stripped.wte.weight
    assert 0.4 < float((stripped.wte.weight == 0).float().mean()) < 0.6


def test_conv1d_layers_are_sparsified_to_the_target() -> None:
    torch.manual_seed(0)
    ctrl, cm = _sparse(TiedLM().eval(), [2, 5], params={"sparsity_level_setting_mode": "local"})
    stats = ctrl.statistics().as_dict()["magnitude_sparsity"]  # type: ignore[attr-defined]
    assert {layer.param for layer in ctrl.child_ctrls[0].layers} == {"wte.weight", "mlp.0.weight", "mlp.2.weight"}  # type: ignore[attr-defined]
    assert stats["sparsity_level_for_layers"] == pytest.approx(0.5, abs=0.01)
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    for conv1d in (stripped.mlp[0], stripped.mlp[2]):
        assert float((conv1d.weight == 0).float().mean()) == pytest.approx(0.5, abs=0.02)
        assert not bool((conv1d.bias == 0).any())  # the added term of addmm is a bias, never masked


class RNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lstm = nn.LSTM(4, 8, batch_first=True)
        self.gru = nn.GRU(8, 8, batch_first=True)
        self.fc = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y, _ = self.lstm(x)
        y, _ = self.gru(y)
        return self.fc(y[:, -1])


@pytest.mark.parametrize("algorithm", ["magnitude_sparsity", "const_sparsity", "rb_sparsity"])
def test_lstm_and_gru_weights_are_sparsifiable(algorithm: str) -> None:
    torch.manual_seed(0)
    model = RNN().eval()
    x = torch.randn(2, 5, 4)
    cfg = {"algorithm": algorithm, **({} if algorithm == "const_sparsity" else {"sparsity_init": 0.5})}
    ctrl, cm = create_compressed_model(model, {"input_info": {"sample_size": [2, 5, 4]}, "compression": cfg})
    params = {layer.param for layer in ctrl.child_ctrls[0].layers}  # type: ignore[attr-defined]
    assert {"lstm.weight_ih_l0", "lstm.weight_hh_l0", "gru.weight_ih_l0", "gru.weight_hh_l0"} <= params
    assert "weights_left_uncompressed" not in ctrl.statistics().as_dict()[algorithm]  # type: ignore[attr-defined]
    if algorithm != "magnitude_sparsity":
        return
    cm.eval()
    with torch.no_grad():
        masked = cm(x)
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    with torch.no_grad():
        assert torch.allclose(stripped(x), masked, atol=1e-6)
    assert float((stripped.lstm.weight_hh_l0 == 0).float().mean()) > 0.2


def test_weight_norm_is_reported_naming_the_module(caplog: pytest.LogCaptureFixture) -> None:
    class WN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = nn.utils.parametrizations.weight_norm(nn.Linear(4, 8))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)
                self.b = nn.utils.weight_norm(nn.Linear(8, 8))
            self.fc = nn.Linear(8, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.b(self.a(x)))

    with caplog.at_level(logging.WARNING, logger="netsculpt.metrics.coverage"):
        ctrl, _ = _sparse(WN(), [2, 4], kind="float")
    assert ctrl.statistics().as_dict()["magnitude_sparsity"]["weights_left_uncompressed"] == 2  # type: ignore[attr-defined]
    text = caplog.text
    assert "a.weight (ParametrizedLinear, read by _weight_norm; weight norm" in text
    assert "b.weight (Linear, read by _weight_norm; weight norm" in text
    assert "fc.weight" not in text  # negative control: the plain Linear is sparsified


def test_a_baddbmm_weight_is_sparsified_and_quantized() -> None:
    class Batched(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.weight = nn.Parameter(torch.randn(2, 4, 6))
            self.bias = nn.Parameter(torch.randn(2, 1, 6))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return torch.baddbmm(self.bias, x, self.weight)

    torch.manual_seed(0)
    ctrl, _ = _sparse(Batched(), [2, 3, 4], kind="float")
    assert [layer.param for layer in ctrl.child_ctrls[0].layers] == ["weight"]  # type: ignore[attr-defined]
    stripped = ctrl.strip()  # type: ignore[attr-defined]
    assert float((stripped.weight == 0).float().mean()) == pytest.approx(0.5)
    assert not bool((stripped.bias == 0).any())  # the added term of baddbmm is a bias, never masked
    q = {"input_info": {"sample_size": [2, 3, 4]}, "compression": {"algorithm": "quantization"}}
    qctrl, _ = create_compressed_model(Batched(), q)
    assert "w:weight" in {i.key for i in qctrl.child_ctrls[0].infos}  # type: ignore[attr-defined]

"""Issue 11 items 3 and 6 on the graph: tied parameters get one canonical name; weight operands of ``addmm``
(Hugging Face ``Conv1D``), ``matmul`` and LSTM / GRU calls, with their output axis and every read."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netsculpt.errors import UnsupportedModelError
from netsculpt.graph.channels import build_groups, tied_layers
from netsculpt.graph.hooks import attach_runtime, detach_runtime
from netsculpt.graph.trace import ModelGraph
from netsculpt.graph.weights import param_slots, weight_operands, weight_out_axis


class Conv1D(nn.Module):
    """Hugging Face's ``Conv1D`` as ``transformers.pytorch_utils`` writes it: weight ``[in, out]``, ``addmm``."""

    def __init__(self, nf: int, nx: int) -> None:
        super().__init__()
        self.nf = nf
        self.weight = nn.Parameter(torch.randn(nx, nf) * 0.2)
        self.bias = nn.Parameter(torch.randn(nf) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size_out = x.size()[:-1] + (self.nf,)
        return torch.addmm(self.bias, x.view(-1, x.size(-1)), self.weight).view(size_out)


class TiedLM(nn.Module):
    """An embedding whose weight is the LM head's (``lm_head.weight is wte.weight``), as GPT-2 ties them."""

    def __init__(self, vocab: int = 20, dim: int = 8) -> None:
        super().__init__()
        self.wte = nn.Embedding(vocab, dim)
        self.mlp = nn.Sequential(Conv1D(16, dim), nn.GELU(), Conv1D(dim, 16))
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        h = self.wte(ids)
        return self.lm_head(h + self.mlp(h))


def _ids() -> torch.Tensor:
    return torch.randint(0, 20, (2, 5), generator=torch.Generator().manual_seed(0))


def test_a_tied_parameter_has_one_canonical_name_and_lists_its_aliases() -> None:
    g = ModelGraph.build(TiedLM(), (_ids(),))
    assert "wte.weight" in g.param_shapes and "lm_head.weight" not in g.param_shapes
    assert g.names_of("wte.weight") == ("wte.weight", "lm_head.weight")
    assert g.names_of("mlp.0.weight") == ("mlp.0.weight",)  # negative control: not tied
    reads = {(a[0], a[1]) for a, _ in param_slots(g, "wte.weight")}
    assert reads == {("wte", "embedding"), ("lm_head", "linear")}  # both users, under the one name


def test_conv1d_weight_operand_has_its_output_axis_last() -> None:
    g = ModelGraph.build(TiedLM(), (_ids(),))
    addmm = next(g.ops("addmm"))
    ((ref, slot),) = weight_operands(g, addmm)
    assert (ref.ref, slot) == ("mlp.0.weight", 2)  # the bias (argument 0) is an added term, not a weight
    assert weight_out_axis("addmm", 2, 2) == 1 and weight_out_axis("linear", 1, 2) == 0
    assert weight_out_axis("matmul", 1, 2) == 1 and weight_out_axis("conv_transpose2d", 1, 4) == 1


def test_lstm_and_gru_weights_are_list_elements() -> None:
    class RNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lstm = nn.LSTM(4, 6, batch_first=True)
            self.gru = nn.GRU(6, 6, batch_first=True)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.gru(self.lstm(x)[0])[0]

    g = ModelGraph.build(RNN(), (torch.randn(2, 3, 4),))
    found = {str(r.ref): slot for n in g.nodes for r, slot in weight_operands(g, n)}
    assert found == {
        "lstm.weight_ih_l0": (2, 0), "lstm.weight_hh_l0": (2, 1), "gru.weight_ih_l0": (2, 0), "gru.weight_hh_l0": (2, 1)
    }  # fmt: skip  # biases (1-D) are not weights


def test_conv1d_mlp_forms_a_channel_group_and_the_tied_head_is_refused() -> None:
    g = ModelGraph.build(TiedLM(), (_ids(),))
    pg = build_groups(g)
    assert [grp.layers for grp in pg.groups] == [("mlp.0",)]  # the hidden width of the Conv1D MLP
    assert pg.layers["mlp.0"].role == "linear_t" and pg.layers["mlp.0"].out_size == 16
    assert pg.layers["mlp.2"].in_size == 16
    assert tied_layers(g) == {"lm_head": ("wte",)}
    assert "lm_head" not in pg.layers  # never sliced: its rows are the embedding's


class _Zero(nn.Module):
    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return w * 0


def test_a_hook_on_a_list_element_replaces_that_tensor_only() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.LSTM(4, 6, batch_first=True)).eval()
    x = torch.randn(2, 3, 4)
    with torch.no_grad():
        plain = model(x)[0]
        rt = attach_runtime(model)
        rt.add_op("zero", _Zero())
        rt.hook_arg(("0", "lstm", 0), (2, 1), "zero", 10)  # weight_hh_l0
        hooked = model(x)[0]
        ref = nn.LSTM(4, 6, batch_first=True)
        ref.load_state_dict({k: (v * 0 if k == "weight_hh_l0" else v) for k, v in model[0].state_dict().items()})
        assert not torch.allclose(hooked, plain) and torch.allclose(hooked, ref(x)[0], atol=1e-6)
        rt.hook_arg(("0", "lstm", 0), (2, 9), "zero", 10)
        with pytest.raises(UnsupportedModelError, match=r"0/lstm_0: .* tensor 9 of the list in argument 2"):
            model(x)
    detach_runtime(model)

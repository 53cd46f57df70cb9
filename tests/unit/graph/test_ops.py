"""The op vocabulary: one definition per kind, traced names, and quantization of addmm-like products."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from netsculpt import create_compressed_model
from netsculpt.graph import get_runtime, ops
from netsculpt.graph.trace import ModelGraph
from netsculpt.metrics import count_macs

#: The kinds the channel walk dispatches on (in this order): an op in two of them would be ambiguous.
_WALK_KINDS = {
    "weighted": ops.WEIGHTED_OPS,
    "norm": ops.NORM_OPS,
    "elementwise": ops.ELEMENTWISE_OPS,
    "channel_keeping": ops.CHANNEL_KEEPING_OPS,
    "reshape": ops.RESHAPE_OPS,
    "permute": ops.PERMUTE_OPS,
    "reduction": ops.REDUCTION_OPS,
    "concat": ops.CONCAT_OPS,
    "slice": ops.SLICE_OPS,
    "matmul": ops.MATMUL_OPS,
}


def test_every_kind_is_a_non_empty_frozenset() -> None:
    for name in ops.__all__:
        value = getattr(ops, name)
        if name.endswith("_OPS") or name.endswith("_MODULES"):
            assert isinstance(value, frozenset) and value, name


def test_channel_walk_kinds_are_disjoint() -> None:
    names = list(_WALK_KINDS)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            assert not _WALK_KINDS[a] & _WALK_KINDS[b], f"{a} and {b} share {sorted(_WALK_KINDS[a] & _WALK_KINDS[b])}"


def test_matmul_kind_includes_addmm_like_products_and_operators() -> None:
    assert {"matmul", "mm", "bmm", "__matmul__", "__rmatmul__"} <= ops.MATMUL_OPS
    assert sorted(ops.ADDMM_OPS) == ["addbmm", "addmm", "baddbmm"] and ops.ADDMM_OPS <= ops.MATMUL_OPS
    assert ops.COMPUTE_OPS == ops.WEIGHTED_OPS | ops.MATMUL_OPS
    assert ops.is_added_term("addmm", 0) and ops.is_added_term("baddbmm", "input")
    assert not ops.is_added_term("addmm", 1) and not ops.is_added_term("matmul", 0)


def test_weight_axis_covers_every_weighted_op() -> None:
    assert set(ops.WEIGHT_OUT_AXIS) == ops.WEIGHTED_OPS
    assert {op for op, axis in ops.WEIGHT_OUT_AXIS.items() if axis == 1} == ops.CONV_TRANSPOSE_OPS


def test_quantization_transparent_ops_do_not_compute_or_change_values() -> None:
    changing = ops.COMPUTE_OPS | ops.ACTIVATION_OPS | ops.ARITHMETIC_OPS | ops.AVG_POOL_OPS | ops.NORM_OPS
    assert not ops.QUANTIZATION_TRANSPARENT_OPS & changing
    assert not ops.QUANTIZATION_TRANSPARENT_OPS & ops.CONCAT_OPS  # concats are walked through all their inputs


def test_modules_use_the_shared_sets() -> None:
    from netsculpt.algorithms.quantization import placement
    from netsculpt.graph import producers
    from netsculpt.metrics import bits, macs

    assert {"addmm", "baddbmm"} <= placement.MATMUL_OPS  # placement's matmul set once lacked them
    assert placement.producer_points is bits.producer_points is producers.producer_points  # one walk to producers
    assert macs.MATMUL_OPS is ops.MATMUL_OPS and macs.CONV_OPS is ops.CONV_OPS  # re-exported for old imports


class _Kinds(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.drop = nn.FeatureAlphaDropout(0.1)
        self.w = nn.Parameter(torch.randn(4, 4))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop(F.max_pool2d(torch.relu(self.conv(x)), 2))
        x = x.unflatten(2, (2, 2)).flatten(2, 3).swapaxes(1, 2).reshape_as(x)
        f = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return torch.addmm(f, f, self.w) @ self.w + torch.cat([f, f], 0)[:2]


def test_traced_names_fall_in_their_kinds() -> None:
    g = ModelGraph.build(_Kinds().eval(), (torch.randn(2, 3, 8, 8),))
    by_op = {n.op for n in g.nodes}
    expected = {
        "conv2d": ops.CONV_OPS,
        "relu": ops.ACTIVATION_OPS,
        "max_pool2d": ops.MAX_POOL_OPS,
        "feature_alpha_dropout": ops.DROPOUT_OPS,
        "unflatten": ops.RESHAPE_OPS,
        "swapaxes": ops.PERMUTE_OPS,
        "reshape_as": ops.RESHAPE_OPS,
        "adaptive_avg_pool2d": ops.AVG_POOL_OPS,
        "addmm": ops.ADDMM_OPS,
        "matmul": ops.MATMUL_OPS,  # ``@`` is traced as matmul
        "cat": ops.CONCAT_OPS,
        "__getitem__": ops.SLICE_OPS,
        "add": ops.ADD_OPS,  # so is ``+``
    }
    for op, kind in expected.items():
        assert op in by_op, f"{op} not traced (traced: {sorted(by_op)})"
        assert op in kind


class _AddmmNet(nn.Module):
    """Linear layers written as ``addmm`` / ``baddbmm`` on bare parameters."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.w = nn.Parameter(torch.randn(4, 6) * 0.3)
        self.b = nn.Parameter(torch.randn(6) * 0.1)
        self.w2 = nn.Parameter(torch.randn(1, 6, 3) * 0.3)
        self.b2 = nn.Parameter(torch.randn(1, 1, 3) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        f = torch.relu(self.conv(x)).mean((2, 3))
        h = torch.relu(torch.addmm(self.b, f, self.w))
        return torch.baddbmm(self.b2, h.unsqueeze(0), self.w2).squeeze(0)


def test_addmm_and_baddbmm_are_quantized_like_matmuls() -> None:
    from netsculpt.metrics.bits import quantization_bits

    torch.manual_seed(0)
    model = _AddmmNet().eval()
    x = torch.randn(2, 3, 8, 8)
    ref = model(x)
    cfg = {"input_info": {"sample_size": [2, 3, 8, 8]}, "compression": {"algorithm": "quantization"}}
    ctrl, qmodel = create_compressed_model(model, cfg, example_inputs=(x,))
    infos = {i.target if i.group == "weights" else i.key: i for i in ctrl.child_ctrls[0].infos}  # type: ignore[attr-defined]
    for weight, arg in (("w", 2), ("w2", 2)):
        assert weight in infos, sorted(infos)
        assert [a for _, a in infos[weight].uses] == [arg]  # the product operand, not the added term
    assert "b" not in infos and "b2" not in infos  # added terms (biases) keep full precision
    acts = [i for i in ctrl.child_ctrls[0].infos if i.group == "activations"]  # type: ignore[attr-defined]
    producers = {p[1][1] for i in acts for p in i.points if p[0] == "node"}
    assert {"mean", "relu"} <= producers  # inputs of addmm (mean) and of baddbmm (relu, through unsqueeze)
    rt = get_runtime(qmodel)
    assert rt is not None and set(rt.pre_hooks[("", "addmm", 0)]) == {2}  # runs on mat2 at training time
    assert qmodel(x).shape == ref.shape
    w_bits, a_bits = quantization_bits(ctrl)
    assert w_bits.get("<root>") == 8 and a_bits.get("<root>") == 8
    macs = count_macs(_AddmmNet(), (x,)).per_op
    assert macs["<root>/addmm_0"] == 4 * 6 and macs["<root>/baddbmm_0"] == 2 * 6 * 3 // 2

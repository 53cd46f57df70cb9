"""The op vocabulary: which traced op names (``Node.op``) belong to which kind.

Every analysis that reads a :class:`~netsculpt.graph.trace.ModelGraph` by op name (MAC counts, quantizer
placement, quantization bits, channel dependencies, BN folding, sparsity masks, stacking checks) takes its
sets from here, so each kind is defined once. Names are what the trace records: the called function's
``__name__`` (``conv2d``, ``__add__``, ``add_``, ``max_pool2d_with_indices``...). An op missing from a set is
simply not of that kind; analyses treat unknown ops conservatively.

Small kinds (``CONV_OPS``, ``DROPOUT_OPS``...) are the building blocks; the unions below them
(``ELEMENTWISE_OPS``, ``QUANTIZATION_TRANSPARENT_OPS``...) are what the analyses ask about.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

__all__ = [
    "ACTIVATION_OPS",
    "ADDMM_OPS",
    "ADD_OPS",
    "ARITHMETIC_OPS",
    "AVG_POOL_OPS",
    "CAST_OPS",
    "CHANNEL_KEEPING_OPS",
    "CHANNEL_NORM_MODULES",
    "CHANNEL_NORM_OPS",
    "COMPUTE_OPS",
    "CONCAT_OPS",
    "CONV_OPS",
    "CONV_TRANSPOSE_OPS",
    "COPY_OPS",
    "DROPOUT_OPS",
    "ELEMENTWISE_OPS",
    "LINEAR_OPS",
    "MATH_OPS",
    "MATMUL_OPS",
    "MAX_POOL_OPS",
    "NORM_OPS",
    "PERMUTE_OPS",
    "QUANTIZATION_TRANSPARENT_OPS",
    "REDUCTION_OPS",
    "RESHAPE_OPS",
    "RESIZE_OPS",
    "RNN_OPS",
    "SLICE_OPS",
    "SPLIT_OPS",
    "UNSIGNED_OPS",
    "WEIGHTED_OPS",
    "WEIGHT_OUT_AXIS",
    "is_added_term",
]

# ---- layers with a weight (argument 1) ------------------------------------------------------------------
CONV_OPS = frozenset({"conv1d", "conv2d", "conv3d"})
CONV_TRANSPOSE_OPS = frozenset({"conv_transpose1d", "conv_transpose2d", "conv_transpose3d"})
LINEAR_OPS = frozenset({"linear"})
#: Ops whose argument 1 is a layer weight: conv, conv-transpose and linear.
WEIGHTED_OPS = CONV_OPS | CONV_TRANSPOSE_OPS | LINEAR_OPS
#: Weighted op -> output-channel axis of its weight (conv-transpose weights are ``(in, out / groups, ...)``).
WEIGHT_OUT_AXIS: Mapping[str, int] = MappingProxyType(
    {op: 1 if op in CONV_TRANSPOSE_OPS else 0 for op in sorted(WEIGHTED_OPS)}
)

# ---- matrix products -------------------------------------------------------------------------------------
#: Matrix products whose first tensor argument is an added term: ``addmm(input, mat1, mat2)``.
ADDMM_OPS = frozenset({"addmm", "baddbmm", "addbmm"})
#: Matrix products of two operands (``@`` included), with or without an added term.
MATMUL_OPS = frozenset({"matmul", "mm", "bmm", "__matmul__", "__rmatmul__"}) | ADDMM_OPS
#: Ops that multiply-accumulate: counted by MACs, quantized on their inputs.
COMPUTE_OPS = WEIGHTED_OPS | MATMUL_OPS

#: Recurrent layers (``nn.LSTM`` / ``nn.GRU`` / ``nn.RNN``): their weights arrive as one list argument.
RNN_OPS = frozenset({"lstm", "gru", "rnn_tanh", "rnn_relu"})

# ---- normalisation ---------------------------------------------------------------------------------------
#: Norms with per-channel statistics or affine parameters (GroupNorm and LayerNorm are handled apart).
CHANNEL_NORM_OPS = frozenset({"batch_norm", "instance_norm"})
NORM_OPS = CHANNEL_NORM_OPS | {"group_norm", "layer_norm"}
#: Module classes whose forward calls a ``CHANNEL_NORM_OPS`` op on their own per-channel parameters.
CHANNEL_NORM_MODULES = frozenset(
    ["BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d"]
)

# ---- point-wise ops: output position i depends on input position i only ---------------------------------
ACTIVATION_OPS = frozenset(
    {
        "relu", "relu_", "relu6", "hardtanh", "hardtanh_", "sigmoid", "sigmoid_", "tanh", "tanh_", "gelu",
        "silu", "silu_", "hardswish", "hardswish_", "hardsigmoid", "leaky_relu", "leaky_relu_", "elu", "elu_",
        "selu", "celu", "mish", "softplus", "logsigmoid", "softsign", "tanhshrink",
    }
)  # fmt: skip
#: Identity at inference (``feature_dropout`` / ``feature_alpha_dropout`` drop whole channels when training).
DROPOUT_OPS = frozenset(
    {
        "dropout", "dropout_", "dropout1d", "dropout2d", "dropout3d", "feature_dropout", "alpha_dropout",
        "feature_alpha_dropout",
    }
)  # fmt: skip
COPY_OPS = frozenset({"contiguous", "clone", "detach"})
CAST_OPS = frozenset({"to", "float"})
MATH_OPS = frozenset(
    {
        "abs", "neg", "exp", "log", "sqrt", "rsqrt", "square", "sign", "clamp", "clamp_", "clip", "sin", "cos",
        "erf", "reciprocal", "__neg__", "__abs__",
    }
)  # fmt: skip
ADD_OPS = frozenset({"add", "add_", "__add__", "__iadd__", "__radd__"})
#: Broadcasting n-ary point-wise ops.
ARITHMETIC_OPS = ADD_OPS | {
    "sub", "sub_", "__sub__", "__isub__", "__rsub__", "mul", "mul_", "__mul__", "__imul__", "__rmul__",
    "div", "div_", "__truediv__", "__itruediv__", "__rtruediv__", "true_divide", "maximum", "minimum", "where",
    "pow", "__pow__", "addcmul",
}  # fmt: skip
ELEMENTWISE_OPS = ACTIVATION_OPS | DROPOUT_OPS | COPY_OPS | CAST_OPS | MATH_OPS | ARITHMETIC_OPS
#: Ops whose outputs are non-negative (``hardtanh`` as ``relu6`` calls it, ``hardtanh(x, 0, 6)``).
UNSIGNED_OPS = frozenset({"relu", "relu_", "relu6", "sigmoid", "softmax", "hardsigmoid", "hardtanh", "hardtanh_"})

# ---- ops that keep the channel axis but change other dims -----------------------------------------------
MAX_POOL_OPS = frozenset(
    {
        "max_pool1d", "max_pool2d", "max_pool3d", "_max_pool1d", "_max_pool2d", "_max_pool3d",
        "max_pool2d_with_indices", "adaptive_max_pool1d", "adaptive_max_pool2d", "adaptive_max_pool3d",
        "_adaptive_max_pool2d",
    }
)  # fmt: skip
AVG_POOL_OPS = frozenset(
    {
        "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d", "adaptive_avg_pool2d",
        "adaptive_avg_pool3d", "lp_pool1d", "lp_pool2d",
    }
)  # fmt: skip
RESIZE_OPS = frozenset({"interpolate", "upsample", "upsample_nearest", "upsample_bilinear"})
#: Pooling, resizing, spatial padding and broadcasting to a shape: channel ``c`` of argument 0 stays ``c``.
CHANNEL_KEEPING_OPS = MAX_POOL_OPS | AVG_POOL_OPS | RESIZE_OPS | {"pad", "expand", "expand_as", "type_as"}

# ---- shape ops -------------------------------------------------------------------------------------------
RESHAPE_OPS = frozenset(
    {"view", "reshape", "flatten", "unflatten", "squeeze", "squeeze_", "unsqueeze", "unsqueeze_", "view_as",
     "reshape_as"}
)  # fmt: skip
PERMUTE_OPS = frozenset({"permute", "transpose", "transpose_", "t", "swapaxes"})
REDUCTION_OPS = frozenset({"mean", "sum", "amax", "amin", "std", "var", "logsumexp"})
CONCAT_OPS = frozenset({"cat", "concat", "concatenate"})
SPLIT_OPS = frozenset({"split", "split_with_sizes", "tensor_split", "unsafe_split"})
#: Ops returning parts of their input (indexing, ``chunk``, splits).
SLICE_OPS = SPLIT_OPS | {"chunk", "__getitem__"}

#: Ops that commute with quantization: a quantizer on their input equals one on their output (reshapes,
#: permutes, slicing, max pooling, copies, dropout at inference). Quantizer placement walks back through
#: them to the op that produced the tensor.
QUANTIZATION_TRANSPARENT_OPS = RESHAPE_OPS | PERMUTE_OPS | SLICE_OPS | MAX_POOL_OPS | COPY_OPS | DROPOUT_OPS


def is_added_term(op: str, arg: int | str) -> bool:
    """True for the added term of an ``addmm``-like op: argument 0 (keyword ``input``), not a product operand.

    Args:
        op: the node's op name.
        arg: the argument position or keyword (``InputRef.arg``).
    """
    return op in ADDMM_OPS and arg in (0, "input")

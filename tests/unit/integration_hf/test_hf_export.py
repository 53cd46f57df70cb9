"""Hugging Face ``transformers`` models end to end: compress (INT8, magnitude sparsity, filter pruning), strip,
export to ONNX and check in ONNX Runtime against PyTorch; train and evaluate on ``ModelOutput`` outputs.

No downloads: every model is built from a tiny config with seeded random weights (an encoder, a decoder, a vision
and a speech model). ``transformers`` is an optional extra: the module skips without it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import onnx
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import create_compressed_model
from netsculpt.export import check_onnx
from netsculpt.train import evaluate, train_epoch

transformers = pytest.importorskip("transformers", reason="transformers is an optional extra (tests of HF models)")

from tests.unit.search.test_third_party import _bert, _gpt2, _one_thread  # noqa: E402,F401 - shared builders, fixture

pytestmark = pytest.mark.onnx


@dataclass(frozen=True)
class Case:
    build: Callable[[], nn.Module]
    input_info: Any  # NNCF input_info, keyword entries included
    check_inputs: Callable[[], tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]]  # another batch


def _vit() -> nn.Module:
    cfg = transformers.ViTConfig(
        image_size=16, patch_size=4, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, num_labels=5,
    )  # fmt: skip
    return transformers.ViTForImageClassification(cfg)


def _wav2vec2() -> nn.Module:
    cfg = transformers.Wav2Vec2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64, conv_dim=(16, 16),
        conv_stride=(5, 2), conv_kernel=(10, 3), num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
        num_labels=3, vocab_size=10,
    )  # fmt: skip
    return transformers.Wav2Vec2ForSequenceClassification(cfg)


_TEXT_INFO = [
    {"sample_size": [2, 8], "type": "long"},
    {"sample_size": [2, 8], "type": "long", "keyword": "attention_mask", "filler": "ones"},
]


def _text_batch() -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    ids = torch.randint(1, 100, (3, 8), generator=torch.Generator().manual_seed(5))
    return (ids,), {"attention_mask": torch.tensor([[1] * 8, [1] * 5 + [0] * 3, [1] * 3 + [0] * 5])}


def _image_batch() -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    return (torch.randn(3, 3, 16, 16, generator=torch.Generator().manual_seed(5)),), {}


def _audio_batch() -> tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]:
    return (torch.randn(3, 400, generator=torch.Generator().manual_seed(5)),), {}


CASES = {
    "bert": Case(lambda: _bert("sdpa"), _TEXT_INFO, _text_batch),  # HF's default attention
    "gpt2": Case(_gpt2, _TEXT_INFO, _text_batch),
    "vit": Case(_vit, {"sample_size": [2, 3, 16, 16]}, _image_batch),
    "wav2vec2": Case(_wav2vec2, {"sample_size": [2, 400]}, _audio_batch),
}
ALGORITHMS = {
    "int8": {"algorithm": "quantization", "weights": {"per_channel": True}},
    "sparsity": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5},
    "pruning": {"algorithm": "filter_pruning", "pruning_init": 0.5},
}


def _model(case: Case) -> nn.Module:
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return case.build().eval()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("name", CASES)
def test_compress_strip_export_and_onnx_runtime_agrees(name: str, algorithm: str, tmp_path: Path) -> None:
    case = CASES[name]
    ctrl, model = create_compressed_model(_model(case), {"input_info": case.input_info, "compression": ALGORITHMS[algorithm]})
    stripped = ctrl.strip()
    if algorithm == "pruning":
        pruning = ctrl.child_ctrls[0]
        assert pruning.last_strip_error is None or pruning.last_strip_error <= 1e-5  # ModelOutput compared
    path = ctrl.export_model(tmp_path / "m.onnx")  # raises when ORT disagrees on the example inputs
    proto = onnx.load(str(path))
    names = [i.name for i in proto.graph.input]
    assert names == (["input", "attention_mask"] if case.input_info is _TEXT_INFO else ["input"])
    assert [o.name for o in proto.graph.output] == ["logits"]
    if algorithm == "int8":
        assert any(n.op_type == "QuantizeLinear" for n in proto.graph.node)
    args, kwargs = case.check_inputs()  # another batch size, and a mask with zeros
    res = check_onnx(path, stripped, args, example_kwargs=kwargs)
    assert res.within(0.05) and res.top1_agreement == 1.0, res


def test_the_attention_mask_reaches_the_exported_graph(tmp_path: Path) -> None:
    """Negative control: the graph's result depends on the mask, so dropping it at export would be caught."""
    ctrl, model = create_compressed_model(_model(CASES["bert"]), {"input_info": _TEXT_INFO, "compression": ALGORITHMS["int8"]})
    path = ctrl.export_model(tmp_path / "m.onnx")
    args, kwargs = _text_batch()
    stripped = ctrl.strip()
    assert check_onnx(path, stripped, args, example_kwargs=kwargs).within(0.05)
    ones = {"attention_mask": torch.ones_like(kwargs["attention_mask"])}
    with torch.no_grad():
        masked_out = stripped(*args, **kwargs).logits
    res = check_onnx(path, [masked_out], args, example_kwargs=ones)  # the graph fed all-ones vs the masked run
    assert not res.within(0.01), res


def test_train_and_evaluate_read_logits_of_model_outputs() -> None:
    g = torch.Generator().manual_seed(0)
    data = TensorDataset(torch.randint(1, 100, (16, 8), generator=g), torch.randint(0, 3, (16,), generator=g))
    loader = DataLoader(data, batch_size=8)
    ctrl, model = create_compressed_model(
        _model(CASES["bert"]), {"input_info": _TEXT_INFO[:1], "compression": ALGORITHMS["int8"]}
    )
    opt = torch.optim.SGD(model.parameters(), lr=0.01)
    res = train_epoch(model, loader, opt, nn.CrossEntropyLoss(), ctrl=ctrl, progress=False)
    assert res.steps == 2 and res.loss == res.loss  # finite, not NaN
    assert evaluate(model, loader, progress=False).samples == 16

"""Issue 11 items 3, 6 and 8 on tiny ``transformers`` models built from configs (no downloads): tied embeddings
(GPT-2's ``lm_head.weight is transformer.wte.weight``), ``Conv1D`` layers (``addmm``, weight ``[in, out]``) and
weight norm (Wav2Vec2's positional conv) under quantization, sparsity and pruning."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pytest
import torch

from netsculpt import create_compressed_model
from netsculpt.export import check_onnx

transformers = pytest.importorskip("transformers", reason="transformers is an optional extra (tests of HF models)")

from tests.unit.integration_hf.test_hf_export import _TEXT_INFO, CASES, _model, _text_batch  # noqa: E402

#: Weights each model leaves uncompressed under sparsity, with why (embeddings are lookups; weight norm computes
#: its weight): exactly these are reported, nothing else.
LEFT = {
    "bert": ["word_embeddings.weight (Embedding", "position_embeddings.weight (Embedding",
             "token_type_embeddings.weight (Embedding"],
    "gpt2": ["transformer.wte.weight (Embedding", "transformer.wpe.weight (Embedding"],
    "vit": [],
    "wav2vec2": ["pos_conv_embed.conv.weight (ParametrizedConv1d, read by _weight_norm; weight norm"],
}  # fmt: skip


def _lm() -> torch.nn.Module:
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=16,
                                  bos_token_id=1, eos_token_id=2)  # fmt: skip
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return transformers.GPT2LMHeadModel(cfg).eval()


@pytest.mark.parametrize("name", CASES)
def test_magnitude_sparsity_reaches_its_target_and_reports_what_it_skips(
    name: str, caplog: pytest.LogCaptureFixture
) -> None:
    case = CASES[name]
    config = {"input_info": case.input_info, "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}}
    with caplog.at_level(logging.WARNING, logger="netsculpt.metrics.coverage"):
        ctrl, model = create_compressed_model(_model(case), config)
    part = ctrl.child_ctrls[0]
    stats = ctrl.statistics().as_dict()["magnitude_sparsity"]
    assert stats["sparsity_level_for_layers"] == pytest.approx(0.5, abs=1e-3)
    assert stats.get("weights_left_uncompressed", 0) == len(LEFT[name])
    assert all(item in caplog.text for item in LEFT[name])
    masked = {layer.param for layer in part.layers}
    conv1d = [n for n, m in model.named_modules() if type(m).__name__ == "Conv1D"]
    assert all(f"{n}.weight" in masked for n in conv1d)  # GPT-2's attention and MLP layers (once 20 %, not 50 %)
    stripped = ctrl.strip()
    params = dict(stripped.named_parameters())
    zeros = sum(int((params[p] == 0).sum()) for p in masked)
    assert zeros / sum(params[p].numel() for p in masked) == pytest.approx(0.5, abs=1e-3)


@pytest.mark.onnx
def test_gpt2_lm_head_tied_to_the_embedding_is_quantized_once_and_stays_tied(tmp_path: Path) -> None:
    config = {"input_info": _TEXT_INFO, "compression": {"algorithm": "quantization", "weights": {"per_channel": True}}}
    ctrl, model = create_compressed_model(_lm(), config)  # KeyError: 'lm_head.weight' before issue 11
    infos = {i.key: i for i in ctrl.child_ctrls[0].infos}
    assert "w:lm_head:weight" not in infos
    assert {a[1] for a, _ in infos["w:transformer:wte:weight"].uses} == {"embedding", "linear"}
    assert infos["w:transformer:h:0:mlp:c_fc:weight"].axis == 1  # Conv1D: output features are dim 1
    stripped = ctrl.strip()
    assert stripped.lm_head.weight is stripped.transformer.wte.weight
    path = ctrl.export_model(tmp_path / "lm.onnx")
    args, kwargs = _text_batch()
    res = check_onnx(path, stripped, args, example_kwargs=kwargs)
    assert res.within(0.05), res


def test_gpt2_lm_head_sparsity_masks_both_uses_of_the_tied_weight() -> None:
    config = {"input_info": _TEXT_INFO, "compression": {"algorithm": "magnitude_sparsity", "sparsity_init": 0.5}}
    ctrl, model = create_compressed_model(_lm(), config)
    args, kwargs = _text_batch()
    with torch.no_grad():
        masked = model(*args, **kwargs).logits
    stripped = ctrl.strip()
    assert stripped.lm_head.weight is stripped.transformer.wte.weight
    assert 0.3 < float((stripped.transformer.wte.weight == 0).float().mean()) < 0.7
    with torch.no_grad():
        out = stripped(*args, **kwargs).logits
    assert torch.allclose(out, masked, atol=1e-5)  # the embedding saw the mask too (else it differs: see unit test)


def test_gpt2_conv1d_mlp_is_pruned_and_the_tied_head_refused(caplog: pytest.LogCaptureFixture) -> None:
    config: dict[str, Any] = {"input_info": _TEXT_INFO,
                              "compression": {"algorithm": "filter_pruning", "pruning_init": 0.5}}  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="netsculpt.algorithms.pruning.algorithm"):
        ctrl, model = create_compressed_model(_lm(), config)
    assert "lm_head with transformer.wte" in caplog.text
    args, kwargs = _text_batch()
    with torch.no_grad():
        masked = model(*args, **kwargs).logits
    stripped = ctrl.strip()
    fc = stripped.transformer.h[0].mlp.c_fc
    assert (fc.nf, tuple(fc.weight.shape)) == (64, (32, 64))  # 128 -> 64 output features, along dim 1
    assert tuple(stripped.transformer.h[0].mlp.c_proj.weight.shape) == (64, 32)
    assert stripped.lm_head.weight is stripped.transformer.wte.weight
    with torch.no_grad():
        out = stripped(*args, **kwargs).logits
    assert torch.allclose(out, masked, atol=1e-5)


def test_gpt2_conv1d_mlp_prunes_with_the_input_importance_scope() -> None:
    # Conv1D weights are [in, out]: the reader scores of c_proj come from its dim 0 (importance_scope)
    params = {"importance_scope": "filters_and_inputs", "filter_importance": "L1"}
    config: dict[str, Any] = {"input_info": _TEXT_INFO,
                              "compression": {"algorithm": "filter_pruning", "pruning_init": 0.5, "params": params}}
    ctrl, model = create_compressed_model(_lm(), config)
    args, kwargs = _text_batch()
    with torch.no_grad():
        masked = model(*args, **kwargs).logits
    stripped = ctrl.strip()
    assert tuple(stripped.transformer.h[0].mlp.c_fc.weight.shape) == (32, 64)
    with torch.no_grad():
        out = stripped(*args, **kwargs).logits
    assert torch.allclose(out, masked, atol=1e-5)

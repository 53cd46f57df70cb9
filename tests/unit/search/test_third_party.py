"""The search platform on models nobody here wrote: Hugging Face ``transformers`` models built from tiny configs.

No downloads: every model is made from a config with seeded random weights. Each model goes through
``create_compressed_model`` (filter pruning + INT8), ``SearchSpace.from_controller``, and the three promises of
the platform: ``cost`` equals counting the stripped model, ``evaluate`` restores the model bit-exactly, and
``Policy.to_config`` rebuilds the same model through ``create_compressed_model``. HF models return
``ModelOutput`` objects (dict-like); the tests read ``.logits``.

What the models exercise: ResNet (bottleneck blocks, identity and projection shortcuts), MobileNetV2 (TF
padding, depthwise convs, inverted residuals; 25 groups), ConvNeXt (channels-first LayerNorm and layer scale
block all but the MLP expansions), BERT with eager attention (the FFN expansions and the pooler are prunable;
q/k/v are blocked by the head ``view``, the output projections by LayerNorm; act x act attention matmuls in
BOPs; ``attention_mask`` as a keyword input) and GPT-2 with HF's default SDPA attention (``Conv1D`` layers run
``addmm`` with an ``[in, out]`` weight: the MLP expansions are prunable, attention is blocked by the q/k/v split). Checked with transformers
5.25 and 4.40 (where GPT-2 has eager attention only and the mask xfails skip).

Known gaps are strict xfails at the end (they fail loudly once fixed).
"""

from __future__ import annotations

import copy
import importlib.util
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import torch
from tests.zoo import seeded
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import NNCFConfig, create_compressed_model, register_default_init_args
from netsculpt.metrics import bops, count_macs, quantization_bits
from netsculpt.search import DifferentiableCost, Policy, SearchSpace, TrainHooks, cost, evaluate

transformers = pytest.importorskip("transformers")

Inputs = tuple[tuple[torch.Tensor, ...], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Case:
    """A third-party model, its example inputs and what the search space should hold."""

    build: Callable[[], nn.Module]
    inputs: Callable[[], Inputs]
    batch: Callable[[int, torch.Generator], tuple[torch.Tensor, torch.Tensor]]  # (inputs, labels) for training
    groups: tuple[str, ...]  # expected channel groups (names), () for none


def _image(n: int, g: torch.Generator, size: int = 16, classes: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randn(n, 3, size, size, generator=g), torch.randint(0, classes, (n,), generator=g)


def _text(n: int, g: torch.Generator, classes: int = 3) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.randint(1, 100, (n, 8), generator=g), torch.randint(0, classes, (n,), generator=g)


def _image_inputs() -> Inputs:
    return (_image(2, torch.Generator().manual_seed(1))[0],), {}


def _text_inputs(mask: bool = False) -> Callable[[], Inputs]:
    def make() -> Inputs:
        ids = _text(2, torch.Generator().manual_seed(1))[0]
        kwargs = {"attention_mask": torch.tensor([[1] * 8, [1] * 5 + [0] * 3])} if mask else {}
        return (ids,), kwargs

    return make


def _resnet() -> nn.Module:
    cfg = transformers.ResNetConfig(embedding_size=16, hidden_sizes=[16, 32], depths=[1, 1], num_labels=5)
    return transformers.ResNetForImageClassification(cfg)


def _mobilenet_v2() -> nn.Module:
    cfg = transformers.MobileNetV2Config(image_size=16, depth_multiplier=0.25, num_labels=5)
    return transformers.MobileNetV2ForImageClassification(cfg)


def _convnext() -> nn.Module:
    cfg = transformers.ConvNextConfig(hidden_sizes=[8, 16], depths=[1, 1], num_stages=2, num_labels=5)
    return transformers.ConvNextForImageClassification(cfg)


def _bert(attn: str = "eager") -> nn.Module:
    cfg = transformers.BertConfig(
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        vocab_size=100,
        max_position_embeddings=16,
        num_labels=3,
        attn_implementation=attn,
    )
    return transformers.BertForSequenceClassification(cfg)


def _gpt2(layers: int = 2) -> nn.Module:
    """HF's default SDPA attention where GPT-2 has it (transformers >= 4.42), eager attention before."""
    attn = "sdpa" if getattr(transformers.GPT2PreTrainedModel, "_supports_sdpa", False) else "eager"
    return transformers.GPT2ForSequenceClassification(_gpt2_config(layers, attn))


def _gpt2_config(layers: int, attn: str) -> Any:
    return transformers.GPT2Config(
        n_embd=32,
        n_layer=layers,
        n_head=2,
        vocab_size=100,
        n_positions=16,
        num_labels=3,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
        attn_implementation=attn,
    )


_MBV2_GROUPS = tuple(
    [f"mobilenet_v2.conv_stem.{c}.convolution" for c in ("conv_3x3", "reduce_1x1")]
    + [f"mobilenet_v2.layer.{i}.conv_3x3.convolution" for i in range(16)]
    + [f"mobilenet_v2.layer.{i}.reduce_1x1.convolution" for i in (0, 2, 5, 10, 12, 15)]
    + ["mobilenet_v2.conv_1x1.convolution"]
)

CASES = {
    "resnet": Case(
        _resnet,
        _image_inputs,
        _image,
        (
            "resnet.embedder.embedder.convolution",
            "resnet.encoder.stages.0.layers.0.layer.0.convolution",
            "resnet.encoder.stages.0.layers.0.layer.1.convolution",
            "resnet.encoder.stages.1.layers.0.layer.0.convolution",
            "resnet.encoder.stages.1.layers.0.layer.1.convolution",
            "resnet.encoder.stages.1.layers.0.layer.2.convolution",
        ),
    ),
    "mobilenet_v2": Case(_mobilenet_v2, _image_inputs, _image, _MBV2_GROUPS),
    "convnext": Case(
        _convnext,
        _image_inputs,
        _image,
        ("convnext.encoder.stages.0.layers.0.pwconv1", "convnext.encoder.stages.1.layers.0.pwconv1"),
    ),
    "bert": Case(
        _bert,
        _text_inputs(),
        _text,
        ("bert.encoder.layer.0.intermediate.dense", "bert.encoder.layer.1.intermediate.dense", "bert.pooler.dense"),
    ),
    "gpt2": Case(_gpt2, _text_inputs(), _text, ("transformer.h.0.mlp.c_fc", "transformer.h.1.mlp.c_fc")),
}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    """Tiny models run several times faster on one thread (thread start-up dominates)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _data(case: Case, n: int = 16, seed: int = 2) -> DataLoader[Any]:
    """``n`` synthetic ``(inputs, labels)`` samples in batches of 8, in a fixed order."""
    return DataLoader(TensorDataset(*case.batch(n, torch.Generator().manual_seed(seed))), batch_size=8)


def _fp(case: Case, seed: int = 0) -> nn.Module:
    """A stand-in for a trained FP32 model: seeded weights, BatchNorm statistics of the synthetic data.

    (HF initialises running statistics to 0/1; then eval-mode activations, which range initialisation sees, are
    far from train-mode ones, and fine-tuning the quantized MobileNetV2 blows up: a property of untrained
    models, not of netsculpt.)
    """
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = seeded(case.build(), seed)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the batches
    model.train()
    with torch.no_grad():
        for x, _ in _data(case) if norms else ():
            model(x)
    for m in norms:
        m.momentum = 0.1
    return model.eval()


def _config(inputs: Inputs, *, quant: bool = True) -> dict[str, Any]:
    x = inputs[0][0]
    algos: list[dict[str, Any]] = [
        {"algorithm": "filter_pruning", "params": {"prune_first_conv": True, "prune_downsample_convs": True}}
    ]
    if quant:
        init = {"range": {"num_init_samples": 16}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 16}}
        algos.append({"algorithm": "quantization", "weights": {"per_channel": True}, "initializer": init})
    kind = "float" if x.is_floating_point() else "long"
    return {"input_info": {"sample_size": list(x.shape), "type": kind}, "compression": algos}


def _compress(
    model: nn.Module, cfg: dict[str, Any], inputs: Inputs, case: Case, *, init: bool = True
) -> tuple[Any, nn.Module]:
    """``create_compressed_model`` on a copy of ``model``; with ``init``, range init and BN adaptation on
    ``case``'s data (without, quantizers start from default ranges)."""
    config = register_default_init_args(NNCFConfig.from_dict(cfg), _data(case)) if init else cfg
    return create_compressed_model(copy.deepcopy(model), config, example_inputs=inputs[0], example_kwargs=inputs[1])


def _logits(model: nn.Module, inputs: Inputs) -> torch.Tensor:
    with torch.no_grad():
        out = model(*inputs[0], **inputs[1])
    assert isinstance(out, transformers.utils.ModelOutput)
    logits: torch.Tensor = out.logits
    return logits


def _count(ctrl: Any, space: SearchSpace, inputs: Inputs) -> dict[str, int]:
    """The reference (as ``test_cost._count``, with keyword inputs): count the stripped model."""
    stripped = ctrl.strip()
    pruning = next(p for p in ctrl.child_ctrls if p.name == "filter_pruning")
    assert pruning.last_strip_error is None or pruning.last_strip_error <= 1e-5  # stripped == masked model
    report = count_macs(stripped, inputs[0], inputs[1])
    out = {"macs": report.total, "params": sum(p.numel() for p in stripped.parameters())}
    if space.quantizers:
        wb, ab = quantization_bits(ctrl)
        out["bops"] = bops(report.per_module, wb, ab)
        weights = {q.name for q in space.quantizers if q.group == "weights"}
        bits = {str(i.target): i.export_bits for p in ctrl.child_ctrls for i in getattr(p, "infos", [])}
        total = sum(p.numel() * (bits[n] if n in weights else 32) for n, p in stripped.named_parameters())
        out["size_bytes"] = (total + 7) // 8
    return out


def _state(model: nn.Module) -> dict[str, torch.Tensor]:
    out = {f"p:{n}": p.detach().clone() for n, p in model.named_parameters()}
    out.update({f"b:{n}": b.detach().clone() for n, b in model.named_buffers()})
    return out


# ---- the space, and (a) cost == counting the stripped model ---------------------------------------------------
@pytest.mark.parametrize("name", [*CASES, "bert+attention_mask"])
def test_space_and_cost_equals_counting_the_stripped_model(name: str) -> None:
    case = CASES[name.split("+")[0]]
    masked = name.endswith("attention_mask")
    inputs = _text_inputs(mask=True)() if masked else case.inputs()
    fp = _fp(case)
    # no range init with the mask: the loader has none, the mask's quantizers would see no data and init fails
    ctrl, _ = _compress(fp, _config(inputs), inputs, case, init=not masked)
    space = SearchSpace.from_controller(ctrl)
    assert sorted(g.name for g in space.groups) == sorted(case.groups)
    params = dict(fp.named_parameters())
    weights = [q for q in space.quantizers if q.group == "weights"]
    assert weights and all(q.name in params for q in weights)  # named by the user's parameter names
    assert any(q.group == "activations" for q in space.quantizers)
    policies = [Policy.random(space, 0), Policy.uniform(space, keep=0.5, bits=4)]
    seen = set()
    for policy in policies:
        ctrl.apply_policy(policy)
        c = cost(space, policy)
        ref = _count(ctrl, space, inputs)
        assert {k: getattr(c, k) for k in ref} == ref, f"{name}: {policy.key()}"
        seen.add((c.macs, c.bops))
    assert len(seen) == len(policies)  # the policies differ in cost, so the check is not vacuous
    if not space.groups:
        assert len({cost(space, p).macs for p in policies}) == 1  # bits only: MACs never change


@pytest.mark.parametrize("name", ["bert", "resnet"])
def test_differentiable_cost_agrees_on_attention_and_residual_models(name: str) -> None:
    case = CASES[name]
    inputs = case.inputs()
    ctrl, _ = _compress(_fp(case), _config(inputs), inputs, case)
    space = SearchSpace.from_controller(ctrl)
    dc = DifferentiableCost(space)
    for seed in range(3):
        p = Policy.random(space, seed)
        out, c = dc(*dc.encode(p)), cost(space, p)
        assert float(out["macs"]) == pytest.approx(c.macs, rel=1e-9)
        assert float(out["bops"]) == pytest.approx(c.bops, rel=1e-9)  # act x act attention matmuls included
        assert float(out["bit_complexity"]) == pytest.approx(c.bit_complexity, rel=1e-9)
    bits = torch.full((len(space.quantizers),), 6.0, dtype=torch.float64, requires_grad=True)
    dc(torch.ones(len(space.groups), dtype=torch.float64), bits)["bops"].backward()
    assert bits.grad is not None and float(bits.grad.sum()) > 0


# ---- (b) evaluate restores bit-exactly ---------------------------------------------------------------------
# (not MobileNetV2: 1.7 s for nothing the others do not cover, the restore works tensor by tensor)
@pytest.mark.parametrize("name", [n for n in CASES if n != "mobilenet_v2"])
def test_evaluate_restores_the_model_bit_exactly(name: str) -> None:
    case = CASES[name]
    inputs = case.inputs()
    ctrl, model = _compress(_fp(case), _config(inputs), inputs, case)
    space = SearchSpace.from_controller(ctrl)
    train = _data(case, seed=3)
    target = _logits(model, inputs) * 0.5

    def metric(m: nn.Module) -> float:  # a regression-style metric on the HF output: -MSE to a fixed target
        m.eval()
        return -float(((_logits(m, inputs) - target) ** 2).mean())

    hooks = TrainHooks(train_loader=train, validate_fn=metric)
    ctrl.apply_policy(Policy.random(space, 1))
    model.train()
    before, policy = _state(model), ctrl.current_policy()
    candidate = Policy.random(space, 5)
    a = evaluate(ctrl, candidate, hooks, bn_recalibration_samples=16, finetune_steps=2)
    b = evaluate(ctrl, candidate, hooks, bn_recalibration_samples=16, finetune_steps=2)
    after = _state(model)
    assert before.keys() == after.keys()
    assert [k for k in before if not torch.equal(before[k], after[k])] == []
    assert all(p.grad is None for p in model.parameters())
    assert ctrl.current_policy() == policy and model.training
    assert a.metric == b.metric and a.cost == b.cost == cost(space, candidate)
    # with no recalibration or training, evaluate measures exactly the model with the policy applied
    plain = evaluate(ctrl, candidate, hooks, bn_recalibration_samples=0)
    ctrl.apply_policy(candidate)
    assert plain.metric == metric(model)


def test_default_hooks_read_logits_from_model_outputs() -> None:
    """Default training (cross-entropy) and top-1 work on HF ``ModelOutput`` (dict-like) outputs."""
    case = CASES["resnet"]
    inputs = case.inputs()
    ctrl, model = _compress(_fp(case), _config(inputs), inputs, case)
    space = SearchSpace.from_controller(ctrl)
    data = _data(case, seed=3)
    before = _state(model)
    result = evaluate(
        ctrl, Policy.uniform(space, keep=0.5, bits=4), TrainHooks(train_loader=data, val_loader=data), finetune_steps=2
    )
    assert 0.0 <= result.metric <= 1.0
    assert all(torch.equal(v, _state(model)[k]) for k, v in before.items())


# ---- (c) to_config reproduces the policy -------------------------------------------------------------------
@pytest.mark.parametrize("name", [*CASES, "bert+attention_mask"])
def test_to_config_reproduces_the_policy_on_the_same_weights(name: str) -> None:
    """Without init data: range init and BN adaptation see the model they are given, so a rebuilt model (masks
    from creation) would start from other ranges and statistics than the live one (masks set afterwards)."""
    case = CASES[name.split("+")[0]]
    inputs = _text_inputs(mask=True)() if name.endswith("attention_mask") else case.inputs()
    fp = _fp(case)
    base = _config(inputs)
    ctrl, live = _compress(fp, base, inputs, case, init=False)
    space = SearchSpace.from_controller(ctrl)
    policy = Policy.random(space, 7)
    ctrl.apply_policy(policy)
    written = policy.to_config(base, space)
    json.dumps(written)  # plain data
    ctrl2, rebuilt = _compress(fp, written, inputs, case, init=False)
    assert ctrl2.current_policy().validate(space) == policy.validate(space)
    live.eval()
    rebuilt.eval()
    assert torch.equal(_logits(live, inputs), _logits(rebuilt, inputs))
    assert torch.equal(_logits(ctrl.strip(), inputs), _logits(ctrl2.strip(), inputs))


def test_bits_only_space_still_prices_and_applies_bits() -> None:
    """GPT-2 with its only prunable layers (the ``Conv1D`` MLP expansions) ignored: no group, bits still searchable."""
    case = CASES["gpt2"]
    inputs = case.inputs()
    cfg = _config(inputs)
    cfg["compression"][0]["ignored_scopes"] = [r"{re}.*mlp\.c_fc"]
    ctrl, model = _compress(_fp(case), cfg, inputs, case)
    space = SearchSpace.from_controller(ctrl)
    assert space.groups == () and space.quantizers
    assert Policy.random(space, 0).keep == {}
    model.eval()
    at8 = _logits(model, inputs)
    ctrl.apply_policy(Policy.uniform(space, bits=4))
    assert not torch.equal(_logits(model, inputs), at8)
    assert cost(space, Policy.uniform(space, bits=4)).bops < cost(space, Policy.uniform(space, bits=8)).bops
    ctrl.apply_policy(Policy.uniform(space, bits=8))
    assert torch.equal(_logits(model, inputs), at8)


# ---- known gaps (strict: they fail loudly once fixed) ------------------------------------------------------
@pytest.mark.xfail(
    strict=True,
    reason="metrics/macs.py does not count scaled_dot_product_attention (HF's default 'sdpa' attention): "
    "the Q.K^T and A.V MACs are missing from count_macs and every cost",
)
def test_sdpa_attention_macs_are_counted() -> None:
    inputs = _text_inputs()()
    eager = count_macs(_fp(CASES["bert"]), *inputs).total
    with torch.random.fork_rng():
        torch.manual_seed(0)
        sdpa = count_macs(_bert("sdpa").eval(), *inputs).total
    assert sdpa == eager


def _eager_gpt2(config: dict[str, Any] | NNCFConfig) -> tuple[nn.Module, torch.Tensor]:
    if importlib.util.find_spec("transformers.masking_utils") is None:
        pytest.skip("this transformers masks inside GPT-2's attention (no model-level additive mask)")
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = transformers.GPT2Model(_gpt2_config(1, "eager")).eval()
    x = _text_inputs()()[0][0]
    _, qmodel = create_compressed_model(model, config, example_inputs=(x,))
    return qmodel, x


_MASK_QUANTIZED = (
    "quantization places an activation quantizer on the additive attention mask of HF eager attention "
    "(GPT-2: <root>/where_0 = torch.where(causal, 0, finfo.min); BERT with attention_mask: bert/where_0)"
)
_GPT2_QUANT = {"input_info": {"sample_size": [2, 8], "type": "long"}, "compression": {"algorithm": "quantization"}}


@pytest.mark.xfail(
    strict=True, reason=f"{_MASK_QUANTIZED}; with default ranges the mask is clamped and later tokens leak"
)
def test_quantized_causal_model_stays_causal() -> None:
    qmodel, x = _eager_gpt2(_GPT2_QUANT)
    changed = x.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 100
    with torch.no_grad():
        a, b = qmodel(x).last_hidden_state, qmodel(changed).last_hidden_state
    assert torch.equal(a[:, :-1], b[:, :-1])


@pytest.mark.xfail(
    strict=True, reason=f"{_MASK_QUANTIZED}; range init gives it scale finfo.max, whose gradient is not finite"
)
def test_quantization_aware_training_of_a_causal_model_keeps_finite_gradients() -> None:
    case = CASES["gpt2"]
    config = copy.deepcopy(_GPT2_QUANT)
    config["compression"]["initializer"] = {"range": {"num_init_samples": 16}}
    qmodel, x = _eager_gpt2(register_default_init_args(NNCFConfig.from_dict(config), _data(case)))
    qmodel.train()
    qmodel(x).last_hidden_state.square().mean().backward()
    assert all(bool(torch.isfinite(p.grad).all()) for p in qmodel.parameters() if p.grad is not None)

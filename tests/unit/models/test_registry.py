"""Tests of the model registry and of every registered model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from netsculpt.errors import ConfigError
from netsculpt.models import _registry, create_model, list_models, register_model
from netsculpt.models._registry import suggest_names

DENSE_MODELS = {"tiny_detector", "tiny_unet"}  # per-cell / per-pixel outputs: tests/unit/models/test_sample_models.py
ALL_MODELS = [m for m in list_models() if m not in DENSE_MODELS]  # the classifiers


def _num_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_all_documented_models_are_registered() -> None:
    expected = {"resnet8", "resnet20", "resnet32", "resnet56", "resnet18_cifar", "mobilenetv2_cifar", "vgg11_bn",
                "small_cnn"}
    assert expected <= set(ALL_MODELS)
    assert sorted(ALL_MODELS) == ALL_MODELS


@pytest.mark.parametrize("name", ALL_MODELS)
@pytest.mark.parametrize(("in_channels", "size"), [(1, 28), (3, 32)])
def test_forward_shape(name: str, in_channels: int, size: int) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=7, in_channels=in_channels).eval()
    with torch.no_grad():
        out = model(torch.randn(2, in_channels, size, size))
    assert out.shape == (2, 7)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", ALL_MODELS)
def test_backward_reaches_every_parameter(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, num_classes=10, in_channels=1).train()
    out = model(torch.randn(2, 1, 12, 12))  # small input: the deep models stay fast on 2 CPU cores
    nn.functional.cross_entropy(out, torch.tensor([3, 8])).backward()
    for param_name, param in model.named_parameters():
        assert param.grad is not None, f"{name}: parameter {param_name} got no gradient"
        assert torch.isfinite(param.grad).all(), f"{name}: parameter {param_name} has a non-finite gradient"
        assert param.grad.abs().sum() > 0, f"{name}: parameter {param_name} has an all-zero gradient"


@pytest.mark.parametrize("name", ["resnet20", "small_cnn", "vgg11_bn"])
def test_tiny_inputs_work(name: str) -> None:
    # 8x8 digits: pooling must never shrink a feature map to zero size.
    model = create_model(name, in_channels=1).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 1, 8, 8)).shape == (2, 10)


def test_resnet20_parameter_count() -> None:
    # Hand count for 3 input channels, 10 classes, option-B shortcuts, bias-free convs:
    #   stem   3*16*9 + BN 2*16                                   =     464
    #   stage1 3 blocks * (2 * 16*16*9 + 2 BN * 2*16)             =  14,016
    #   stage2 block1 16*32*9 + 32*32*9 + 2*64 + (16*32 + 64)      =  14,528
    #          2 blocks * (2 * 32*32*9 + 2*64)                    =  37,120
    #   stage3 block1 32*64*9 + 64*64*9 + 2*128 + (32*64 + 128)    =  57,728
    #          2 blocks * (2 * 64*64*9 + 2*128)                   = 147,968
    #   fc     64*10 + 10                                         =     650
    #   total                                                     = 272,474
    # (option A, zero-padded identity shortcuts, gives the often quoted 269,722 = 272,474 - 2,752.)
    assert _num_params(create_model("resnet20")) == 272_474


def test_depths_and_widths() -> None:
    assert _num_params(create_model("resnet8")) < _num_params(create_model("resnet20"))
    assert _num_params(create_model("resnet32")) < _num_params(create_model("resnet56"))
    full = _num_params(create_model("resnet18_cifar"))
    assert 11_000_000 < full < 11_300_000
    assert _num_params(create_model("resnet18_cifar", width_mult=0.25)) < full / 10
    assert _num_params(create_model("mobilenetv2_cifar", width_mult=0.5)) < _num_params(
        create_model("mobilenetv2_cifar")
    )


def test_standard_init() -> None:
    model = create_model("resnet20")
    for module in model.modules():
        if isinstance(module, nn.BatchNorm2d):
            assert torch.all(module.weight == 1) and torch.all(module.bias == 0)
    conv = model.get_submodule("conv1")
    assert isinstance(conv, nn.Conv2d)
    expected_std = (2.0 / (16 * 3 * 3)) ** 0.5  # kaiming normal, fan_out, ReLU gain
    assert abs(conv.weight.std().item() - expected_std) < 0.5 * expected_std


def test_unknown_model_did_you_mean() -> None:
    expected = r"model: unknown model 'resnet2'\. Did you mean 'resnet20'\? Known: .*resnet56"
    with pytest.raises(ConfigError, match=expected):
        create_model("resnet2")


@pytest.mark.parametrize(
    ("typo", "hints"),
    [
        ("ResNet20", ["resnet20"]),
        ("resent20", ["resnet20"]),
        ("vgg11", ["vgg11_bn"]),
        ("mobilenetv2", ["mobilenetv2_cifar"]),
        ("small-cnn", ["small_cnn"]),
        ("resnet110", []),  # a real depth we do not have: no hint rather than a wrong one
        ("vgg16", []),
        ("mnist", []),
        ("foo", []),
    ],
)
def test_suggest_names(typo: str, hints: list[str]) -> None:
    assert suggest_names(typo, ALL_MODELS) == hints


def test_no_wrong_hint_in_message() -> None:
    with pytest.raises(ConfigError) as info:
        create_model("resnet110")
    assert "Did you mean" not in str(info.value)


def test_ambiguous_prefix_lists_candidates() -> None:
    with pytest.raises(ConfigError, match="Did you mean one of 'resnet8', 'resnet20'"):
        create_model("resnet")


@pytest.mark.parametrize("kwargs", [{"num_classes": 0}, {"in_channels": -1}, {"num_classes": 2.5}])
def test_bad_sizes(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError, match="must be a positive integer"):
        create_model("resnet8", **kwargs)


def test_unknown_kwarg() -> None:
    with pytest.raises(ConfigError, match="resnet20 does not take argument 'width_mult'"):
        create_model("resnet20", width_mult=2.0)
    with pytest.raises(ConfigError, match="width_mult must be positive"):
        create_model("resnet18_cifar", width_mult=0.0)


def test_list_models_pattern() -> None:
    resnets = list_models("resnet*")
    assert "resnet20" in resnets and "resnet18_cifar" in resnets
    assert "vgg11_bn" not in resnets
    assert list_models("nothing*") == []


def test_register_and_duplicate(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_registry, "_REGISTRY", dict(_registry._REGISTRY))

    @register_model("tiny_linear")
    def tiny_linear(*, num_classes: int, in_channels: int, hidden: int = 4) -> nn.Module:
        return nn.Sequential(nn.Flatten(), nn.LazyLinear(hidden), nn.Linear(hidden, num_classes))

    assert "tiny_linear" in list_models()
    model = create_model("tiny_linear", num_classes=3, in_channels=1, hidden=5)
    assert model(torch.randn(2, 1, 4, 4)).shape == (2, 3)
    with pytest.raises(ConfigError, match="duplicate model name"):
        register_model("tiny_linear")(tiny_linear)
    with pytest.raises(ConfigError, match="invalid model name"):
        register_model("Bad Name")

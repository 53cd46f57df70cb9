"""Knowledge distillation: loss formulas, the teacher is the uncompressed model, hooks, strip, config errors."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from tests.zoo import TinyResNet, seeded
from torch.utils.data import DataLoader, TensorDataset

from netsculpt import ConfigError, NNCFConfig, create_compressed_model, register_default_init_args
from netsculpt.algorithms.distillation.loss import kd_loss, softmax_kd
from netsculpt.algorithms.distillation.part import DistillationPart
from netsculpt.graph import get_runtime

SIZE = [1, 3, 8, 8]


def _config(*extra: dict[str, Any], **kd: Any) -> dict[str, Any]:
    comp = [{"algorithm": "knowledge_distillation", "type": "softmax", **kd}, *extra]
    return {"input_info": {"sample_size": SIZE}, "compression": comp}


def _part(ctrl: Any) -> DistillationPart:
    return next(p for p in ctrl.child_ctrls if isinstance(p, DistillationPart))


def _loader() -> DataLoader[Any]:
    g = torch.Generator().manual_seed(0)
    return DataLoader(TensorDataset(torch.randn(32, 3, 8, 8, generator=g), torch.zeros(32, dtype=torch.long)), 16)


def test_softmax_kd_matches_the_formula() -> None:
    torch.manual_seed(0)
    zs, zt, temp = torch.randn(5, 7), torch.randn(5, 7), 3.0
    p_t = torch.exp(zt / temp) / torch.exp(zt / temp).sum(1, keepdim=True)
    p_s = torch.exp(zs / temp) / torch.exp(zs / temp).sum(1, keepdim=True)
    expected = temp**2 * (p_t * -torch.log(p_s)).sum(1).mean()  # KD_T of ALGORITHMS.md §0
    torch.testing.assert_close(softmax_kd(zs, zt, temp), expected)
    # NNCF's form: -(log_softmax * softmax).mean() * C * T^2, times scale
    nncf = -(torch.log_softmax(zs / temp, 1) * torch.softmax(zt / temp, 1)).mean() * 7 * temp**2
    torch.testing.assert_close(kd_loss(zs.requires_grad_(), zt, "softmax", 0.5, temp, [].append), 0.5 * nncf)


def test_mse_kd_and_output_selection() -> None:
    zs = torch.randn(4, 3, requires_grad=True)
    zt = torch.randn(4, 3)
    torch.testing.assert_close(kd_loss(zs, zt, "mse", 2.0, 9.0, [].append), 2.0 * ((zs - zt) ** 2).mean())
    warnings: list[str] = []
    # only outputs that require grad count; a 1-D output is skipped with a warning
    both = kd_loss((zs, torch.randn(4)), (zt, torch.randn(4)), "mse", 1.0, 1.0, warnings.append)
    torch.testing.assert_close(both, ((zs - zt) ** 2).mean())
    assert kd_loss(zs.detach(), zt, "mse", 1.0, 1.0, warnings.append) is None
    assert (
        kd_loss(torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 4), "softmax", 1.0, 1.0, warnings.append)
        is None
    )
    assert any("2-D logits" in w for w in warnings)


def test_ctrl_loss_is_kd_of_latest_training_batch_against_frozen_teacher() -> None:
    original = seeded(TinyResNet())
    reference = copy.deepcopy(original)
    ctrl, model = create_compressed_model(original, _config(temperature=2.0, scale=0.5))
    assert float(ctrl.loss()) == 0.0  # no forward yet
    model.train()
    x = torch.randn(6, 3, 8, 8)
    out = model(x)
    reference.eval()
    with torch.no_grad():
        t_out = reference(x)
    torch.testing.assert_close(ctrl.loss(), 0.5 * softmax_kd(out, t_out, 2.0))
    assert ctrl.loss() is ctrl.loss()  # the teacher runs once per batch
    ctrl.loss().backward()
    part = _part(ctrl)
    assert all(p.grad is None for p in part.teacher.parameters())
    assert any(p.grad is not None for p in model.parameters())
    model.eval()
    model(torch.randn(2, 3, 8, 8))  # eval forwards are not distilled; the last training batch stays
    torch.testing.assert_close(ctrl.loss(), 0.5 * softmax_kd(out, t_out, 2.0))
    assert ctrl.statistics().as_dict()["knowledge_distillation"]["latest_loss"] == pytest.approx(
        float(ctrl.loss().detach())
    )


@pytest.mark.parametrize("kd_first", [True, False], ids=["kd-first", "kd-last"])
def test_teacher_is_the_uncompressed_model_whatever_the_list_order(kd_first: bool) -> None:
    model = seeded(TinyResNet())
    before = copy.deepcopy(model.state_dict())
    quant = {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 16}}}
    kd = {"algorithm": "knowledge_distillation", "type": "mse"}
    cfg = register_default_init_args(
        {"input_info": {"sample_size": SIZE}, "compression": [kd, quant] if kd_first else [quant, kd]}, _loader()
    )
    ctrl, model = create_compressed_model(model, cfg)
    assert not torch.equal(model.bn1.running_mean, before["bn1.running_mean"])  # BN adaptation changed the student
    teacher = _part(ctrl).teacher
    assert get_runtime(teacher) is None
    assert all(torch.equal(v, before[k]) for k, v in teacher.state_dict().items())
    # the teacher sees the raw batch, not the quantized input
    model.train()
    x = torch.randn(4, 3, 8, 8) * 3
    model(x)
    cap = _part(ctrl).capture
    assert cap.args is not None and cap.args[0] is x


def test_teacher_is_not_part_of_the_student_and_strip_removes_hooks() -> None:
    model = seeded(TinyResNet())
    n_params, keys = len(list(model.parameters())), set(model.state_dict())
    ctrl, model = create_compressed_model(model, _config())
    assert len(list(model.parameters())) == n_params
    assert set(model.state_dict()) == keys
    assert all(m is not _part(ctrl).teacher for m in model.modules())
    copied = copy.deepcopy(model)  # copies share the frozen teacher instead of duplicating it
    hook = next(h for h in copied._forward_pre_hooks.values() if hasattr(h, "capture"))
    assert hook.capture.teacher is _part(ctrl).teacher
    stripped = ctrl.strip()
    assert not any(hasattr(h, "capture") for h in stripped._forward_pre_hooks.values())
    assert not any(hasattr(h, "capture") for h in stripped._forward_hooks.values())
    assert any(hasattr(h, "capture") for h in model._forward_pre_hooks.values())  # do_copy=True


def test_failed_apply_later_in_the_stack_removes_the_capture_hooks() -> None:
    class Broken(DataLoader[Any]):
        def __iter__(self) -> Any:
            raise RuntimeError("data source failed")

    model = seeded(TinyResNet())
    cfg = register_default_init_args(_config({"algorithm": "quantization"}), Broken(TensorDataset(torch.zeros(1))))
    with pytest.raises(RuntimeError, match="data source failed"):
        create_compressed_model(model, cfg)
    assert get_runtime(model) is None
    assert not model._forward_pre_hooks and not model._forward_hooks


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "compression.type: required key is missing"),
        ({"type": "kl"}, "compression.type: must be one of ['mse', 'softmax']"),
        ({"type": "mse", "temperature": 0}, "compression.temperature: must be in (0.0, inf]"),
        ({"type": "mse", "scale": -1}, "compression.scale: must be in [0.0, inf]"),
        ({"type": "mse", "temprature": 2}, "Did you mean 'temperature'?"),
    ],
    ids=str,
)
def test_config_errors(params: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace("[", r"\[").replace(")", r"\)")):
        NNCFConfig.from_dict(
            {"input_info": {"sample_size": SIZE}, "compression": {"algorithm": "knowledge_distillation", **params}}
        )


# ---- issue 10 finding 7: the teacher is part of the saved state --------------------------------------------
def _trained_kd(**kd: Any) -> tuple[dict[str, Any], dict[str, torch.Tensor], torch.nn.Module]:
    """A KD run started from ``seeded(TinyResNet(), 1)``, one SGD step taken; returns state, weights, start model."""
    start = seeded(TinyResNet(), 1)
    model = copy.deepcopy(start)
    ctrl, model = create_compressed_model(model, _config(**kd))
    x = torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(2))
    model.train()
    loss = model(x).logsumexp(1).mean() + ctrl.loss()
    loss.backward()
    with torch.no_grad():
        for p in model.parameters():
            p -= 0.1 * p.grad if p.grad is not None else 0.0
    return ctrl.get_compression_state(), {k: v.clone() for k, v in model.state_dict().items()}, start


def _kd_value(ctrl: Any, model: torch.nn.Module) -> torch.Tensor:
    model.train()
    model(torch.randn(4, 3, 8, 8, generator=torch.Generator().manual_seed(3)))
    loss = ctrl.loss()
    assert isinstance(loss, torch.Tensor)
    return loss.detach()


def test_resume_with_the_same_start_model_gives_the_same_kd_loss() -> None:
    state, weights, start = _trained_kd()
    assert isinstance(state["builder_state"]["knowledge_distillation"]["teacher_fingerprint"], str)
    ctrl_a, model_a = create_compressed_model(copy.deepcopy(start), _config(), compression_state=state)
    model_a.load_state_dict(weights)
    ctrl_b, model_b = create_compressed_model(copy.deepcopy(start), _config(), compression_state=state)
    model_b.load_state_dict(weights)
    torch.testing.assert_close(_kd_value(ctrl_a, model_a), _kd_value(ctrl_b, model_b), rtol=0, atol=0)


def test_resume_with_another_teacher_is_a_located_error_and_leaves_the_model_alone() -> None:
    state, _, _ = _trained_kd()
    other = seeded(TinyResNet(), 7)  # a freshly initialised model: the drift this finding was about
    before = {k: v.clone() for k, v in other.state_dict().items()}
    with pytest.raises(ConfigError, match=r"builder_state\.knowledge_distillation\.teacher_fingerprint.*save_teacher"):
        create_compressed_model(other, _config(), compression_state=state)
    assert get_runtime(other) is None
    assert all(torch.equal(before[k], v) for k, v in other.state_dict().items())
    # an explicit opt-out distils from the model passed now
    create_compressed_model(other, _config(), compression_state=state, allow_config_change=True)


def test_save_teacher_restores_the_teacher_whatever_model_is_passed() -> None:
    state, weights, start = _trained_kd(save_teacher=True)
    ctrl_ref, model_ref = create_compressed_model(copy.deepcopy(start), _config(save_teacher=True),
                                                  compression_state=state)
    model_ref.load_state_dict(weights)
    other = seeded(TinyResNet(), 7)
    ctrl, model = create_compressed_model(other, _config(save_teacher=True), compression_state=state)
    model.load_state_dict(weights)
    torch.testing.assert_close(_kd_value(ctrl, model), _kd_value(ctrl_ref, model_ref), rtol=0, atol=0)
    torch.testing.assert_close(_part(ctrl).teacher.state_dict(), start.state_dict())


def test_saved_teacher_that_does_not_fit_is_a_state_error() -> None:
    state, _, start = _trained_kd(save_teacher=True)
    teacher = state["builder_state"]["knowledge_distillation"]["teacher"]
    teacher.pop(next(iter(teacher)))
    with pytest.raises(ConfigError, match=r"knowledge_distillation\.teacher: does not fit"):
        create_compressed_model(copy.deepcopy(start), _config(save_teacher=True), compression_state=state)

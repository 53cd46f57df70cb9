"""SupernetTrainer: DεpS's full-model warm-up, β-weighted in-place KD, the KD formula, bit-exact resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from tests.unit.nas.training._tiny import batches, tiny_supernet

from netsculpt.errors import StateError
from netsculpt.nas import ElasticSupernet
from netsculpt.nas.training import ScheduleParams, StageParams, SupernetTrainer

DEPS = ScheduleParams(schedule="deps", epochs=8, steps_per_epoch=2, lr=0.1, min_lr=0.0)  # ramp: steps 8, 9


def _trainer(p: ScheduleParams, seed: int = 0) -> SupernetTrainer:
    net = tiny_supernet(seed)
    opt = torch.optim.SGD(net.model.parameters(), lr=p.lr, momentum=0.9, weight_decay=1e-4)
    return SupernetTrainer(net, opt, p)


def _grads(net: ElasticSupernet) -> dict[str, torch.Tensor]:
    return {n: (q.grad.clone() if q.grad is not None else torch.zeros_like(q)) for n, q in net.model.named_parameters()}


def _reference_grads(
    p: ScheduleParams, tr: SupernetTrainer, x: torch.Tensor, y: torch.Tensor, with_subnets: bool
) -> dict[str, torch.Tensor]:
    """Σ β_j g_j by hand on a twin supernet: CE of the full model + β · KD_T for every other planned subnet."""
    twin = tiny_supernet(0)
    twin.model.train()
    plan = tr.plan()
    twin.activate_subnet_for_config(plan[0].config)
    z_max = twin.model(x)
    F.cross_entropy(z_max, y).backward()
    if with_subnets:
        t = p.kd_temperature
        for sub in plan[1:]:
            twin.activate_subnet_for_config(sub.config)
            z = twin.model(x)
            kd = t * t * -(F.softmax(z_max.detach() / t, 1) * F.log_softmax(z / t, 1)).sum(1).mean()
            (sub.multiplier * p.kd_weight * kd).backward()
    return _grads(twin)


@pytest.mark.parametrize("step", [0, 7, 9, 13])
def test_deps_gradients_are_full_model_alone_before_the_switch_then_beta_weighted(step: int) -> None:
    tr = _trainer(DEPS)
    tr.step = step
    x, y = batches(1)[0]
    res = tr.accumulate_gradients(x, y)
    got = _grads(tr.supernet)
    full_only = _reference_grads(DEPS, tr, x, y, with_subnets=False)
    if step < 8:
        assert res.phase == "warmup" and res.beta == 0.0 and len(res.losses) == 1
        assert all(torch.equal(got[n], full_only[n]) for n in got)  # subnets contribute exactly nothing
        return
    assert res.phase == ("ramp" if step < 10 else "shrink") and len(res.losses) == 4
    assert 0 < res.beta < 1 if step < 10 else res.beta == 1.0
    diff = max(float((got[n] - full_only[n]).abs().max()) for n in got)
    assert diff > 1e-6  # subnets do contribute now
    ref = _reference_grads(DEPS, tr, x, y, with_subnets=True)
    for n in got:
        torch.testing.assert_close(got[n], ref[n], rtol=1e-5, atol=1e-7)


def test_kd_losses_match_the_reference_formula() -> None:
    p = ScheduleParams(
        schedule="bignas", epochs=2, steps_per_epoch=2, kd_temperature=2.0, kd_weight=0.5, label_smoothing=0.1
    )
    tr = _trainer(p)
    x, y = batches(1)[0]
    plan = tr.plan()
    assert [s.multiplier for s in plan] == [1.0] * 4 and [s.role for s in plan] == ["full", "kd", "kd", "kd"]
    res = tr.accumulate_gradients(x, y)
    twin = tiny_supernet(0)
    twin.model.train()
    outs = []
    with torch.no_grad():
        for sub in plan:
            twin.activate_subnet_for_config(sub.config)
            outs.append(twin.model(x))
    z_t = outs[0]
    q = (1 - 0.1) * F.one_hot(y, 4) + 0.1 / 4  # label smoothing by hand
    ce_ls = -(q * F.log_softmax(z_t, 1)).sum(1).mean()
    assert res.losses[0] == pytest.approx(float(ce_ls), rel=1e-5)
    for z, got in zip(outs[1:], res.losses[1:]):
        p_t, log_p_s = torch.exp(z_t / 2) / torch.exp(z_t / 2).sum(1, keepdim=True), torch.log_softmax(z / 2, 1)
        ref = 0.5 * 4.0 * float(-(p_t * log_p_s).sum(1).mean())
        assert got == pytest.approx(ref, rel=1e-5)
    assert len(set(res.losses[1:])) > 1


def test_ofa_subnets_train_on_labels_plus_kd_and_the_full_model_only_teaches() -> None:
    p = ScheduleParams(
        schedule="ofa", steps_per_epoch=2, stages=(StageParams(train_dims=("width", "kernel"), width_indicator=-1),)
    )
    tr = _trainer(p)
    x, y = batches(1)[0]
    plan = tr.plan()
    assert plan[1].config != plan[0].config
    res = tr.accumulate_gradients(x, y)
    twin = tiny_supernet(0)
    twin.model.train()
    with torch.no_grad():
        twin.activate_subnet_for_config(plan[0].config)
        z_t = twin.model(x)
        twin.activate_subnet_for_config(plan[1].config)
        z = twin.model(x)
    ref = F.cross_entropy(z, y) + -(F.softmax(z_t, 1) * F.log_softmax(z, 1)).sum(1).mean()
    assert res.losses == [pytest.approx(float(ref), rel=1e-5)]
    # channels the subnet masks get no gradient: the full model's pass did not train anything
    mask = tr.supernet.active_param_mask()  # full config active again: everything True
    assert all(bool(m.all()) for m in mask.values())
    tr.supernet.activate_subnet_for_config(plan[1].config)
    sub_mask = tr.supernet.active_param_mask()
    for n, q in tr.supernet.model.named_parameters():
        if q.grad is not None:
            assert not bool(q.grad[~sub_mask[n]].abs().gt(0).any()), n


def _run(tr: SupernetTrainer, data: list[tuple[torch.Tensor, torch.Tensor]], start: int, stop: int) -> None:
    for x, y in data[start:stop]:
        tr.train_step(x, y)


@pytest.mark.parametrize(
    ("params", "split"),
    [
        (DEPS, 8),  # N/2: exactly at the switch
        (DEPS, 9),  # mid-ramp
        (ScheduleParams(schedule="bignas", epochs=2, steps_per_epoch=4, lr=0.1, min_lr=0.0), 4),
        (ScheduleParams(schedule="ofa", steps_per_epoch=3, lr=0.05), 13),  # after the reorganising stage began
    ],
    ids=["deps-half", "deps-ramp", "bignas", "ofa"],
)
def test_resume_is_bit_exact(params: ScheduleParams, split: int, tmp_path: Path) -> None:
    straight = _trainer(params)
    data = batches(straight.total_steps)
    _run(straight, data, 0, len(data))

    first = _trainer(params)
    _run(first, data, 0, split)
    path = tmp_path / "ckpt.pt"
    torch.save(
        {
            "model": first.supernet.model.state_dict(),
            "optimizer": first.optimizer.state_dict(),
            "trainer": first.state_dict(),
        },
        path,
    )
    del first
    ckpt = torch.load(path, weights_only=True)
    resumed = _trainer(params, seed=123)  # different initial weights: everything must come from the checkpoint
    resumed.supernet.model.load_state_dict(ckpt["model"])
    resumed.optimizer.load_state_dict(ckpt["optimizer"])
    resumed.load_state_dict(ckpt["trainer"])
    assert resumed.step == split
    _run(resumed, data, split, len(data))

    a, b = straight.supernet.model.state_dict(), resumed.supernet.model.state_dict()
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), k

    # negative control: without the trainer state the schedule restarts and the weights differ
    control = _trainer(params, seed=123)
    control.supernet.model.load_state_dict(ckpt["model"])
    control.optimizer.load_state_dict(ckpt["optimizer"])
    _run(control, data, split, len(data))
    c = control.supernet.model.state_dict()
    assert any(not torch.equal(a[k], c[k]) for k in a)


def test_state_from_another_schedule_is_refused() -> None:
    state = _trainer(ScheduleParams(schedule="bignas")).state_dict()
    with pytest.raises(StateError, match=r"^trainer_state\.schedule: saved by a 'bignas' run"):
        _trainer(DEPS).load_state_dict(state)
    state = _trainer(DEPS).state_dict()
    with pytest.raises(StateError, match=r"^trainer_state\.total_steps"):
        _trainer(ScheduleParams(schedule="deps", epochs=5, steps_per_epoch=2)).load_state_dict(state)
    with pytest.raises(StateError, match=r"^trainer_state\.sampler\.seed: saved seed 0"):
        _trainer(
            ScheduleParams(schedule="deps", epochs=8, steps_per_epoch=2, lr=0.1, min_lr=0.0, seed=3)
        ).load_state_dict(state)
    with pytest.raises(StateError, match=r"^trainer_state\.step: missing"):
        _trainer(DEPS).load_state_dict({k: v for k, v in state.items() if k != "step"})


def test_non_finite_loss_stops_with_the_step() -> None:
    tr = _trainer(DEPS)
    x, y = batches(1)[0]
    with pytest.raises(FloatingPointError, match=r"^supernet training step 0: the full subnet's loss is nan"):
        tr.train_step(x * float("nan"), y)


def test_ofa_reorganising_stage_moves_the_optimizer_state(monkeypatch: pytest.MonkeyPatch) -> None:
    """The stage with ``reorg_weights`` hands the trainer's optimizer to ``reorganize_channels`` (whose state
    permutation ``tests/unit/nas/test_reorg.py`` checks)."""
    p = ScheduleParams(schedule="ofa", steps_per_epoch=3, lr=0.05)
    tr = _trainer(p)
    reorg_stages = [i for i, s in enumerate(p.stages) if s.reorg_weights]
    assert reorg_stages, "the default OFA stages reorganise channels"
    calls: list[object] = []
    original = tr.supernet.reorganize_channels

    def spy(criterion: str | None = None, optimizer: torch.optim.Optimizer | None = None) -> int:
        calls.append(optimizer)
        return original(criterion, optimizer)

    monkeypatch.setattr(tr.supernet, "reorganize_channels", spy)
    _run(tr, batches(tr.total_steps), 0, tr.total_steps)
    assert calls and all(c is tr.optimizer for c in calls)
    assert len(calls) == len(reorg_stages)

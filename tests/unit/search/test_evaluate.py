"""evaluate: bit-exact restore (weights, BN statistics, masks, quantizer state, optimizer), determinism."""

from __future__ import annotations

import torch
from tests.unit.search._fixtures import compressed, config, loaders, tiny

from netsculpt.search import Policy, SearchSpace, TrainHooks, cost, evaluate


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    out = {f"p:{n}": p.detach().clone() for n, p in model.named_parameters()}
    out.update({f"b:{n}": b.detach().clone() for n, b in model.named_buffers()})
    return out


def test_evaluate_restores_everything_bit_exactly() -> None:
    train, val = loaders()
    ctrl, model = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    ctrl.apply_policy(Policy.random(space, 1))
    model.train()
    user_opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model(next(iter(train))[0]).sum().backward()
    user_opt.step()
    before = _state(model)
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    opt_before = {k: v["momentum_buffer"].clone() for k, v in user_opt.state_dict()["state"].items()}
    policy = ctrl.current_policy()
    quant = next(p for p in ctrl.child_ctrls if p.name == "quantization")
    bits_before = {i.key: quant.quantizer(i.key).bits for i in quant.infos}
    hooks = TrainHooks(train_loader=train, val_loader=val)
    result = evaluate(
        ctrl,
        Policy.uniform(space, keep=0.5, bits=4),
        hooks,
        bn_recalibration_samples=32,
        finetune_steps=3,
        optimizer=user_opt,
    )
    assert 0.0 <= result.metric <= 1.0 and result.seconds > 0
    assert result.cost == cost(space, Policy.uniform(space, keep=0.5, bits=4))
    after = _state(model)
    assert before.keys() == after.keys()
    changed = [k for k in before if not torch.equal(before[k], after[k])]
    assert not changed
    assert all(torch.equal(grads[n], p.grad) for n, p in model.named_parameters() if n in grads)
    state = user_opt.state_dict()["state"]
    assert all(torch.equal(opt_before[k], state[k]["momentum_buffer"]) for k in opt_before)
    assert ctrl.current_policy() == policy
    assert {i.key: quant.quantizer(i.key).bits for i in quant.infos} == bits_before
    assert model.training


def test_negative_control_training_without_restore_changes_the_model() -> None:
    train, _ = loaders()
    ctrl, model = compressed(tiny(), config())
    before = _state(model)
    hooks = TrainHooks(train_loader=train)
    hooks.train_steps(model, hooks.optimizer(model), 2)
    after = _state(model)
    assert any(not torch.equal(before[k], after[k]) for k in before)


def test_evaluate_is_deterministic_and_sees_the_policy() -> None:
    train, val = loaders()
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    hooks = TrainHooks(train_loader=train, val_loader=val)
    p, q = Policy.uniform(space, keep=1.0, bits=8), Policy.uniform(space, keep=0.25, bits=2)
    a = evaluate(ctrl, p, hooks, bn_recalibration_samples=32, finetune_steps=2)
    b = evaluate(ctrl, p, hooks, bn_recalibration_samples=32, finetune_steps=2)
    c = evaluate(ctrl, q, hooks, bn_recalibration_samples=32, finetune_steps=2)
    assert a.metric == b.metric and a.cost == b.cost
    assert c.cost.bops < a.cost.bops


def test_loader_generator_history_does_not_change_the_metric() -> None:
    train, val = loaders()
    ctrl, _ = compressed(tiny(), config())
    space = SearchSpace.from_controller(ctrl)
    hooks = TrainHooks(train_loader=train, val_loader=val)
    p = Policy.uniform(space, keep=0.5, bits=4)
    def weights(m: torch.nn.Module) -> float:  # a metric that sees every trained weight
        return float(sum(float(q.detach().double().sum()) for q in m.parameters()))

    state = train.generator.get_state()
    a = evaluate(ctrl, p, hooks, bn_recalibration_samples=32, finetune_steps=3, metric=weights)
    assert torch.equal(train.generator.get_state(), state)  # the user's loader is left as it was
    list(train)  # advance the loader's own generator, as a previous epoch would
    b = evaluate(ctrl, p, hooks, bn_recalibration_samples=32, finetune_steps=3, metric=weights)
    assert a.metric == b.metric
    c = evaluate(ctrl, p, hooks, bn_recalibration_samples=32, finetune_steps=3, metric=weights, seed=1)
    assert c.metric != a.metric  # negative control: other batches, other weights

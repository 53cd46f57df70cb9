"""``netsculpt.integrations.hf`` on a tiny BERT (from a config, no downloads) with the real ``transformers.Trainer``:
the compression loss reaches the optimiser, the scheduler counts epochs and optimizer steps (gradient accumulation
included), the final ONNX export runs in ONNX Runtime like PyTorch, and checkpoints carry the compression state
and resume exactly."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import torch

import netsculpt
from netsculpt.errors import ConfigError, StateError
from netsculpt.integrations import STATE_FILE, load_compression_state

transformers = pytest.importorskip(
    "transformers", reason="transformers is an optional extra: pip install 'netsculpt[integrations]'"
)
pytest.importorskip("accelerate", reason="transformers.Trainer needs accelerate: pip install 'netsculpt[integrations]'")

from tests.unit.integrations._tiny import SEQ, TEXT_INFO, TokenData, ort_run, tiny_bert  # noqa: E402

from netsculpt.integrations.hf import NetsculptCallback, NetsculptTrainer  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.onnx]

RB = {"algorithm": "rb_sparsity", "sparsity_init": 0.3,
      "params": {"schedule": "polynomial", "sparsity_target": 0.6, "sparsity_target_epoch": 2}}  # fmt: skip


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _compressed(state: dict[str, Any] | None = None) -> tuple[Any, torch.nn.Module]:
    return netsculpt.create_compressed_model(tiny_bert(), {"input_info": TEXT_INFO, "compression": RB},
                                             compression_state=state)  # fmt: skip


def _args(out: Path, **kw: Any) -> Any:
    base = dict(output_dir=str(out), per_device_train_batch_size=4, learning_rate=0.05, report_to=[], use_cpu=True,
                disable_tqdm=True, save_strategy="no", logging_strategy="no", seed=0, data_seed=0, max_grad_norm=0.0)  # fmt: skip
    return transformers.TrainingArguments(**{**base, **kw})


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_compression_loss_reaches_the_optimizer(tmp_path: Path) -> None:
    """rb_sparsity's loss trains the mask logits: one step of ``NetsculptTrainer`` differs from the same step of a
    plain ``Trainer`` (scheduler callback only), and the difference is the loss term's gradient."""
    data = TokenData(4)
    results = []
    for trainer_class in (NetsculptTrainer, transformers.Trainer):
        ctrl, model = _compressed()
        kw = (
            {"compression_ctrl": ctrl}
            if trainer_class is NetsculptTrainer
            else {"callbacks": [NetsculptCallback(ctrl)]}
        )
        before = _params(model)
        trainer = trainer_class(model=model, args=_args(tmp_path, max_steps=1, optim="sgd"), train_dataset=data, **kw)
        trainer.train()
        results.append((before, _params(model), ctrl))
    (before, with_term, ctrl), (before_plain, plain, _) = results
    assert all(torch.equal(before[k], before_plain[k]) for k in before)
    logits = [k for k in with_term if k.endswith(".logit")]
    assert logits, "no rb_sparsity mask parameters"
    assert ctrl.loss().item() > 1e-3  # keep probability ~1 against the 70 % target: a real loss term
    moved = {k: (with_term[k] - plain[k]).abs().max().item() for k in logits}
    assert max(moved.values()) > 1e-6, "ctrl.loss() did not change the optimizer step"
    # the direct check: the term's own gradient, times -lr, is the difference of the two SGD steps
    ctrl.model.zero_grad()
    for name, p in ctrl.model.named_parameters():  # back to the pre-step point for the gradient
        p.data.copy_(before[name])
    ctrl.loss().backward()
    grads = dict(ctrl.model.named_parameters())
    k = max(moved, key=moved.__getitem__)
    assert grads[k].grad is not None
    torch.testing.assert_close(with_term[k] - plain[k], -0.05 * grads[k].grad, atol=1e-5, rtol=1e-3)


@dataclass
class Run:
    ctrl: Any
    model: torch.nn.Module
    trainer: Any
    out: Path
    micro_batches: int


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Run:
    """2 epochs of 5 batches with gradient accumulation 2 (3 optimizer steps per epoch), a checkpoint per epoch,
    exported at the end."""
    out = tmp_path_factory.mktemp("hf")
    ctrl, model = _compressed()
    calls = []

    class Counting(NetsculptTrainer):  # type: ignore[misc,valid-type]
        def compute_loss(self, *a: Any, **kw: Any) -> Any:
            calls.append(1)
            return super().compute_loss(*a, **kw)

    trainer = Counting(
        model=model,
        args=_args(out, num_train_epochs=2, gradient_accumulation_steps=2, save_strategy="epoch"),  # fmt: skip
        train_dataset=TokenData(20),
        compression_ctrl=ctrl,
        export_path=out / "onnx" / "bert.onnx",
    )
    trainer.train()
    return Run(ctrl, model, trainer, out, len(calls))


def test_scheduler_counts_epochs_and_optimizer_steps(run: Run) -> None:
    steps = 2 * 3  # 2 epochs x ceil(5 batches / accumulation 2)
    assert run.micro_batches == 2 * 5
    assert run.trainer.state.global_step == steps
    driver = run.trainer.netsculpt_callback.driver
    assert (driver.epochs_started, driver.steps_started) == (2, steps)
    assert (run.ctrl.scheduler.current_epoch, run.ctrl.scheduler.current_step) == (1, steps - 1)
    stats = run.ctrl.statistics().as_dict()["rb_sparsity"]
    assert stats["current_epoch"] == 1
    assert 0.3 < stats["current_level"] <= 0.6  # the epoch schedule moved from sparsity_init


def test_export_runs_in_onnx_runtime_like_pytorch(run: Run) -> None:
    path = run.out / "onnx" / "bert.onnx"
    assert run.trainer.netsculpt_callback.driver.exported == path and path.is_file()
    g = torch.Generator().manual_seed(7)
    ids, mask = torch.randint(0, 100, (3, SEQ), generator=g), torch.ones(3, SEQ, dtype=torch.long)
    mask[0, SEQ // 2 :] = 0
    stripped = run.ctrl.strip(do_copy=True)
    with torch.no_grad():
        expected = stripped(ids, attention_mask=mask).logits
    (got, *_) = ort_run(path, ids, mask)
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-4, rtol=1e-3)


def test_checkpoints_carry_the_compression_state_and_resume(run: Run, tmp_path: Path) -> None:
    ckpts = sorted(run.out.glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1]))
    assert [p.name for p in ckpts] == ["checkpoint-3", "checkpoint-6"]
    assert all((p / STATE_FILE).is_file() for p in ckpts)
    state = load_compression_state(ckpts[0])
    assert state["ctrl_state"]["rb_sparsity"]["current_step"] == 2  # saved after 3 optimizer steps
    # resume from the first epoch's checkpoint: the same end as the uninterrupted run
    ctrl, model = _compressed(state)
    args = _args(run.out, num_train_epochs=2, gradient_accumulation_steps=2, save_strategy="no")
    trainer = NetsculptTrainer(model=model, args=args, train_dataset=TokenData(20), compression_ctrl=ctrl)
    trainer.train(resume_from_checkpoint=str(ckpts[0]))
    assert trainer.netsculpt_callback.driver.steps_started == 3
    assert (ctrl.scheduler.current_epoch, ctrl.scheduler.current_step) == (1, 5)
    done = dict(run.model.named_parameters())
    for name, p in model.named_parameters():
        torch.testing.assert_close(p, done[name], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    trainer.save_model(str(tmp_path / "final"))
    assert load_compression_state(tmp_path / "final")["fingerprint"] == state["fingerprint"]


def test_errors_name_what_is_missing(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="compression_ctrl must be the controller"):
        NetsculptTrainer(model=tiny_bert(), args=_args(tmp_path), compression_ctrl=None)
    with pytest.raises(StateError, match=STATE_FILE):
        load_compression_state(tmp_path)

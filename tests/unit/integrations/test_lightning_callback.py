"""``netsculpt.integrations.lightning`` on a tiny CNN inside a ``LightningModule`` with the real Lightning
``Trainer``: the distillation loss reaches the optimiser, the scheduler counts epochs and optimizer steps
(``accumulate_grad_batches`` included), the ONNX export runs in ONNX Runtime like PyTorch, and checkpoints carry
the compression state and resume exactly."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch

import netsculpt
from netsculpt.errors import ConfigError
from netsculpt.integrations import CHECKPOINT_KEY, load_compression_state

L = pytest.importorskip("lightning", reason="lightning is an optional extra: pip install 'netsculpt[integrations]'")

from tests.unit.integrations._tiny import image_loader, lit_classifier_class, ort_run, tiny_cnn  # noqa: E402

from netsculpt.integrations.lightning import NetsculptLightningCallback  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.onnx]

INFO = {"sample_size": [2, 1, 28, 28]}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _trainer(root: Path, callbacks: list[Any], **kw: Any) -> Any:
    base = dict(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                enable_checkpointing=False, default_root_dir=str(root), max_epochs=2)  # fmt: skip
    return L.Trainer(callbacks=callbacks, **{**base, **kw})


def _params(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.named_parameters()}


def test_distillation_loss_reaches_the_optimizer(tmp_path: Path) -> None:
    """Knowledge distillation against the teacher copied at compression time: after the student is perturbed,
    training with the callback's loss differs from training without it (``add_loss=False``), and the logged
    ``compression_loss`` is the distillation loss."""
    results = []
    for add_loss in (True, False):
        ctrl, net = netsculpt.create_compressed_model(
            tiny_cnn(), {"input_info": INFO, "compression": {"algorithm": "knowledge_distillation", "type": "mse"}}
        )
        with torch.no_grad():  # the student moves away from its teacher: a non-zero distillation loss
            for p in net.parameters():
                p.add_(0.2 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
        trainer = _trainer(tmp_path, [NetsculptLightningCallback(ctrl, add_loss=add_loss)], max_epochs=1, max_steps=2)
        trainer.fit(lit_classifier_class()(net), image_loader(16))
        results.append((_params(net), dict(trainer.callback_metrics)))
    (with_term, metrics), (plain, plain_metrics) = results
    assert metrics["compression_loss"].item() > 1e-4
    assert "compression_loss" not in plain_metrics
    assert max((with_term[k] - plain[k]).abs().max().item() for k in with_term) > 1e-5


def test_manual_optimisation_needs_add_loss_false(tmp_path: Path) -> None:
    ctrl, net = netsculpt.create_compressed_model(
        tiny_cnn(), {"input_info": INFO, "compression": {"algorithm": "quantization"}}
    )
    module = lit_classifier_class()(net)
    module.automatic_optimization = False
    with pytest.raises(ConfigError, match="manual_backward"):
        _trainer(tmp_path, [NetsculptLightningCallback(ctrl)]).fit(module, image_loader(8))


def _quantized(state: dict[str, Any] | None = None) -> tuple[Any, torch.nn.Module]:
    config = netsculpt.NNCFConfig.from_dict({"input_info": INFO, "compression": {"algorithm": "quantization"}})
    if state is None:
        config = netsculpt.register_default_init_args(config, image_loader(16))
    return netsculpt.create_compressed_model(tiny_cnn(), config, compression_state=state)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, torch.nn.Module, Any, Any, Path]:
    """INT8 QAT, 2 epochs of 5 batches with accumulate_grad_batches=2, a checkpoint per epoch, exported."""
    out = tmp_path_factory.mktemp("pl")
    ctrl, net = _quantized()
    callback = NetsculptLightningCallback(ctrl, export_path=out / "cnn.onnx")
    ckpt = L.pytorch.callbacks.ModelCheckpoint(dirpath=out, save_top_k=-1, every_n_epochs=1, filename="{epoch}")
    trainer = _trainer(out, [callback, ckpt], accumulate_grad_batches=2, enable_checkpointing=True)
    trainer.fit(lit_classifier_class()(net), image_loader(40))
    return ctrl, net, trainer, callback, out


def test_scheduler_counts_epochs_and_optimizer_steps(run: Any) -> None:
    ctrl, _, trainer, callback, _ = run
    steps = 2 * 3  # 2 epochs x ceil(5 batches / accumulation 2)
    assert trainer.global_step == steps
    assert (callback.driver.epochs_started, callback.driver.steps_started) == (2, steps)
    assert (ctrl.scheduler.current_epoch, ctrl.scheduler.current_step) == (1, steps - 1)


def test_export_runs_in_onnx_runtime_like_pytorch(run: Any) -> None:
    ctrl, _, _, callback, out = run
    assert callback.driver.exported == out / "cnn.onnx"
    x = torch.randn(5, 1, 28, 28, generator=torch.Generator().manual_seed(11))
    with torch.no_grad():
        expected = ctrl.strip(do_copy=True)(x)
    (got,) = ort_run(out / "cnn.onnx", x)
    # INT8 QDQ: ONNX Runtime and PyTorch may round an activation differently by one step
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=0.05 * expected.abs().max().item(), rtol=0)
    assert (torch.from_numpy(got).argmax(1) == expected.argmax(1)).float().mean() >= 0.8


def test_checkpoints_carry_the_compression_state_and_resume(run: Any, tmp_path: Path) -> None:
    ctrl, net, _, _, out = run
    first = out / "epoch=0.ckpt"
    assert first.is_file() and (out / "epoch=1.ckpt").is_file()
    state = load_compression_state(first)
    assert state["ctrl_state"]["quantization"]["current_step"] == 2  # 3 optimizer steps in epoch 0
    ctrl2, net2 = _quantized(state)  # no range init: the scales come from the checkpoint
    callback = NetsculptLightningCallback(ctrl2)
    trainer = _trainer(tmp_path, [callback], accumulate_grad_batches=2)
    trainer.fit(lit_classifier_class()(net2), image_loader(40), ckpt_path=str(first))
    assert callback.driver.steps_started == 3
    assert (ctrl2.scheduler.current_epoch, ctrl2.scheduler.current_step) == (1, 5)
    done = dict(net.named_parameters())
    for name, p in net2.named_parameters():
        torch.testing.assert_close(p, done[name], atol=1e-5, rtol=1e-4, msg=lambda m, n=name: f"{n}: {m}")
    assert CHECKPOINT_KEY in torch.load(first, weights_only=False)

"""The framework-free parts of ``netsculpt.integrations``: they import and fail clearly without the optional
extras, the Hugging Face loss mixin adds the term once per optimizer step, the Lightning loss wrapper handles every
``training_step`` output, and the state file helpers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

from netsculpt.errors import ConfigError, StateError
from netsculpt.integrations import STATE_FILE, load_compression_state
from netsculpt.integrations.hf import CompressionLossMixin
from netsculpt.integrations.lightning import add_compression_loss

_WITHOUT_EXTRAS = """
import sys
for name in ("transformers", "accelerate", "lightning", "lightning.pytorch", "pytorch_lightning"):
    sys.modules[name] = None  # importing them raises ImportError
import netsculpt.integrations, netsculpt.integrations.hf as hf, netsculpt.integrations.lightning as pl
from netsculpt.errors import ConfigError
for module, name in ((hf, "NetsculptTrainer"), (hf, "NetsculptCallback"), (pl, "NetsculptLightningCallback")):
    try:
        getattr(module, name)
    except ConfigError as err:
        print(name, "->", err)
    else:
        raise SystemExit(name + " built without its framework")
"""


def test_modules_import_without_the_extras_and_say_what_to_install() -> None:
    done = subprocess.run([sys.executable, "-c", _WITHOUT_EXTRAS], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 3, done.stdout
    assert all("pip install 'netsculpt[integrations]'" in line for line in lines), done.stdout
    assert "'transformers'" in lines[0] and "Lightning" in lines[2]


def test_compute_loss_adds_the_compression_term_once_per_optimizer_step() -> None:
    """The mixin alone, on a stand-in ``Trainer``: ``+ ctrl.loss()``, divided by the accumulation steps only when
    the Trainer does not divide the loss itself; evaluation losses unchanged."""

    class Ctrl:
        def loss(self) -> torch.Tensor:
            return torch.tensor(8.0)

    class Base:
        loss_is_scaled_for_ga: bool | None = None
        current_gradient_accumulation_steps = 4

        def compute_loss(
            self, model: Any, inputs: Any, return_outputs: bool = False, num_items_in_batch: Any = None
        ) -> Any:
            return (torch.tensor(1.0), "out") if return_outputs else torch.tensor(1.0)

    class T(CompressionLossMixin, Base):
        pass

    trainer, model = T(), torch.nn.Linear(1, 1)
    trainer.compression_ctrl = Ctrl()  # type: ignore[assignment]
    assert trainer.compute_loss(model, {}).item() == 9.0
    assert trainer.compute_loss(model, {}, return_outputs=True) == (torch.tensor(9.0), "out")
    trainer.loss_is_scaled_for_ga = True  # the task loss is normalised over the accumulated batch
    assert trainer.compute_loss(model, {}).item() == 3.0
    assert trainer.compute_loss(model.eval(), {}).item() == 1.0
    trainer.compression_ctrl = None
    with pytest.raises(ConfigError, match="compression_ctrl is not set"):
        trainer.compute_loss(model.train(), {})


def test_add_compression_loss_shapes() -> None:
    term = torch.tensor(2.0)
    assert add_compression_loss(torch.tensor(1.0), term).item() == 3.0
    out = add_compression_loss({"loss": torch.tensor(1.0), "n": 4}, term)
    assert out["loss"].item() == 3.0 and out["n"] == 4
    assert add_compression_loss(None, term) is None
    with pytest.raises(ConfigError, match="got str"):
        add_compression_loss("x", term)


def test_load_compression_state_errors(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=STATE_FILE):
        load_compression_state(tmp_path)
    with pytest.raises(StateError, match="no such file"):
        load_compression_state(tmp_path / "missing.ckpt")
    torch.save({"state_dict": {}}, tmp_path / "other.ckpt")
    with pytest.raises(StateError, match="not a netsculpt compression_state; got dict with keys \\['state_dict'\\]"):
        load_compression_state(tmp_path / "other.ckpt")

"""The two README snippets of docs/INTEGRATIONS.md ("README section"), extracted and run as written on a tiny
BERT (Hugging Face Trainer) and a tiny CNN in a LightningModule (Lightning), in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from tests.unit.integrations._tiny import (
    SEQ,
    TokenData,
    image_loader,
    lit_classifier_class,
    ort_run,
    readme_snippets,
    tiny_cnn,
)

pytestmark = [pytest.mark.slow, pytest.mark.onnx]


@pytest.fixture(autouse=True)
def _one_thread() -> Iterator[None]:
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_readme_section_has_two_short_snippets() -> None:
    snippets = readme_snippets()
    assert len(snippets) == 2
    assert "NetsculptTrainer" in snippets[0] and "NetsculptLightningCallback" in snippets[1]
    assert all(len(s.strip().splitlines()) <= 15 for s in snippets)


def test_hf_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip(
        "transformers", reason="transformers is an optional extra: pip install 'netsculpt[integrations]'"
    )
    pytest.importorskip(
        "accelerate", reason="transformers.Trainer needs accelerate: pip install 'netsculpt[integrations]'"
    )
    monkeypatch.chdir(tmp_path)
    scope = {"train_dataset": TokenData(16)}
    exec(compile(readme_snippets()[0], "INTEGRATIONS.md[hf]", "exec"), scope)  # noqa: S102
    trainer, ctrl = scope["trainer"], scope["ctrl"]
    assert trainer.state.global_step == 4 and ctrl.scheduler.current_step == 3
    ids = torch.randint(0, 100, (2, SEQ), generator=torch.Generator().manual_seed(5))
    mask = torch.ones(2, SEQ, dtype=torch.long)
    with torch.no_grad():
        expected = ctrl.strip(do_copy=True)(ids, attention_mask=mask).logits
    (got, *_) = ort_run(tmp_path / "runs" / "hf" / "model.onnx", ids, mask)
    torch.testing.assert_close(torch.from_numpy(got), expected, atol=1e-4, rtol=1e-3)


def test_lightning_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("lightning", reason="lightning is an optional extra: pip install 'netsculpt[integrations]'")
    monkeypatch.chdir(tmp_path)
    scope = {"net": tiny_cnn(), "LitClassifier": lit_classifier_class(), "train_loader": image_loader(16)}
    exec(compile(readme_snippets()[1], "INTEGRATIONS.md[lightning]", "exec"), scope)  # noqa: S102
    trainer, ctrl = scope["trainer"], scope["ctrl"]
    assert trainer.global_step == 4 and ctrl.scheduler.current_epoch == 1
    assert (tmp_path / "runs" / "pl" / "model.onnx").is_file()
    assert list((tmp_path / "runs" / "pl").rglob("*.ckpt")), "Lightning wrote no checkpoint"

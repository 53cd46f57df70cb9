"""``netsculpt compress --task detection|segmentation`` at a tiny size: exit 0, the report names the metric."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsculpt.cli.main import main
from netsculpt.data.fashion_mnist import find_fashion_mnist

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"
TINY = ["--epochs", "1", "--finetune-epochs", "1", "--train-limit", "48", "--test-limit", "24", "--batch-size", "24",
        "--no-progress", "--latency-repeats", "1"]


@pytest.mark.slow
@pytest.mark.skipif(find_fashion_mnist("train") is None, reason="Fashion-MNIST not installed")
@pytest.mark.parametrize(("task", "config", "metric", "model"), [
    ("detection", "int8", "mAP@0.5", "tiny_detector"),
    ("segmentation", "pruning", "mIoU", "tiny_unet"),
])
def test_compress_task_at_tiny_size(task: str, config: str, metric: str, model: str, tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    out = tmp_path / "run"
    code = main(["compress", str(EXAMPLES / task / "configs" / f"{config}.json"), "--task", task, "--out", str(out),
                 *TINY])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    assert report["task"] == task and report["metric"] == metric and report["model"] == model
    assert 0.0 <= report["compressed"]["accuracy"] <= 1.0
    assert report["onnx_task_agreement"]["fp32"] == pytest.approx(1.0)
    assert f"| {metric} |" in (out / "report.md").read_text()
    assert (out / "report.png").is_file() and (out / "compressed.onnx").is_file()
    if config == "pruning":
        assert report["compressed"]["params"] < report["fp32"]["params"]


def test_detection_on_another_dataset_is_one_line_error(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["compress", str(EXAMPLES / "detection" / "configs" / "int8.json"), "--task", "detection",
                 "--dataset", "cifar10", "--out", str(tmp_path / "x")])
    assert code == 2
    assert "Fashion-MNIST" in capsys.readouterr().err


def test_classification_still_needs_model_and_dataset(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code = main(["compress", str(EXAMPLES / "classification" / "configs" / "int8.json"), "--out", str(tmp_path / "x")])
    assert code == 2
    assert "--model and --dataset required" in capsys.readouterr().err

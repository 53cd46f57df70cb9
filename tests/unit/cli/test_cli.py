"""The ``netsculpt`` command line, run in-process through ``main([...])``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from netsculpt.cli.demo import DEMO_CONFIG
from netsculpt.cli.main import EXIT_ERROR, main
from netsculpt.config import NNCFConfig

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs"
INT8 = {
    "compression": {
        "algorithm": "quantization",
        "weights": {"mode": "symmetric", "bits": 8, "per_channel": True},
        "activations": {"mode": "symmetric", "bits": 8},
        "initializer": {"range": {"num_init_samples": 64}, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
    }
}


def _write(tmp_path: Path, data: dict[str, object], name: str = "config.json") -> Path:
    path = tmp_path / name
    path.write_text(json.dumps(data))
    return path


def test_config_schema_is_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config-schema"]) == 0
    schema = json.loads(capsys.readouterr().out)
    assert "compression" in schema["properties"]


@pytest.fixture(scope="module")
def compress_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("compress")
    config = _write(tmp, INT8)
    out = tmp / "out"
    code = main([
        "compress", str(config), "--model", "small_cnn", "--dataset", "digits", "--epochs", "1",
        "--finetune-epochs", "1", "--train-limit", "256", "--test-limit", "128", "--no-progress",
        "--batch-size", "64", "--latency-repeats", "2", "--out", str(out),
    ])
    assert code == 0
    return out


@pytest.mark.slow
def test_compress_writes_report_onnx_and_checkpoints(compress_run: Path) -> None:
    out = compress_run
    for name in ("report.json", "report.md", "report.png", "compressed.onnx", "fp32.onnx", "baseline.pt"):
        assert (out / name).is_file(), name
    report = json.loads((out / "report.json").read_text())
    acc = report["compressed"]["accuracy"]
    assert isinstance(acc, float) and 0.0 <= acc <= 1.0
    assert report["fp32"]["bops"] > report["compressed"]["bops"] > 0
    assert report["status"] == "ok" and "scikit-learn" in report["data_source"]
    cond = report["latency_conditions"]
    assert cond["repeats"] == 2 and cond["threads"] == 2 and "p10_s" in report["compressed"]["latency"]["64"]
    assert "Latency: ONNX Runtime on CPU, 2 intra-op threads, median of 2 timed runs" in (out / "report.md").read_text()
    assert "- Data read from: scikit-learn" in (out / "report.md").read_text()
    assert set(report["compressed"]["latency"]) == {"1", "64"}
    assert "| Top-1 accuracy |" in (out / "report.md").read_text()
    ckpt = torch.load(out / "compressed.pt", weights_only=True)
    assert set(ckpt) == {"model_state", "compression_state"}
    assert "builder_state" in ckpt["compression_state"]
    baseline = torch.load(out / "baseline.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in baseline.values())


@pytest.mark.slow
def test_compress_from_checkpoint(compress_run: Path, tmp_path: Path) -> None:
    config = _write(tmp_path, {**INT8, "input_info": {"sample_size": [1, 1, 8, 8]}})
    code = main([
        "compress", str(config), "--model", "small_cnn", "--dataset", "digits", "--checkpoint",
        str(compress_run / "baseline.pt"), "--finetune-epochs", "0", "--train-limit", "128", "--test-limit", "64",
        "--no-progress", "--latency-repeats", "2", "--out", str(tmp_path / "out"),
    ])
    assert code == 0
    first = json.loads((compress_run / "report.json").read_text())
    second = json.loads((tmp_path / "out" / "report.json").read_text())
    assert second["fp32_epochs"] == 0
    assert second["fp32"]["macs"] == first["fp32"]["macs"]


def test_bad_key_exits_2_with_its_path(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = {"compression": {"algorithm": "quantization", "weights": {"bitz": 8}}}
    config = _write(tmp_path, bad, "bad.json")
    code = main(["compress", str(config), "--model", "small_cnn", "--dataset", "digits", "--no-progress",
                 "--out", str(tmp_path / "out")])
    assert code == EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    assert "compression.weights.bitz" in err and str(config) in err
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_compress_runs_the_accuracy_aware_loop(tmp_path: Path) -> None:
    data = {
        "accuracy_aware_training": {
            "mode": "adaptive_compression_level",
            "params": {"maximal_relative_accuracy_degradation": 5.0, "maximal_total_epochs": 3,
                       "initial_training_phase_epochs": 1, "patience_epochs": 1},
        },
        "compression": {"algorithm": "filter_pruning", "pruning_init": 0.1,
                        "params": {"pruning_target": 0.3, "prune_first_conv": True}},
    }
    config = _write(tmp_path, data)
    out = tmp_path / "out"
    code = main(["compress", str(config), "--model", "small_cnn", "--dataset", "digits", "--epochs", "2",
                 "--train-limit", "512", "--test-limit", "128", "--batch-size", "64", "--no-progress",
                 "--latency-repeats", "2", "--finetune-lr", "0.01", "--out", str(out)])
    assert code == 0
    report = json.loads((out / "report.json").read_text())
    aat = report["accuracy_aware"]
    stats = aat["statistics"]
    assert stats["mode"] == "adaptive_compression_level"
    assert 1 <= stats["epochs"] <= 3 and report["finetune_epochs"] == stats["epochs"]
    epochs = [h["epoch"] for h in aat["history"]]
    assert len(epochs) >= 2 and epochs == sorted(epochs) and epochs[-1] == stats["epochs"]
    assert (out / "accuracy_aware" / "accuracy_aware_training.png").is_file()
    assert (out / "layers.png").is_file()
    md = (out / "report.md").read_text()
    assert "## Accuracy-aware training" in md and "| Epoch | Phase |" in md and "layers.png" in md
    # The adaptive loop leaves channels pruned: the stripped model counted in the report is smaller.
    assert report["compressed"]["params"] < report["fp32"]["params"]
    assert report["compressed"]["macs"] < report["fp32"]["macs"]


def test_debug_reraises(tmp_path: Path) -> None:
    from netsculpt.errors import ConfigError

    with pytest.raises(ConfigError):
        main(["--debug", "compress", str(tmp_path / "missing.json"), "--model", "small_cnn", "--dataset", "digits"])


def test_unknown_model_is_a_clean_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path, INT8)
    code = main(["compress", str(config), "--model", "resnet2O", "--dataset", "digits", "--no-progress",
                 "--out", str(tmp_path / "out")])
    assert code == EXIT_ERROR
    assert "unknown model" in capsys.readouterr().err


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.json")), ids=lambda p: p.name)
def test_example_configs_are_valid(path: Path) -> None:
    cfg = NNCFConfig.from_json(path)
    assert cfg.algorithms


def test_demo_config_matches_the_example_file() -> None:
    assert json.loads((CONFIGS / "quantization_int8.json").read_text()) == DEMO_CONFIG


def test_progress_lines_reach_a_redirected_log_at_the_default_level(capsys: pytest.CaptureFixture[str]) -> None:
    import logging

    progress = logging.getLogger("netsculpt.progress")
    old = progress.level
    try:
        progress.setLevel(logging.NOTSET)
        assert main(["config-schema"]) == 0
        assert progress.getEffectiveLevel() == logging.INFO  # the library logs them; the CLI shows them
    finally:
        progress.setLevel(old)
    capsys.readouterr()

"""``netsculpt compress CONFIG --ekg EKG.json``: search, memory bank and EKG fine-tuning in the CLI pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsculpt.cli.main import EXIT_ERROR, main

PRUNE = {"compression": {"algorithm": "filter_pruning", "params": {"prune_first_conv": True}}}
EKG = {"pruning_flops_target": 0.4, "val_per_class": 4, "subset_per_class": 8, "num_teachers": 3}


def _write(path: Path, data: dict[str, object]) -> Path:
    path.write_text(json.dumps(data))
    return path


def _args(config: Path, ekg: Path, out: Path) -> list[str]:
    return [
        "compress",
        str(config),
        "--model",
        "small_cnn",
        "--dataset",
        "digits",
        "--epochs",
        "1",
        "--finetune-epochs",
        "1",
        "--train-limit",
        "256",
        "--test-limit",
        "128",
        "--no-progress",
        "--batch-size",
        "64",
        "--latency-repeats",
        "2",
        "--out",
        str(out),
        "--ekg",
        str(ekg),
    ]


@pytest.mark.slow
def test_compress_with_ekg_searches_and_fine_tunes(tmp_path: Path) -> None:
    out = tmp_path / "out"
    code = main(_args(_write(tmp_path / "c.json", PRUNE), _write(tmp_path / "e.json", EKG), out))
    assert code == 0
    searched = json.loads((out / "ekg.json").read_text())
    assert searched["history"][-1]["flops_ratio"] <= 0.6 + 1e-9 and searched["bank_s"] >= 0
    report = json.loads((out / "report.json").read_text())
    assert report["compressed"]["macs"] < report["fp32"]["macs"]
    assert "ekg search" in report["timing"]


def test_ekg_without_filter_pruning_fails_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "c.json", {"compression": {"algorithm": "quantization"}})
    code = main(_args(config, _write(tmp_path / "e.json", EKG), tmp_path / "out"))
    assert code == EXIT_ERROR
    assert "filter_pruning" in capsys.readouterr().err
    assert not (tmp_path / "out" / "baseline.pt").exists()
    code = main(
        _args(_write(tmp_path / "p.json", PRUNE), _write(tmp_path / "bad.json", {"temperatur": 4}), tmp_path / "out2")
    )
    assert code == EXIT_ERROR
    assert "bad.json: ekg.temperatur: unknown key" in capsys.readouterr().err

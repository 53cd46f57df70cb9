"""``netsculpt search seernet``: a run on digits writes the policy, config, ONNX, summary; bad input is one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from netsculpt.cli.main import main

CONFIG = {
    "compression": [
        {"algorithm": "filter_pruning", "params": {"prune_first_conv": False, "prune_downsample_convs": False}},
        {"algorithm": "quantization", "weights": {"per_channel": True}},
    ],
    "seernet": {"predictor": {"epochs": 100},
                "select": {"population": 40, "parents": 20, "mutations": 8, "crossovers": 20, "generations": 2}},
}
SMALL = ["--model", "resnet8", "--dataset", "digits", "--epochs", "0", "--initial", "3", "--rounds", "1",
         "--per-round", "2", "--heldout", "2", "--val-size", "64", "--bn-samples", "16", "--finetune-steps", "1",
         "--train-limit", "128", "--threads", "1", "--no-progress"]


@pytest.mark.slow
def test_search_seernet_writes_every_output(tmp_path: Path) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps(CONFIG))
    out = tmp_path / "out"
    assert main(["search", "seernet", str(cfg), *SMALL, "--budget-bops", "0.4", "--out", str(out), "--no-plots"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["labels"] == 5 and summary["heldout"]["count"] == 2
    (budget,) = summary["budgets"]
    assert budget["cost"]["bops"] <= 0.4 * summary["reference"]
    for name in ("policy", "config", "onnx"):
        assert Path(budget["files"][name]).exists()
    assert len((out / "labels.jsonl").read_text().splitlines()) == 7


def test_search_seernet_bad_settings_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    cfg = tmp_path / "cfg.json"
    cfg.write_text(json.dumps({**CONFIG, "seernet": {"intial": 3}}))
    assert main(["search", "seernet", str(cfg), *SMALL, "--budget-bops", "0.4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "seernet: unknown key 'intial'" in err and "initial" in err

"""``netsculpt supernet train|search|extract`` end to end on resnet8 / Fashion-MNIST (a few steps)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from netsculpt.cli.main import EXIT_ERROR, main
from netsculpt.cli.supernet_cmd import _load, _read_ckpt, middle_config
from netsculpt.data.fashion_mnist import find_fashion_mnist
from netsculpt.nas import config_to_json

needs_fmnist = pytest.mark.skipif(find_fashion_mnist("train") is None, reason="Fashion-MNIST not installed")

CONFIG: dict[str, Any] = {
    "input_info": {"sample_size": [1, 1, 28, 28]},
    "bootstrapNAS": {
        "training": {
            "schedule": {"schedule": "deps", "lr": 0.05},
            "progressivity_of_elasticity": ["depth", "width"],
            "elasticity": {
                "available_elasticity_dims": ["width", "depth"],
                "width": {"min_width": 4, "width_multipliers": [1.0, 0.5]},
                "depth": {"min_block_size": 3},
            },
        },
        "search": {"num_evals": 8, "population": 4, "batchnorm_adaptation": {"num_bn_adaptation_samples": 64}},
    },
}
DATA = [
    "--model",
    "resnet8",
    "--dataset",
    "fashion_mnist",
    "--test-limit",
    "64",
    "--train-limit",
    "128",
    "--no-progress",
]


def _write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data))
    return path


def _error(capsys: pytest.CaptureFixture[str]) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("error: ")
    return lines[0]


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("supernet")
    config = _write(tmp / "config.json", CONFIG)
    out = tmp / "out"
    assert main(["supernet", "train", str(config), *DATA, "--epochs", "1", "--out", str(out)]) == 0
    ckpt = out / "supernet_last.pt"
    assert main(["supernet", "search", str(config), "--checkpoint", str(ckpt), *DATA]) == 0
    assert (
        main(
            [
                "supernet",
                "extract",
                "--checkpoint",
                str(ckpt),
                "--config-json",
                str(out / "best_subnet.json"),
                "--model",
                "resnet8",
                "--out",
                str(tmp / "best"),
            ]
        )
        == 0
    )
    return out


@needs_fmnist
def test_train_search_extract_write_their_files(run: Path) -> None:
    for name in (
        "supernet_epoch1.pt",
        "supernet_last.pt",
        "corners.png",
        "corners.json",
        "search.json",
        "pareto.png",
        "best_subnet.json",
    ):
        assert (run / name).is_file(), name
    for name in ("subnet.pt", "subnet.onnx"):
        assert (run.parent / "best" / name).is_file(), name
    ckpt = torch.load(run / "supernet_last.pt", weights_only=True)
    assert ckpt["epoch"] == 1 and ckpt["trainer"]["step"] == 2  # 128 images / batch 64
    corners = json.loads((run / "corners.json").read_text())
    assert corners["shrink_epoch"] == 0  # deps: round(0.5 * 1 epoch)
    (epoch,) = corners["history"]
    assert all(0.0 <= epoch[k] <= 100.0 for k in ("smallest", "middle", "largest"))
    search = json.loads((run / "search.json").read_text())
    assert len(search["points"]) >= 2
    assert list(run.joinpath("tb").iterdir()), "no TensorBoard event file"


@needs_fmnist
def test_tensorboard_has_loss_lr_beta(run: Path) -> None:
    ea_mod = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")
    acc = ea_mod.EventAccumulator(str(run / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"supernet/loss", "supernet/lr", "supernet/beta", "corners/smallest", "corners/largest"} <= tags
    assert len(acc.Scalars("supernet/loss")) == 2


@needs_fmnist
def test_extracted_onnx_agrees_with_the_supernet(run: Path, tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    ckpt_path = run / "supernet_last.pt"
    net = _load(_read_ckpt(ckpt_path), "resnet8", ckpt_path)
    cfg = net.get_minimum_config()
    assert cfg != net.get_maximum_config()
    sub_json = tmp_path / "min.json"
    sub_json.write_text(config_to_json(cfg))
    assert (
        main(
            [
                "supernet",
                "extract",
                "--checkpoint",
                str(ckpt_path),
                "--config-json",
                str(sub_json),
                "--model",
                "resnet8",
                "--out",
                str(tmp_path / "min"),
            ]
        )
        == 0
    )
    x = torch.randn(4, 1, 28, 28, generator=torch.Generator().manual_seed(1))
    net.activate_subnet_for_config(cfg)
    net.model.eval()
    with torch.no_grad():
        want = net.model(x).numpy()
    sess = ort.InferenceSession(str(tmp_path / "min" / "subnet.onnx"), providers=["CPUExecutionProvider"])
    got = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)
    # the state_dict loads (weights_only) into the extracted module
    state = torch.load(tmp_path / "min" / "subnet.pt", weights_only=True)
    net.extract(cfg).load_state_dict(state)
    summary = json.loads((tmp_path / "min" / "subnet_summary.json").read_text())
    assert summary["params"] < summary["full_params"] and summary["macs"] < summary["full_macs"]


@needs_fmnist
def test_middle_config_is_between_the_corners(run: Path) -> None:
    ckpt_path = run / "supernet_last.pt"
    net = _load(_read_ckpt(ckpt_path), "resnet8", ckpt_path)
    mid = net.search_space.validate(middle_config(net))
    lo, hi = net.get_minimum_config(), net.get_maximum_config()
    assert mid not in (lo, hi)
    for group, width in mid["width"].items():
        assert lo["width"][group] <= width <= hi["width"][group]


def test_bad_config_gives_a_located_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = json.loads(json.dumps(CONFIG))
    bad["bootstrapNAS"]["training"]["elasticity"]["width"]["min_width"] = 0
    path = _write(tmp_path / "bad.json", bad)
    assert main(["supernet", "train", str(path), *DATA]) == EXIT_ERROR
    line = _error(capsys)
    assert str(path) in line and "bootstrapNAS.training.elasticity.width.min_width" in line, line
    del bad["bootstrapNAS"]
    assert main(["supernet", "train", str(_write(tmp_path / "none.json", bad)), *DATA]) == EXIT_ERROR
    assert "bootstrapNAS: missing" in _error(capsys)
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["supernet", "search", str(broken), "--checkpoint", "x.pt", *DATA]) == EXIT_ERROR
    assert str(broken) in _error(capsys)


def test_missing_checkpoint_gives_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _write(tmp_path / "config.json", CONFIG)
    missing = tmp_path / "nope.pt"
    assert main(["supernet", "search", str(config), "--checkpoint", str(missing), *DATA]) == EXIT_ERROR
    line = _error(capsys)
    assert "--checkpoint" in line and str(missing) in line, line
    sub = _write(tmp_path / "sub.json", {"width": {}})
    assert (
        main(["supernet", "extract", "--checkpoint", str(missing), "--config-json", str(sub), "--model", "resnet8"])
        == EXIT_ERROR
    )
    assert str(missing) in _error(capsys)
    other = tmp_path / "plain.pt"
    torch.save({"weight": torch.zeros(1)}, other)
    assert (
        main(["supernet", "extract", "--checkpoint", str(other), "--config-json", str(sub), "--model", "resnet8"])
        == EXIT_ERROR
    )
    assert "not a 'netsculpt supernet train' checkpoint" in _error(capsys)

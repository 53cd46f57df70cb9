"""What a new user meets first (issue 12): the real ``netsculpt`` entry point in a subprocess, checks that fail
before any training, one-line file-system errors, ``netsculpt list``, the README's Python snippet."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from netsculpt.cli.main import EXIT_ERROR, _os_error_line
from netsculpt.cli.pipeline import EXIT_NOT_COMPRESSED, compression_status, exit_status
from netsculpt.cli.preflight import data_source
from netsculpt.data.fashion_mnist import find_fashion_mnist
from netsculpt.models._registry import suggest_names

REPO = Path(__file__).resolve().parents[3]
CONFIGS = REPO / "configs"
README = REPO / "README.md"
QUANT = {"compression": {"algorithm": "quantization"}}


def _netsculpt() -> list[str]:
    script = Path(sys.executable).parent / "netsculpt"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "netsculpt.cli.main"]


def cli(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the installed ``netsculpt`` command; stdout and stderr as text."""
    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    return subprocess.run([*_netsculpt(), *args], capture_output=True, text=True, cwd=cwd, env=env,
                          timeout=timeout, check=False)


def _one_line_error(res: subprocess.CompletedProcess[str]) -> str:
    assert res.returncode == EXIT_ERROR, (res.returncode, res.stdout, res.stderr)
    assert "Traceback" not in res.stderr
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def _config(tmp_path: Path, data: dict[str, object]) -> Path:
    path = tmp_path / "config.json"
    path.write_text(json.dumps(data))
    return path


# ---- 1: demo --download ------------------------------------------------------------------------------------


def test_demo_accepts_download_and_data_root(tmp_path: Path) -> None:
    assert "--download" in cli("demo", "--help").stdout
    missing = tmp_path / "nowhere"
    line = _one_line_error(cli("demo", "--download", "--data-root", str(missing), "--out", str(tmp_path / "o")))
    assert "--data-root" in line and str(missing) in line and "unrecognized" not in line
    assert '"$@"' in (REPO / "scripts" / "demo.sh").read_text()  # demo.sh passes --download on


# ---- 2: compression that never switches on -----------------------------------------------------------------


def test_staged_config_with_too_few_finetune_epochs_fails_before_training(tmp_path: Path) -> None:
    out = tmp_path / "out"
    line = _one_line_error(cli("compress", str(CONFIGS / "quantization_int8_staged.json"), "--model", "small_cnn",
                               "--dataset", "digits", "--out", str(out)))
    assert "weights_quant_start_epoch is 1" in line and "--finetune-epochs 2" in line
    assert not (out / "baseline.pt").exists()


def test_status_of_a_controller_whose_weight_quantizers_never_switched_on(capsys: pytest.CaptureFixture[str]) -> None:
    import netsculpt
    from netsculpt.models import create_model

    config = {"input_info": {"sample_size": [1, 1, 8, 8]},
              "compression": {"algorithm": "quantization", "initializer": {"range": {"num_init_samples": 0}},
                              "params": {"activations_quant_start_epoch": 0, "weights_quant_start_epoch": 1}}}
    ctrl, _ = netsculpt.create_compressed_model(create_model("small_cnn", in_channels=1), config)
    ctrl.scheduler.epoch_step()  # epoch 0: activations on, weights still off
    status, detail = compression_status(ctrl)
    assert status == "partially_compressed" and "weights quantizers" in detail
    assert exit_status({"status": status, "status_detail": detail}) == EXIT_NOT_COMPRESSED
    assert "partially compressed" in capsys.readouterr().err
    ctrl.scheduler.epoch_step()
    assert compression_status(ctrl) == ("ok", "")
    assert exit_status({"status": "ok"}) == 0


def test_report_markdown_shows_the_status_loudly() -> None:
    from netsculpt.report.markdown import render_markdown

    md = render_markdown({"model": "m", "dataset": "d", "status": "partially_compressed", "status_detail": "x",
                          "fp32": {}, "compressed": {}})
    assert "WARNING: PARTIALLY COMPRESSED" in md.split("## FP32 vs compressed")[0]
    assert "WARNING" not in render_markdown({"status": "ok", "fp32": {}, "compressed": {}})


# ---- 3: input_info against the dataset, failures after FP32 training --------------------------------------


@pytest.mark.parametrize(("size", "words"), [
    ([1, 2, 224, 224], ["2 input channels", "1-channel 28x28"]),
    ([1, 1, 224, 224], ["spatial size 224x224", "1-channel 28x28"]),
])
def test_input_info_is_checked_against_the_dataset_before_training(tmp_path: Path, size: list[int],
                                                                    words: list[str]) -> None:
    config = _config(tmp_path, {**QUANT, "input_info": {"sample_size": size}})
    out = tmp_path / "out"
    line = _one_line_error(cli("compress", str(config), "--model", "resnet8", "--dataset", "fashion_mnist",
                               "--out", str(out)))
    for word in [*words, "fashion_mnist", "[1, 1, 28, 28]", "input_info"]:
        assert word in line, line
    assert "example_inputs" not in line
    assert not (out / "baseline.pt").exists()


@pytest.mark.slow
def test_failure_after_fp32_training_names_the_saved_baseline(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    import netsculpt.api
    from netsculpt.cli.main import main
    from netsculpt.errors import TracingError

    def boom(*args: object, **kwargs: object) -> None:
        raise TracingError("model: forward failed on the example inputs")

    monkeypatch.setattr(netsculpt.api, "create_compressed_model", boom)
    out = tmp_path / "out"
    code = main(["compress", str(_config(tmp_path, QUANT)), "--model", "small_cnn", "--dataset", "digits",
                 "--epochs", "1", "--train-limit", "64", "--test-limit", "64", "--no-progress", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == EXIT_ERROR
    assert (out / "baseline.pt").is_file()
    assert "forward failed" in err and f"--checkpoint {out / 'baseline.pt'}" in err


def test_checkpoint_for_another_class_count_is_one_line(tmp_path: Path) -> None:
    from netsculpt.models import create_model

    ckpt = tmp_path / "other.pt"
    torch.save(create_model("small_cnn", in_channels=1, num_classes=3).state_dict(), ckpt)
    line = _one_line_error(cli("compress", str(_config(tmp_path, QUANT)), "--model", "small_cnn", "--dataset",
                               "digits", "--checkpoint", str(ckpt), "--train-limit", "64", "--test-limit", "64",
                               "--out", str(tmp_path / "out")))
    assert "10 classes" in line and "(model: [10" in line and str(ckpt) in line


# ---- 4 and 5: file-system errors, where the data came from -------------------------------------------------


def test_out_that_is_a_file_is_one_line(tmp_path: Path) -> None:
    blocker = tmp_path / "afile"
    blocker.write_text("")
    for out in (blocker, blocker / "sub"):
        line = _one_line_error(cli("compress", str(_config(tmp_path, QUANT)), "--model", "small_cnn",
                                   "--dataset", "digits", "--out", str(out)))
        assert "--out" in line and str(out) in line


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_out_without_permission_is_one_line(tmp_path: Path) -> None:
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    try:
        line = _one_line_error(cli("compress", str(_config(tmp_path, QUANT)), "--model", "small_cnn",
                                   "--dataset", "digits", "--out", str(locked / "run")))
    finally:
        locked.chmod(0o700)
    assert "Permission denied" in line and str(locked / "run") in line


def test_missing_data_root_is_an_error(tmp_path: Path) -> None:
    line = _one_line_error(cli("compress", str(_config(tmp_path, QUANT)), "--model", "small_cnn", "--dataset",
                               "digits", "--data-root", str(tmp_path / "nope"), "--out", str(tmp_path / "out")))
    assert "--data-root" in line and str(tmp_path / "nope") in line and "not found" in line


def test_os_error_line_names_path_and_cause() -> None:
    assert _os_error_line(PermissionError(13, "Permission denied", "/x/y")) == "/x/y: Permission denied"
    assert _os_error_line(OSError(18, "Invalid cross-device link", "/a", None, "/b")) == "/a -> /b: Invalid cross-device link"


def test_data_source_names_the_directory(tmp_path: Path) -> None:
    assert "scikit-learn" in data_source("digits", None)
    found = find_fashion_mnist("train")
    if found is None:
        pytest.skip("Fashion-MNIST is not installed")
    root = tmp_path / "fm"
    root.mkdir()
    for split in ("train", "test"):
        for path in find_fashion_mnist(split) or ():  # type: ignore[arg-type]
            shutil.copy(path, root / path.name)
    assert data_source("fashion_mnist", None) == str(found[0].parent)
    assert data_source("fashion_mnist", str(root)) == str(root)


# ---- 6: list and did-you-mean ------------------------------------------------------------------------------


def test_list_prints_models_datasets_algorithms() -> None:
    models = cli("list", "models")
    assert models.returncode == 0 and "resnet20" in models.stdout.split()
    assert cli("list", "dataset").stdout.split() == ["cifar10", "digits", "fashion_mnist"]
    assert "quantization" in cli("list", "algorithms").stdout.split()
    both = cli("list").stdout
    assert "models:" in both and "datasets:" in both and "algorithms:" in both
    bad = cli("list", "modls")
    assert bad.returncode == 2 and "Did you mean 'models'?" in bad.stderr


def test_unknown_names_get_did_you_mean(tmp_path: Path) -> None:
    config = str(_config(tmp_path, QUANT))
    line = _one_line_error(cli("compress", config, "--model", "resnet2O", "--dataset", "digits"))
    assert "Did you mean 'resnet20'?" in line
    line = _one_line_error(cli("compress", config, "--model", "resnet20", "--dataset", "fashionmnist"))
    assert "Did you mean 'fashion_mnist'?" in line
    line = _one_line_error(cli("compress", str(_config(tmp_path, {"compression": {"algorithm": "quantisation"}})),
                               "--model", "resnet20", "--dataset", "digits"))
    assert "Did you mean 'quantization'?" in line
    assert suggest_names("resnet2l", ["resnet20", "resnet21"]) == ["resnet21"]
    assert suggest_names("resnet110", ["resnet20", "resnet56"]) == []


# ---- 7 and 8: README and the test command ------------------------------------------------------------------


def test_readme_commands_say_how_long_and_offer_a_quick_variant() -> None:
    text = README.read_text()
    cli_block = text.split("## Command line", 1)[1].split("```", 2)[1]
    assert "quick" in cli_block and "--train-limit" in cli_block and "min on a 2-core" in cli_block
    snippet_intro = text.split("## Your training loop with netsculpt", 1)[1].split("```python", 1)[0]
    assert "minutes on a 2-core" in snippet_intro


@pytest.mark.slow
def test_readme_python_snippet_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if find_fashion_mnist("train") is None or find_fashion_mnist("test") is None:
        pytest.skip("Fashion-MNIST is not installed")
    section = README.read_text().split("## Your training loop with netsculpt", 1)[1]
    match = re.search(r"```python\n(.*?)```", section, re.S)
    assert match is not None
    source = match.group(1)
    assert source.index("fit_baseline(") < source.index("create_compressed_model(")  # FP32 training first
    for old, new in (("train_limit=10000", "train_limit=256"), ("test_limit=2000", "test_limit=128"),
                     ("epochs=2", "epochs=1"), ("batch_size=128", "batch_size=64")):
        assert old in source, old
        source = source.replace(old, new)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(source, str(README), "exec"), namespace)
    assert (tmp_path / "resnet8_int8.onnx").is_file() and (tmp_path / "ckpt.pt").is_file()
    assert namespace["ctrl"].compression_stage().name == "FULLY_COMPRESSED"  # type: ignore[attr-defined]


def test_test_command_prints_the_passed_count() -> None:
    script = (REPO / "scripts" / "test.sh").read_text()
    pytest_line = next(ln for ln in script.splitlines() if "pytest" in ln)
    addopts = re.search(r'addopts\s*=\s*"([^"]*)"', (REPO / "pyproject.toml").read_text())
    assert addopts is not None
    quiet = pytest_line.split().count("-q") + addopts.group(1).split().count("-q")
    assert "-qq" not in pytest_line and quiet <= 1  # -qq hides the "N passed" summary line


def test_licence_is_an_spdx_string() -> None:
    """A ``license = {text = ...}`` table makes setuptools print a deprecation warning on every install step."""
    text = (REPO / "pyproject.toml").read_text()
    assert re.search(r'^license = "Apache-2.0"$', text, re.M) and "setuptools>=77" in text


def test_cli_refuses_altered_dataset_files_unless_told_to_warn(tmp_path: Path) -> None:
    """Issue 10 finding 11: ``verify`` is strict in the CLI; ``--verify warn`` accepts the files."""
    from tests.unit.data.conftest import fake_fashion_mnist

    root = fake_fashion_mnist(tmp_path / "fm", n_train=40, n_test=20)
    args = ["compress", str(_config(tmp_path, {"input_info": {"sample_size": [1, 1, 28, 28]}, **QUANT})),
            "--model", "small_cnn", "--dataset", "fashion_mnist", "--data-root", str(root), "--epochs", "1",
            "--finetune-epochs", "1", "--latency-repeats", "1", "--no-progress"]
    line = _one_line_error(cli(*args, "--out", str(tmp_path / "a")))
    assert "not the official release" in line and "--verify warn" in line
    res = cli(*args, "--out", str(tmp_path / "b"), "--verify", "warn", timeout=300)
    assert res.returncode in (0, EXIT_NOT_COMPRESSED), res.stderr[-2000:]


def test_strict_config_rejects_script_keys(tmp_path: Path) -> None:
    """Issue 11: NNCF sample configs' script keys are ignored with a warning; --strict-config rejects them."""
    path = _config(tmp_path, {"batch_size": 64, "model": "resnet18", **QUANT})
    line = _one_line_error(cli("compress", str(path), "--model", "small_cnn", "--dataset", "digits", "--strict-config",
                               "--out", str(tmp_path / "o")))
    assert "batch_size: unknown key (strict config)" in line

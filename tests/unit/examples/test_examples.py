"""Each sample script under examples/ runs end to end at a tiny size (--smoke) and checks its ONNX export."""

from __future__ import annotations

import json
import runpy
from pathlib import Path
from typing import Any

import pytest

from netsculpt.data.fashion_mnist import find_fashion_mnist

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(find_fashion_mnist("train") is None, reason="Fashion-MNIST not installed"),
]


def _run(task: str, config: str, out: Path) -> dict[str, Any]:
    main = runpy.run_path(str(EXAMPLES / task / "train.py"), run_name="example")["main"]
    summary: dict[str, Any] = main(["--smoke", "--config", str(EXAMPLES / task / "configs" / f"{config}.json"),
                                    "--out", str(out)])
    return summary


@pytest.mark.parametrize(("task", "config", "key"), [
    ("classification", "int8", "compressed_top1"),
    ("detection", "aat", "compressed_map50"),
    ("segmentation", "pruning", "compressed_miou"),
])
def test_example_runs_end_to_end(task: str, config: str, key: str, tmp_path: Path) -> None:
    pytest.importorskip("pycocotools")
    summary = _run(task, config, tmp_path)
    assert 0.0 <= summary[key] <= 1.0
    assert summary["ort_agreement"] >= 0.9
    assert Path(summary["onnx"]).is_file()
    assert json.loads((tmp_path / "summary.json").read_text())[key] == summary[key]


def test_every_task_has_the_four_configs() -> None:
    for task in ("classification", "detection", "segmentation"):
        names = {p.stem for p in (EXAMPLES / task / "configs").glob("*.json")}
        assert names == {"int8", "sparsity", "pruning", "aat"}, task
        for path in (EXAMPLES / task / "configs").glob("*.json"):
            import netsculpt

            netsculpt.NNCFConfig.from_json(path, strict=True)


def test_readme_samples_table_is_the_generated_one() -> None:
    repo = EXAMPLES.parent
    table = (repo / "bench" / "results" / "samples.md").read_text().strip()
    assert table in (repo / "README.md").read_text(), "re-paste bench/results/samples.md into README.md (Samples)"


def test_classification_example_under_torchrun_with_two_processes(tmp_path: Path) -> None:
    """The README's DDP command at smoke size: 2 gloo processes, rank 0 writes the summary and the ONNX file."""
    import os
    import subprocess
    import sys

    torch_distributed = pytest.importorskip("torch.distributed")
    if not torch_distributed.is_available():
        pytest.skip("torch.distributed is not available in this build")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           str(EXAMPLES / "classification" / "train.py"), "--smoke", "--out", str(tmp_path)]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert 0.0 <= summary["compressed_top1"] <= 1.0 and summary["ort_agreement"] >= 0.9
    assert proc.stdout.count("FP32 top-1") == 1  # only rank 0 reports

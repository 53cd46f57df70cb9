"""The "NNCF BootstrapNAS" example of docs/SUPERNET.md runs as written."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

DOC = Path(__file__).resolve().parents[4] / "docs" / "SUPERNET.md"


def test_bootstrapnas_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("netsculpt.nas.search", reason="netsculpt.nas.search is not in this tree yet")
    section = DOC.read_text().split("## NNCF BootstrapNAS", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    assert torch.load(tmp_path / "bnas_out" / "supernet_last.pth", weights_only=True)["epoch"] == 2
    subnet = namespace["subnet"]
    assert isinstance(subnet, torch.nn.Module)
    assert (tmp_path / "bnas_out" / "search_result.json").is_file()
    assert namespace["best_config"] == namespace["elasticity_ctrl"].get_active_config()  # type: ignore[attr-defined]

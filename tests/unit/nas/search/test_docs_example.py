"""The "Search" example of docs/SUPERNET.md runs as written and writes its JSON and plot."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[4] / "docs" / "SUPERNET.md"


def test_search_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOC.read_text().split("## Search (`netsculpt.nas.search`)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(code.group(1), str(DOC), "exec"), namespace)
    saved = json.loads((tmp_path / "search.json").read_text())
    assert saved["best_config"] == namespace["result"].best_config  # type: ignore[attr-defined]
    assert (tmp_path / "pareto.png").stat().st_size > 1000
    assert not hasattr(namespace["subnet"], "_netsculpt")

"""The README section of docs/EKG.md runs as written (tiny model and data, small search settings)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tests.unit.search._fixtures import X, tiny
from tests.unit.search.ekg._data import SMALL, dataset

DOC = Path(__file__).resolve().parents[4] / "docs" / "EKG.md"


def _example() -> str:
    section = DOC.read_text().split("## README section", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    return code.group(1)


def test_readme_example_is_short() -> None:
    assert len(_example().strip().splitlines()) <= 25


def test_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = _example()
    assert "[1, 1, 28, 28]" in source and '{"pruning_flops_target": 0.5}' in source
    source = source.replace("[1, 1, 28, 28]", str(list(X.shape)))
    source = source.replace('{"pruning_flops_target": 0.5}', json.dumps({"pruning_flops_target": 0.5, **SMALL}))
    namespace = {"model": tiny(), "train_set": dataset(96)}
    monkeypatch.chdir(tmp_path)
    exec(compile(source, str(DOC), "exec"), namespace)
    written = json.loads((tmp_path / "ekg_config.json").read_text())
    assert written["compression"]["params"]["keep_per_group"] == namespace["result"].policy.to_dict()["keep"]
    small = namespace["small"]
    assert sum(p.numel() for p in small.parameters()) < sum(p.numel() for p in tiny().parameters())
    assert torch.isfinite(small.eval()(X)).all()

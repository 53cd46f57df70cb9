"""The README's netsculpt.search example runs as written (on a tiny model, with fewer candidates)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from tests.unit.search._fixtures import X, config, loaders, tiny

import netsculpt

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.mark.slow
def test_readme_search_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    text = README.read_text()
    section = text.split("## Automated compression (`netsculpt.search`)", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    source = code.group(1).replace("range(32)", "range(4)")
    train_loader, val_loader = loaders()
    cfg = config()
    namespace = {
        "netsculpt": netsculpt,
        "json": json,
        "model": tiny(),
        "config": netsculpt.NNCFConfig.from_dict({**cfg, "input_info": {"sample_size": list(X.shape)}}),
        "train_loader": train_loader,
        "val_loader": val_loader,
    }
    monkeypatch.chdir(tmp_path)
    exec(compile(source, str(README), "exec"), namespace)
    assert len((tmp_path / "search.jsonl").read_text().splitlines()) == 4
    written = json.loads((tmp_path / "best.json").read_text())
    ctrl2, model2 = netsculpt.create_compressed_model(tiny(), written, example_inputs=(X,))
    assert ctrl2.current_policy() == namespace["ctrl"].current_policy()
    assert (tmp_path / "best.onnx").exists()
    assert isinstance(namespace["best"].metric, float) and torch.is_tensor(X)

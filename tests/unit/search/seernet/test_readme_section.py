"""The README-section example at the top of docs/SEERNET.md runs as written (tiny model, fewer labels)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from tests.unit.search._fixtures import X, config, loaders, tiny

import netsculpt

DOC = Path(__file__).resolve().parents[4] / "docs" / "SEERNET.md"
SMALL = ("initial=4, rounds=1, per_round=2, predictor=seernet.PredictorConfig(epochs=100), "
         "select=seernet.SelectConfig(population=40, parents=20, mutations=8, crossovers=20, generations=2)")


@pytest.mark.slow
def test_seernet_readme_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOC.read_text().split("## README section", 1)[1].split("\n## ", 1)[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    assert len(code.group(1).splitlines()) <= 25
    source = code.group(1).replace("initial=20, rounds=1, per_round=20", SMALL)
    assert source != code.group(1)
    train_loader, val_loader = loaders(n=32, batch=16)
    cfg = {**config(), "input_info": {"sample_size": list(X.shape)}}
    namespace = {"netsculpt": netsculpt, "model": tiny(), "config": cfg, "train_loader": train_loader,
                 "val_loader": val_loader}
    monkeypatch.chdir(tmp_path)
    exec(compile(source, str(DOC), "exec"), namespace)
    assert len((tmp_path / "seernet.jsonl").read_text().splitlines()) == 6
    for found in (namespace["found"], namespace["found30"]):
        assert found.cost.bops <= found.budget  # type: ignore[attr-defined]
    written = json.loads((tmp_path / "seernet-30" / "config.json").read_text())
    ctrl2, _ = netsculpt.create_compressed_model(tiny(), written, example_inputs=(X,))
    assert ctrl2.current_policy() == namespace["ctrl"].current_policy()  # type: ignore[attr-defined]
    assert (tmp_path / "seernet-30" / "model.onnx").exists()

"""The "Training" example of docs/SUPERNET.md runs as written (smaller images) and its checkpoints resume."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from netsculpt.nas.training import ScheduleParams, SupernetTrainer

DOC = Path(__file__).resolve().parents[4] / "docs" / "SUPERNET.md"


def test_training_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = DOC.read_text().split("## Training", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    source = code.group(1)
    assert source.count("16, 16)") == 2
    source = source.replace("16, 16)", "8, 8)")
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {}
    exec(compile(source, str(DOC), "exec"), namespace)
    for schedule in ("deps", "bignas", "ofa"):
        ckpt = torch.load(tmp_path / f"supernet_{schedule}.pt", weights_only=True)
        assert ckpt["trainer"]["schedule"] == schedule
    ckpt = torch.load(tmp_path / "supernet_deps.pt", weights_only=True)
    net = namespace["tiny"]()  # type: ignore[operator]
    net.model.load_state_dict(ckpt["model"])
    opt = torch.optim.SGD(net.model.parameters(), lr=0.05, momentum=0.9)
    opt.load_state_dict(ckpt["optimizer"])
    trainer = SupernetTrainer(net, opt, ScheduleParams(schedule="deps", epochs=4, steps_per_epoch=4, lr=0.05))
    trainer.load_state_dict(ckpt["trainer"])
    assert (trainer.step, ckpt["trainer"]["phase"]) == (16, "shrink")

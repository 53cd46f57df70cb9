"""Progress display: tqdm on a terminal, a few plain lines (no carriage returns) when redirected."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from netsculpt.train import evaluate
from netsculpt.train import progress as progress_mod
from netsculpt.train.progress import LogLines, progress_bar


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_not_a_terminal_gives_periodic_lines_without_carriage_returns() -> None:
    out = io.StringIO()
    bar = progress_bar(range(5), total=5, desc="epoch 1/1", file=out)
    assert isinstance(bar, LogLines)
    bar.interval = 0.0  # a line after every item
    for i in bar:
        bar.set_postfix(loss=f"{1.0 / (i + 1):.2f}")
    bar.close()
    bar.close()
    text = out.getvalue()
    assert "\r" not in text
    lines = text.splitlines()
    assert len(lines) == 6 and lines[-1].startswith("epoch 1/1: done 5/5 batch (100 %)") and "loss=0.20" in lines[-1]


def test_default_interval_keeps_a_redirected_log_short(monkeypatch: pytest.MonkeyPatch,
                                                       capsys: pytest.CaptureFixture[str],
                                                       caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(progress_mod, "LOG_INTERVAL_S", 3600.0)
    model = nn.Linear(4, 3)
    loader = [(torch.randn(2, 4), torch.tensor([0, 1])) for _ in range(50)]
    with caplog.at_level("INFO", logger="netsculpt.progress"):
        evaluate(model, loader, desc="eval")
    lines = [r.getMessage() for r in caplog.records if r.name == "netsculpt.progress"]
    assert len(lines) == 1 and lines[0].startswith("eval: done 50/50") and "\r" not in lines[0]
    assert capsys.readouterr().err == ""  # library code logs: nothing printed to the stream


def test_terminal_and_disabled_use_tqdm() -> None:
    from tqdm import tqdm

    assert isinstance(progress_bar(range(3), total=3, desc="x", file=_Tty()), tqdm)
    off = progress_bar(range(3), total=3, desc="x", enabled=False, file=io.StringIO())
    assert isinstance(off, tqdm) and list(off) == [0, 1, 2]

"""Issue 10 finding 9: an empty, truncated or unsafe checkpoint is a located StateError with a non-empty message."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from netsculpt.checkpoint import read_checkpoint
from netsculpt.errors import StateError


class _Thing:
    """A Python object ``weights_only=True`` must refuse to unpickle."""


def _good(tmp_path: Path) -> Path:
    path = tmp_path / "ok.pth"
    torch.save({"state_dict": {"w": torch.arange(1000.0)}, "epoch": 3}, path)
    return path


def test_a_good_checkpoint_loads(tmp_path: Path) -> None:
    data = read_checkpoint(_good(tmp_path))
    assert data["epoch"] == 3 and torch.equal(data["state_dict"]["w"], torch.arange(1000.0))


def test_missing_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(StateError, match=r"^resume: file not found; got .*nope\.pth$"):
        read_checkpoint(tmp_path / "nope.pth", "resume")
    (tmp_path / "empty.pth").write_bytes(b"")
    with pytest.raises(StateError, match=r"empty \(0 bytes\)\. The save was probably interrupted"):
        read_checkpoint(tmp_path / "empty.pth")
    with pytest.raises(StateError, match="expected a checkpoint file; got the directory"):
        read_checkpoint(tmp_path)


@pytest.mark.parametrize("keep", [0.5, 0.1, 0.99])
def test_truncated_checkpoints_name_the_file_and_size(tmp_path: Path, keep: float) -> None:
    data = _good(tmp_path).read_bytes()
    cut = tmp_path / "cut.pth"
    cut.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(StateError, match=rf"cut\.pth \({cut.stat().st_size} bytes\) is (truncated|damaged)") as info:
        read_checkpoint(cut)
    assert not str(info.value).rstrip().endswith(":")  # the old CLI message ended in an empty colon
    assert info.value.__cause__ is not None


def test_python_objects_are_refused_with_a_hint(tmp_path: Path) -> None:
    path = tmp_path / "obj.pth"
    torch.save({"thing": _Thing()}, path)
    with pytest.raises(StateError, match=r"weights_only=True\) refuses.*Save plain data"):
        read_checkpoint(path)


def test_garbage_is_not_a_checkpoint(tmp_path: Path) -> None:
    path = tmp_path / "text.pth"
    path.write_text("hello")
    with pytest.raises(StateError, match=r"text\.pth \(5 bytes\) is (truncated|damaged) .*PyTorch checkpoint"):
        read_checkpoint(path)

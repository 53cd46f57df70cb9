"""The README's "Hugging Face models" example runs as written (in a temporary directory)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

pytest.importorskip("transformers", reason="transformers is an optional extra (tests of HF models)")

README = Path(__file__).resolve().parents[3] / "README.md"


@pytest.mark.onnx
def test_the_readme_hugging_face_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    section = README.read_text().split("## Hugging Face models\n", 1)[1].split("\n## ", 1)[0]
    (code,) = re.findall(r"```python\n(.*?)```", section, re.S)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md#hugging-face-models", "exec"), {"__name__": "readme"})  # noqa: S102
    assert (tmp_path / "gpt2_int8.onnx").stat().st_size > 0

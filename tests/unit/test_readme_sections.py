"""The README's copies of the docs' "README section" examples (run by the docs' own tests) and of generated result
tables must stay identical to their sources, so that every snippet in the README is a tested one."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
README = (REPO / "README.md").read_text()


def _readme_section_blocks(doc: Path) -> list[str]:
    text = doc.read_text()
    section = text.split("## README section", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


@pytest.mark.parametrize("doc", ["docs/EKG.md", "docs/INTEGRATIONS.md", "docs/SEERNET.md"])
def test_readme_carries_the_tested_examples_verbatim(doc: str) -> None:
    path = REPO / doc
    if not path.is_file():
        pytest.skip(f"{doc} does not exist")
    blocks = _readme_section_blocks(path)
    assert blocks, f"{doc}: no python block in its README section"
    missing = [b.splitlines()[0] for b in blocks if b not in README]
    assert not missing, f"README.md lacks (or has edited) the examples of {doc} starting with {missing}"


def test_readme_resume_table_is_the_generated_one() -> None:
    table = (REPO / "bench/results/resume_table.md").read_text().strip()
    assert table in README, "re-paste bench/results/resume_table.md into README.md (Reliability)"

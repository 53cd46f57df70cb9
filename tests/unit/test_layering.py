"""Package layering: graph analyses and metrics never import the algorithms built on them."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import netsculpt

_SRC = Path(netsculpt.__file__).parent


def _imports(path: Path) -> list[tuple[int, str]]:
    """Every module imported by ``path`` (function-level and ``TYPE_CHECKING`` imports included)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ".".join(path.relative_to(_SRC.parent).with_suffix("").parts[:-1])
    found: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative import: resolve against the file's package
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            found.extend((node.lineno, f"{base}.{alias.name}") for alias in node.names)
    return found


@pytest.mark.parametrize("package", ["graph", "metrics"])
def test_package_does_not_import_algorithms(package: str) -> None:
    files = sorted((_SRC / package).rglob("*.py"))
    assert files
    bad = [
        f"{path.relative_to(_SRC)}:{line}: {name}"
        for path in files
        for line, name in _imports(path)
        if name == "netsculpt.algorithms" or name.startswith("netsculpt.algorithms.")
    ]
    assert not bad, "netsculpt." + package + " must not import netsculpt.algorithms:\n" + "\n".join(bad)


def test_the_scan_sees_imports() -> None:
    found = {name for _, name in _imports(_SRC / "algorithms" / "pruning" / "groups.py")}
    assert "netsculpt.graph.channels.build_groups" in found

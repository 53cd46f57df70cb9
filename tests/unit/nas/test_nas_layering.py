"""``netsculpt.nas`` sits on top: graph, metrics and the algorithms never import it."""

from __future__ import annotations

import pytest
from tests.unit.test_layering import _SRC, _imports


@pytest.mark.parametrize("package", ["graph", "metrics", "algorithms"])
def test_lower_packages_do_not_import_nas(package: str) -> None:
    bad = [
        f"{path.relative_to(_SRC)}:{line}: {name}"
        for path in sorted((_SRC / package).rglob("*.py"))
        for line, name in _imports(path)
        if name == "netsculpt.nas" or name.startswith("netsculpt.nas.")
    ]
    assert not bad, "\n".join(bad)


def test_the_scan_sees_nas_imports() -> None:
    found = {name for _, name in _imports(_SRC / "nas" / "elastic" / "width.py")}
    assert "netsculpt.graph.channels.build_groups" in found

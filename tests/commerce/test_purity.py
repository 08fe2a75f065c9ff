"""commerce/ is the pure core: it must not import anything that does I/O or reads a clock."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

COMMERCE = Path(__file__).resolve().parents[2] / "commerce"
FORBIDDEN = {
    "asyncio",
    "aiohttp",
    "aiortc",
    "redis",
    "sqlite3",
    "socket",
    "time",
    "random",
    "secrets",
    "datetime",
    "os",
    "streamserver",
    "msgpack",
    "threading",
    "subprocess",
}


@pytest.mark.parametrize("module", sorted(COMMERCE.glob("*.py")), ids=lambda p: p.name)
def test_the_core_imports_no_io(module: Path) -> None:
    tree = ast.parse(module.read_text())
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            imported.add(node.module.split(".")[0])
    assert not imported & FORBIDDEN

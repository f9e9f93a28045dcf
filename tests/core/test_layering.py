"""What the import-linter contracts (``make lint``) can't see, checked from the source.

import-linter analyses packages only, and it is told to skip type-only imports (the GraphQL
layer's domains name each other's types for type checkers). So: the top-level modules every
layer shares must not reach up into a package, and realtime must not name the GraphQL layer even
for a type checker.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = {"app", "api", "realtime", "demo", "markets", "comments", "accounts", "db", "bench"}
# module → the project modules it may import (everything else must be outside the project).
SHARED_MODULES = {
    "settings": set(),
    "clock": set(),
    "refusals": set(),
    "domain_events": set(),
    "clientaddr": set(),
    "logs": {"settings"},
    "metrics": set(),
    "tracing": set(),
}


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at any depth of the file (type-only imports included)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return found


def _project(names: set[str]) -> set[str]:
    tops = PACKAGES | set(SHARED_MODULES) | {"tests"}
    return {name for name in names if name.split(".")[0] in tops}


@pytest.mark.parametrize("module", sorted(SHARED_MODULES))
def test_shared_modules_import_no_package_of_the_project(module: str) -> None:
    assert _project(imported(ROOT / f"{module}.py")) <= SHARED_MODULES[module]


def test_realtime_never_names_the_graphql_layer_even_for_type_checkers() -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(
            name for name in imported(path) if name.split(".")[0] in {"api", "app"}
        )
        for path in (ROOT / "realtime").rglob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_the_check_sees_type_only_imports(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from api import x\n"
    )
    assert "api" in imported(sample)

"""What the shipped packages import at run time is declared as a runtime dependency.

`scripts/demo` installs the project without the dev extras, so a module of domain/, adapters/,
worker/ or the migrations that imports a dev-only library (or relies on another library pulling
it in) works in the developers' environment and fails on a new user's machine. Imports inside
functions count: they run too, only later.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterable, Iterator
from importlib.metadata import packages_distributions
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = ("domain", "adapters", "worker", "alembic")
OWN = {"domain", "adapters", "worker"}


def _normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    names = set()
    for requirement in project["dependencies"]:
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", requirement)
        assert match, requirement
        names.add(_normalized(match.group()))
    return names


def _is_type_checking(node: ast.AST) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and (
        (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING")
        or (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")
    )


def _imports(nodes: Iterable[ast.AST]) -> Iterator[str]:
    """Top-level names of absolute imports, at any depth, outside `if TYPE_CHECKING:`."""
    for node in nodes:
        if isinstance(node, ast.Import):
            yield from (alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                yield node.module.split(".")[0]
        elif _is_type_checking(node):
            yield from _imports(getattr(node, "orelse", []))
        else:
            yield from _imports(ast.iter_child_nodes(node))


def runtime_imports() -> dict[str, set[str]]:
    """Third-party top-level modules imported by the shipped code, with the files importing them."""
    found: dict[str, set[str]] = {}
    for package in SHIPPED:
        for path in sorted((ROOT / package).rglob("*.py")):
            for module in _imports([ast.parse(path.read_text(encoding="utf-8"))]):
                if module in sys.stdlib_module_names or module in OWN:
                    continue
                found.setdefault(module, set()).add(str(path.relative_to(ROOT)))
    return found


def test_the_scan_sees_imports_inside_functions_and_skips_type_checking_blocks() -> None:
    tree = ast.parse(
        "import a.b\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    import hidden\nelse:\n    import shown\n"
        "def f():\n    from c.d import e\n"
        "class K:\n    def m(self):\n        import g\n"
        "from . import local\n"
    )
    assert set(_imports([tree])) == {"a", "typing", "shown", "c", "g"}


def test_every_runtime_import_is_a_declared_runtime_dependency() -> None:
    distributions = packages_distributions()
    declared = _declared()
    missing = {}
    for module, files in runtime_imports().items():
        owners = {_normalized(d) for d in distributions.get(module, [])}
        if not owners & declared:
            missing[module] = (sorted(owners) or ["not installed"], sorted(files))
    assert not missing, (
        "imported at run time but not in [project].dependencies of pyproject.toml "
        f"(module: (distribution, importing files)): {missing}"
    )

"""The dependency direction (docs/architecture.md, "Packages and their dependencies"), checked on every module's
imports as parsed (``ast``: also those inside functions and under ``TYPE_CHECKING``).

Each package lists what it MAY import (an allow-list): the standard library, the third-party modules named, and
the packages of this repository named (a dotted name allows that module and what is inside it only, e.g. load may
use the server's admin interface ``imserver.admin`` and nothing else of the server). A package that is not listed
fails, so a new package states its place before it lands. And no two modules import each other, directly or
around a loop: a cycle is found with Tarjan's algorithm over the graph of imports between the repository's modules.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ANYTHING = "*"
SERVER = {"trio", "asyncpg", "msgspec", "wsproto", "argon2", "cryptography", "prometheus_client", "starlette",
          "hypercorn", "ahocorasick"}
"""The server's own libraries (pyproject.toml)."""
MAY_IMPORT: dict[str, set[str]] = {
    "protocol": {"msgspec"},  # pure: no trio, no sockets, no database
    "jsonlog": set(),  # the one log format; every package may use it
    "pgtrio": {"trio", "trio_asyncio", "asyncpg", "sniffio", "msgspec", "prometheus_client"},
    "clients": {"protocol", "trio", "msgspec"},
    "integrations": {"jsonlog", "trio", "httpx", "starlette", "hypercorn"},  # adapters know nothing of chat
    "imserver": {"protocol", "pgtrio", "jsonlog"} | SERVER,
    "bots": {"protocol", "clients", "pgtrio", "integrations", "jsonlog", "trio", "asyncpg", "msgspec", "starlette"},
    "webadmin": {"protocol", "clients", "pgtrio", "imserver.actions", "imserver.admin", "imserver.config",
                 "integrations.serving", "jsonlog", "trio", "msgspec", "starlette", "hypercorn"},
    "load": {"protocol", "clients", "imserver.admin", "trio", "msgspec", "matplotlib"},
    "launcher": {ANYTHING},  # it starts the whole system
    "tests": {ANYTHING},
}


def packages() -> list[str]:
    """The repository's top-level Python packages."""
    return sorted(p.parent.name for p in ROOT.glob("*/__init__.py"))


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path) -> Iterator[str]:
    """Every absolute name a module imports: ``import a.b`` gives ``a.b``, ``from a import b`` gives ``a.b`` (a
    module or a name in ``a``); relative imports stay inside the package and are left out."""
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield from (f"{node.module}.{alias.name}" for alias in node.names)


def allowed(package: str, name: str) -> bool:
    may = MAY_IMPORT[package]
    root = name.split(".")[0]
    return (ANYTHING in may or root == package or root in sys.stdlib_module_names
            or any(name == entry or name.startswith(entry + ".") for entry in may))


def test_every_package_has_its_allow_list() -> None:
    assert set(packages()) - set(MAY_IMPORT) == set()


@pytest.mark.parametrize("package", sorted(set(MAY_IMPORT) - {"launcher", "tests"}))
def test_packages_import_only_what_they_may(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted({n for n in imported_names(path) if not allowed(package, n)})
        for path in (ROOT / package).rglob("*.py")
    }
    assert {p: names for p, names in offenders.items() if names} == {}


def test_the_allow_list_refuses_what_the_architecture_refuses() -> None:
    """The checker itself, on names a careless change would add."""
    assert not allowed("bots", "imserver.model.Role")
    assert not allowed("load", "imserver.store.accounts")
    assert allowed("load", "imserver.admin.open_admin")
    assert not allowed("load", "imserver.adminx")
    assert not allowed("protocol", "trio")
    assert not allowed("clients", "pgtrio.bridge.Store")
    assert not allowed("imserver", "launcher.demo")
    assert allowed("launcher", "bots.cli")


def import_graph() -> dict[str, set[str]]:
    """Each module of the repository and the modules of the repository it imports. ``from a import b`` is an
    edge to the module ``a.b`` if there is one, else to the package ``a`` (where the name ``b`` is defined)."""
    modules = {module_name(path): path for package in packages() for path in (ROOT / package).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        targets = set()
        for imported in imported_names(path):
            while imported and imported not in modules:
                imported = imported.rpartition(".")[0]
            if imported and imported != name:
                targets.add(imported)
        graph[name] = targets
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, ()):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_itself_around_a_loop() -> None:
    assert cycles(import_graph()) == []


def test_the_cycle_finder_finds_a_loop() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles(graph) == [["a", "b", "c"]]

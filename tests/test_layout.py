"""The dependency direction of STYLE.md, checked by parsing imports.

protocol -> stdlib, msgspec; pgtrio (Postgres from trio, shared by server and bots) -> trio, asyncpg;
clients -> protocol, trio; imserver -> protocol, pgtrio, trio;
bots -> protocol, clients, pgtrio (their own schema; never imserver), integrations (outside systems);
integrations -> httpx, starlette, hypercorn, trio only (adapters know nothing of chat); webadmin -> protocol, clients;
load -> protocol, clients, and imserver for in-process micro-benchmarks of server components (the hot
path cannot be timed from outside) and for seeding a load database in bulk (accounts, sessions and
tokens made the way the server makes them).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FORBIDDEN = {
    "protocol": {"imserver", "clients", "bots", "webadmin", "load", "trio", "trio_websocket", "asyncpg", "socket"},
    "pgtrio": {"protocol", "imserver", "clients", "bots", "webadmin", "load"},
    "clients": {"imserver", "bots", "webadmin", "load", "asyncpg", "pgtrio"},
    "imserver": {"clients", "bots", "webadmin", "load", "integrations"},
    "integrations": {"protocol", "pgtrio", "imserver", "clients", "bots", "webadmin", "load", "asyncpg"},
    "bots": {"imserver", "webadmin", "load"},
    "webadmin": {"imserver", "bots", "load"},
    "load": {"bots", "webadmin"},
}


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
    return roots


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_packages_import_only_downwards(package: str) -> None:
    offenders = {
        str(path.relative_to(ROOT)): sorted(imported_roots(path) & FORBIDDEN[package])
        for path in (ROOT / package).rglob("*.py")
    }
    assert {p: bad for p, bad in offenders.items() if bad} == {}

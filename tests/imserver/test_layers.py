"""The server's layers, checked by reading its source: SQL lives in ``imserver/store`` only, and only the
actions (``imserver/actions``) put events on the bus, so every change is checked, audited and announced in
one place (docs/architecture.md: actions, store); every request has a handler."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

from imserver.handlers import ROUTES
from protocol.frames import REQUEST_TYPES

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "imserver"
SQL = re.compile(
    r"\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|create\s+(table|index|database)"
    r"|alter\s+table|drop\s+(table|database)|pg_notify|for\s+update)\b",
    re.IGNORECASE | re.DOTALL,
)
DATABASE_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table", "copy_to_table"}


def modules(*outside: str) -> Iterator[tuple[str, ast.Module]]:
    """Every module of the server except those under the folders named."""
    for path in sorted(SERVER.rglob("*.py")):
        name = str(path.relative_to(ROOT))
        if not any(name.startswith(f"imserver/{folder}/") for folder in outside):
            yield name, ast.parse(path.read_text("utf-8"))


def docstrings(tree: ast.Module) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            for before, statement in zip([None, *body], body, strict=False):
                # a docstring, or the string under a name that documents it
                if isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) \
                        and (before is None or isinstance(before, ast.Assign | ast.AnnAssign)):
                    found.add(id(statement.value))
    return found


def sql_in(tree: ast.Module) -> list[str]:
    skip = docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in skip \
                and SQL.search(node.value):
            found.append(f"line {node.lineno}: {node.value[:60]!r}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in DATABASE_CALLS:
            found.append(f"line {node.lineno}: .{node.func.attr}(...)")
    return found


def names_used(tree: ast.Module, wanted: str) -> list[int]:
    return [
        node.lineno for node in ast.walk(tree)
        if (isinstance(node, ast.Name) and node.id == wanted)
        or (isinstance(node, ast.Attribute) and node.attr == wanted)
        or (isinstance(node, ast.alias) and node.name == wanted)
    ]


def test_sql_is_in_the_store_only() -> None:
    offenders = {name: found for name, tree in modules("store") if (found := sql_in(tree))}
    assert offenders == {}


def test_only_actions_put_events_on_the_bus() -> None:
    publishers = {name: lines for name, tree in modules("actions") if (lines := names_used(tree, "publish_txn"))}
    del publishers["imserver/bus.py"]  # where it is defined
    assert publishers == {}
    notifiers = {name for name, tree in modules() if names_used(tree, "notify_txn")}
    assert notifiers == {"imserver/bus.py"}  # the store's NOTIFY, behind ``bus.publish_txn``


def test_the_checks_see_what_they_look_for() -> None:
    """The grep above finds SQL and publishing where they are: it is not vacuous."""
    stores = dict(modules())
    assert sql_in(stores["imserver/store/accounts.py"])
    assert names_used(stores["imserver/actions/base.py"], "publish_txn")
    assert not sql_in(ast.parse('"""Select a group from the list."""\nx = 1\n'))
    assert sql_in(ast.parse('async def f(db):\n    await db.fetchval("select 1 from users")\n'))


def test_every_request_has_its_handler() -> None:
    assert set(ROUTES) == set(REQUEST_TYPES)

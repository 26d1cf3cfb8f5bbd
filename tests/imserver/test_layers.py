"""The server's layers, checked by reading its source: SQL lives in ``imserver/store`` only, and only the
actions (``imserver/actions``) put events on the bus, so every change is checked, audited and announced in
one place (docs/architecture.md: actions, store); every request has a handler, and every frame the server
sends is built as its struct in ``protocol.frames`` (SPEC.md §3–§6, issue 13), never as a map."""

from __future__ import annotations

import ast
import re
import typing
from collections.abc import Iterator
from pathlib import Path

from imserver.handlers import ROUTES
from protocol.frames import REQUEST_TYPES, answer_type

ROOT = Path(__file__).resolve().parents[2]
SERVER = ROOT / "imserver"
SQL = re.compile(
    r"\b(select\s.+\sfrom|insert\s+into|update\s+\w+\s+set|delete\s+from|create\s+(table|index|database)"
    r"|alter\s+table|drop\s+(table|database)|pg_notify|for\s+update)\b",
    re.IGNORECASE | re.DOTALL,
)
DATABASE_CALLS = {"execute", "executemany", "fetch", "fetchrow", "fetchval", "copy_records_to_table", "copy_to_table"}
SENDING_CALLS = {"framed", "reply", "encode"}
"""What turns a frame into bytes for a client: ``connection.framed``, ``Connection.reply``, ``protocol.encode``."""


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


def built_as_map(node: ast.expr | None) -> bool:
    """A map literal or comprehension, ``dict(...)``, or maps merged with ``|``."""
    return (isinstance(node, ast.Dict | ast.DictComp)
            or (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict")
            or (isinstance(node, ast.BinOp) and isinstance(node.op, ast.BitOr)
                and (built_as_map(node.left) or built_as_map(node.right))))


def own_returns(function: ast.AsyncFunctionDef) -> Iterator[ast.Return]:
    """The ``return`` statements of a function, not of the functions defined inside it."""
    pending: list[ast.AST] = list(function.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Return):
            yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            pending.extend(ast.iter_child_nodes(node))


def frames_from_maps(tree: ast.Module, *, handlers: bool = False) -> list[str]:
    """Frames sent as maps: a map given to ``framed``/``reply``/``encode``, or returned by a request handler
    (with ``handlers``: the module's top-level ``async def``s)."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and built_as_map(node.args[0]):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in SENDING_CALLS:
                found.append(f"line {node.lineno}: {name}({{...}})")
    for function in tree.body if handlers else ():
        if isinstance(function, ast.AsyncFunctionDef):
            found += [f"line {r.lineno}: return {{...}}" for r in own_returns(function) if built_as_map(r.value)]
    return found


def test_every_frame_is_built_as_its_struct() -> None:
    """No answer or push is built as a map: a map is encoded in the order it was written and with whatever
    it holds, so it can drift from the declared contract unnoticed (field order and omitted defaults)."""
    offenders = {name: found for name, tree in modules()
                 if (found := frames_from_maps(tree, handlers=name.startswith("imserver/handlers/")))}
    assert offenders == {}


def test_the_map_check_sees_what_it_looks_for() -> None:
    assert frames_from_maps(ast.parse('framed({"op": "msg", "msg": m})'))
    assert frames_from_maps(ast.parse('client.reply({"op": "ok"} | fields)'))
    assert frames_from_maps(ast.parse('encode(dict(op="hidden"))'))
    assert frames_from_maps(ast.parse('async def f():\n    return {"conv": c}\n'), handlers=True)
    assert not frames_from_maps(ast.parse('framed(MsgPush(msg=m))\nclient.reply(answer)'))
    assert not frames_from_maps(ast.parse('async def f():\n    return {"conv": c}\n'))  # not handlers
    assert not frames_from_maps(ast.parse('async def f():\n    def g():\n        return {}\n'), handlers=True)


def test_every_handler_answers_with_the_struct_its_request_declares() -> None:
    """Each handler takes its request type and returns ``answer_type(request)``, or None where it answers on its
    own (``send``, ``logout``); mypy holds the bodies to these annotations (``handlers.base.Route.to``)."""
    wrong = {}
    for request, handler in ROUTES.items():
        hints = typing.get_type_hints(handler)
        takes = hints[handler.__code__.co_varnames[2]]
        if request not in (takes, *typing.get_args(takes)) or hints["return"] not in (answer_type(request), None,
                                                                                     type(None)):
            wrong[request.__name__] = (takes, hints["return"])
    assert wrong == {}

"""Message kinds that admins define at run time (MSG-1 自定义, MSG-2).

A definition is data (``protocol.kinds.KindDefinition``): fields of a few simple
types and a fallback text. It is stored, audited and announced on the bus, and
every server rebuilds its kinds from the stored definitions, so a kind defined on
one node is accepted on all of them.
"""

from __future__ import annotations

import logging
from typing import Any

import asyncpg
import msgspec

from imserver.connection import Connection
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.model import Role
from imserver.store import kinds
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError
from protocol.codec import field_path
from protocol.frames import KindDefine, Kinds, Request
from protocol.kinds import KindDefinition, KindRegistry, default_registry

log = logging.getLogger(__name__)


async def load_registry(store: Store) -> KindRegistry:
    """The built-in kinds and every stored definition (one that no longer compiles is logged and left out)."""
    registry = default_registry()
    for stored in await kinds.definitions(store):
        try:
            registry.define(msgspec.convert(stored, KindDefinition))
        except (msgspec.ValidationError, ProtocolError) as exc:
            log.error("stored kind definition refused", extra={"kind": stored.get("name"), "error": str(exc)})
    return registry


def parse_definition(raw: dict[str, Any]) -> KindDefinition:
    """A definition checked as a registry would take it (on the built-in kinds alone: custom ones may be replaced).

    Error handling: raises ProtocolError(BAD_REQUEST) with the path of the bad part under ``definition``.
    """
    try:
        definition = msgspec.convert(raw, KindDefinition)
        default_registry().define(definition)  # compiling it is the check
    except msgspec.ValidationError as exc:
        inner = field_path(str(exc))
        raise ProtocolError(ErrorCode.BAD_REQUEST, str(exc),
                            field=f"definition.{inner}" if inner else "definition") from None
    except ProtocolError as exc:
        exc.field = f"definition.{exc.field}" if exc.field else "definition"
        raise
    return definition


class KindHandlers:
    def __init__(self, core: Handlers) -> None:
        self.core = core
        self.table: dict[type[Request], Handler] = {Kinds: self.kinds, KindDefine: self.kind_define}

    async def kinds(self, conn: Connection, req: Kinds) -> Reply:
        registry = self.core.kinds
        return {"kinds": registry.names(),
                "custom": [msgspec.to_builtins(d) for _, d in sorted(registry.custom.items())]}

    async def kind_define(self, conn: Connection, req: KindDefine) -> Reply:
        user = session_of(conn).user
        if user.role is not Role.ADMIN:
            raise ProtocolError(ErrorCode.FORBIDDEN, "administrators only", rid=req.rid)
        try:
            definition = parse_definition(req.definition)
        except ProtocolError as exc:
            exc.rid = req.rid
            raise
        stored = msgspec.to_builtins(definition)

        async def txn(c: asyncpg.Connection) -> None:
            await kinds.define_txn(c, stored, user.id)
        await self.core.audit(conn, "kind_define", detail={"kind": definition.name}, txn=txn)
        self.core.kinds.define(definition)  # this node at once; every node reloads on the bus event
        return {"kind": definition.name}

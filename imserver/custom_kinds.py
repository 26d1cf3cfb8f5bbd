"""Message kinds that admins define at run time (MSG-1 自定义, MSG-2).

A definition is data (``protocol.kinds.KindDefinition``): fields of a few simple
types and a fallback text. It is stored, audited and announced on the bus, and
every server rebuilds its kinds from the stored definitions, so a kind defined on
one node is accepted on all of them.
"""

from __future__ import annotations

import logging

import msgspec

from imserver.actions.kinds import do_define_kind
from imserver.connection import Connection
from imserver.handlers import Handler, Handlers, Reply, session_of
from imserver.model import Role
from imserver.store import kinds
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError
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
        definition = await do_define_kind(self.core.ctx, self.core.actor(conn), req.definition)
        return {"kind": definition.name}

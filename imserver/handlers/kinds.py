"""Message kinds: ``kinds`` lists them, ``kind_define`` adds one at run time (MSG-1 自定义, MSG-2; SPEC.md §5.17).

A definition is data (``protocol.kinds.KindDefinition``): fields of a few simple types and a
fallback text. Defining one is an action: stored, audited and announced on the bus, so every
node rebuilds its kinds from the stored definitions and accepts the kind.
"""

from __future__ import annotations

from imserver.access import actor_of, require_role
from imserver.actions.kinds import do_define_kind
from imserver.connection import Connection
from imserver.handlers.base import route
from imserver.services import Services
from imserver.visibility import ADMINS
from protocol.frames import KindDefine, KindDefineAnswer, Kinds, KindsAnswer


async def kinds(s: Services, client: Connection, req: Kinds) -> KindsAnswer:
    registry = s.kinds
    return KindsAnswer(rid=req.rid, kinds=registry.names(), custom=[d for _, d in sorted(registry.custom.items())])


async def kind_define(s: Services, client: Connection, req: KindDefine) -> KindDefineAnswer:
    require_role(client, ADMINS, "administrators only")
    definition = await do_define_kind(s.actions, actor_of(client), req.definition)
    return KindDefineAnswer(rid=req.rid, kind=definition.name)


ROUTES = dict([route(Kinds).to(kinds), route(KindDefine).to(kind_define)])

"""Message kinds that admins define at run time (MSG-1 自定义, MSG-2; SPEC.md §5.17)."""

from __future__ import annotations

from typing import Any

import msgspec

from imserver.actions.base import Actor, Context, Tx, transact
from imserver.bus import KindsChanged
from imserver.store import kinds
from protocol import ErrorCode, ProtocolError
from protocol.codec import encode, field_path
from protocol.kinds import MAX_CUSTOM_KINDS, MAX_DEFINITION_BYTES, KindDefinition, default_registry


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
    if len(encode(definition)) > MAX_DEFINITION_BYTES:
        raise ProtocolError(ErrorCode.BAD_REQUEST, f"a definition takes at most {MAX_DEFINITION_BYTES} bytes",
                            field="definition")
    return definition


async def do_define_kind(ctx: Context, actor: Actor, raw: dict[str, Any]) -> KindDefinition:
    """Define a kind, or replace the one of that name; every node reloads its kinds.

    Error handling: see ``parse_definition``; BAD_REQUEST (``definition.name``) for a new kind once there are
    ``MAX_CUSTOM_KINDS``.
    """
    definition = parse_definition(raw)
    stored = msgspec.to_builtins(definition)

    async def body(tx: Tx) -> None:
        if not await kinds.define_txn(tx.db, stored, actor.id, most=MAX_CUSTOM_KINDS):
            raise ProtocolError(ErrorCode.BAD_REQUEST, f"there are {MAX_CUSTOM_KINDS} custom kinds already",
                                field="definition.name")
        await tx.audit("kind_define", detail={"kind": definition.name})
        tx.emit(KindsChanged())
    await transact(ctx, actor, "kind_define", body)
    return definition

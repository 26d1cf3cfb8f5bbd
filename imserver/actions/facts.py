"""Facts about patients that quick replies fill in, such as ``next_visit`` (SPEC.md §5.20, SEC-1)."""

from __future__ import annotations

from imserver.actions.base import Actor, Context, Tx, transact
from imserver.model import Role, User
from imserver.store import facts
from protocol import ErrorCode, ProtocolError


async def do_set_fact(ctx: Context, actor: Actor, patient: User, key: str, value: str | None) -> None:
    """Record a fact about a patient, or remove it (``value`` None); audited.

    Error handling: BAD_REQUEST (``user``) if ``patient`` is not a patient; NOT_FOUND (``key``) to
    remove a fact that is not recorded.
    """
    if patient.role is not Role.PATIENT:
        raise ProtocolError(ErrorCode.BAD_REQUEST, "facts are about patients", field="user")
    assert actor.id is not None, "facts are recorded by accounts"
    by = actor.id

    async def body(tx: Tx) -> None:
        if not await facts.set_fact_txn(tx.db, patient.id, key, value, by):
            raise ProtocolError(ErrorCode.NOT_FOUND, "no such fact", field="key")
        await tx.audit("fact_set" if value is not None else "fact_remove", target_id=patient.id, detail={"key": key})
    await transact(ctx, actor, "facts_set", body)

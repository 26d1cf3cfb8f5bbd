"""Accesses and events that change nothing but the audit log (SEC-1): staff reading a patient's
profile or file, the sensitive-word filter refusing or flagging a message (IM-11)."""

from __future__ import annotations

from typing import Any

from imserver.actions.base import Actor, Context, Tx, transact
from imserver.store import accounts, attachments


async def do_record(
    ctx: Context, actor: Actor, action: str, *, conv_id: int | None = None, detail: dict[str, Any] | None = None,
) -> None:
    """An audit entry on its own: something happened that staff must be able to look up."""
    async def body(tx: Tx) -> None:
        await tx.audit(action, conv_id=conv_id, detail=detail)
    await transact(ctx, actor, action, body)


async def do_read_phone(ctx: Context, actor: Actor, user_id: int, conv_id: int) -> bytes | None:
    """A person's phone number (encrypted), read and recorded as ``profile_read`` in one transaction."""
    async def body(tx: Tx) -> bytes | None:
        found = await accounts.phone_txn(tx.db, user_id)
        await tx.audit("profile_read", target_id=user_id, conv_id=conv_id)
        return found
    return await transact(ctx, actor, "profile_read", body)


async def do_read_file(
    ctx: Context, actor: Actor, file: attachments.File, offset: int, length: int, *, conv_id: int | None, via: str,
) -> bytes:
    """Bytes of a patient's file, read and recorded as ``attachment_read`` in one transaction (MSG-4)."""
    async def body(tx: Tx) -> bytes:
        data = await attachments.read_txn(tx.db, file.id, offset, length)
        await tx.audit("attachment_read", target_id=file.uploader_id, conv_id=conv_id,
                       detail={"attachment": file.id, "via": via})
        return data
    return await transact(ctx, actor, "attachment_read", body)

"""Who may fetch a stored file, and who may put one in a message (MSG-4, DESIGN rule 4; SPEC.md §5.18).

A file is fetched by its uploader, by anyone who may see a message that carries
it, by the visibility rules history uses (``visibility.can_see``: membership,
bans, isolation, mention-only, refused messages), or by staff who may use a quick
reply that carries it (MSG-3); each rule says why it grants, for the audit log.

Sending checks each file a body names: patients and family send their own
uploads only; staff, bot and admin accounts also send the care team's files and
any file they may fetch (they forward). The body then gets the stored type, size
and name, whatever the client said.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from imserver import views, visibility
from imserver.directory import Directory
from imserver.model import User
from imserver.store import attachments, messages, quickreplies
from imserver.store.attachments import File
from pgtrio.bridge import Store
from protocol import ErrorCode, ProtocolError
from protocol.kinds import KindRegistry


@dataclass(frozen=True)
class Grant:
    """Why a user may fetch a file: ``via`` a rule, and the conversation that shows it, if one does."""

    via: str
    conv_id: int | None = None


Rule = Callable[[User, File], Awaitable[Grant | None]]
"""A reason to let ``user`` fetch a complete file, or None."""


class AttachmentRules:
    """The node's rules for fetching and sending stored files, over its store and directory."""

    def __init__(self, store: Store, directory: Directory) -> None:
        self._store = store
        self._directory = directory
        self.rules: list[Rule] = [self._uploaded, self._shown_in_a_message, self._in_a_quick_reply]
        """Asked in order; the first grant wins."""

    async def access(self, user: User, file: File) -> Grant | None:
        """Why ``user`` may fetch ``file``, or None: then they get ``not_found``, as if it did not exist."""
        if not file.complete:
            return None
        for rule in self.rules:
            grant = await rule(user, file)
            if grant is not None:
                return grant
        return None

    async def _uploaded(self, user: User, file: File) -> Grant | None:
        return Grant("uploader") if file.uploader_id == user.id else None

    async def _shown_in_a_message(self, user: User, file: File) -> Grant | None:
        viewer = self._directory.viewer(user.id)
        for row in await messages.carrying(self._store, file.id, user.id):
            roster = await self._directory.roster(row.conv_id)
            if roster is not None and visibility.can_see(viewer, views.meta(row), roster):
                return Grant("message", row.conv_id)
        return None

    async def _in_a_quick_reply(self, user: User, file: File) -> Grant | None:
        """Staff may fetch the files of the quick replies they may use, before any message carries them."""
        if await quickreplies.may_use_attachment(self._store, user.id, file.id, visibility.CARE_TEAM):
            return Grant("quick_reply")
        return None

    async def may_send(self, user: User, file: File) -> bool:
        if not file.complete:
            return False
        if file.uploader_id == user.id:
            return True
        if user.role in visibility.MASKED_ROLES:
            return False
        uploader = (await self._directory.users([file.uploader_id])).get(file.uploader_id, views.UNKNOWN)
        return uploader.role not in visibility.MASKED_ROLES or await self.access(user, file) is not None

    async def bind(
        self, user: User, kinds: KindRegistry, kind: str, body: dict[str, Any]
    ) -> list[dict[str, Any]]:
        """Check every file ``body`` names and fill in what is stored of it; the attachment maps of the body.

        Error handling: NOT_FOUND naming the field of a file that does not exist, is not
        complete, or is not the sender's to send (one answer for all three: no leak).
        """
        refs = kinds.attachments(kind, body)
        if not refs:
            return []
        found = await attachments.files(self._store, [raw["id"] for _, raw in refs])
        for path, raw in refs:
            file = found.get(raw["id"])
            if file is None or not await self.may_send(user, file):
                own = file is not None and file.uploader_id == user.id
                detail = "the upload is not finished" if own else "no such file that you may send"
                raise ProtocolError(ErrorCode.NOT_FOUND, detail, field=path)
            raw.clear()
            raw.update(file.ref())
        return [raw for _, raw in refs]

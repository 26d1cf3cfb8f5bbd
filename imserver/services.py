"""What request handlers work with: one ``Services`` per server, handed to every handler.

It holds the server's long-lived parts (settings, store, caches, hub, writer, keys) and the
state that changes at run time as the bus says (the sensitive-word filter, the message kinds),
and keeps the caches current with committed events (``refresh``): its own actions' before a
handler answers, every node's when the bus brings them.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from weakref import WeakKeyDictionary

import msgspec

from imserver import auth, bus, filetypes
from imserver.actions.base import Context
from imserver.attachments import AttachmentRules
from imserver.config import Settings
from imserver.connection import Connection
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.store import moderation
from imserver.store.kinds import definitions
from imserver.words import WordFilter
from imserver.writer import MessageWriter
from pgtrio.bridge import Store
from protocol import ProtocolError
from protocol.clock import Clock
from protocol.kinds import KindDefinition, KindRegistry, default_registry

log = logging.getLogger(__name__)


@dataclass(eq=False)
class Services:
    """The server's parts a request handler may use; ``words`` and ``kinds`` are replaced whole when they change."""

    settings: Settings
    store: Store
    directory: Directory
    hub: Hub
    writer: MessageWriter
    signer: auth.TokenSigner
    cipher: auth.FieldCipher
    clock: Clock
    """``{{today}}`` in quick replies (DESIGN rule 10)."""
    kinds: KindRegistry = field(default_factory=default_registry)
    words: WordFilter = field(default_factory=WordFilter)
    direct_chats: dict[tuple[int, int], int] = field(default_factory=dict)
    """The direct chat of each pair of users (lower id first) this node has opened."""
    files_read: WeakKeyDictionary[Connection, set[str]] = field(default_factory=WeakKeyDictionary)
    """The patients' files each staff connection has read, and whose first read is in the audit log."""

    def __post_init__(self) -> None:
        self.actions = Context(self.store, self.refresh)
        """What actions run with here: this node's caches are current before a handler answers."""
        self.attachments = AttachmentRules(self.store, self.directory)
        self.file_limits = filetypes.limits(self.settings)  # a bad upload_types stops the server at start
        self.passwords = auth.PasswordChecks(self.settings.password_checks)

    async def load(self) -> None:
        """Read the word list and the custom kinds (at start)."""
        self.words = WordFilter(await moderation.words(self.store))
        self.kinds = await load_registry(self.store)

    async def refresh(self, events: Sequence[bus.Event]) -> None:
        """Bring this node's caches up to date with committed events.

        Idempotent, so an event may arrive twice: from this node's own action, then from the bus.
        """
        users = [e.user for e in events if isinstance(e, bus.UserChanged)]
        for user_id in users:
            self.directory.forget_user(user_id)
        await self.directory.users(users)
        for event in events:
            if isinstance(event, bus.MembersChanged):
                self.directory.apply(event)
                if any(role is not None for _, role in event.changes):
                    await self.directory.reload(event.conv)  # newcomers need their pseudonym numbers at once
            elif isinstance(event, bus.GroupChanged):
                await self.directory.reload(event.conv)
        if any(isinstance(e, bus.WordsChanged) for e in events):
            self.words = WordFilter(await moderation.words(self.store))
        if any(isinstance(e, bus.KindsChanged) for e in events):
            self.kinds = await load_registry(self.store)


async def load_registry(store: Store) -> KindRegistry:
    """The built-in kinds and every stored definition (one that no longer compiles is logged and left out)."""
    registry = default_registry()
    for stored in await definitions(store):
        try:
            registry.define(msgspec.convert(stored, KindDefinition))
        except (msgspec.ValidationError, ProtocolError) as exc:
            log.error("stored kind definition refused", extra={"kind": stored.get("name"), "error": str(exc)})
    return registry

"""In-memory copies of users and rosters for the hot path; Postgres stays the source of truth.

A roster is loaded on first use and then kept current by the membership events
on the bus (``apply``). A load that overlaps an event is redone, so a stale
roster never settles in the cache.
"""

from __future__ import annotations

from imserver.bus import MembersChanged
from imserver.model import MemberRole, Roster, User
from imserver.store import accounts, conversations
from imserver.store.bridge import Store


class Directory:
    def __init__(self, store: Store) -> None:
        self._store = store
        self._rosters: dict[int, Roster] = {}
        self._generation: dict[int, int] = {}
        self._users: dict[int, User] = {}
        self._usernames: dict[str, User] = {}

    async def roster(self, conv_id: int) -> Roster | None:
        cached = self._rosters.get(conv_id)
        if cached is not None:
            return cached
        while True:
            generation = self._generation.get(conv_id, 0)
            loaded = await conversations.roster(self._store, conv_id)
            if self._generation.get(conv_id, 0) == generation:
                break
        if loaded is not None:
            self._rosters[conv_id] = loaded
        return loaded

    async def reload(self, conv_id: int) -> Roster | None:
        """Load a roster afresh, for when the cached one may lag a change made elsewhere."""
        self._generation[conv_id] = self._generation.get(conv_id, 0) + 1
        self._rosters.pop(conv_id, None)
        return await self.roster(conv_id)

    def forget(self) -> None:
        """Drop every cached roster (after events may have been missed); they reload on next use."""
        for conv_id in self._rosters:
            self._generation[conv_id] = self._generation.get(conv_id, 0) + 1
        self._rosters.clear()

    def cached_roster(self, conv_id: int) -> Roster | None:
        return self._rosters.get(conv_id)

    def apply(self, event: MembersChanged) -> None:
        """Bring a cached roster up to date with a committed membership change."""
        self._generation[event.conv] = self._generation.get(event.conv, 0) + 1
        roster = self._rosters.get(event.conv)
        if roster is None:
            return
        for user_id, role in event.changes:
            if role is None:
                roster.members.pop(user_id, None)
            else:
                roster.members[user_id] = MemberRole(role)

    def remember(self, user: User) -> None:
        self._users[user.id] = user
        self._usernames[user.username] = user

    async def user_by_name(self, username: str) -> User | None:
        user = self._usernames.get(username)
        if user is None:
            user = await accounts.user_by_name(self._store, username)
            if user is not None:
                self.remember(user)
        return user

    async def users(self, ids: list[int]) -> dict[int, User]:
        missing = [i for i in ids if i not in self._users]
        if missing:
            for user in await accounts.users_by_id(self._store, missing):
                self.remember(user)
        return {i: self._users[i] for i in ids if i in self._users}

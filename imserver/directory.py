"""In-memory copies of users, family links and rosters for the hot path; Postgres stays the source of truth.

A roster is loaded on first use, with every member's account, and then kept
current by the events on the bus (``apply``, ``reload``). A load that overlaps
an event is redone, so a stale roster never settles in the cache.
"""

from __future__ import annotations

from imserver.bus import MembersChanged
from imserver.model import MemberRole, Roster, User
from imserver.store import accounts, conversations
from imserver.views import UNKNOWN
from imserver.visibility import Viewer
from pgtrio.bridge import Store


class Directory:
    """The node's copies of accounts, family links, viewers and rosters; reads go to the store only on a miss."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self._rosters: dict[int, Roster] = {}
        self._generation: dict[int, int] = {}
        self._users: dict[int, User] = {}
        self._usernames: dict[str, User] = {}
        self._family: dict[int, frozenset[int]] = {}
        self._viewers: dict[int, Viewer] = {}
        """Built once per account: fan-out asks for every member of every message (imserver/bench/hotpath.py)."""

    # -- rosters ----------------------------------------------------------------------------

    async def roster(self, conv_id: int) -> Roster | None:
        cached = self._rosters.get(conv_id)
        return cached if cached is not None else await self._load(conv_id)

    async def reload(self, conv_id: int) -> Roster | None:
        """Load a roster afresh, for when the cached one may lag a change made elsewhere.

        The cached roster stays in place until the new one replaces it: messages
        committed meanwhile are still fanned out (with the roster as it was).
        """
        self._generation[conv_id] = self._generation.get(conv_id, 0) + 1
        return await self._load(conv_id)

    async def _load(self, conv_id: int) -> Roster | None:
        while True:
            generation = self._generation.get(conv_id, 0)
            loaded = await conversations.roster(self._store, conv_id)
            if loaded is not None:
                await self.users(list(loaded.members))
            if self._generation.get(conv_id, 0) == generation:
                break
        if loaded is None:
            self._rosters.pop(conv_id, None)
        else:
            self._rosters[conv_id] = loaded
        return loaded

    async def warm(self, conv_ids: list[int], *, chunk: int = 500) -> int:
        """Load many rosters and their accounts in bulk (at start-up, so the first sends after a restart
        do not each wait for their roster); rosters cached or changed meanwhile are left alone."""
        loaded = 0
        for start in range(0, len(conv_ids), chunk):
            wanted = [c for c in conv_ids[start:start + chunk] if c not in self._rosters]
            generations = {c: self._generation.get(c, 0) for c in wanted}
            found = await conversations.rosters(self._store, wanted)
            await self.users(list({u for r in found.values() for u in r.members}))
            for conv_id, roster in found.items():
                if self._generation.get(conv_id, 0) == generations[conv_id] and conv_id not in self._rosters:
                    self._rosters[conv_id] = roster
                    loaded += 1
        return loaded

    def forget(self) -> None:
        """Drop every cached roster and account (after events may have been missed); they reload on next use."""
        for conv_id in self._rosters:
            self._generation[conv_id] = self._generation.get(conv_id, 0) + 1
        self._rosters.clear()
        self._users.clear()
        self._usernames.clear()
        self._family.clear()
        self._viewers.clear()

    def cached_roster(self, conv_id: int) -> Roster | None:
        return self._rosters.get(conv_id)

    def apply(self, event: MembersChanged) -> None:
        """Bring a cached roster up to date with a committed membership change.

        New members get a pseudonym number in the same transaction; the roster is
        reloaded by the caller when it lacks one.
        """
        self._generation[event.conv] = self._generation.get(event.conv, 0) + 1
        roster = self._rosters.get(event.conv)
        if roster is None:
            return
        for user_id, role in event.changes:
            if role is None:
                roster.members.pop(user_id, None)
            else:
                roster.members[user_id] = MemberRole(role)

    # -- accounts ---------------------------------------------------------------------------

    def remember(self, user: User) -> None:
        self._users[user.id] = user
        self._usernames[user.username] = user
        self._viewers.pop(user.id, None)

    def forget_user(self, user_id: int) -> None:
        user = self._users.pop(user_id, None)
        if user is not None:
            self._usernames.pop(user.username, None)
        self._viewers.pop(user_id, None)
        for linked in self._family.pop(user_id, frozenset()):
            self._family.pop(linked, None)
            self._viewers.pop(linked, None)

    async def user_by_name(self, username: str) -> User | None:
        user = self._usernames.get(username)
        if user is None:
            user = await accounts.user_by_name(self._store, username)
            if user is not None:
                await self.users([user.id])
        return user

    async def users(self, ids: list[int]) -> dict[int, User]:
        """Accounts (and their family links) by id, loading what the cache lacks."""
        missing = [i for i in ids if i not in self._users or i not in self._family]
        if missing:
            for user in await accounts.users_by_id(self._store, missing):
                self.remember(user)
            family = await accounts.family_of(self._store, missing)
            self._family.update(family)
            for user_id in family:
                self._viewers.pop(user_id, None)
        return {i: self._users[i] for i in ids if i in self._users}

    def cached_users(self) -> dict[int, User]:
        return self._users

    def viewer(self, user_id: int) -> Viewer:
        """The account as the visibility rules see it; unknown accounts are treated as masked patients."""
        viewer = self._viewers.get(user_id)
        if viewer is None:
            user = self._users.get(user_id, UNKNOWN)
            viewer = Viewer(user_id, user.role, self._family.get(user_id, frozenset()))
            if user is not UNKNOWN and user_id in self._family:
                self._viewers[user_id] = viewer
        return viewer

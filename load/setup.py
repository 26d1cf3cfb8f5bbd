"""Bulk set-up of a scenario's accounts, conversations, old messages and sessions (NFR-3), through the server's
admin interface (imserver/admin.py).

Thousands of users and groups are made with a few array statements, not one request each, and every step skips
what exists, so ``imload setup`` can be run again. Sessions are issued there the way the server issues them: a
load run of 10,000 clients cannot wait for 10,000 argon2 password checks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from imserver.admin import Admin, NewGroup, NewUser
from load.scenario import Scenario

LOAD_PASSWORD = "imload-pass-1"
"""Every load account's password, so a person can log in as one and look around."""

FILLER = "今天促排第八天医生说卵泡发育得不错明天再来抽血看激素水平大家移植后都注意休息保持心情愉快"
HISTORY = timedelta(days=180)
"""How far back the old messages go."""


def chat_text(size_bytes: int) -> str:
    """Chinese chat text of about ``size_bytes`` in UTF-8 (3 bytes a character), at least one character."""
    chars = max(size_bytes // 3, 1)
    return (FILLER * (chars // len(FILLER) + 1))[:chars]


@dataclass(frozen=True)
class Layout:
    """What exists in the database for a scenario: user ids by user number, addresses by group and pair index."""

    user_ids: list[int]
    groups: list[str]
    pairs: list[str]
    flooders: list[int]
    """The flooding accounts' user ids (``Scenario.flood``), each sending into her own group of ``flood_groups``."""
    flood_groups: list[str]

    def addresses(self) -> list[str]:
        return self.groups + self.pairs + self.flood_groups


async def setup(admin: Admin, scenario: Scenario) -> Layout:
    """Create what is missing and return the layout (idempotent)."""
    users = [NewUser(scenario.username(n), f"压测患者{n:06d}") for n in range(scenario.users)]
    flooders = [NewUser(scenario.flooder_name(n), f"压测刷屏{n:05d}") for n in range(_flooders(scenario))]
    await admin.add_users([*users, *flooders, NewUser(_staff(scenario), "压测护士", "staff", "护士")], LOAD_PASSWORD)
    ids = await _user_ids(admin, scenario)
    flooder_ids = await _flooder_ids(admin, scenario)
    staff = (await admin.user_ids([_staff(scenario)]))[_staff(scenario)]
    await admin.add_groups([
        *(NewGroup(scenario.group_name(g), staff, [ids[scenario.member(n)] for n in scenario.group_members(g)])
          for g in range(scenario.groups)),
        *(NewGroup(scenario.flood_group_name(n), staff, [flooder]) for n, flooder in enumerate(flooder_ids)),
    ])
    await admin.add_direct_chats([_pair(ids, p) for p in range(scenario.dm_pairs)])
    layout = await layout_of(admin, scenario, ids)
    if scenario.prefill_messages:
        await admin.add_old_messages(layout.addresses(), scenario.prefill_messages, chat_text(scenario.body_bytes),
                                     until=datetime.now(UTC), span=HISTORY)
    return layout


async def layout_of(admin: Admin, scenario: Scenario, ids: list[int] | None = None) -> Layout:
    """The layout ``setup`` made (``ids``: the users', if already known). Error handling: LookupError if it
    has not been run."""
    ids = ids if ids is not None else await _user_ids(admin, scenario)
    names = [scenario.group_name(g) for g in range(scenario.groups)]
    flood_names = [scenario.flood_group_name(n) for n in range(_flooders(scenario))]
    groups = await admin.group_addresses(names + flood_names)
    pairs = [_pair(ids, p) for p in range(scenario.dm_pairs)]
    directs = await admin.direct_addresses(pairs)
    if len(groups) < len(names) + len(flood_names) or len(directs) < len(pairs):
        raise LookupError(f"scenario {scenario.name!r} is not set up: run `imload setup` first")
    return Layout(ids, [groups[name] for name in names], [directs[pair] for pair in pairs],
                  await _flooder_ids(admin, scenario), [groups[name] for name in flood_names])


async def mint_tokens(admin: Admin, user_ids: list[int], *, device: str = "imload", hours: float = 12) -> list[str]:
    """A new session and its token for each user."""
    return await admin.issue_tokens(user_ids, device=device, expires_at=datetime.now(UTC) + timedelta(hours=hours))


def _staff(scenario: Scenario) -> str:
    return f"ld-{scenario.name}-staff"


def _pair(ids: list[int], pair: int) -> tuple[int, int]:
    return ids[2 * pair], ids[2 * pair + 1]


async def _user_ids(admin: Admin, scenario: Scenario) -> list[int]:
    return await _ids(admin, scenario, [scenario.username(n) for n in range(scenario.users)])


async def _flooder_ids(admin: Admin, scenario: Scenario) -> list[int]:
    return await _ids(admin, scenario, [scenario.flooder_name(n) for n in range(_flooders(scenario))])


def _flooders(scenario: Scenario) -> int:
    return scenario.flood.senders if scenario.flood else 0


async def _ids(admin: Admin, scenario: Scenario, names: list[str]) -> list[int]:
    found = await admin.user_ids(names)
    if len(found) < len(names):
        raise LookupError(f"scenario {scenario.name!r} is not set up: run `imload setup` first")
    return [found[name] for name in names]

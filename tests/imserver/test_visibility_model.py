"""Acceptance: random joins, leaves, sends, mentions, isolations, lifts, mutes and bans against a reference model.

A hypothesis state machine drives the real server over real sockets, one SDK client
per person of a fixed cast, and keeps a reference model of who may see what, written
from the requirements (IM-4..IM-15, docs/requirements.md) and SPEC.md §11, independent of ``imserver.visibility``.
It checks that:

(a) every ``msg`` push went to exactly the members the model allowed when it was sent,
    and every other member got a ``hidden`` push for its seq instead (after each send);
(b) ``history``, ``sync`` and ``members`` show each member exactly what the model says
    now, with every other seq as hidden (after each step that changed something);
    isolation takes back what was shown, with the ``hidden`` push with ``retract``, and
    tells no one anything else;
(c) no frame a person ever received, push or answer, holds the username or the name of
    someone she may only see masked (IM-6); masked people keep one pseudonym;
(d) every member received each message she may see live, exactly once, and the server
    refused exactly the sends and operations the model refuses, with the same error.

Each example works in a group of its own; the server, the database and the clients
live for the whole test. Hypothesis is synchronous, so it runs in a worker thread and
each step calls into the test's trio loop (``trio.from_thread.run``). A step ends only
when the server has applied its effects (the ``conv`` or ``group`` push that follows
them), so the checks see a settled server.
"""

from __future__ import annotations

import contextlib
import itertools
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from typing import Any, TypeVar

import asyncpg
import msgspec
import pytest
import trio
import trio.testing
from hypothesis import HealthCheck
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from clients.python import Client, ClientError, open_client
from imserver.config import Settings
from imserver.model import Role
from imserver.store import accounts
from protocol.frames import MAX_FAMILY, HiddenPush, MsgPush, SendAnswer
from tests.conftest import PASSWORD, PASSWORD_HASH, Running
from tests.conftest import test_settings as server_settings
from tests.helpers import as_frame

T = TypeVar("T")


@pytest.fixture
def settings() -> Settings:
    """The server's settings (conftest's ``server`` uses them): no rate limit gets in the way of the steps."""
    return server_settings(rate=10000, burst=10000)


# -- the cast ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Person:
    username: str
    name: str
    role: str
    title: str = ""


CAST: dict[str, Person] = {
    "doc": Person("vis_doc", "陈医生", "staff", "主任医师"),  # owns every group
    "nurse": Person("vis_nurse", "刘护士长", "staff"),
    "root": Person("vis_root", "系统管理员", "admin"),     # bans groups; never a member
    "p1": Person("p1_real", "张三甲", "patient"),
    "p2": Person("p2_real", "李四乙", "patient"),
    "p3": Person("p3_real", "王五丙", "patient"),
    "f1": Person("f1_real", "赵六丁", "family"),           # p1's husband
}
LINKED = frozenset({frozenset({"p1", "f1"})})
HUSBAND = {"p1": "f1"}
JOINERS = ("nurse", "p1", "p2", "p3", "f1")
SPEAKERS = ("doc", "nurse", "p1", "p2", "p3", "f1", "root")
VIEWERS = ("doc", "nurse", "p1", "p2", "p3", "f1")
MANAGER_ROLES = ("owner", "admin")
OK = "ok"
BLOCKED_WORD = "代孕"
"""A sensitive word with policy ``block`` (IM-11): what patients and family write with it is refused."""


def sees_real(viewer: str, subject: str) -> bool:
    """IM-6/IM-7: staff and admins see everyone and are seen by everyone for real; patients and
    family see themselves and their linked family for real, other patients and family masked."""
    real_roles = ("staff", "admin", "bot")
    return (
        CAST[viewer].role in real_roles or CAST[subject].role in real_roles
        or viewer == subject or frozenset({viewer, subject}) in LINKED
    )


FORBIDDEN: dict[str, tuple[str, ...]] = {
    viewer: tuple(s for subject in CAST if not sees_real(viewer, subject)
                  for s in (CAST[subject].username, CAST[subject].name))
    for viewer in CAST
}
"""The strings that must never reach a person's client: names of those she sees masked."""


# -- the reference model ----------------------------------------------------------------------

@dataclass(frozen=True)
class Sent:
    seq: int
    sender: str
    text: str
    only: str | None
    refused: bool = False
    """Held back by the sensitive-word filter: kept, shown to staff and admin accounts only."""


@dataclass
class Standing:
    """A person's isolation in one group; it outlives leaving the group."""

    isolated: bool = False
    hidden_through: int = 0
    """After a lift: her messages up to this seq stay hidden (IM-13)."""


@dataclass
class Model:
    members: dict[str, str] = field(default_factory=dict)
    """person -> member role (owner, admin, member)."""
    via: dict[str, str | None] = field(default_factory=dict)
    """person -> the patient she followed into the group (IM-8), or None."""
    standing: dict[str, Standing] = field(default_factory=dict)
    muted: bool = False
    family_can_speak: bool = False
    banned: bool = False
    messages: list[Sent] = field(default_factory=list)
    last_seq: int = 0

    def manager(self, person: str) -> bool:
        return self.members.get(person) in MANAGER_ROLES

    def sees(self, viewer: str, message: Sent) -> bool:
        """IM-10, IM-11, IM-12, IM-13, IM-15 for a member ``viewer``."""
        if self.banned:
            return False
        if message.refused:  # not even its sender: she was told it was refused
            return CAST[viewer].role in ("staff", "admin")
        if viewer == message.sender or self.manager(viewer):
            return True
        if message.only is not None and viewer != message.only:
            return False
        standing = self.standing.get(message.sender, Standing())
        return not standing.isolated and message.seq > standing.hidden_through

    def visible(self, viewer: str) -> list[Sent]:
        return [m for m in self.messages if self.sees(viewer, m)]

    def settings(self) -> dict[str, bool]:
        return {"muted": self.muted, "family_can_speak": self.family_can_speak, "banned": self.banned}

    def join(self, person: str, role: str) -> list[str]:
        """Add (or change the role of) a member; a patient's husband follows her in (IM-8). Returns who joined."""
        joined = [person]
        if person not in self.members:
            self.via[person] = None
            husband = HUSBAND.get(person)
            if husband is not None and husband not in self.members:
                self.members[husband] = "member"
                self.via[husband] = person
                joined.append(husband)
        self.members[person] = role
        return joined

    def leave(self, person: str) -> list[str]:
        """Remove a member, and whoever followed her in. Returns who left."""
        gone = [person] + [p for p, v in self.via.items() if v == person and p in self.members and p != person]
        for p in gone:
            del self.members[p]
            del self.via[p]
        return gone

    # what the server must answer

    def send_outcome(self, sender: str, rude: bool = False) -> str:
        """IM-4, IM-9, IM-11, IM-15, in the order SPEC.md §11.4 gives."""
        if sender not in self.members:
            return "forbidden"
        if self.banned:
            return "group_banned"
        masked = CAST[sender].role in ("patient", "family")
        if masked and self.muted and not self.manager(sender):
            return "muted"
        if CAST[sender].role == "family" and not self.family_can_speak and not self.manager(sender):
            return "family_read_only"
        if masked and rude:
            return "sensitive_words"
        return OK

    def management_outcome(self, actor: str) -> str | None:
        """Whether ``actor`` may manage the group (owner or admin of it), or the refusal."""
        if actor not in self.members:
            return "forbidden"
        if self.banned:
            return "group_banned"
        if not self.manager(actor):
            return "forbidden"
        return None

    def isolation_outcome(self, actor: str, target: str, on: bool) -> str:
        refusal = self.management_outcome(actor)
        if refusal is not None:
            return refusal
        if target not in self.members:
            return "not_found"
        if on and self.manager(target):  # a manager cannot be isolated; a lift stays possible
            return "bad_request"
        return OK


# -- the world: server, clients and every frame they received ------------------------------------

@dataclass
class World:
    """What lives for the whole test: the server, one connected client per person, their frames."""

    running: Running
    ids: dict[str, int]
    clients: dict[str, Client] = field(default_factory=dict)
    frames: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Every push each person received, in order."""
    leaks: list[str] = field(default_factory=list)
    old_groups: list[str] = field(default_factory=list)
    aliases: dict[tuple[str, str], int] = field(default_factory=dict)
    arrived: trio.Event = field(default_factory=trio.Event)
    """Set (and replaced) whenever a push arrives."""
    numbers: Iterator[int] = field(default_factory=lambda: itertools.count(1))

    def call(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run ``fn`` in the trio loop (from the hypothesis thread) and wait for it."""
        return trio.from_thread.run(fn, *args)

    async def record(self, who: str) -> None:
        async for event in self.clients[who].events():
            frame = as_frame(event)
            if frame["op"] == "_lost":
                self.leaks.append(f"{who}'s connection was lost: {frame}")
            self.frames[who].append(frame)
            self.scan(who, frame)
            self.arrived.set()
            self.arrived = trio.Event()

    def scan(self, who: str, frame: Any) -> None:
        """(c): no string in any frame may name someone ``who`` sees masked."""
        if isinstance(frame, str):
            for word in FORBIDDEN[who]:
                if word in frame:
                    self.leaks.append(f"{who} received {word!r} in {frame!r}")
        elif isinstance(frame, dict):
            for key, value in frame.items():
                self.scan(who, key)
                self.scan(who, value)
        elif isinstance(frame, list | tuple):
            for value in frame:
                self.scan(who, value)

    async def ask(self, who: str, op: str, **fields: Any) -> tuple[str, dict[str, Any]]:
        """One request as ``who``: ("ok", answer) or (error code, error frame). Answers are scanned too."""
        try:
            frame = await self.clients[who].request(op, **fields)
        except ClientError as exc:
            frame = as_frame(exc.error)
        self.scan(who, frame)
        return (OK if frame["op"] == "ok" else frame["code"]), frame

    async def settle(self) -> None:
        """After a ping round trip on every connection, all pushes queued before it have been recorded."""
        async with trio.open_nursery() as nursery:
            for who in self.clients:
                nursery.start_soon(self.clients[who].request, "ping")
        await trio.testing.wait_all_tasks_blocked()

    async def wait_for(self, what: str, predicate: Callable[[], bool], seconds: float = 5) -> None:
        with trio.move_on_after(seconds):
            while not predicate():
                await self.arrived.wait()
            return
        raise AssertionError(f"timed out waiting for {what}")

    async def alias(self, conv: str, who: str) -> int | None:
        """The pseudonym number the server gave ``who`` in ``conv`` (arbitrary, so looked up); None if never in it.

        Numbers are kept for good (SPEC.md §11.1), so a number once found is remembered.
        """
        async def txn(c: asyncpg.Connection) -> int | None:
            return await c.fetchval(
                "select alias_no from member_state where conv_id = $1 and user_id = $2",
                int(conv[2:]), self.ids[who],
            )
        if (conv, who) not in self.aliases:
            found = await self.running.store.run("test_alias", txn, transaction=False)
            if found is None:
                return None
            self.aliases[conv, who] = found
        return self.aliases[conv, who]


def conv_of(frame: dict[str, Any]) -> str | None:
    """The conversation a push is about."""
    return frame["msg"]["conv"] if frame.get("op") == "msg" else frame.get("conv")


def covered(ranges: list[list[int]]) -> list[int]:
    return [seq for first, last in ranges for seq in range(first, last + 1)]


def runs(seqs: list[int]) -> list[list[int]]:
    """Sorted seqs as [first, last] runs: how history and sync report hidden seqs."""
    out: list[list[int]] = []
    for seq in seqs:
        if out and out[-1][1] == seq - 1:
            out[-1][1] = seq
        else:
            out.append([seq, seq])
    return out


def pick(data: st.DataObject, label: str, likely: list[str], anyone: tuple[str, ...]) -> str:
    """Mostly one of ``likely`` (the steps that matter), sometimes anyone (the refusals)."""
    choices = st.sampled_from(likely) | st.sampled_from(anyone) if likely else st.sampled_from(anyone)
    return data.draw(choices, label=label)


# -- the state machine ------------------------------------------------------------------------

class VisibilityMachine(RuleBasedStateMachine):
    def __init__(self, world: World) -> None:
        super().__init__()
        self.world = world
        self.model = Model()
        self.conv = ""
        self.start: dict[str, int] = {}
        self.live: dict[str, Counter[int]] = {}
        """Per person, the ``msg`` pushes of this group the model expected (each seq once)."""
        self.retractable: dict[str, set[int]] = {}
        """Per person, the seqs a retraction may name."""
        self.pseudonyms: dict[str, tuple[str, str]] = {}
        self.allow_friends = False
        self.texts = itertools.count(1)
        self.sync_turns = itertools.cycle(VIEWERS)
        self.checked = ""

    def run(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return self.world.call(fn, *args)

    # -- set-up and waiting ----------------------------------------------------------------

    @initialize(
        initial=st.lists(st.sampled_from(JOINERS), unique=True, min_size=2, max_size=5),
        switches=st.sets(st.sampled_from(("muted", "family_can_speak"))),
        chatter=st.lists(st.sampled_from(VIEWERS), max_size=4),
    )
    def new_group(self, initial: list[str], switches: set[str], chatter: list[str]) -> None:
        """A group of its own for each example, with some members, switches and messages to begin with."""
        self.run(self._new_group, initial)
        for switch in sorted(switches):
            self.run(self._group_set, "doc", {switch: True})
        for sender in chatter:
            self.run(self._send, sender, None, False)

    async def _new_group(self, initial: list[str]) -> None:
        w, m = self.world, self.model
        self.start = self.marks()
        self.live = {who: Counter() for who in CAST}
        self.retractable = {who: set() for who in CAST}
        outcome, answer = await w.ask("doc", "group_create", name=f"可见性模型{next(w.numbers)}",
                                      members=[CAST[p].username for p in initial])
        assert outcome == OK, answer
        self.conv = answer["conv"]
        w.old_groups.append(self.conv)
        joined = m.join("doc", "owner")
        for person in initial:
            if person not in m.members:
                joined += m.join(person, "member")
            else:  # named in the request, so a member in her own right, not a follower
                m.via[person] = None
        await self._wait_conv_pushes(joined, "joined", self.start)

    def marks(self) -> dict[str, int]:
        return {who: len(self.world.frames[who]) for who in CAST}

    def since(self, who: str, marks: dict[str, int]) -> list[dict[str, Any]]:
        """The pushes of this group ``who`` received since ``marks``."""
        return [f for f in self.world.frames[who][marks[who]:] if conv_of(f) == self.conv]

    async def _wait_conv_pushes(self, people: list[str], event: str, marks: dict[str, int]) -> None:
        """The ``conv`` push comes from the bus event, after the server has reloaded the group."""
        for person in people:
            await self.world.wait_for(
                f"{person}'s conv {event} push",
                lambda p=person: any(f["op"] == "conv" and f["event"] == event for f in self.since(p, marks)),
            )

    async def _wait_group_push(self, marks: dict[str, int]) -> dict[str, Any]:
        """The ``group`` push to the owner comes from the bus event, after the server has reloaded the group."""
        await self.world.wait_for("the group push", lambda: any(f["op"] == "group" for f in self.since("doc", marks)))
        return [f for f in self.since("doc", marks) if f["op"] == "group"][-1]

    async def _barrier(self) -> None:
        """Wait until the server has applied every event so far (an isolation is announced to no one).

        The server applies bus events one at a time, in commit order; an admin account flips a
        switch the model ignores (``allow_friends``), and once its ``group`` push reaches the owner
        every earlier event has been applied, retractions included.
        """
        marks = self.marks()
        self.allow_friends = not self.allow_friends
        outcome, answer = await self.world.ask("root", "group_set", conv=self.conv, allow_friends=self.allow_friends)
        assert outcome == OK, answer
        await self._wait_group_push(marks)

    # -- membership (IM-2, IM-8) -----------------------------------------------------------

    @rule(data=st.data(), admin=st.booleans())
    def add(self, data: st.DataObject, admin: bool) -> None:
        person = pick(data, "person", sorted(set(JOINERS) - set(self.model.members)), JOINERS)
        if person != "nurse":
            admin = False  # only staff are made group admins here
            if person in self.model.members:
                return  # re-adding a member would only change her role
        self.run(self._add, person, "admin" if admin else "member")

    async def _add(self, person: str, role: str) -> None:
        w, m = self.world, self.model
        marks = self.marks()
        outcome, answer = await w.ask("doc", "group_add", conv=self.conv, user=CAST[person].username, role=role)
        assert outcome == ("group_banned" if m.banned else OK), (person, answer)
        if outcome == OK:
            await self._wait_conv_pushes(m.join(person, role), "joined", marks)

    @rule(data=st.data(), themselves=st.booleans())
    def remove(self, data: st.DataObject, themselves: bool) -> None:
        person = pick(data, "member", sorted(set(self.model.members) - {"doc"}), JOINERS)
        self.run(self._remove, person, themselves)

    async def _remove(self, person: str, themselves: bool) -> None:
        w, m = self.world, self.model
        actor = person if themselves else "doc"
        marks = self.marks()
        outcome, answer = await w.ask(actor, "group_remove", conv=self.conv, user=CAST[person].username)
        if themselves and person not in m.members:
            expected = "forbidden"
        elif m.banned:
            expected = "group_banned"
        elif person not in m.members:
            expected = "not_found"
        else:
            expected = OK
        assert outcome == expected, (actor, person, answer)
        if outcome == OK:
            await self._wait_conv_pushes(m.leave(person), "left", marks)

    # -- messages (IM-4, IM-9, IM-10, IM-11) -----------------------------------------------

    @rule(data=st.data())
    def send(self, data: st.DataObject) -> None:
        m = self.model
        sender = pick(data, "sender", sorted(m.members), SPEAKERS)
        others = sorted(set(m.members) - {sender})
        mention = data.draw(st.none() | st.sampled_from(others), label="only") if others else None
        self.run(self._send, sender, mention, data.draw(st.booleans(), label="with a blocked word"))

    async def _send(self, sender: str, mention: str | None, rude: bool) -> None:
        w, m = self.world, self.model
        number = next(self.texts)
        text = f"第{number}条消息" + (f"，{BLOCKED_WORD}" if rude else "")
        fields: dict[str, Any] = {}
        if mention is not None:
            fields["only"] = await self._shown_id(sender, mention)
        marks = self.marks()
        outcome, answer = await w.ask(sender, "send", conv=self.conv, cid=f"{self.conv}-{number}", text=text, **fields)
        assert outcome == m.send_outcome(sender, rude), (sender, mention, answer)
        if outcome not in (OK, "sensitive_words"):
            return
        refused = outcome == "sensitive_words"
        if not refused:  # seqs have no gaps, so a refused message takes the next one too
            assert answer["seq"] == m.last_seq + 1, answer
        message = Sent(m.last_seq + 1, sender, text, mention, refused)
        m.messages.append(message)
        m.last_seq = message.seq
        await w.settle()
        for viewer in CAST:
            got = [f["msg"] for f in self.since(viewer, marks) if f["op"] == "msg"]
            hidden = [(f["ranges"], f.get("retract", False)) for f in self.since(viewer, marks) if f["op"] == "hidden"]
            if viewer not in m.members or (viewer == sender and not refused):
                assert (got, hidden) == ([], []), (viewer, got, hidden)  # the sender learns from the answer
            elif m.sees(viewer, message):
                assert len(got) == 1 and not hidden, (viewer, message, got, hidden)
                await self._check_message(viewer, got[0], f"live push to {viewer}")
                self.live[viewer][message.seq] += 1
            else:  # told the seq is hidden from her, so it never looks like a gap
                assert (got, hidden) == ([], [([[message.seq] * 2], False)]), (viewer, message, got, hidden)

    @rule(sender=st.sampled_from(("p1", "p2", "p3", "f1")), subject=st.sampled_from(("p1", "p2", "p3", "f1")))
    def mention_by_a_real_id_one_was_not_shown(self, sender: str, subject: str) -> None:
        """IM-6: a patient cannot name another patient by the real id she was not shown."""
        m = self.model
        if sees_real(sender, subject) or sender not in m.members or subject not in m.members:
            return
        self.run(self._probe_real_id, sender, subject)

    async def _probe_real_id(self, sender: str, subject: str) -> None:
        outcome, answer = await self.world.ask(
            sender, "send", conv=self.conv, cid=f"probe-{next(self.texts)}", text="你好",
            only=f"u{self.world.ids[subject]}",
        )
        expected = self.model.send_outcome(sender)
        assert outcome == ("not_found" if expected == OK else expected), answer

    async def _shown_id(self, viewer: str, subject: str) -> str:
        """The member id ``viewer`` is shown for ``subject`` (the real id of someone never in the group)."""
        if not sees_real(viewer, subject):
            alias = await self.world.alias(self.conv, subject)
            if alias is not None:
                return f"a{alias}"
        return f"u{self.world.ids[subject]}"

    async def _check_person(self, viewer: str, shown: dict[str, Any], subject: str, where: str) -> None:
        """A person as ``viewer`` is shown them: real, or the conversation's stable pseudonym (IM-6, IM-7)."""
        assert shown["id"] == await self._shown_id(viewer, subject), (where, subject, shown)
        assert shown["role"] == CAST[subject].role, (where, subject, shown)
        if sees_real(viewer, subject):
            assert shown["name"] == CAST[subject].name, (where, subject, shown)
            assert shown.get("title", "") == CAST[subject].title, (where, subject, shown)
        else:
            first = self.pseudonyms.setdefault(subject, (shown["id"], shown["name"]))
            assert (shown["id"], shown["name"]) == first, (where, subject, shown, "the pseudonym changed")
            assert "username" not in shown and "title" not in shown, (where, shown)

    async def _check_message(self, viewer: str, shown: dict[str, Any], where: str) -> None:
        sent = next(s for s in self.model.messages if s.seq == shown["seq"])
        assert (shown["conv"], shown["text"], shown.get("refused", False)) == (self.conv, sent.text, sent.refused), (
            where, shown)
        await self._check_person(viewer, shown["sender"], sent.sender, where)
        if sent.only is None:
            assert shown.get("only") is None, (where, shown)
        else:
            await self._check_person(viewer, shown["only"], sent.only, where)

    # -- isolation (IM-12, IM-13) ----------------------------------------------------------

    @rule(actor=st.sampled_from(("doc", "doc", "nurse", "p2")), data=st.data())
    def isolate(self, actor: str, data: st.DataObject) -> None:
        member = pick(data, "member", sorted(set(self.model.members) - {"doc"}), JOINERS)
        self.run(self._isolate, actor, member, True)

    @precondition(lambda self: bool(self.speakers()))
    @rule(data=st.data())
    def isolate_or_lift_someone_who_spoke(self, data: st.DataObject) -> None:
        """The cases that matter most: what she said is on the others' screens and must go (IM-12), and
        what she said while isolated must stay gone after the lift (IM-13)."""
        member = data.draw(st.sampled_from(self.speakers()), label="member")
        isolated = self.model.standing.get(member, Standing()).isolated
        self.run(self._isolate, "doc", member, not isolated)

    def speakers(self) -> list[str]:
        m = self.model
        return sorted({s.sender for s in m.messages if s.sender in m.members and not m.manager(s.sender)})

    @precondition(lambda self: any(s.isolated for s in self.model.standing.values()))
    @rule(actor=st.sampled_from(("doc", "doc", "nurse")), data=st.data())
    def lift(self, actor: str, data: st.DataObject) -> None:
        member = pick(data, "member", sorted(p for p, s in self.model.standing.items() if s.isolated), JOINERS)
        self.run(self._isolate, actor, member, False)

    async def _isolate(self, actor: str, target: str, on: bool) -> None:
        w, m = self.world, self.model
        marks = self.marks()
        outcome, answer = await w.ask(
            actor, "isolate" if on else "unisolate", conv=self.conv, member=await self._shown_id(actor, target)
        )
        assert outcome == m.isolation_outcome(actor, target, on), (actor, target, on, answer)
        if outcome != OK:
            return
        standing = m.standing.setdefault(target, Standing())
        if not on and standing.isolated:  # lifting an isolation that is not there changes nothing
            standing.hidden_through = m.last_seq
        standing.isolated = on
        await self._barrier()
        await w.settle()
        # IM-12: whoever may have been shown her messages is told to take them down; no one is told anything else.
        theirs = {s.seq for s in m.messages if s.sender == target}
        told = [p for p in m.members if p != target and not m.manager(p)] if on and theirs else []
        for person in CAST:
            frames = [f for f in self.since(person, marks) if f["op"] != "group"]  # the barrier's push
            retracted = {s for f in frames if f["op"] == "hidden" and f.get("retract") for s in covered(f["ranges"])}
            if person in told:
                assert all(f["op"] == "hidden" and f.get("retract") for f in frames), (person, frames)
                assert retracted == theirs, (person, "retracted", retracted, "sent", theirs)
                self.retractable[person] |= theirs
            else:
                assert frames == [], (person, "was told of the isolation", frames)

    # -- group switches and bans (IM-4, IM-9, IM-15) ---------------------------------------

    @rule(data=st.data())
    def switch(self, data: st.DataObject) -> None:
        """Mute all (IM-4), let family speak (IM-9), or ban the group (IM-15, rarer: it stops everything)."""
        which = data.draw(st.sampled_from(("muted", "muted", "family_can_speak", "family_can_speak", "banned")))
        on = data.draw(st.booleans(), label="on")
        if which == "banned":
            self.run(self._ban, data.draw(st.sampled_from(("root", "root", "doc")), label="actor"), on)
        else:
            self.run(self._group_set, data.draw(st.sampled_from(("doc", "doc", "nurse", "p1")), label="actor"),
                     {which: on})

    async def _group_set(self, actor: str, change: dict[str, bool]) -> None:
        w, m = self.world, self.model
        marks = self.marks()
        outcome, answer = await w.ask(actor, "group_set", conv=self.conv, **change)
        assert outcome == (m.management_outcome(actor) or OK), (actor, change, answer)
        if outcome != OK:
            return
        for key, value in change.items():
            setattr(m, key, value)
        assert {k: answer[k] for k in m.settings()} == m.settings(), answer
        pushed = await self._wait_group_push(marks)
        assert {k: pushed[k] for k in m.settings()} == m.settings(), pushed

    async def _ban(self, actor: str, banned: bool) -> None:
        w, m = self.world, self.model
        marks = self.marks()
        outcome, answer = await w.ask(actor, "group_ban" if banned else "group_unban", conv=self.conv)
        assert outcome == (OK if CAST[actor].role == "admin" else "forbidden"), (actor, answer)
        if outcome != OK:
            return
        m.banned = banned
        pushed = await self._wait_group_push(marks)
        assert pushed["banned"] is banned, pushed

    # -- what every person is shown now ----------------------------------------------------

    @invariant()
    def everyone_is_shown_what_the_model_allows(self) -> None:
        """After every step that changed the model (a refused step must change nothing: if it did,
        the next check or the one at the end of the example sees it)."""
        m = self.model
        state = repr((m.members, m.via, m.standing, m.settings(), m.last_seq))
        if self.conv and state != self.checked:
            self.run(self._check_everyone, [next(self.sync_turns)])
            self.checked = state

    def teardown(self) -> None:
        if self.conv:
            self.run(self._check_everyone, VIEWERS)

    async def _check_everyone(self, syncing: list[str]) -> None:
        """History and members of everyone, after every step; ``sync`` (which costs more) of ``syncing``."""
        w = self.world
        assert not w.leaks, w.leaks
        for viewer in VIEWERS:
            await self._check_history(viewer)
            await self._check_members(viewer)
        for viewer in syncing:
            await self._check_sync(viewer)
        for viewer in VIEWERS:
            received = self.since(viewer, self.start)
            got = Counter(f["msg"]["seq"] for f in received if f["op"] == "msg")
            assert got == self.live[viewer], (viewer, "msg pushes the model did not expect", got, self.live[viewer])
            for frame in received:
                if frame["op"] == "hidden" and frame.get("retract"):
                    assert set(covered(frame["ranges"])) <= self.retractable[viewer], (viewer, frame)
        assert not w.leaks, w.leaks

    def _check_page(self, viewer: str, page: dict[str, Any], where: str) -> list[dict[str, Any]]:
        m = self.model
        visible = m.visible(viewer)
        assert [(s["seq"], s["text"]) for s in page["messages"]] == [(s.seq, s.text) for s in visible], (
            viewer, where, page["messages"], visible)
        shown = {s.seq for s in visible}
        assert page["hidden"] == runs([s.seq for s in m.messages if s.seq not in shown]), (viewer, where, page)
        return page["messages"]

    async def _check_history(self, viewer: str) -> None:
        m = self.model
        outcome, answer = await self.world.ask(viewer, "history", conv=self.conv, limit=200)
        if viewer not in m.members:
            assert outcome == "forbidden", (viewer, answer)
        elif m.banned:
            assert outcome == "group_banned", (viewer, answer)
        else:
            assert outcome == OK, answer
            for message in self._check_page(viewer, answer, "history"):
                await self._check_message(viewer, message, f"history of {viewer}")

    async def _check_sync(self, viewer: str) -> None:
        m = self.model
        after = dict.fromkeys(self.world.old_groups, 10**9) | {self.conv: 0}
        outcome, answer = await self.world.ask(viewer, "sync", after=after, limit=200)
        assert outcome == OK, answer
        entries = [c for c in answer["convs"] if c["conv"] == self.conv]
        if viewer not in m.members:
            assert entries == [], (viewer, entries)
            return
        [entry] = entries
        assert {k: entry[k] for k in m.settings()} == m.settings(), entry
        assert entry["last_seq"] == m.last_seq, entry
        if m.banned:  # IM-15: listed, but with no content at all
            assert (entry.get("messages", []), entry.get("hidden", []), entry["unread"]) == ([], [], 0), entry
            return
        self._check_page(viewer, entry, "sync")  # the messages themselves are checked by history
        assert entry["unread"] == sum(s.sender != viewer for s in m.visible(viewer)), (viewer, entry)

    async def _check_members(self, viewer: str) -> None:
        m = self.model
        outcome, answer = await self.world.ask(viewer, "members", conv=self.conv)
        if viewer not in m.members:
            assert outcome == "forbidden", (viewer, answer)
            return
        if m.banned:
            assert outcome == "group_banned", (viewer, answer)
            return
        assert outcome == OK, answer
        by_id = {e["id"]: e for e in answer["members"]}
        assert len(by_id) == len(answer["members"]) == len(m.members), (viewer, answer, m.members)
        for person, role in m.members.items():
            entry = by_id.get(await self._shown_id(viewer, person))
            assert entry is not None, (viewer, person, answer)
            assert entry["member_role"] == role, (viewer, person, entry)
            await self._check_person(viewer, entry, person, f"members of {viewer}")
            if sees_real(viewer, person):
                assert entry["username"] == CAST[person].username, entry


# -- the test ----------------------------------------------------------------------------------

@contextlib.asynccontextmanager
async def open_world(server: Running) -> AsyncIterator[World]:
    """The cast's accounts, family link, sensitive word and connected clients, recording every push."""
    ids = {}
    for who, person in CAST.items():
        user = await accounts.create_user(
            server.store, person.username, person.name, Role(person.role), PASSWORD_HASH,
            title=person.title,
        )
        ids[who] = user.id
    for patient, husband in HUSBAND.items():
        await server.store.run("test_link", accounts.link_family_txn, ids[patient], ids[husband], "husband",
                               MAX_FAMILY)
    world = World(server, ids)
    async with contextlib.AsyncExitStack() as stack:
        for who, person in CAST.items():
            client = await stack.enter_async_context(
                open_client(server.url, username=person.username, password=PASSWORD)
            )
            world.clients[who] = client
            world.frames[who] = []
            world.scan(who, msgspec.to_builtins(client.welcome))
        async with trio.open_nursery() as nursery:
            for who in CAST:
                nursery.start_soon(world.record, who)
            await world.ask("root", "words_set", word=BLOCKED_WORD, policy="block")
            await wait_for_words(world)
            yield world
            nursery.cancel_scope.cancel()


async def wait_for_words(world: World) -> None:
    """The word list reaches the filter by a bus event: wait for a later event's push (events apply in order)."""
    outcome, answer = await world.ask("doc", "group_create", name="准备")
    assert outcome == OK, answer
    await world.wait_for("the group push", lambda: any(f["op"] == "conv" for f in world.frames["doc"]))
    start = len(world.frames["doc"])
    await world.ask("root", "group_set", conv=answer["conv"], allow_friends=True)
    await world.wait_for("the group push", lambda: any(f["op"] == "group" for f in world.frames["doc"][start:]))
    world.old_groups.append(answer["conv"])


async def test_no_one_sees_what_the_model_forbids_and_everyone_sees_what_it_allows(server: Running) -> None:
    async with open_world(server) as world:
        await trio.to_thread.run_sync(run_machine, world)


def run_machine(world: World) -> None:
    run_state_machine_as_test(
        lambda: VisibilityMachine(world),
        settings=hypothesis_settings(
            max_examples=40, stateful_step_count=30, deadline=None, database=None, print_blob=False,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )


# -- found by the model: live delivery while a group is reloaded --------------------------------

async def test_messages_committed_while_the_group_reloads_reach_every_member(server: Running) -> None:
    """(d): every member gets every message she may see live, whatever else happens in the group.

    The model test waits for each change to settle before the next step, so it cannot see this;
    here the owner's messages cross an admin's switching of a setting unrelated to visibility.
    """
    for username, role in (("race_doc", Role.STAFF), ("race_root", Role.ADMIN), ("race_patient", Role.PATIENT)):
        await server.user(username, role)
    async with (
        open_client(server.url, username="race_doc", password=PASSWORD) as doc,
        open_client(server.url, username="race_root", password=PASSWORD) as root,
        open_client(server.url, username="race_patient", password=PASSWORD) as patient,
    ):
        group = (await doc.request("group_create", name="并发", members=["race_patient"]))["conv"]
        received: list[int] = []

        async def receive() -> None:
            async for event in patient.events():
                if isinstance(event, MsgPush):
                    received.append(event.msg.seq)

        async def switch() -> None:
            for i in range(100):
                await root.request("group_set", conv=group, allow_friends=i % 2 == 0)

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            nursery.start_soon(switch)
            sent = [(await doc.send(group, f"第{i}条")).seq for i in range(100)]
            await patient.request("ping")  # every push queued before the last answer has arrived
            await trio.testing.wait_all_tasks_blocked()
            nursery.cancel_scope.cancel()
        assert sorted(received) == sent, f"{len(set(sent) - set(received))} of {len(sent)} never pushed"


async def test_a_message_sent_just_after_a_lift_is_not_pushed_as_hidden(server: Running) -> None:
    """IM-13 and (d): what the lifted member sends after the lift reaches everyone, live too.

    She is not told of the lift (IM-12), so nothing stops her from writing while it is under
    way. Her message, sent a few milliseconds after the owner's ``unisolate``, gets a seq after
    the lift (history shows it to everyone), yet the others get the ``hidden`` push for it, so
    their clients skip it for good (SPEC.md §11.3).
    """
    for username, role in (("lift_doc", Role.STAFF), ("lift_a", Role.PATIENT), ("lift_b", Role.PATIENT)):
        await server.user(username, role)
    async with (
        open_client(server.url, username="lift_doc", password=PASSWORD) as doc,
        open_client(server.url, username="lift_a", password=PASSWORD) as a,
        open_client(server.url, username="lift_b", password=PASSWORD) as b,
    ):
        group = (await doc.request("group_create", name="解除隔离", members=["lift_a", "lift_b"]))["conv"]
        member = next(e["id"] for e in (await doc.request("members", conv=group))["members"]
                      if e.get("username") == "lift_a")
        hidden_live: set[int] = set()

        async def receive() -> None:
            async for event in b.events():
                if isinstance(event, HiddenPush) and not event.retract:
                    hidden_live.update(covered([list(r) for r in event.ranges]))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(receive)
            for attempt in range(100):
                await doc.request("isolate", conv=group, member=member)
                acks: list[SendAnswer] = []
                async with trio.open_nursery() as round_:
                    round_.start_soon(partial(doc.request, "unisolate", conv=group, member=member))
                    round_.start_soon(send_later, a, group, f"第{attempt}条", attempt % 5 / 1000, acks)
                seq = acks[0].seq
                await b.request("ping")
                await trio.testing.wait_all_tasks_blocked()
                page = await b.request("history", conv=group, after=seq - 1, limit=1)
                if [m["seq"] for m in page["messages"]] == [seq]:  # sent after the lift: b may see it
                    assert seq not in hidden_live, f"seq {seq} pushed as hidden, shown by history"
            nursery.cancel_scope.cancel()


async def send_later(client: Client, conv: str, text: str, delay: float, acks: list[SendAnswer]) -> None:
    await trio.sleep(delay)
    acks.append(await client.send(conv, text))

"""What one group message costs the server's CPU between the socket and the outbound queues (NFR-3): a benchmark.

Times, in-process and single-threaded (no network, no database), the pure work the
server does for every text a patient sends to a group:

1. decode and validate the ``send`` frame the client sent (``ServerSession.receive``,
   i.e. ``protocol.codec.decode_request`` after the phase checks): 150 bytes of Chinese text;
2. the sensitive-word check of its text (``WordFilter.check``, 2,000 words from
   ``imserver.bench.words.word_list``);
3. the visibility work of fanning it out, per member, as ``Delivery._message`` does it:
   the viewer look-up (``Directory.viewer``), ``visibility.can_see`` and the view key
   (``visibility.shows_real`` of the sender and of the mention target), also timed apart;
4. rendering and encoding the ``msg`` frame once per distinct view (``views.message`` and
   ``protocol.codec.encode``);
5. all of it together (plus the ``Row`` the writer builds), for groups of 50, 500 and 5,000
   members, and for a mention-only message in the 50-member group (which also encodes the
   ``hidden`` frame for the members it is hidden from).

The groups are built from real model objects: a ``Roster`` with one owner (staff), about 4%
other staff (one of them a group admin), 14% family each linked to a patient, the rest
patients; the accounts sit in a real ``Directory`` (without a store behind it: nothing here
loads). Every member counts as online (the server skips offline ones before any of this).
Not timed: the WebSocket framing of each encoded frame, queueing it to connections
(``Hub.deliver``), the store and the ack.

    .venv/bin/python -m imserver.bench.hotpath [--words 2000] [--runs 7] [--seconds 0.3] [--json]

Results are recorded in ``load/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform
import sys
from collections.abc import Callable
from dataclasses import dataclass
from typing import cast

from imserver import views, visibility
from imserver.bench.words import Run, clean_message, command_line, measure, word_list
from imserver.directory import Directory
from imserver.model import MemberRole, MemberState, Role, Roster, User
from imserver.store.messages import Row
from imserver.views import ViewKey
from imserver.visibility import Audience, Viewer
from imserver.words import WordFilter
from pgtrio.bridge import Store
from protocol import ServerSession, encode
from protocol.frames import HiddenPush, MsgPush, Send

CONV = 12
SEQ = 4_711
MESSAGE_ID = 9_000_001
TS = 1_795_000_000_000
TEXT_BYTES = 150
SIZES = (50, 500, 5_000)

@dataclass
class Group:
    """One treatment group as the server's caches hold it, and who sends in it."""

    roster: Roster
    users: dict[int, User]
    directory: Directory
    sender: User
    """A patient with a linked family member, so the family sees her for real."""
    target: User
    """Another patient, for the mention-only message."""


def make_group(size: int) -> Group:
    """``size`` members: 1 owner (staff), ~4% staff (the first a group admin), ~14% family, the rest patients."""
    staff = max(2, round(size * 0.04))
    family = round(size * 0.14)
    patients = size - 1 - staff - family
    users: dict[int, User] = {}
    members: dict[int, MemberRole] = {}
    links: dict[int, frozenset[int]] = {}

    def add(role: Role, member_role: MemberRole, name: str, title: str = "") -> User:
        user = User(1_000 + len(users), f"{role}{len(users)}", name, role, title)
        users[user.id], members[user.id], links[user.id] = user, member_role, frozenset()
        return user

    add(Role.STAFF, MemberRole.OWNER, "王建华", "主任医师")
    for i in range(staff):
        add(Role.STAFF, MemberRole.ADMIN if i == 0 else MemberRole.MEMBER, f"护士{i}", "护士长" if i == 0 else "护士")
    linked = [add(Role.PATIENT, MemberRole.MEMBER, f"患者{i}") for i in range(patients)]
    for i in range(family):
        relative, patient = add(Role.FAMILY, MemberRole.MEMBER, f"家属{i}"), linked[i]
        links[relative.id], links[patient.id] = frozenset({patient.id}), frozenset({relative.id})
    states = {user_id: MemberState(alias_no) for alias_no, user_id in enumerate(members, start=1)}
    roster = Roster(CONV, "group", "取卵周期 3 组", members, states)
    directory = Directory(cast(Store, None))  # never loads: everything is already cached
    for user in users.values():
        directory.remember(user)
    directory._family.update(links)  # what Directory.users() would have loaded with the accounts
    return Group(roster, users, directory, sender=linked[0], target=linked[-1])


def chat_text(size: int = TEXT_BYTES) -> str:
    """Ordinary treatment-group chat of at most ``size`` UTF-8 bytes (50 characters for 150 bytes)."""
    text, used = [], 0
    for char in clean_message(size):
        used += len(char.encode())
        if used > size:
            break
        text.append(char)
    return "".join(text)


def send_frame(text: str, only: str | None = None) -> bytes:
    """The bytes ``clients.python`` puts on the wire for ``Client.send`` of a text."""
    return encode(Send(rid=42, conv=f"g:{CONV}", cid="5f0c6a2e9b7d4c1e8a3f2b6d0e9c7a41", text=text, only=only))


def row_of(req: Send, text: str, sender_id: int, only_user_id: int | None) -> Row:
    """The row ``Delivery.committed`` builds from the draft and what the store returned."""
    audience = Audience.ONLY if only_user_id is not None else Audience.ALL
    return Row(
        CONV, SEQ, MESSAGE_ID, sender_id, req.kind, text, req.body, req.cid, TS, str(audience), only_user_id, False
    )


def msg_frame(row: Row, viewer: Viewer, roster: Roster, users: dict[int, User]) -> bytes:
    """The ``msg`` push as ``viewer`` sees it, encoded (not called for viewers who may not see it)."""
    shown = views.message(row, viewer, roster, users)
    assert shown is not None
    return encode(MsgPush(msg=shown))


def deliver(row: Row, group: Group, *, render: bool = True) -> tuple[dict[ViewKey, bytes], list[Viewer]]:
    """``Delivery._message`` without the hub (every member online, nothing queued): the same grouping
    (``views.audiences``) and one encoding per view. With ``render`` False only the visibility work is done.
    The WebSocket frame header the server adds (``connection.framed``) is not timed here.
    """
    viewers = (group.directory.viewer(u) for u in group.roster.members)
    groups, hidden = views.audiences(row, group.roster, group.users, viewers)
    frames = {key: msg_frame(row, seen[0], group.roster, group.users) if render else b""
              for key, seen in groups.items()}
    if hidden and render:
        encode(HiddenPush(conv=group.roster.address, ranges=[(row.seq, row.seq)]))
    return frames, hidden


def view_counts(row: Row, group: Group) -> tuple[dict[ViewKey, int], dict[ViewKey, Viewer]]:
    """How many members get each view, and one viewer of each (not timed)."""
    groups, _ = views.audiences(row, group.roster, group.users, map(group.directory.viewer, group.roster.members))
    return {key: len(seen) for key, seen in groups.items()}, {key: seen[0] for key, seen in groups.items()}


def describe(counts: dict[ViewKey, int], hidden: int) -> str:
    """``sender 1, real 4, masked 45``: the views by how the sender (and the mention target) are shown; the
    sender's own devices get a view of their own (with the ``cid``)."""
    def name(key: ViewKey) -> str:
        shown = "sender" if key[2] else "real" if key[0] else "masked"
        return shown if key[1] is None else f"{shown}/{'real' if key[1] else 'masked'} target"
    parts = [f"{name(key)} {n}" for key, n in sorted(counts.items(), reverse=True)]
    return ", ".join(parts + ([f"hidden {hidden}"] if hidden else []))


@dataclass
class Result:
    case: str
    members: int
    views: int
    median_us: float
    min_us: float
    per_recipient_us: float
    per_second: int
    note: str


def run(count: int, runs: int, seconds: float) -> tuple[dict[str, object], list[Result]]:
    words = WordFilter(word_list(count))
    text = chat_text()
    assert words.check(text).clean, "the benchmark message must take the filter's fast path"
    session = ServerSession()
    session.open(readonly=False)
    data = send_frame(text)
    groups = {size: make_group(size) for size in SIZES}
    small = groups[SIZES[0]]
    req = session.receive(data)
    assert isinstance(req, Send) and req.text == text
    row = row_of(req, text, small.sender.id, None)
    counts, first = view_counts(row, small)
    members = len(small.roster.members)
    meta = views.meta(row)
    sender, roster, directory, users = small.sender, small.roster, small.directory, small.users
    viewers = [directory.viewer(u) for u in roster.members]
    representatives = list(first.values())

    def lookups() -> None:
        for user_id in roster.members:
            directory.viewer(user_id)

    def checks() -> None:
        for viewer in viewers:
            visibility.can_see(viewer, meta, roster)

    def keys() -> None:
        for viewer in viewers:
            (visibility.shows_real(viewer, sender.id, sender.role), None, viewer.id == sender.id)

    def rendered() -> list[object]:
        return [views.message(row, v, roster, users) for v in representatives]

    def encoded() -> list[bytes]:
        return [msg_frame(row, v, roster, users) for v in representatives]

    def whole(group: Group, data: bytes, only: User | None) -> Callable[[], object]:
        def path() -> object:
            req = session.receive(data)
            assert isinstance(req, Send) and req.text is not None
            verdict = words.check(req.text)
            found = row_of(req, verdict.text, group.sender.id, None if only is None else only.id)
            return deliver(found, group)
        return path

    n = len(counts)
    view_note = describe(counts, 0)
    cases: list[tuple[str, int, int, Callable[[], object], str]] = [
        ("1 decode + validate send frame", 0, 0, lambda: session.receive(data), f"{len(data)}-byte frame"),
        ("2 sensitive-word check", 0, 0, lambda: words.check(text), f"{len(text)} chars, {words.size} words"),
        ("3a viewer look-up", members, 0, lookups, "Directory.viewer"),
        ("3b can_see", members, 0, checks, "visibility.can_see"),
        ("3c view key", members, 0, keys, "visibility.shows_real"),
        ("3 visibility loop (a+b+c)", members, n, lambda: deliver(row, small, render=False),
         view_note),
        ("4a views.message per view", members, n, rendered, f"{n} views"),
        ("4 views.message + encode per view", members, n, encoded,
         "frames of " + ", ".join(str(len(frame)) for frame in encoded()) + " bytes"),
    ]
    for size, group in groups.items():
        big_row = row_of(req, text, group.sender.id, None)
        big_counts, _ = view_counts(big_row, group)
        cases.append((f"5 whole path, {size:,} members", size, len(big_counts), whole(group, data, None),
                      describe(big_counts, 0)))
    only_data = send_frame(text, only=visibility.pseudonym(roster, small.target.id)[0])
    only_row = row_of(req, text, small.sender.id, small.target.id)
    only_counts, _ = view_counts(only_row, small)
    _, only_hidden = deliver(only_row, small, render=False)
    cases.append((f"5 whole path, {members} members, mention-only", members, len(only_counts),
                  whole(small, only_data, small.target), describe(only_counts, len(only_hidden))))

    results = []
    for name, recipients, distinct, op, note in cases:
        median, best = measure(op, runs=runs, seconds=seconds)
        per_recipient = round(median / recipients, 3) if recipients else 0.0
        results.append(Result(name, recipients, distinct, round(median, 2), round(best, 2), per_recipient,
                              int(1e6 / median), note))
    info: dict[str, object] = {
        "python": sys.version.split()[0], "machine": platform.machine(), "words": words.size,
        "text_chars": len(text), "text_bytes": len(text.encode()), "frame_bytes": len(data),
        "runs": runs, "seconds_per_run": seconds,
    }
    return info, results


def main(argv: list[str] | None = None) -> None:
    command_line(argv, "Time the server's per-message hot path (decode, words, fan-out)", run, _table)


def _table(args: argparse.Namespace, done: Run) -> None:
    info, results = done
    print(f"Hot path of one group text: {info['text_chars']} chars ({info['text_bytes']} bytes UTF-8), "
          f"{info['frame_bytes']}-byte send frame, {info['words']} words; Python {info['python']}; "
          f"median of {args.runs} runs of ~{args.seconds} s")
    print(f"{'case':<46} {'members':>7} {'views':>5} {'µs/msg':>9} {'best':>9} {'µs/member':>9} {'msgs/s':>10}  note")
    for r in results:
        members = f"{r.members:,}" if r.members else ""
        views_ = str(r.views) if r.views else ""
        each = f"{r.per_recipient_us:.3f}" if r.members else ""
        print(f"{r.case:<46} {members:>7} {views_:>5} {r.median_us:>9.2f} {r.min_us:>9.2f} {each:>9} "
              f"{r.per_second:>10,}  {r.note}")


if __name__ == "__main__":
    main()

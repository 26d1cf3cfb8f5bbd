"""The visibility rules of ``imserver.visibility`` as tables a physician can read (IM-4..IM-15).

Each table row reads as a sentence: *this viewer*, looking at *this message* in a group in
*this state*, sees it or not. The cast of the tables is one treatment group:

| who         | account role | role in the group |
|-------------|--------------|-------------------|
| 主任 (owner) | staff        | owner             |
| 护士长       | staff        | admin             |
| 护士         | staff        | member            |
| 王女士       | patient      | member            |
| 王先生       | family       | member (王女士's husband) |
| 李女士       | patient      | member            |
| 赵女士       | patient      | member            |

The properties at the end check ``hidden_ranges`` and ``pseudonym`` for any input.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from imserver.model import MemberRole, MemberState, Role, Roster
from imserver.visibility import (
    NICKNAMES,
    Audience,
    MessageMeta,
    Viewer,
    can_see,
    hidden_ranges,
    may_chat_directly,
    pseudonym,
    send_refusal,
    shows_real,
)
from protocol import ErrorCode

CONV = 12

OWNER, HEAD_NURSE, NURSE = 1, 2, 3
MRS_WANG, MR_WANG, MRS_LI, MRS_ZHAO = 10, 11, 12, 13

PEOPLE: dict[str, Viewer] = {
    "owner": Viewer(OWNER, Role.STAFF),
    "head nurse (admin)": Viewer(HEAD_NURSE, Role.STAFF),
    "nurse (member)": Viewer(NURSE, Role.STAFF),
    "Mrs Wang": Viewer(MRS_WANG, Role.PATIENT, frozenset({MR_WANG})),
    "Mr Wang (her husband)": Viewer(MR_WANG, Role.FAMILY, frozenset({MRS_WANG})),
    "Mrs Li": Viewer(MRS_LI, Role.PATIENT),
    "Mrs Zhao": Viewer(MRS_ZHAO, Role.PATIENT),
}
ROLE_IN_GROUP = {
    OWNER: MemberRole.OWNER, HEAD_NURSE: MemberRole.ADMIN, NURSE: MemberRole.MEMBER,
    MRS_WANG: MemberRole.MEMBER, MR_WANG: MemberRole.MEMBER, MRS_LI: MemberRole.MEMBER, MRS_ZHAO: MemberRole.MEMBER,
}


def group(
    *, isolated: tuple[int, ...] = (), hidden_through: dict[int, int] | None = None, banned: bool = False,
    muted: bool = False, family_can_speak: bool = False,
) -> Roster:
    """The treatment group above, with some members isolated (or lifted, ``hidden_through``)."""
    hidden_through = hidden_through or {}
    states = {
        user: MemberState(alias_no, user in isolated, hidden_through.get(user, 0))
        for alias_no, user in enumerate(ROLE_IN_GROUP, start=1)
    }
    return Roster(
        CONV, "group", "取卵周期 3 组", dict(ROLE_IN_GROUP), states,
        muted=muted, family_can_speak=family_can_speak, banned=banned,
    )


# -- can_see: who sees which message (IM-10, IM-11, IM-12, IM-13, IM-15) -------------------------

PLAIN = "Mrs Li writes to the group"
MENTION = "Mrs Li writes to Mrs Zhao only (仅TA可见)"
REFUSED = "Mrs Li's message refused for sensitive words"
ISOLATED = "Mrs Li is isolated, her message"
BEFORE_LIFT = "Mrs Li's message from before her isolation was lifted (seq 5, lifted at 8)"
AFTER_LIFT = "Mrs Li's message after the lift (seq 9, lifted at 8)"
BANNED = "any message in a banned group"
ISOLATED_MENTION = "Mrs Li is isolated, her message to Mrs Zhao only"
OWNER_PLAIN = "the owner writes to the group"

SITUATIONS: dict[str, tuple[MessageMeta, Roster]] = {
    PLAIN: (MessageMeta(MRS_LI, 5), group()),
    MENTION: (MessageMeta(MRS_LI, 5, Audience.ONLY, MRS_ZHAO), group()),
    REFUSED: (MessageMeta(MRS_LI, 5, Audience.STAFF), group()),
    ISOLATED: (MessageMeta(MRS_LI, 5), group(isolated=(MRS_LI,))),
    BEFORE_LIFT: (MessageMeta(MRS_LI, 5), group(hidden_through={MRS_LI: 8})),
    AFTER_LIFT: (MessageMeta(MRS_LI, 9), group(hidden_through={MRS_LI: 8})),
    BANNED: (MessageMeta(MRS_LI, 5), group(banned=True)),
    ISOLATED_MENTION: (MessageMeta(MRS_LI, 5, Audience.ONLY, MRS_ZHAO), group(isolated=(MRS_LI,))),
    OWNER_PLAIN: (MessageMeta(OWNER, 5), group(isolated=(MRS_LI,))),
}

#                                        owner  head   nurse  Mrs    Mr     Mrs    Mrs
#                                               nurse         Wang   Wang   Li     Zhao
SEES: dict[str, tuple[bool, ...]] = {
    PLAIN:            (True,  True,  True,  True,  True,  True,  True),
    MENTION:          (True,  True,  False, False, False, True,  True),
    REFUSED:          (True,  True,  True,  False, False, False, False),
    ISOLATED:         (True,  True,  False, False, False, True,  False),
    BEFORE_LIFT:      (True,  True,  False, False, False, True,  False),
    AFTER_LIFT:       (True,  True,  True,  True,  True,  True,  True),
    BANNED:           (False, False, False, False, False, False, False),
    ISOLATED_MENTION: (True,  True,  False, False, False, True,  False),
    OWNER_PLAIN:      (True,  True,  True,  True,  True,  True,  True),
}
CAN_SEE_ROWS = [
    pytest.param(viewer, situation, expected, id=f"{situation} | {viewer}")
    for situation, row in SEES.items()
    for viewer, expected in zip(PEOPLE, row, strict=True)
]


@pytest.mark.parametrize(("viewer", "situation", "expected"), CAN_SEE_ROWS)
def test_can_see(viewer: str, situation: str, expected: bool) -> None:
    message, roster = SITUATIONS[situation]
    assert can_see(PEOPLE[viewer], message, roster) is expected


def test_the_table_covers_every_person_and_situation() -> None:
    assert set(SEES) == set(SITUATIONS)
    assert all(len(row) == len(PEOPLE) for row in SEES.values())


@given(
    viewer=st.sampled_from(sorted(PEOPLE)),
    sender=st.sampled_from(sorted(ROLE_IN_GROUP)),
    seq=st.integers(1, 20),
    only=st.none() | st.sampled_from(sorted(ROLE_IN_GROUP)),
    isolated=st.frozensets(st.sampled_from(sorted(ROLE_IN_GROUP))),
    lifted_at=st.dictionaries(st.sampled_from(sorted(ROLE_IN_GROUP)), st.integers(0, 20)),
    banned=st.booleans(),
)
def test_can_see_general_laws(
    viewer: str, sender: int, seq: int, only: int | None, isolated: frozenset[int], lifted_at: dict[int, int],
    banned: bool,
) -> None:
    """Whatever the state: nobody sees into a banned group; otherwise the sender and the managers see all."""
    who = PEOPLE[viewer]
    message = MessageMeta(sender, seq, Audience.ALL if only is None else Audience.ONLY, only)
    roster = group(isolated=tuple(isolated), hidden_through=lifted_at, banned=banned)
    seen = can_see(who, message, roster)
    if banned:
        assert not seen
    elif who.id == sender or ROLE_IN_GROUP[who.id] in (MemberRole.OWNER, MemberRole.ADMIN):
        assert seen
    elif only is not None and who.id != only:
        assert not seen
    else:
        assert seen == (sender not in isolated and seq > lifted_at.get(sender, 0))


# -- shows_real: whose real identity a viewer sees (IM-6, IM-7, IM-8) ------------------------------

#                viewer                   subject                  real?
SHOWS_REAL = [
    ("owner",                  "Mrs Li",                True),   # staff see patients for real (IM-7)
    ("nurse (member)",         "Mr Wang (her husband)", True),   # and family
    ("owner",                  "nurse (member)",        True),
    ("Mrs Wang",               "owner",                 True),   # everyone sees staff for real
    ("Mr Wang (her husband)",  "head nurse (admin)",    True),
    ("Mrs Wang",               "Mrs Wang",              True),   # a person sees herself
    ("Mrs Wang",               "Mr Wang (her husband)", True),   # linked family see each other
    ("Mr Wang (her husband)",  "Mrs Wang",              True),
    ("Mrs Wang",               "Mrs Li",                False),  # patients see other patients masked (IM-6)
    ("Mrs Li",                 "Mrs Wang",              False),
    ("Mrs Li",                 "Mr Wang (her husband)", False),  # and other patients' family
    ("Mr Wang (her husband)",  "Mrs Li",                False),  # family see other patients masked
    ("Mrs Zhao",               "Mrs Li",                False),
]


@pytest.mark.parametrize(("viewer", "subject", "expected"), SHOWS_REAL, ids=[f"{v} sees {s}" for v, s, _ in SHOWS_REAL])
def test_shows_real(viewer: str, subject: str, expected: bool) -> None:
    person = PEOPLE[subject]
    assert shows_real(PEOPLE[viewer], person.id, person.role) is expected


@pytest.mark.parametrize(
    ("viewer_role", "subject_role", "expected"),
    [
        (Role.ADMIN, Role.PATIENT, True),
        (Role.BOT, Role.PATIENT, True),
        (Role.BOT, Role.FAMILY, True),
        (Role.PATIENT, Role.ADMIN, True),
        (Role.PATIENT, Role.BOT, True),
        (Role.FAMILY, Role.STAFF, True),
        (Role.PATIENT, Role.PATIENT, False),
        (Role.PATIENT, Role.FAMILY, False),
        (Role.FAMILY, Role.FAMILY, False),
        (Role.FAMILY, Role.PATIENT, False),
    ],
)
def test_shows_real_by_account_role_between_strangers(viewer_role: Role, subject_role: Role, expected: bool) -> None:
    assert shows_real(Viewer(100, viewer_role), 200, subject_role) is expected


# -- send_refusal: who may speak (IM-4, IM-9, IM-15) ------------------------------------------------

#      sender                   muted  family_can_speak  banned  refusal
SEND = [
    ("Mrs Li",                False, False, False, None),
    ("Mrs Li",                True,  False, False, ErrorCode.MUTED),             # IM-4
    ("Mrs Li",                True,  True,  False, ErrorCode.MUTED),
    ("Mr Wang (her husband)", False, False, False, ErrorCode.FAMILY_READ_ONLY),  # IM-9, the default
    ("Mr Wang (her husband)", False, True,  False, None),
    ("Mr Wang (her husband)", True,  True,  False, ErrorCode.MUTED),
    ("Mr Wang (her husband)", True,  False, False, ErrorCode.MUTED),             # muted is said first
    ("nurse (member)",        True,  False, False, None),                        # staff are never muted
    ("owner",                 True,  False, False, None),
    ("head nurse (admin)",    True,  False, False, None),
    ("owner",                 False, False, True,  ErrorCode.GROUP_BANNED),      # IM-15: nobody
    ("nurse (member)",        False, False, True,  ErrorCode.GROUP_BANNED),
    ("Mrs Li",                True,  False, True,  ErrorCode.GROUP_BANNED),
]


@pytest.mark.parametrize(
    ("sender", "muted", "family_can_speak", "banned", "expected"), SEND,
    ids=[f"{s} muted={m} family_can_speak={f} banned={b}" for s, m, f, b, _ in SEND],
)
def test_send_refusal(
    sender: str, muted: bool, family_can_speak: bool, banned: bool, expected: ErrorCode | None
) -> None:
    roster = group(muted=muted, family_can_speak=family_can_speak, banned=banned)
    assert send_refusal(PEOPLE[sender], roster) == expected


def test_a_patient_made_group_admin_is_never_muted() -> None:
    roster = group(muted=True)
    roster.members[MRS_LI] = MemberRole.ADMIN
    assert send_refusal(PEOPLE["Mrs Li"], roster) is None


def test_the_group_switches_do_not_apply_to_direct_chats() -> None:
    direct = dataclasses.replace(group(muted=True), kind="direct", members={MRS_LI: MemberRole.MEMBER})
    assert send_refusal(PEOPLE["Mrs Li"], direct) is None
    assert send_refusal(PEOPLE["Mr Wang (her husband)"], direct) is None  # IM-9: family speak one to one


# -- may_chat_directly: 1:1 chats between patients (IM-5, IM-18) -----------------------------------

#      a                          b                         friends  allowed
DIRECT = [
    ("Mrs Li",                 "owner",                  False, True),   # anyone may write to staff
    ("owner",                  "Mrs Li",                 False, True),
    ("Mr Wang (her husband)",  "nurse (member)",         False, True),
    ("Mrs Li",                 "Mrs Zhao",               False, False),  # patients only as friends (IM-5)
    ("Mrs Li",                 "Mrs Zhao",               True,  True),
    ("Mrs Li",                 "Mr Wang (her husband)",  False, False),
    ("Mrs Wang",               "Mr Wang (her husband)",  False, True),   # linked family always
    ("Mr Wang (her husband)",  "Mrs Wang",               False, True),
]


@pytest.mark.parametrize(("a", "b", "friends", "expected"), DIRECT,
                         ids=[f"{a} to {b} friends={f}" for a, b, f, _ in DIRECT])
def test_may_chat_directly(a: str, b: str, friends: bool, expected: bool) -> None:
    assert may_chat_directly(PEOPLE[a], PEOPLE[b], friends=friends) is expected


# -- pseudonym (IM-6) ------------------------------------------------------------------------------

def test_pseudonym_is_a_flower_and_the_member_number() -> None:
    roster = group()
    ref, name = pseudonym(roster, MRS_LI)
    alias_no = roster.states[MRS_LI].alias_no
    assert ref == f"a{alias_no}"
    assert name == f"{NICKNAMES[(CONV * 7 + alias_no) % len(NICKNAMES)]}{alias_no:02d}"


@given(
    conv_id=st.integers(1, 10**9),
    alias_numbers=st.lists(st.integers(1, 10**6), min_size=1, max_size=60, unique=True),
    isolated=st.sets(st.integers(0, 59)),
)
def test_pseudonyms_are_unique_within_a_roster(conv_id: int, alias_numbers: list[int], isolated: set[int]) -> None:
    states = {
        1000 + i: MemberState(n, i in isolated, 3 if i in isolated else 0) for i, n in enumerate(alias_numbers)
    }
    roster = Roster(conv_id, "group", "g", dict.fromkeys(states, MemberRole.MEMBER), states)
    shown = [pseudonym(roster, user) for user in states]
    assert len({ref for ref, _ in shown}) == len(shown)
    assert len({name for _, name in shown}) == len(shown)
    assert all(ref.startswith("a") and ref[1:].isdigit() for ref, _ in shown)


@given(
    conv_id=st.integers(1, 10**9),
    alias_no=st.integers(1, 10**6),
    others=st.dictionaries(st.integers(1, 500), st.integers(1, 10**6), max_size=30),
    isolated=st.booleans(),
    hidden_through=st.integers(0, 10**6),
    left=st.booleans(),
)
def test_a_pseudonym_depends_only_on_the_conversation_and_the_member_number(
    conv_id: int, alias_no: int, others: dict[int, int], isolated: bool, hidden_through: int, left: bool,
) -> None:
    """Stable: other members joining or leaving, isolation, leaving the group do not change it."""
    me = 9999
    alone = Roster(conv_id, "group", "g", {me: MemberRole.MEMBER}, {me: MemberState(alias_no)})
    crowd_states = {u: MemberState(n) for u, n in others.items() if n != alias_no}
    crowd_states[me] = MemberState(alias_no, isolated, hidden_through)
    members = dict.fromkeys(crowd_states, MemberRole.MEMBER)
    if left:
        del members[me]
    crowd = Roster(conv_id, "group", "other name", members, crowd_states, muted=True)
    assert pseudonym(alone, me) == pseudonym(crowd, me) == pseudonym(crowd, me)


# -- hidden_ranges -----------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("seqs", "ranges"),
    [
        ([], []),
        ([4], [(4, 4)]),
        ([1, 2, 3], [(1, 3)]),
        ([1, 3, 5], [(1, 1), (3, 3), (5, 5)]),
        ([2, 3, 7, 8, 9, 12], [(2, 3), (7, 9), (12, 12)]),
    ],
)
def test_hidden_ranges_table(seqs: list[int], ranges: list[tuple[int, int]]) -> None:
    assert hidden_ranges(seqs) == ranges


@given(st.sets(st.integers(1, 10_000), max_size=200))
def test_hidden_ranges_are_sorted_disjoint_maximal_and_cover_exactly_the_seqs(seqs: set[int]) -> None:
    ranges = hidden_ranges(sorted(seqs))
    assert all(first <= last for first, last in ranges)
    # sorted and disjoint, with a gap between neighbours (else they would be one range)
    assert all(a[1] + 1 < b[0] for a, b in itertools.pairwise(ranges))
    covered = [seq for first, last in ranges for seq in range(first, last + 1)]
    assert covered == sorted(seqs)

"""When content and treatment items go out and where a patient stands (EDU-3, TRT-2): tables the center can
read. Default: the day before the step at 09:00 Beijing time; where she stands goes by the calendar day."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bots.pathway.definition import shipped
from bots.pathway.schedule import Cycle, daytime, position, reached
from protocol.clock import HOSPITAL_ZONE

IVF, IUI = (next(p for p in shipped() if p.key == key) for key in ("ivf", "iui"))
D = date.fromisoformat


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL_ZONE)


FRESH = Cycle(IVF, D("2026-12-01"), {"trigger": D("2026-12-14"), "retrieval": D("2026-12-16"),
                                      "fresh_transfer": D("2026-12-19")})


@pytest.mark.parametrize(("node", "due"), [
    ("filing", "2026-12-01 09:00"),      # before_days 0: on the day the cycle starts
    ("trigger", "2026-12-13 09:00"),
    ("retrieval", "2026-12-15 09:00"),
    ("transfer", "2026-12-18 09:00"),
    ("pregnancy", "2027-01-01 09:00"),   # transfer + 14 days, the day before
    ("ultrasound", "2027-01-15 09:00"),  # transfer + 28 days
])
def test_content_goes_out_the_day_before_at_nine(node: str, due: str) -> None:
    assert FRESH.node_due(IVF.node(node)) == at(due)


@pytest.mark.parametrize(("now", "current", "following", "day"), [
    ("2026-11-30 20:00", None, "filing", "2026-12-01"),       # enrolled for tomorrow
    ("2026-12-01 08:00", "filing", "trigger", "2026-12-14"),
    ("2026-12-13 09:00", "filing", "trigger", "2026-12-14"),  # the trigger shot's content came: still its eve
    ("2026-12-15 20:00", "trigger", "retrieval", "2026-12-16"),  # the eve of retrieval: fast from 22:00 tonight
    ("2026-12-16 07:00", "retrieval", "transfer", "2026-12-19"),
    ("2027-01-16 00:00", "ultrasound", None, None),
])
def test_where_she_stands_by_calendar_day(now: str, current: str | None, following: str | None,
                                          day: str | None) -> None:
    where = position(FRESH, at(now))
    assert (where.current and where.current.key, where.next and where.next.key) == (current, following)
    assert where.next_date == (D(day) if day else None)


@pytest.mark.parametrize(("now", "node"), [
    ("2026-12-01 08:59", None),
    ("2026-12-01 09:00", "filing"),
    ("2026-12-13 09:00", "trigger"),       # content went out: a trigger job finds its node reached
    ("2026-12-18 10:00", "transfer"),
])
def test_the_node_whose_content_is_due(now: str, node: str | None) -> None:
    found = reached(FRESH, at(now))
    assert (found and found.key) == node


def test_a_date_moved_and_moved_back_is_a_new_revision_for_its_nodes() -> None:
    moved = Cycle(IVF, D("2026-12-01"), FRESH.dates, {"trigger": 2, "fresh_transfer": 1})
    assert [moved.revision(IVF.node(n)) for n in ("filing", "trigger", "retrieval", "transfer", "pregnancy")] == [
        0, 2, 0, 1, 1]


@pytest.mark.parametrize(("when", "sent"), [
    ("2026-12-14 07:59", "2026-12-14 08:00"),
    ("2026-12-14 08:00", "2026-12-14 08:00"),
    ("2026-12-14 20:59", "2026-12-14 20:59"),
    ("2026-12-14 21:00", "2026-12-15 08:00"),   # an order written late: its education the next morning
    ("2026-12-14 23:30", "2026-12-15 08:00"),
])
def test_nobody_is_woken_by_an_education_message(when: str, sent: str) -> None:
    assert daytime(at(when)) == at(sent)


def test_steps_not_dated_yet_and_a_frozen_cycle_without_retrieval() -> None:
    started = Cycle(IVF, D("2026-12-01"), {})
    where = position(started, at("2026-12-05 12:00"))
    assert (where.current and where.current.key, where.next and where.next.key, where.next_date) == (
        "filing", "trigger", None)  # waiting for the hospital system to date the trigger shot
    frozen = Cycle(IVF, D("2026-12-01"), {"frozen_transfer": D("2026-12-20")})
    where = position(frozen, at("2026-12-05 12:00"))
    assert (where.next and where.next.key, where.next_date) == ("transfer", D("2026-12-20"))
    assert position(frozen, at("2026-12-19 09:00")).current == IVF.node("filing")  # the eve of the transfer
    assert position(frozen, at("2026-12-20 07:00")).current == IVF.node("transfer")


def test_a_frozen_transfer_after_a_fresh_one_dates_the_later_nodes() -> None:
    again = Cycle(IVF, D("2026-12-01"), {**FRESH.dates, "frozen_transfer": D("2027-03-10")})
    assert again.node_date(IVF.node("pregnancy")) == D("2027-03-24")

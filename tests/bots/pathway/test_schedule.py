"""When content and treatment items go out and where a patient stands (EDU-3, TRT-2): a table the center can
read. Default: the day before the step at 09:00 Beijing time."""

from __future__ import annotations

from datetime import date, datetime

import pytest

from bots.pathway.definition import shipped
from bots.pathway.schedule import ZONE, Cycle, position

IVF, IUI = (next(p for p in shipped() if p.key == key) for key in ("ivf", "iui"))
D = date.fromisoformat


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=ZONE)


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


def test_treatment_items_go_out_by_their_own_procedure_date() -> None:
    transfer = IVF.node("transfer")
    assert FRESH.treatment_due(transfer, "fresh_transfer") == at("2026-12-18 09:00")
    assert FRESH.treatment_due(transfer, "frozen_transfer") is None
    assert FRESH.treatment_due(IVF.node("retrieval"), "retrieval") == at("2026-12-15 09:00")


@pytest.mark.parametrize(("now", "current", "following", "day"), [
    ("2026-12-01 08:59", None, "filing", "2026-12-01"),
    ("2026-12-01 09:00", "filing", "trigger", "2026-12-14"),
    ("2026-12-13 09:00", "trigger", "retrieval", "2026-12-16"),
    ("2026-12-18 10:00", "transfer", "pregnancy", "2027-01-02"),
    ("2027-02-01 00:00", "ultrasound", None, None),
])
def test_where_she_stands(now: str, current: str | None, following: str | None, day: str | None) -> None:
    where = position(FRESH, at(now))
    assert (where.current and where.current.key, where.next and where.next.key) == (current, following)
    assert where.next_date == (D(day) if day else None)


def test_steps_not_dated_yet_and_a_frozen_cycle_without_retrieval() -> None:
    started = Cycle(IVF, D("2026-12-01"), {})
    where = position(started, at("2026-12-05 12:00"))
    assert (where.current and where.current.key, where.next and where.next.key, where.next_date) == (
        "filing", "trigger", None)  # waiting for the hospital system to date the trigger shot
    frozen = Cycle(IVF, D("2026-12-01"), {"frozen_transfer": D("2026-12-20")})
    where = position(frozen, at("2026-12-05 12:00"))
    assert (where.next and where.next.key, where.next_date) == ("transfer", D("2026-12-20"))
    assert position(frozen, at("2026-12-19 09:00")).current == IVF.node("transfer")


def test_a_frozen_transfer_after_a_fresh_one_dates_the_later_nodes() -> None:
    again = Cycle(IVF, D("2026-12-01"), {**FRESH.dates, "frozen_transfer": D("2027-03-10")})
    assert again.node_date(IVF.node("pregnancy")) == D("2027-03-24")

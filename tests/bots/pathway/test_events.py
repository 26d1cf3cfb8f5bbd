"""What the hospital system sends (EDU-4, TRT-1): events are read strictly; a malformed one is refused with a
message naming the bad field, and is recorded under its own id (or a digest when it has none)."""

from __future__ import annotations

import contextlib
import json
from datetime import date
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.pathway.events import (
    CycleStarted,
    EventError,
    OrdersWritten,
    Patient,
    ProcedureCancelled,
    ProcedureDated,
    parse,
    sender_id,
)

CHEN = {"username": "chen_hong", "his_id": "P0012345"}


def raw(**event: Any) -> bytes:
    return json.dumps(event, ensure_ascii=False).encode()


def test_the_events() -> None:
    assert parse(raw(type="cycle_started", id="e1", patient=CHEN, pathway="ivf", day="2026-12-01")) == CycleStarted(
        id="e1", patient=Patient(username="chen_hong", his_id="P0012345"), pathway="ivf", day=date(2026, 12, 1))
    dated = parse(raw(type="procedure_dated", id="e2", patient=CHEN, procedure="frozen_transfer", day="2027-03-10"))
    assert isinstance(dated, ProcedureDated) and dated.procedure == "frozen_transfer"
    orders = parse(raw(type="orders_written", id="e3", patient=CHEN, doctor="李医生", note="ignored",
                       orders=[{"category": "medication", "code": "地屈孕酮片", "text": "10mg 每日两次"}]))
    assert isinstance(orders, OrdersWritten) and orders.orders[0].code == "地屈孕酮片"
    assert orders.patient.his_id == "P0012345"
    cancelled = parse(raw(type="procedure_cancelled", id="e4", patient=CHEN, procedure="fresh_transfer"))
    assert isinstance(cancelled, ProcedureCancelled) and cancelled.procedure == "fresh_transfer"


@pytest.mark.parametrize(("body", "named"), [
    (raw(type="procedure_dated", id="e1", patient=CHEN, procedure="surgery", day="2026-12-16"), "$.procedure"),
    (raw(type="procedure_dated", id="e1", patient=CHEN, procedure="retrieval", day="16/12/2026"), "$.day"),
    (raw(type="cycle_started", id="e1", patient=CHEN, pathway="icsi", day="2026-12-01"), "$.pathway"),
    (raw(type="cycle_started", id="e1", patient={"username": "Chen Hong"}, pathway="ivf", day="2026-12-01"),
     "$.patient.username"),
    (raw(type="cycle_started", id="", patient=CHEN, pathway="ivf", day="2026-12-01"), "$.id"),
    (raw(type="orders_written", id="e1", patient=CHEN, orders=[]), "$.orders"),
    (raw(type="orders_written", id="e1", patient=CHEN, orders=[{"category": "diet", "code": "x"}]),
     "$.orders[0].category"),
    (raw(type="discharged", id="e1", patient=CHEN), "$.type"),
    (raw(id="e1", patient=CHEN), "type"),
    (b"\xff\xfe not json", "malformed"),
    (b"[1, 2]", "object"),
])
def test_a_malformed_event_is_refused_naming_the_field(body: bytes, named: str) -> None:
    with pytest.raises(EventError, match=named.replace("$", r"\$").replace("[", r"\[").replace("]", r"\]")):
        parse(body)


def test_a_malformed_event_is_recorded_under_its_id_or_a_digest() -> None:
    assert sender_id(raw(type="discharged", id="his-77")) == "his-77"
    for body in (b"not json", b"[1]", raw(id=7), raw(id="x" * 200)):
        assert sender_id(body).startswith("sha256:")
        assert sender_id(body) == sender_id(body)


@given(st.binary(max_size=200) | st.text(max_size=100).map(str.encode))
def test_any_input_is_an_event_or_an_event_error(body: bytes) -> None:
    with contextlib.suppress(EventError):
        parse(body)
    assert sender_id(body)

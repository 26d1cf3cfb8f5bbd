"""What the hospital system tells the pathway bot (EDU-4, TRT-1): a cycle started, a procedure was dated (or
cancelled), a doctor wrote orders. The HIS adapter carries these; this module says what they mean and refuses
malformed ones with a message naming the bad field. Pure: no I/O.

Every event has the sender's ``id``: the bot stores each event before acting on it, and an id it
has stored already is a duplicate and changes nothing.
"""

from __future__ import annotations

import hashlib
from datetime import date
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from bots.pathway.definition import PROCEDURES, OrderCategory
from protocol.frames import Username

NO_NUL = r"^[^\x00]*\Z"
"""Texts kept in Postgres text columns hold anything but NUL, which Postgres refuses: such an event is rejected
as malformed rather than stuck."""
EventId = Annotated[str, Meta(min_length=1, max_length=128, pattern=NO_NUL)]
PathwayKey = Literal["ivf", "iui"]
Procedure = Literal["trigger", "retrieval", "fresh_transfer", "frozen_transfer", "insemination"]
assert set(Procedure.__args__) == set(PROCEDURES)  # type: ignore[attr-defined]


class Patient(msgspec.Struct, frozen=True):
    username: Username
    """Her account in the app."""
    his_id: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] = ""
    """Her record number in the hospital system (an external identifier, kept as such)."""
    phone: Annotated[str, Meta(max_length=32, pattern=NO_NUL)] = ""
    """Her mobile number, for treatment items by SMS (TRT-2); the latest event that gives one counts."""
    openid: Annotated[str, Meta(max_length=64, pattern=NO_NUL)] = ""
    """Her openid with the hospital's WeChat official account, for treatment items by WeChat (TRT-2)."""


class _Event(msgspec.Struct, frozen=True, tag_field="type"):
    id: EventId
    patient: Patient


class CycleStarted(_Event, frozen=True, tag="cycle_started"):
    pathway: PathwayKey
    day: date


class ProcedureDated(_Event, frozen=True, tag="procedure_dated"):
    procedure: Procedure
    day: date


class ProcedureCancelled(_Event, frozen=True, tag="procedure_cancelled"):
    """A procedure that will not happen on its date (a freeze-all cancels the fresh transfer): its notices stop,
    the nodes it dated wait for a new date, and she is told."""

    procedure: Procedure


class Order(msgspec.Struct, frozen=True):
    category: OrderCategory
    code: Annotated[str, Meta(min_length=1, max_length=64)]
    text: Annotated[str, Meta(max_length=2000)] = ""


class OrdersWritten(_Event, frozen=True, tag="orders_written"):
    orders: Annotated[list[Order], Meta(min_length=1, max_length=50)]
    doctor: Annotated[str, Meta(max_length=64)] = ""


Event = CycleStarted | ProcedureDated | ProcedureCancelled | OrdersWritten
_decoder = msgspec.json.Decoder(Event)


class EventError(ValueError):
    """A malformed event; the message says what is wrong, for the record and the sender."""


def parse(raw: bytes) -> Event:
    """Error handling: raises EventError naming the bad field (or saying the document is not JSON)."""
    try:
        return _decoder.decode(raw)
    except msgspec.DecodeError as exc:  # ValidationError is a DecodeError
        raise EventError(str(exc)) from None


def sender_id(raw: bytes) -> str:
    """The id to record a malformed event under: its ``id`` when it has one, else a digest of it."""
    try:
        found = msgspec.json.decode(raw).get("id")
    except (msgspec.DecodeError, AttributeError):
        found = None
    if isinstance(found, str) and 0 < len(found) <= 128 and "\x00" not in found:
        return found
    return "sha256:" + hashlib.sha256(raw).hexdigest()

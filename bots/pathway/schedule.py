"""When each node's content and each procedure's items go out, and where a patient stands (EDU-3, TRT-2).

Pure functions of a cycle (its pathway, start day and the procedure dates the hospital
system sent) and a given moment: no clock is read here. Times are Asia/Shanghai, where
the hospital is; a day is a calendar day there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta

from bots.pathway.definition import PROCEDURES, Node, Pathway, Step
from protocol.clock import HOSPITAL_ZONE


@dataclass(frozen=True)
class Cycle:
    pathway: Pathway
    started: date
    dates: Mapping[str, date]
    """Procedure name (``trigger``, ``retrieval``, ``fresh_transfer``...) -> its day."""
    revisions: Mapping[str, int] = field(default_factory=dict)
    """Procedure name -> how often its date has changed."""

    def step_date(self, step: Step) -> date | None:
        if step == "enroll":
            return self.started
        days = [day for procedure, day in self.dates.items() if PROCEDURES[procedure] == step]
        return max(days) if days else None  # a frozen transfer after a failed fresh one: the later counts

    def node_date(self, node: Node) -> date | None:
        day = self.step_date(node.step)
        return None if day is None else day + timedelta(days=node.days_after)

    def node_due(self, node: Node) -> datetime | None:
        """When the node's content and treatment items go out: ``before_days`` before its day, at ``at``."""
        day = self.node_date(node)
        return None if day is None else at_clock(day - timedelta(days=node.before_days), node.at)

    def occurrence(self, node: Node) -> str:
        """Which time the node's step comes in this cycle: ``""`` while one procedure of the step was ever dated;
        once another was too (a frozen transfer after a fresh one, even a cancelled one), the procedure that dates
        it now, so its content is sent again (the pregnancy test's form asked anew)."""
        if len([p for p in self.revisions if PROCEDURES[p] == node.step]) < 2:
            return ""
        dated = [(day, procedure) for procedure, day in self.dates.items() if PROCEDURES[procedure] == node.step]
        return max(dated)[1] if dated else ""

    def revision(self, node: Node) -> int:
        """Grows with every change of a date the node hangs on: a date moved back is a new date for the node."""
        return sum(rev for procedure, rev in self.revisions.items() if PROCEDURES[procedure] == node.step)


@dataclass(frozen=True)
class Position:
    """Where a patient stands on a day: the last step whose date has come, and the next one."""

    current: Node | None
    next: Node | None
    next_date: date | None
    """The next node's day, if the hospital system has sent it."""


def position(cycle: Cycle, now: datetime) -> Position:
    """By calendar day in Shanghai: on the eve of her retrieval she is still at the trigger shot and the next step
    is the retrieval (with its fasting), although the retrieval's content came that morning. Nodes without a date
    are passed over (a frozen-transfer cycle has no trigger shot or retrieval); the next step is the first dated
    one ahead, else the first undated one."""
    today = now.astimezone(HOSPITAL_ZONE).date()
    days = [cycle.node_date(node) for node in cycle.pathway.nodes]
    return _around(cycle, [i for i, day in enumerate(days) if day is not None and day <= today])


def reached(cycle: Cycle, now: datetime) -> Node | None:
    """The last node whose content is due by ``now``: a node job finding a later one reached was overtaken."""
    due = [cycle.node_due(node) for node in cycle.pathway.nodes]
    return _around(cycle, [i for i, when in enumerate(due) if when is not None and when <= now]).current


def _around(cycle: Cycle, passed: list[int]) -> Position:
    nodes = cycle.pathway.nodes
    current = passed[-1] if passed else -1
    ahead = range(current + 1, len(nodes))
    dated = [i for i in ahead if cycle.node_date(nodes[i]) is not None]
    undated = [i for i in ahead if cycle.node_date(nodes[i]) is None]
    following = dated[0] if dated else undated[0] if undated else None
    here = nodes[current] if current >= 0 else None
    if following is None:
        return Position(here, None, None)
    return Position(here, nodes[following], cycle.node_date(nodes[following]))


DAYTIME = (time(8, 0), time(21, 0))
"""When messages and reminders that follow from something else (a doctor's order written late in the evening, a
reminder a day after it) may reach a patient's phone, Asia/Shanghai."""


def daytime(when: datetime) -> datetime:
    """``when``, or the next 08:00 if it falls outside the day: nobody is woken by an education message."""
    local = when.astimezone(HOSPITAL_ZONE)
    start, end = DAYTIME
    if local.time() < start:
        return datetime.combine(local.date(), start, HOSPITAL_ZONE)
    if local.time() >= end:
        return datetime.combine(local.date() + timedelta(days=1), start, HOSPITAL_ZONE)
    return when


def at_clock(day: date, clock: str) -> datetime:
    """``clock`` (``HH:MM``) on ``day``, in Asia/Shanghai."""
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(day, time(hour, minute), HOSPITAL_ZONE)

"""When each node's content and each procedure's items go out, and where a patient stands (EDU-3, TRT-2).

Pure functions of a cycle (its pathway, start day and the procedure dates the hospital
system sent) and a given moment: no clock is read here. Times are Asia/Shanghai, where
the hospital is; a day is a calendar day there.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from bots.pathway.definition import PROCEDURES, Node, Pathway, Step

ZONE = ZoneInfo("Asia/Shanghai")


@dataclass(frozen=True)
class Cycle:
    pathway: Pathway
    started: date
    dates: Mapping[str, date]
    """Procedure name (``trigger``, ``retrieval``, ``fresh_transfer``...) -> its day."""

    def step_date(self, step: Step) -> date | None:
        if step == "enroll":
            return self.started
        days = [day for procedure, day in self.dates.items() if PROCEDURES[procedure] == step]
        return max(days) if days else None  # a frozen transfer after a failed fresh one: the later counts

    def node_date(self, node: Node) -> date | None:
        day = self.step_date(node.step)
        return None if day is None else day + timedelta(days=node.days_after)

    def node_due(self, node: Node) -> datetime | None:
        """When the node's content goes out: ``before_days`` before its day, at ``at``."""
        day = self.node_date(node)
        return None if day is None else at_clock(day - timedelta(days=node.before_days), node.at)

    def treatment_due(self, node: Node, procedure: str) -> datetime | None:
        """When a procedure's items go out: as the node's content, counted from the procedure's own day."""
        day = self.dates.get(procedure)
        return None if day is None else at_clock(day - timedelta(days=node.before_days), node.at)


@dataclass(frozen=True)
class Position:
    """Where a patient stands: the node whose content she has been sent last, and the next one."""

    current: Node | None
    next: Node | None
    next_date: date | None
    """The next node's day, if the hospital system has sent it."""


def position(cycle: Cycle, now: datetime) -> Position:
    """Nodes without a date are passed over once a later node is due (a frozen-transfer cycle has no
    trigger shot or retrieval); the next step is the first dated one ahead, else the first undated one."""
    nodes = cycle.pathway.nodes
    due = [cycle.node_due(node) for node in nodes]
    reached = [i for i, when in enumerate(due) if when is not None and when <= now]
    current = reached[-1] if reached else -1
    ahead = range(current + 1, len(nodes))
    dated = [i for i in ahead if due[i] is not None]
    undated = [i for i in ahead if due[i] is None]
    following = dated[0] if dated else undated[0] if undated else None
    if following is None:
        return Position(nodes[current] if current >= 0 else None, None, None)
    return Position(nodes[current] if current >= 0 else None, nodes[following], cycle.node_date(nodes[following]))


def at_clock(day: date, clock: str) -> datetime:
    """``clock`` (``HH:MM``) on ``day``, in Asia/Shanghai."""
    hour, minute = map(int, clock.split(":"))
    return datetime.combine(day, time(hour, minute), ZONE)

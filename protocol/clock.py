"""The hospital's time zone and the clock type every time-dependent part takes (DESIGN rule 10).

Days in the protocol (a treatment item's ``day``, ``{{today}}`` in a quick reply) and in the
hospital's events are calendar days in Asia/Shanghai, whatever zone a machine runs in. Code that
needs the time takes a ``Clock`` so that tests can fix it; only a program's entry point passes
``system_clock``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

HOSPITAL_ZONE = ZoneInfo("Asia/Shanghai")
"""The zone of every calendar day and wall-clock hour the hospital speaks of."""

Clock = Callable[[], datetime]
"""Returns an aware ``datetime``: the time now, as far as the caller is concerned."""


def system_clock() -> datetime:
    """The machine's clock, in the hospital's zone."""
    return datetime.now(HOSPITAL_ZONE)

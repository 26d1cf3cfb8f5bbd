"""Escalation policies written as data: over which channels, and when, a notification tries to reach a person.

A policy is a list of steps, each a channel and how long after the notification it is due::

    [{"channel": "app"}, {"channel": "wechat", "after": "1d"},
     {"channel": "sms", "after": "2d"}, {"channel": "phone", "after": "3d"}]

``after`` is a number of seconds or a duration such as ``"90s"``, ``"30m"``, ``"12h"``, ``"2d"``
(``0`` when absent); steps come in order of ``after``. The outbox stops at the first step that
finds the person has read the app message, or when the bot settles the notification. A bad
policy is refused with :class:`PolicyError` naming the part (``steps[2].after``), so a policy
file the center edits is checked when it is loaded, not when a patient is due a reminder.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

CHANNELS = ("app", "wechat", "sms", "phone")
"""``app``: a notice in the person's service conversation with the bot; the others are outside systems."""
MAX_STEPS = 10
_DURATION = re.compile(r"([0-9]+(?:\.[0-9]+)?)([smhd]?)")  # ASCII digits: \d takes any digit
_UNIT = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class PolicyError(ValueError):
    def __init__(self, where: str, problem: str) -> None:
        self.where = where
        super().__init__(f"{where}: {problem}")


@dataclass(frozen=True)
class Step:
    channel: str
    after: timedelta = timedelta(0)


@dataclass(frozen=True)
class Policy:
    steps: tuple[Step, ...]

    @classmethod
    def parse(cls, data: Any) -> Policy:
        """A policy from JSON-shaped data (a list of ``{"channel", "after"?}``); PolicyError names what is wrong."""
        if not isinstance(data, list) or not 1 <= len(data) <= MAX_STEPS:
            raise PolicyError("steps", f"must be a list of 1 to {MAX_STEPS} steps")
        steps = tuple(_step(item, f"steps[{i}]") for i, item in enumerate(data))
        for i in range(1, len(steps)):
            if steps[i].after < steps[i - 1].after:
                raise PolicyError(f"steps[{i}].after", "steps must come in the order they are due")
        return cls(steps)

    @classmethod
    def from_json(cls, text: str) -> Policy:
        try:
            return cls.parse(json.loads(text))
        except json.JSONDecodeError as exc:
            raise PolicyError("steps", f"not JSON: {exc}") from None

    def to_data(self) -> list[dict[str, Any]]:
        """The stored form: ``after`` in seconds (``parse`` reads it back)."""
        return [{"channel": s.channel, "after": s.after.total_seconds()} for s in self.steps]


APP_ONLY = Policy((Step("app"),))


def _step(item: Any, where: str) -> Step:
    if not isinstance(item, dict):
        raise PolicyError(where, 'must be an object like {"channel": "sms", "after": "2d"}')
    unknown = set(item) - {"channel", "after"}
    if unknown:
        raise PolicyError(f"{where}.{sorted(unknown)[0]}", "unknown field")
    if item.get("channel") not in CHANNELS:
        raise PolicyError(f"{where}.channel", f"must be one of {', '.join(CHANNELS)}")
    return Step(item["channel"], parse_duration(item.get("after", 0), f"{where}.after"))


def parse_duration(value: Any, where: str = "after") -> timedelta:
    """Seconds as a number, or ``<number><s|m|h|d>``; never negative."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PolicyError(where, 'must be seconds or a duration like "30m", "12h", "2d"')
    match = _DURATION.fullmatch(str(value).strip())
    if match is None:
        raise PolicyError(where, f'not a duration: {value!r} (use seconds, or e.g. "30m", "12h", "2d")')
    return timedelta(seconds=float(match[1]) * _UNIT[match[2]])

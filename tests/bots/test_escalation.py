"""Escalation policies as data (DESIGN rule 8; FEE-3): what the center writes, and what is refused
with the part named, when the policy is loaded rather than when a patient is due a reminder."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bots.framework.escalation import Policy, PolicyError, Step

DUNNING = '''[{"channel": "app"}, {"channel": "wechat", "after": "1d"},
             {"channel": "sms", "after": "2d"}, {"channel": "phone", "after": "3d"}]'''


def test_a_policy_loads_from_json_and_round_trips_through_its_stored_form() -> None:
    policy = Policy.from_json(DUNNING)
    assert policy.steps == (Step("app"), Step("wechat", timedelta(days=1)), Step("sms", timedelta(days=2)),
                            Step("phone", timedelta(days=3)))
    assert Policy.parse(policy.to_data()) == policy


@pytest.mark.parametrize(("after", "expected"), [
    (0, timedelta(0)), (90, timedelta(seconds=90)), (1.5, timedelta(seconds=1.5)), ("45s", timedelta(seconds=45)),
    ("30m", timedelta(minutes=30)), ("12h", timedelta(hours=12)), ("2d", timedelta(days=2)),
    ("0.5d", timedelta(hours=12)), (" 3600 ", timedelta(hours=1)),
])
def test_durations(after: Any, expected: timedelta) -> None:
    assert Policy.parse([{"channel": "sms", "after": after}]).steps[0].after == expected


@pytest.mark.parametrize(("data", "where"), [
    ([], "steps"),
    ({"channel": "app"}, "steps"),
    ([{"channel": "app"}] * 11, "steps"),
    (["app"], "steps[0]"),
    ([{"channel": "email"}], "steps[0].channel"),
    ([{"channel": "app"}, {"channel": "sms", "after": "2 days"}], "steps[1].after"),
    ([{"channel": "app"}, {"channel": "sms", "after": "-1d"}], "steps[1].after"),
    ([{"channel": "app"}, {"channel": "sms", "after": True}], "steps[1].after"),
    ([{"channel": "app", "after": "2d"}, {"channel": "sms", "after": "1d"}], "steps[1].after"),  # out of order
    ([{"channel": "app", "wait": "1d"}], "steps[0].wait"),
])
def test_a_bad_policy_is_refused_naming_the_part(data: Any, where: str) -> None:
    with pytest.raises(PolicyError) as refused:
        Policy.parse(data)
    assert refused.value.where == where


def test_a_policy_that_is_not_json_is_refused() -> None:
    with pytest.raises(PolicyError, match="not JSON"):
        Policy.from_json("[{channel: app}]")

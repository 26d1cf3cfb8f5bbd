"""Scenario files and latency histograms of the load harness (NFR-3)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from load import scenario
from load.stats import Histogram

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("path", sorted((ROOT / "load" / "scenarios").glob("*.json")), ids=lambda p: p.stem)
def test_shipped_scenarios_are_valid(path: Path) -> None:
    assert scenario.load(path).name == path.stem


@pytest.mark.parametrize(("change", "complaint"), [
    ({"sendrs": 3}, "sendrs"),
    ({"senders": 11}, "senders"),
    ({"members_per_group": 0}, "members_per_group"),
    ({"rate": 10, "per_user_per_day": 5}, "not both"),
    ({"listeners": 41}, "listeners"),
    ({"dm_pairs": 21}, "dm_pairs"),
    ({"reconnect_storm": 50}, "reconnect_storm"),
    ({"name": "Bad Name"}, "name"),
    ({"duration_s": 0}, "duration_s"),
])
def test_bad_scenarios_are_refused_with_the_field(tmp_path: Path, change: dict[str, object], complaint: str) -> None:
    good = {"name": "x", "users": 40, "groups": 2, "members_per_group": 10, "senders": 2, "rate": 5}
    path = tmp_path / "s.json"
    path.write_text(json.dumps(good | change))
    with pytest.raises(ValueError, match=complaint):
        scenario.load(path)


def test_per_user_per_day_becomes_an_aggregate_rate() -> None:
    s = scenario.Scenario(name="x", users=8640, per_user_per_day=50)
    assert s.messages_per_s == pytest.approx(5.0)


@given(st.lists(st.floats(min_value=1.0, max_value=5e7), min_size=1, max_size=300),
       st.sampled_from([0.5, 0.9, 0.99, 0.999]))
def test_histogram_percentiles_are_within_one_percent(values: list[float], q: float) -> None:
    split = len(values) // 2
    a, b = Histogram(), Histogram()
    for v in values[:split]:
        a.record(v)
    for v in values[split:]:
        b.record(v)
    a.merge(Histogram.from_json(json.loads(json.dumps(b.to_json()))))  # as workers send them
    exact = sorted(values)[math.ceil(q * len(values)) - 1]
    assert a.count == len(values)
    assert a.max_us == max(values)
    assert exact / 1000 <= a.percentile_ms(q) * 1.0101
    assert a.percentile_ms(q) <= exact * 1.0101 / 1000

"""The load harness as a correctness check of itself and of the server (NFR-3, IM-3, IM-19).

A small scenario runs through the real ``imload`` command against a real server:
concurrent senders in groups and 1:1 chats, churning users, a reconnect storm and
old messages in the database. Every receiver must get every stored message once and
in order. Timing is printed by the harness, never asserted here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest
import trio

from tests.conftest import Running
from tests.conftest import test_settings as make_settings

pytestmark = pytest.mark.slow

SCENARIO = {
    "name": "check", "users": 60, "groups": 4, "members_per_group": 12, "senders": 3, "dm_pairs": 6,
    "listeners": 44, "rate": 150, "duration_s": 2, "body_bytes": 300, "workers": 2, "drain_s": 10,
    "ramp": [60, 150], "churn_per_s": 10, "churn_users": 10, "reconnect_storm": 12, "storm_missed": 7,
    "prefill_messages": 500, "max_in_flight": 1000,
}


async def imload(*args: str, db: str) -> trio.CompletedProcess[bytes]:
    env = os.environ | {"DATABASE_URL": db}
    return await trio.run_process(
        [sys.executable, "-m", "load.cli", *args], env=env, capture_stdout=True, capture_stderr=True, check=False,
    )


async def test_ramp_delivers_every_message_once_in_order(server: Running, db: str, tmp_path: Path) -> None:
    scenario = tmp_path / "check.json"
    scenario.write_text(json.dumps(SCENARIO))
    for _ in range(2):  # setup is idempotent
        done = await imload("setup", str(scenario), db=db)
        assert done.returncode == 0, done.stderr.decode()
    stored = await server.store.run(
        "count", lambda conn: conn.fetchval("select count(*) from messages"), transaction=False
    )
    assert stored == 500  # prefilled once, not twice

    out = tmp_path / "result.json"
    done = await imload(
        "ramp", str(scenario), "--url", server.url, "--metrics", f"{server.http}/metrics", "--out", str(out), db=db,
    )
    assert done.returncode == 0, done.stderr.decode()
    result = json.loads(out.read_text())
    assert len(result["steps"]) == 2
    for step in result["steps"]:
        assert step["errors"] == {}
        assert step["accepted"] == step["sent"] > 0
        assert step["expected_deliveries"] > step["accepted"]  # groups fan out
        assert step["delivered"] == step["expected_deliveries"]
        assert (step["missing"], step["duplicates"], step["out_of_order"], step["unexpected"]) == (0, 0, 0, 0)
        assert step["churned"] > 0
    # Durability: everything acknowledged is in Postgres, and nothing else was written.
    assert result["steps"][-1]["stored"] == sum(s["accepted"] for s in result["steps"])
    storm = result["reconnect_storm"]
    assert storm["clients"] == storm["reconnected"] == 12
    assert (storm["missing"], storm["duplicates"], storm["out_of_order"]) == (0, 0, 0)
    for key in ("accepted_per_s", "delivered_per_s", "expected_deliveries", "delivered", "duplicates",
                "out_of_order", "send_to_deliver_ms", "server_rss_mb", "server_cpu_pct"):
        assert key in result
    assert result["server_rss_mb"] > 0  # read from the server's /metrics
    assert {"p50", "p99", "max"} <= set(result["send_to_deliver_ms"])
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| 150 |" in out.with_suffix(".md").read_text()


async def test_run_refuses_a_scenario_not_set_up(server: Running, db: str, tmp_path: Path) -> None:
    scenario = tmp_path / "missing.json"
    scenario.write_text(json.dumps(SCENARIO | {"name": "missing"}))
    done = await imload("run", str(scenario), "--url", server.url, db=db)
    assert done.returncode == 2
    assert "imload setup" in done.stderr.decode()


FLOOD = {
    "name": "floodck", "users": 20, "groups": 2, "members_per_group": 10, "senders": 2, "rate": 20, "duration_s": 3,
    "workers": 1, "drain_s": 10, "flood": {"senders": 3, "in_flight": 30, "start_s": 0.5, "duration_s": 1.5},
}


@pytest.mark.parametrize("settings", [make_settings(rate=100000, burst=100000, writer_sender_queue=5)],
                         ids=["flooders unlimited, shed early"])
async def test_a_flood_beside_light_traffic_is_measured_and_loses_no_acked_message(
    server: Running, db: str, tmp_path: Path
) -> None:
    """Issue 14 item 11: the flooders (in a process of their own) are shed and resend; every ack is checked against
    the database, and the light traffic is reported before, during and after the flood."""
    scenario = tmp_path / "flood.json"
    scenario.write_text(json.dumps(FLOOD))
    assert (await imload("setup", str(scenario), db=db)).returncode == 0
    out = tmp_path / "flood-result.json"
    done = await imload("run", str(scenario), "--url", server.url, "--metrics", f"{server.http}/metrics",
                        "--out", str(out), db=db)
    assert done.returncode == 0, done.stderr.decode()
    (step,) = json.loads(out.read_text())["steps"]
    flood = step["flood"]
    assert flood["acked"] > 0 and step["server_shed"] > 0  # the flood was big enough to be shed
    assert (step["acked_not_stored"], step["stored_not_acked"]) == (0, 0)
    assert step["stored"] == step["accepted"] + flood["acked"]
    assert (step["missing"], step["duplicates"], step["out_of_order"]) == (0, 0, 0)
    assert step["errors"] == {}  # the light senders were never refused
    assert set(flood["light_deliver_ms"]) == {"before", "during", "after"}
    assert flood["light_deliver_ms"]["during"]["count"] > 0
    assert "Flood: 3 accounts" in out.with_suffix(".md").read_text()

"""Adapters survive outside failures: retries with backoff, timeouts, no retry of refusals, circuit breaking,
and the idempotency key that makes a retried send deliver once (DESIGN rule 8; FEE-3, TRT-2, SVC-2).
Each against a simulator on a real socket."""

from __future__ import annotations

import pytest
import trio

from integrations.http import Backoff, CircuitBreaker, CircuitOpen, Refused, Retry, Unavailable
from integrations.sms import client as sms
from integrations.sms.simulator import DEMO_KEY
from tests.simulators import faults, received, start_simulator

QUICK = Retry(4, Backoff(first=0.01, cap=0.05))


async def test_a_gateway_that_fails_three_times_then_succeeds_delivers_exactly_once(nursery: trio.Nursery) -> None:
    """FEE-3: a dunning SMS reaches the patient once although the gateway failed three times first."""
    url = await start_simulator(nursery, "sms")
    await faults(url, fail=3, status=503)
    async with sms.connect(url, DEMO_KEY, retry=QUICK) as service:
        message_id = await sms.sms_client(service, sign="生殖中心").send("13800138000", "胚胎保管费即将到期", key="k-1")
        report = await sms.sms_client(service).report(message_id)
    log = await received(url)
    sends = [r for r in log["requests"] if r["path"] == "/sms/send"]
    assert [r["status"] for r in sends] == [503, 503, 503, 200]
    assert {r["key"] for r in sends} == {"k-1"}  # the same idempotency key on every attempt
    assert [(m["to"], m["text"], m["sign"]) for m in log["messages"]] \
        == [("13800138000", "胚胎保管费即将到期", "生殖中心")]
    assert (report.outcome, report.detail) == ("delivered", "delivered")


async def test_a_hanging_gateway_times_out_and_is_retried(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "sms")
    await faults(url, hang=2)
    async with sms.connect(url, DEMO_KEY, retry=QUICK, timeout=0.3) as service:
        await sms.sms_client(service).send("13800138000", "明早八点空腹抽血", key="k-hang")
    log = await received(url)
    assert [r["status"] for r in log["requests"]] == [None, None, 200]  # two never answered
    assert len(log["messages"]) == 1


async def test_a_slow_answer_after_the_work_was_done_is_retried_without_sending_twice(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "sms")
    await faults(url, slow=1, delay=2.0)
    async with sms.connect(url, DEMO_KEY, retry=QUICK, timeout=0.3) as service:
        client = sms.sms_client(service)
        first = await client.send("13800138000", "明早八点空腹抽血", key="k-slow")
        await faults(url, slow=1, delay=0.05)  # slow but within the timeout: one request
        second = await client.send("13900139000", "请按时服药", key="k-slow-2")
    log = await received(url)
    assert [r["key"] for r in log["requests"]] == ["k-slow", "k-slow", "k-slow-2"]
    assert [m["to"] for m in log["messages"]] == ["13800138000", "13900139000"]
    assert first != second


@pytest.mark.parametrize(("number", "key", "status", "error"), [
    ("12345", DEMO_KEY, 400, "invalid_number"),
    ("13800138000", "wrong-key", 401, "unauthorized"),
])
async def test_a_refusal_is_not_retried(nursery: trio.Nursery, number: str, key: str, status: int, error: str) -> None:
    url = await start_simulator(nursery, "sms")
    async with sms.connect(url, key, retry=QUICK) as service:
        with pytest.raises(Refused) as refused:
            await sms.sms_client(service).send(number, "复诊提醒", key="k-bad")
        assert service.breaker.state == "closed"  # a refusal shows the gateway is up
    assert refused.value.status == status and error in refused.value.detail
    log = await received(url)
    assert len(log["requests"]) == 1 and log["messages"] == []


async def test_the_circuit_opens_fails_fast_and_recovers(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "sms")
    now = [0.0]
    breaker = CircuitBreaker("sms", threshold=3, cool_off=30.0, clock=lambda: now[0])
    await faults(url, fail=100, status=502)
    async with sms.connect(url, DEMO_KEY, retry=Retry(2, Backoff(first=0.01)), breaker=breaker) as service:
        client = sms.sms_client(service)
        with pytest.raises(Unavailable) as first:
            await client.send("13800138000", "复诊提醒", key="a")  # two failures
        assert not isinstance(first.value, CircuitOpen)
        with pytest.raises(CircuitOpen):
            await client.send("13800138000", "复诊提醒", key="b")  # the third opens it; the retry fails fast
        with pytest.raises(CircuitOpen):
            await client.send("13800138000", "复诊提醒", key="c")  # no request at all
        assert len((await received(url))["requests"]) == 3
        assert breaker.state == "open"

        now[0] = 31.0  # cool-off passed: one probe, which fails: open again
        with pytest.raises(CircuitOpen):
            await client.send("13800138000", "复诊提醒", key="d")
        assert len((await received(url))["requests"]) == 4 and breaker.state == "open"

        await faults(url, fail=0)  # the gateway is back
        with pytest.raises(CircuitOpen):
            await client.send("13800138000", "复诊提醒", key="e")  # still cooling off
        now[0] = 62.0
        await client.send("13800138000", "复诊提醒", key="f")  # the probe succeeds: closed
        await client.send("13800138000", "复诊提醒", key="g")
        assert breaker.state == "closed"
    assert [m["id"] for m in (await received(url))["messages"]] == ["sms_1", "sms_2"]

"""Each adapter speaks its documented contract (docs/integrations/*.md) against its simulator: WeChat template
messages with a cached access token (SVC-2), robot calls with their outcome, and the simulator as the process
the demo launcher starts (DESIGN rule 8)."""

from __future__ import annotations

import httpx
import pytest
import trio

from integrations.http import Backoff, Refused, Retry
from integrations.phone import client as phone
from integrations.phone.simulator import DEMO_KEY as PHONE_KEY
from integrations.wechat import client as wechat
from integrations.wechat.simulator import DEMO_APP_ID, DEMO_SECRET
from launcher import demo
from tests.simulators import faults, received, start_simulator

QUICK = Retry(3, Backoff(first=0.01, cap=0.05))
DATA = {"first": "取卵术前须知", "keyword1": "术前一晚22点后禁食禁水"}


async def test_wechat_template_messages_reuse_the_token_and_send_once_per_key(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "wechat")
    async with wechat.connect(url, retry=QUICK) as service:
        client = wechat.WeChatClient(service, DEMO_APP_ID, DEMO_SECRET)
        first = await client.send_template("o-chen", "TPL-1", DATA, key="n1", url="https://ivf.example.org/n/1")
        again = await client.send_template("o-chen", "TPL-1", DATA, key="n1")  # a retry after a lost answer
        other = await client.send_template("o-zhao", "TPL-1", DATA, key="n2")
    assert first == again != other
    log = await received(url)
    assert [r["path"] for r in log["requests"]].count("/cgi-bin/token") == 1  # cached
    assert [(m["touser"], m["url"]) for m in log["messages"]] == [("o-chen", "https://ivf.example.org/n/1"),
                                                                  ("o-zhao", None)]
    assert log["messages"][0]["data"] == {name: {"value": value} for name, value in DATA.items()}


async def test_wechat_fetches_a_new_token_when_the_old_one_is_refused(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "wechat")
    async with wechat.connect(url, retry=QUICK) as service:
        client = wechat.WeChatClient(service, DEMO_APP_ID, DEMO_SECRET)
        await client.send_template("o-chen", "TPL-1", DATA, key="n1")
        async with httpx.AsyncClient() as http:  # another program fetched a token: ours is no longer valid
            (await http.post(f"{url}/_sim/expire_tokens")).raise_for_status()
        await client.send_template("o-chen", "TPL-1", DATA, key="n2")
    log = await received(url)
    assert [r["path"].rsplit("/", 1)[1] for r in log["requests"]] == ["token", "send", "send", "token", "send"]
    assert len(log["messages"]) == 2


@pytest.mark.parametrize(("openid", "app_id", "secret", "errcode"), [
    ("not-an-openid", DEMO_APP_ID, DEMO_SECRET, 40003),  # not a follower of the account
    ("o-chen", DEMO_APP_ID, "wrong", 40125),
    ("o-chen", "wx-wrong", DEMO_SECRET, 40013),
])
async def test_wechat_refusals_are_not_retried(
    nursery: trio.Nursery, openid: str, app_id: str, secret: str, errcode: int,
) -> None:
    url = await start_simulator(nursery, "wechat")
    async with wechat.connect(url, retry=QUICK) as service:
        with pytest.raises(Refused) as refused:
            await wechat.WeChatClient(service, app_id, secret).send_template(openid, "TPL-1", DATA, key="n1")
    assert f"errcode {errcode}" in refused.value.detail
    assert (await received(url))["messages"] == []


async def test_a_robot_call_reports_whether_it_was_answered(nursery: trio.Nursery) -> None:
    url = await start_simulator(nursery, "phone")
    async with phone.connect(url, PHONE_KEY, retry=QUICK) as service:
        client = phone.phone_client(service, caller="057188888888")
        answered = await client.send("13800138000", "您好，这里是生殖中心，请于明天上午九点前来复诊。", key="c1")
        await faults(url, outcome="no_answer")
        missed = await client.send("13900139000", "您好，这里是生殖中心。", key="c2")
        reports = [await client.report(answered), await client.report(missed)]
    assert [(r.outcome, r.detail) for r in reports] == [("delivered", "answered"), ("failed", "no_answer")]
    assert [m["caller"] for m in (await received(url))["messages"]] == ["057188888888"] * 2


@pytest.mark.slow
async def test_the_simulator_runs_as_a_process_and_prints_its_url(nursery: trio.Nursery) -> None:
    """As the demo (``imdemo``) starts it, with the credentials it is given."""
    url = await demo.start_simulator(nursery, "phone")
    async with phone.connect(url, demo.DEMO_OUTSIDE_KEY, retry=QUICK) as service:
        call_id = await phone.phone_client(service).send("13800138000", "请按时复诊", key="p1")
    assert [m["id"] for m in (await received(url))["messages"]] == [call_id]

"""The treatment-item feed for the hospital's mini-program (TRT-4), served on a real socket and called over HTTP:
a patient's notices and no one else's, newest first, rendered from her cycle's pathway version and the procedure's
date, read as she read them; only with a configured key; a clear JSON error for every request it refuses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import date, datetime
from typing import Any

import asyncpg
import httpx
import pytest
import trio

from bots.framework.channels import ChannelConfigError
from bots.pathway.api import PATH, ApiConfig, api_config, serve_api
from bots.pathway.intake import take
from bots.pathway.render import treatment_message
from bots.pathway.store import PathwayStore, Sent
from protocol.clock import HOSPITAL_ZONE
from tests.bots.pathway.test_intake import CHEN, IVF, event

KEY, OTHER_KEY = "mini-program-key-0001", "mini-program-key-0002"
ENV = {"IMBOT_PATHWAY_API_PORT": "0", "IMBOT_PATHWAY_API_KEYS": f"{KEY}, {OTHER_KEY}"}
WANG = {"username": "wang_li", "his_id": "P0099999"}
NOW = datetime(2026, 12, 1, 15, 0, tzinfo=HOSPITAL_ZONE)


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL_ZONE)


@pytest.fixture
async def api(store: PathwayStore, nursery: trio.Nursery) -> AsyncIterator[httpx.AsyncClient]:
    """The feed served on a free port; a client that sends the first key."""
    url = await nursery.start(serve_api, store, ENV)
    async with httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {KEY}"}) as client:
        yield client


async def sql(store: PathwayStore, statement: str, *args: Any) -> None:
    async def txn(conn: asyncpg.Connection) -> None:
        await conn.execute(statement, *args)
    await store.state.store.run("test", txn)


async def enrol(store: PathwayStore, patient: dict[str, str], day: str, **dates: str) -> int:
    """Start her IVF cycle (as the hospital system would) and date her procedures; her cycle's id."""
    name = patient["username"]
    outcome = await take(store, "his", event(type="cycle_started", id=f"{name}-{day}", patient=patient,
                                             pathway="ivf", day=day), NOW)
    for procedure, when in dates.items():
        await take(store, "his", event(type="procedure_dated", id=f"{name}-{procedure}-{when}", patient=patient,
                                       procedure=procedure, day=when), NOW)
    assert outcome.cycle is not None
    return outcome.cycle


async def sent(store: PathwayStore, cycle: int, node: str, procedure: str, when: str, seq: int) -> None:
    """A treatment notice the bot sent at ``when`` for her procedure's date (as work.Work.treatment records it)."""
    found = await store.cycle(cycle)
    assert found is not None
    notice = Sent(cycle, node, f"treatment:{procedure}", "treatment_items", "取卵", found.dates[procedure],
                  found.revisions.get(procedure, 0))
    await store.delivered(notice, "conv", seq, at(when), None)


def items(procedure: str, node: str, day: date) -> list[dict[str, str]]:
    body = treatment_message(IVF.node(node).treatment[procedure], day).body
    assert body is not None
    return list(body["items"])


async def test_her_notices_newest_first_rendered_from_her_dates_and_read_as_she_read_them(
    store: PathwayStore, api: httpx.AsyncClient,
) -> None:
    chen = await enrol(store, CHEN, "2026-12-01", trigger="2026-12-14", retrieval="2026-12-16")
    wang = await enrol(store, WANG, "2026-12-02", trigger="2026-12-13")
    await sent(store, chen, "trigger", "trigger", "2026-12-13 09:00", 1)
    await sent(store, chen, "retrieval", "retrieval", "2026-12-15 09:00", 3)
    await store.delivered(Sent(chen, "trigger", "video", "video", "夜针注射示范"), "conv", 2, at("2026-12-13 09:00"),
                          None)  # content, not a notice
    await sent(store, wang, "trigger", "trigger", "2026-12-12 09:00", 1)
    await sql(store, "update bot_pathway.deliveries set read_at = $2"
                     " where cycle_id = $1 and item = 'treatment:trigger'", chen, at("2026-12-13 10:00"))

    answer = await api.get(PATH, params={"his_id": "P0012345"})
    assert answer.status_code == 200
    assert answer.json() == {"patient": CHEN, "notices": [
        {"id": answer.json()["notices"][0]["id"], "cycle": chen, "pathway": "ivf", "procedure": "retrieval",
         "title": "取卵", "day": "2026-12-16", "items": items("retrieval", "retrieval", date(2026, 12, 16)),
         "sent_at": "2026-12-15T09:00:00+08:00", "read": False, "current": True},
        {"id": answer.json()["notices"][1]["id"], "cycle": chen, "pathway": "ivf", "procedure": "trigger",
         "title": "夜针", "day": "2026-12-14", "items": items("trigger", "trigger", date(2026, 12, 14)),
         "sent_at": "2026-12-13T09:00:00+08:00", "read": True, "current": True},
    ]}
    assert answer.json()["notices"][0]["items"][0] == {  # the evening before the date she was given
        "name": "禁食禁水（12月15日）", "time": "22:00", "place": "", "note": "取卵前一晚22点后不吃不喝"}
    assert (await api.get(PATH, params={"username": "chen_hong"})).json() == answer.json()

    latest = (await api.get(PATH, params={"username": "chen_hong", "limit": "1"})).json()["notices"]
    assert [n["procedure"] for n in latest] == ["retrieval"]
    theirs = (await api.get(PATH, params={"his_id": "P0099999"})).json()
    assert theirs["patient"] == WANG
    assert [(n["cycle"], n["procedure"]) for n in theirs["notices"]] == [(wang, "trigger")]

    async def audited(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch("select actor, action, detail from bot_pathway.audit order by id")
    reads = await store.state.store.run("audit", audited, transaction=False)  # DESIGN rule 7: every read is kept
    assert [(r["actor"], r["action"], r["detail"]["patient"]) for r in reads] == [
        ("api:1", "api:notices", "chen_hong")] * 3 + [("api:1", "api:notices", "wang_li")]


async def test_a_patient_without_notices_has_an_empty_list_and_an_ended_cycle_keeps_its_own(
    store: PathwayStore, api: httpx.AsyncClient,
) -> None:
    first = await enrol(store, CHEN, "2026-10-01", trigger="2026-10-14")
    assert (await api.get(PATH, params={"username": "chen_hong"})).json() == {"patient": CHEN, "notices": []}
    await sent(store, first, "trigger", "trigger", "2026-10-13 09:00", 1)
    second = await enrol(store, {"username": "chen_hong"}, "2026-12-01", trigger="2026-12-14")  # ends the first
    await sent(store, second, "trigger", "trigger", "2026-12-13 09:00", 5)

    answer = (await api.get(PATH, params={"his_id": "P0012345"})).json()
    assert answer["patient"] == CHEN  # her record number, though the newer cycle's event gave none
    assert [(n["cycle"], n["day"], n["current"]) for n in answer["notices"]] == [
        (second, "2026-12-14", True), (first, "2026-10-14", False)]  # an ended cycle's dates hold no more


async def test_a_cancelled_procedure_s_notice_no_longer_holds(store: PathwayStore, api: httpx.AsyncClient) -> None:
    """TRT-4: the fresh transfer was called off (a freeze-all): its notice is listed, not as current."""
    chen = await enrol(store, CHEN, "2026-12-01", retrieval="2026-12-16", fresh_transfer="2026-12-19")
    await sent(store, chen, "retrieval", "retrieval", "2026-12-15 09:00", 1)
    await sent(store, chen, "transfer", "fresh_transfer", "2026-12-18 09:00", 2)
    await take(store, "his", event(type="procedure_cancelled", id="freeze-all", patient=CHEN,
                                   procedure="fresh_transfer"), NOW)
    answer = await api.get(PATH, params={"his_id": "P0012345"})
    assert [(n["procedure"], n["current"]) for n in answer.json()["notices"]] == [
        ("fresh_transfer", False), ("retrieval", True)]


UNAUTHORIZED = [None, "Bearer wrong-key-of-some-length", f"Basic {KEY}", "Bearer", KEY, f"Bearer {KEY}x",
                f"Bearer {KEY[:-1]}"]


async def test_a_moved_date_lists_both_notices_and_says_which_holds(store: PathwayStore, api: httpx.AsyncClient,
                                                                    ) -> None:
    """TRT-2, TRT-4: she was told the 14th, then the 15th; the mini-program shows both, the 15th as current."""
    chen = await enrol(store, CHEN, "2026-12-01", trigger="2026-12-14")
    await sent(store, chen, "trigger", "trigger", "2026-12-13 09:00", 1)
    await take(store, "his", event(type="procedure_dated", id="moved", patient=CHEN, procedure="trigger",
                                   day="2026-12-15"), NOW)
    await sent(store, chen, "trigger", "trigger", "2026-12-13 15:00", 2)
    answer = await api.get(PATH, params={"his_id": "P0012345"})
    assert [(n["day"], n["current"]) for n in answer.json()["notices"]] == [("2026-12-15", True), ("2026-12-14", False)]


async def test_no_answer_without_a_configured_key(store: PathwayStore, api: httpx.AsyncClient) -> None:
    await enrol(store, CHEN, "2026-12-01")
    for authorization in UNAUTHORIZED:
        headers = {} if authorization is None else {"Authorization": authorization}
        async with httpx.AsyncClient(base_url=str(api.base_url), headers=headers) as client:
            answer = await client.get(PATH, params={"his_id": "P0012345"})
            assert (answer.status_code, answer.headers.get("WWW-Authenticate")) == (401, "Bearer"), authorization
            assert answer.json()["error"] == "unauthorized"
            assert (await client.get(PATH)).status_code == 401  # before the query is looked at


async def test_every_configured_key_opens_it(store: PathwayStore, api: httpx.AsyncClient) -> None:
    await enrol(store, CHEN, "2026-12-01")
    other = {"Authorization": f"bearer {OTHER_KEY}"}
    assert (await api.get(PATH, params={"username": "chen_hong"}, headers=other)).status_code == 200


BAD_QUERIES = [  # the query, the error, what its message names
    ("", "missing_parameter", "his_id"),
    ("limit=5", "missing_parameter", "his_id"),
    ("his_id=P0012345&username=chen_hong", "conflicting_parameters", "not both"),
    ("his_id=", "invalid_parameter", "his_id"),
    (f"his_id={'P' * 65}", "invalid_parameter", "his_id"),
    ("his_id=P1&his_id=P2", "invalid_parameter", "his_id"),
    ("username=", "invalid_parameter", "username"),
    ("username=Chen%20Hong", "invalid_parameter", "username"),
    (f"username={'a' * 65}", "invalid_parameter", "username"),
    ("username=chen_hong&limit=0", "invalid_parameter", "limit"),
    ("username=chen_hong&limit=101", "invalid_parameter", "limit"),
    ("username=chen_hong&limit=ten", "invalid_parameter", "limit"),
    ("username=chen_hong&limit=-1", "invalid_parameter", "limit"),
    ("username=chen_hong&limit=%EF%BC%95", "invalid_parameter", "limit"),  # a full-width digit
]


async def test_a_bad_query_is_refused_saying_what_is_wrong(api: httpx.AsyncClient) -> None:
    for query, code, names in BAD_QUERIES:
        answer = await api.get(f"{PATH}?{query}")
        assert answer.status_code == 400, query
        assert answer.json()["error"] == code and names in answer.json()["message"], query


async def test_limits_at_the_edges_are_taken(store: PathwayStore, api: httpx.AsyncClient) -> None:
    await enrol(store, CHEN, "2026-12-01")
    for limit in ("1", "100"):
        assert (await api.get(PATH, params={"username": "chen_hong", "limit": limit})).status_code == 200


@pytest.mark.parametrize("query", [{"his_id": "P0000000"}, {"username": "nobody"}])
async def test_a_patient_the_bot_does_not_know_is_not_found(
    store: PathwayStore, api: httpx.AsyncClient, query: dict[str, str],
) -> None:
    await enrol(store, CHEN, "2026-12-01")
    answer = await api.get(PATH, params=query)
    assert answer.status_code == 404 and answer.json()["error"] == "unknown_patient"

    async def audited(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return await conn.fetch("select actor, detail from bot_pathway.audit")
    (look_up,) = await store.state.store.run("audit", audited, transaction=False)  # recorded though not found
    assert (look_up["actor"], look_up["detail"]) == ("api:1", {"asked": query, "patient": None})


async def test_it_only_reads(api: httpx.AsyncClient) -> None:
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        answer = await api.request(method, PATH, params={"username": "chen_hong"})
        assert answer.status_code == 405 and answer.json()["error"] == "method_not_allowed", method
        assert "GET" in answer.headers["Allow"]


async def test_another_path_is_not_found_as_json(api: httpx.AsyncClient) -> None:
    answer = await api.get("/pathway/v1/notices/1")
    assert answer.status_code == 404 and answer.json()["error"] == "not_found"


async def test_a_failure_of_ours_answers_without_detail(store: PathwayStore, api: httpx.AsyncClient) -> None:
    await enrol(store, CHEN, "2026-12-01")
    await sql(store, "alter table bot_pathway.deliveries rename to deliveries_gone")
    answer = await api.get(PATH, params={"username": "chen_hong"})
    assert answer.status_code == 500
    assert answer.json() == {"error": "internal", "message": "the notices could not be read; try again later"}


@pytest.mark.parametrize(("env", "expected"), [
    ({}, None),
    ({"IMBOT_PATHWAY_API_PORT": ""}, None),
    ({"IMBOT_PATHWAY_API_PORT": "8090", "IMBOT_PATHWAY_API_KEYS": KEY}, ApiConfig("127.0.0.1", 8090, (KEY,))),
    ({"IMBOT_PATHWAY_API_PORT": "8090", "IMBOT_PATHWAY_API_KEYS": f" {KEY} ,,{OTHER_KEY},",
      "IMBOT_PATHWAY_API_HOST": "0.0.0.0"}, ApiConfig("0.0.0.0", 8090, (KEY, OTHER_KEY))),
])
def test_the_configuration_is_read_from_the_environment(env: dict[str, str], expected: ApiConfig | None) -> None:
    assert api_config(env) == expected


BAD_CONFIGURATIONS = [  # the environment, what the error names
    ({"IMBOT_PATHWAY_API_PORT": "8090"}, "IMBOT_PATHWAY_API_KEYS is required"),
    ({"IMBOT_PATHWAY_API_PORT": "8090", "IMBOT_PATHWAY_API_KEYS": " , "}, "IMBOT_PATHWAY_API_KEYS is required"),
    ({"IMBOT_PATHWAY_API_PORT": "8090", "IMBOT_PATHWAY_API_KEYS": f"{KEY},short"}, "IMBOT_PATHWAY_API_KEYS"),
    ({"IMBOT_PATHWAY_API_PORT": "http", "IMBOT_PATHWAY_API_KEYS": KEY}, "IMBOT_PATHWAY_API_PORT"),
    ({"IMBOT_PATHWAY_API_PORT": "70000", "IMBOT_PATHWAY_API_KEYS": KEY}, "IMBOT_PATHWAY_API_PORT"),
]


async def test_without_a_port_there_is_no_feed_and_a_bad_configuration_stops_it_naming_the_variable(
    store: PathwayStore, nursery: trio.Nursery,
) -> None:
    assert await nursery.start(serve_api, store, {"IMBOT_PATHWAY_API_KEYS": KEY}) is None
    for env, names in BAD_CONFIGURATIONS:
        with pytest.raises(ChannelConfigError, match=names):
            await serve_api(store, env)

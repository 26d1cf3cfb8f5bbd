"""The pathway bot's jobs against a real server (EDU-3, IM-2, TRT-1, TRT-2, EDU-4), time driven by
``run_due(now=...)``: each node's content arrives in her service conversation the day before at 09:00, she moves
from group to group with her husband following, treatment items arrive by their date, doctor's orders bring
their education at once; running a job again sends nothing twice, and a job for a changed date does nothing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import date, datetime, timedelta

from bots.framework.outbox import Outbox
from bots.framework.state import BotState
from bots.pathway import texts
from bots.pathway.definition import shipped
from bots.pathway.intake import take as take_event
from bots.pathway.store import PathwayStore
from bots.pathway.work import Work, schedule_summary
from clients.python import Client, open_client
from imserver.actions.accounts import do_link_family
from imserver.actions.base import Actor, Context
from imserver.model import Role
from pgtrio.bridge import open_store
from protocol.clock import HOSPITAL_ZONE
from tests.bots.test_echo import bot_says
from tests.conftest import PASSWORD, Running
from tests.helpers import take

CHEN = {"username": "chen", "his_id": "P001"}


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=HOSPITAL_ZONE)


@asynccontextmanager
async def pathway_bot(server: Running, db: str, remind_after: Sequence[timedelta] = ()) -> AsyncIterator[Work]:
    """The bot's work as a started bot has it (no reminders unless asked: the tests here count jobs)."""
    async with (
        open_store(db, min_size=1, max_size=3) as store,
        open_client(server.url, username="pathway", password=PASSWORD) as client,
    ):
        state = BotState(store, "pathway", "bots.pathway.migrations")
        await state.migrate()
        outbox = Outbox(state)
        for pathway in shipped():
            await PathwayStore(state).publish(pathway)
        with outbox.connected(client):
            yield Work(outbox, remind_after=remind_after)


@asynccontextmanager
async def with_chen(server: Running, db: str, remind_after: Sequence[timedelta] = ()) -> AsyncIterator[
        tuple[Work, Client]]:
    """The bot's work, and the client of Chen, a patient."""
    await server.user("pathway", Role.BOT, "宣教助手")
    await server.user("chen", Role.PATIENT, "陈红")
    async with (
        pathway_bot(server, db, remind_after) as work,
        open_client(server.url, username="chen", password=PASSWORD) as patient,
    ):
        yield work, patient


async def event(work: Work, now: datetime, **fields: object) -> None:
    outcome = await take_event(work.store, "his", json.dumps(fields).encode(), now)
    assert outcome.status == "applied", outcome


async def start(work: Work, **dates: str) -> None:
    """Her IVF cycle starts on 1 December and the hospital system dates her procedures."""
    await event(work, at("2026-12-01 08:00"), type="cycle_started", id="e1", patient=CHEN, pathway="ivf",
                day="2026-12-01")
    for procedure, day in dates.items():
        await event(work, at("2026-12-01 08:00"), type="procedure_dated", id=f"e-{procedure}", patient=CHEN,
                    procedure=procedure, day=day)


async def run_due(work: Work, now: datetime) -> int:
    return await work.outbox.state.jobs.run_due(work.outbox.handlers() | work.handlers(), now=now)


async def groups(client: Client) -> set[str]:
    return {c["name"] for c in (await client.request("convs"))["convs"] if c["kind"] == "group"}


async def frozen_transfer_on_10_march(work: Work, patient: Client) -> None:
    """The hospital system dates her frozen transfer: the day before, its content and its item; she moves."""
    await event(work, at("2027-03-01 10:00"), type="procedure_dated", id="frozen", patient=CHEN,
                procedure="frozen_transfer", day="2027-03-10")
    await run_due(work, at("2027-03-09 09:00"))
    frozen = await take(patient, 3)
    assert [m.kind for m in frozen] == ["text", "article", "treatment_items"]
    assert frozen[2].body is not None and frozen[2].body["title"] == "冷冻胚胎移植"
    assert await groups(patient) == {"试管婴儿·移植群"}


async def test_nodes_items_and_orders_arrive_on_time_and_once(server: Running, db: str) -> None:
    await server.user("pathway", Role.BOT, "宣教助手")
    chen = await server.user("chen", Role.PATIENT, "陈红")
    husband = await server.user("li", Role.FAMILY, "李强")
    await do_link_family(Context(server.store), Actor.operator(), chen, husband, "husband")
    async with (
        pathway_bot(server, db) as work,
        open_client(server.url, username="chen", password=PASSWORD) as patient,
        open_client(server.url, username="li", password=PASSWORD) as li,
    ):
        await event(work, at("2026-12-01 08:00"), type="cycle_started", id="e1", patient=CHEN, pathway="ivf",
                    day="2026-12-01")
        assert await run_due(work, at("2026-12-01 08:59")) == 0  # the file-building content waits for 09:00
        assert await run_due(work, at("2026-12-01 09:00")) == 1
        filing = await take(patient, 5)  # welcome, then the flow, an article, the consent to sign, a form
        assert [m.kind for m in filing] == ["text", "text", "article", "signature_request", "form"]
        assert all(m.conv == filing[0].conv and m.sender.role == "bot" for m in filing)
        assert await groups(patient) == {"试管婴儿·建档群"} and await groups(li) == {"试管婴儿·建档群"}

        await event(work, at("2026-12-05 10:00"), type="procedure_dated", id="e2", patient=CHEN,
                    procedure="trigger", day="2026-12-14")
        await event(work, at("2026-12-05 10:00"), type="procedure_dated", id="e3", patient=CHEN,
                    procedure="trigger", day="2026-12-15")  # the doctor moved it a day
        assert await run_due(work, at("2026-12-13 09:00")) == 1  # the node's job for the 14th: stale, nothing sent
        assert await groups(patient) == {"试管婴儿·建档群"}
        assert await run_due(work, at("2026-12-14 09:00")) == 3  # the node (content, items), WeChat, SMS
        assert await groups(patient) == {"试管婴儿·夜针群"} and await groups(li) == {"试管婴儿·夜针群"}

        await event(work, at("2026-12-14 11:00"), type="orders_written", id="e4", patient=CHEN,
                    orders=[{"category": "medication", "code": "地屈孕酮片"}])
        assert await run_due(work, at("2026-12-14 11:00")) == 1
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        sent = await work.store.deliveries(cycle.id)
        assert sorted((d["node"], d["item"]) for d in sent) == sorted([
            ("filing", "welcome"), ("filing", "flow"), ("filing", "intro"), ("filing", "consent"), ("filing", "basic"),
            ("trigger", "why"), ("trigger", "video"), ("trigger", "treatment:trigger"),
            ("orders", "order:progesterone:luteal")])
        trigger = await take(patient, 4)
        assert [m.kind for m in trigger] == ["text", "video", "treatment_items", "text"]  # in order; then the order's
        items = [m for m in trigger if m.kind == "treatment_items"]
        assert items[0].body is not None and items[0].body["day"] == "2026-12-15"  # the date the doctor gave last
        # The video shipped beside the pathway was uploaded and sent; everything went to her service conversation.
        (video,) = [m for m in trigger if m.kind == "video"]
        assert video.body is not None and video.body["seconds"] == 45
        assert len(await patient.download(video.body["video"]["id"])) == video.body["video"]["size"]
        assert {d["conv"] for d in sent} == {filing[0].conv}

        await run_due(work, at("2026-12-20 09:00"))
        again = await work.store.deliveries(cycle.id)
        assert again == sent  # nothing due twice, nothing sent twice

        # The trigger shot moved after her notice was sent: a notice for the new date (TRT-2), not silence.
        await event(work, at("2026-12-20 10:00"), type="procedure_dated", id="e5", patient=CHEN,
                    procedure="trigger", day="2026-12-22")
        await run_due(work, at("2026-12-21 09:00"))
        (moved,) = [m for m in await take(patient, 1) if m.kind == "treatment_items"]
        assert moved.body is not None and moved.body["day"] == "2026-12-22"
        days = [d["day"] for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:trigger"]
        assert [str(day) for day in days] == ["2026-12-15", "2026-12-22"]


async def test_a_moved_date_is_not_reminded_and_a_past_date_is_not_announced(server: Running, db: str) -> None:
    """TRT-2, TRT-3: the notice for the old date of a moved trigger shot gets no reminder (the new one does), and a
    date the hospital sends after the procedure day (a late entry) brings no notice for a day that has passed."""
    async with with_chen(server, db, remind_after=[timedelta(days=1)]) as (work, _):
        await start(work, trigger="2026-12-15")
        await run_due(work, at("2026-12-14 09:00"))
        await event(work, at("2026-12-14 10:00"), type="procedure_dated", id="e3", patient=CHEN,
                    procedure="trigger", day="2026-12-20")
        await run_due(work, at("2026-12-15 09:30"))  # the old notice's reminder was due at 09:00
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        notices = [d for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:trigger"]
        assert [(str(d["day"]), d["reminders"]) for d in notices] == [("2026-12-15", 0)]
        await run_due(work, at("2026-12-19 09:00"))
        await run_due(work, at("2026-12-20 09:30"))  # the new one is reminded
        notices = [d for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:trigger"]
        assert [(str(d["day"]), d["reminders"]) for d in notices] == [("2026-12-15", 0), ("2026-12-20", 1)]

        await event(work, at("2026-12-22 10:00"), type="procedure_dated", id="e4", patient=CHEN,
                    procedure="retrieval", day="2026-12-21")  # entered a day late
        await run_due(work, at("2026-12-22 10:00"))
        assert not [d for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:retrieval"]


async def test_a_date_moved_and_back_still_brings_her_notice_and_a_new_cycle_leaves_the_old_group(
    server: Running, db: str,
) -> None:
    """TRT-2: the doctor moves the trigger shot and moves it back: she still gets its content and notice (the job
    of the old date had run stale). IM-2: a new cycle takes her out of the last cycle's group. TRT-3: the daily
    summary counts the day's reminders."""
    await server.user("pathway", Role.BOT, "宣教助手")
    await server.user("chen", Role.PATIENT, "陈红")
    await server.user("nurse_wu", Role.STAFF, "吴护士")
    async with (
        pathway_bot(server, db, remind_after=[timedelta(days=1)]) as work,
        open_client(server.url, username="chen", password=PASSWORD) as patient,
        open_client(server.url, username="nurse_wu", password=PASSWORD) as nurse,
    ):
        station = (await nurse.request("group_create", name="护士站", members=["pathway"]))["conv"]
        await work.store.set_summary_target(station, "u-nurse", True)
        await start(work, trigger="2026-12-10")
        await run_due(work, at("2026-12-01 09:00"))
        await take(patient, 5)
        await event(work, at("2026-12-08 10:00"), type="procedure_dated", id="e3", patient=CHEN,
                    procedure="trigger", day="2026-12-12")
        await run_due(work, at("2026-12-09 09:00"))  # the job for the 10th: stale, nothing sent
        assert {m.text[:4] for m in await take(patient, 4)} == {"温馨提醒"}  # only the file-building's reminders
        await event(work, at("2026-12-09 10:00"), type="procedure_dated", id="e4", patient=CHEN,
                    procedure="trigger", day="2026-12-10")  # back to the 10th
        await run_due(work, at("2026-12-09 10:00"))
        trigger = await take(patient, 3)
        assert [m.kind for m in trigger] == ["text", "video", "treatment_items"]
        assert trigger[2].body is not None and trigger[2].body["day"] == "2026-12-10"
        assert await groups(patient) == {"试管婴儿·夜针群"}
        await event(work, at("2026-12-09 19:00"), type="orders_written", id="e4b", patient=CHEN,
                    orders=[{"category": "medication", "code": "地屈孕酮片"}])
        await run_due(work, at("2026-12-09 19:00"))
        await take(patient, 1)

        await schedule_summary(work.store, date(2026, 12, 10))
        await run_due(work, at("2026-12-10 12:00"))  # the reminders, at 10:00
        await run_due(work, at("2026-12-10 19:00"))  # the order's, in the evening
        await run_due(work, at("2026-12-11 07:30"))  # the day's summary, the next morning
        (summary,) = await bot_says(nurse, 1)
        assert (summary.conv, summary.text) == (
            station, "宣教日报 2026-12-10\n试管婴儿·医嘱宣教：发送 0，已读 0，完成 0，提醒 1"
                     "\n试管婴儿·夜针：发送 0，已读 0，完成 0，提醒 3")

        await event(work, at("2026-12-20 08:00"), type="cycle_started", id="e5", patient=CHEN, pathway="ivf",
                    day="2026-12-20")  # a new cycle
        await run_due(work, at("2026-12-20 09:00"))
        assert await groups(patient) == {"试管婴儿·建档群"}


async def test_a_cancelled_transfer_is_not_announced_and_she_is_told(server: Running, db: str) -> None:
    """A freeze-all cancels the fresh transfer: its content, notices, pregnancy test and ultrasound wait; she is
    told at once; the frozen transfer months later brings them back (TRT-2, EDU-3)."""
    async with with_chen(server, db) as (work, patient):
        await start(work, fresh_transfer="2026-12-19")
        await run_due(work, at("2026-12-01 09:00"))
        await take(patient, 5)
        await event(work, at("2026-12-17 10:00"), type="procedure_cancelled", id="e3", patient=CHEN,
                    procedure="fresh_transfer")
        refused = await take_event(work.store, "his", json.dumps({
            "type": "procedure_cancelled", "id": "e4", "patient": CHEN, "procedure": "retrieval"}).encode(),
            at("2026-12-17 10:00"))
        assert (refused.status, refused.reason) == ("rejected", "not_dated")
        await run_due(work, at("2027-01-20 09:00"))
        (told,) = await take(patient, 1)
        assert told.text == texts.CANCELLED_UNANNOUNCED.format(procedure="鲜胚移植")  # she had no notice of it
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None and cycle.dates == {}
        assert await work.outbox.history(f"pw-x:{cycle.id}:fresh_transfer:1") is None  # nor by WeChat or SMS
        assert {d["node"] for d in await work.store.deliveries(cycle.id)} == {"filing"}

        await frozen_transfer_on_10_march(work, patient)


async def test_a_date_moved_and_moved_back_is_reminded_once(server: Running, db: str) -> None:
    """TRT-3: the trigger shot moved away and back to the 15th: she has two notices for the 15th (the second
    says the date holds again); only the newer is reminded, not both."""
    async with with_chen(server, db, remind_after=[timedelta(days=1)]) as (work, _):
        await start(work, trigger="2026-12-15")
        await run_due(work, at("2026-12-14 09:00"))
        for n, day in enumerate(("2026-12-20", "2026-12-15"), start=3):
            await event(work, at("2026-12-14 10:00"), type="procedure_dated", id=f"e{n}", patient=CHEN,
                        procedure="trigger", day=day)
        await run_due(work, at("2026-12-14 10:00"))
        await run_due(work, at("2026-12-15 12:00"))
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        notices = [d for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:trigger"]
        assert [(str(d["day"]), d["reminders"]) for d in notices] == [("2026-12-15", 0), ("2026-12-15", 1)]


async def test_a_procedure_cancelled_at_night_is_told_at_once_everywhere_her_notice_went(
    server: Running, db: str,
) -> None:
    """TRT-2: the fresh transfer, announced in the app and by WeChat and SMS, is cancelled late in the evening
    before: she is told at once, in the app and by WeChat and SMS; what was left of the old notice's sending is
    called off, and the old notice is not reminded."""
    async with with_chen(server, db, remind_after=[timedelta(days=1)]) as (work, patient):
        await start(work, fresh_transfer="2026-12-19")
        await run_due(work, at("2026-12-01 09:00"))
        await take(patient, 5)
        await run_due(work, at("2026-12-02 09:00"))
        assert {m.text[:4] for m in await take(patient, 4)} == {"温馨提醒"}  # the file-building's, out of the way
        await run_due(work, at("2026-12-18 09:00"))
        assert [m.kind for m in await take(patient, 3)] == ["text", "article", "treatment_items"]
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        old = f"pw:{cycle.id}:treatment:fresh_transfer:2026-12-19:0"
        assert (await work.outbox.history(old)) is not None

        await event(work, at("2026-12-18 23:30"), type="procedure_cancelled", id="e3", patient=CHEN,
                    procedure="fresh_transfer")
        await run_due(work, at("2026-12-18 23:30"))
        (told,) = await take(patient, 1)
        assert told.text == texts.CANCELLED.format(procedure="鲜胚移植")
        outside = await work.outbox.history(f"pw-x:{cycle.id}:fresh_transfer:1")
        assert outside is not None and outside.note.content == told.text
        assert [step.channel for step in outside.policy.steps] == ["wechat", "sms"]
        assert outside.recipient.phone is None and outside.note.title == "省妇幼生殖中心鲜胚移植安排取消"
        settled = await work.outbox.history(old)
        assert settled is not None and settled.settled == "cancelled"

        await run_due(work, at("2026-12-19 12:00"))  # the old notice's reminder was due at 09:00
        notices = [d for d in await work.store.deliveries(cycle.id) if d["item"] == "treatment:fresh_transfer"]
        assert [d["reminders"] for d in notices] == [0]
        await frozen_transfer_on_10_march(work, patient)  # the transfer's content again, for this transfer


async def test_a_node_overtaken_while_the_bot_was_down_still_asks_for_her_consent_and_form(
    server: Running, db: str,
) -> None:
    """EDU-3, EDU-5: the bot was down when the file-building content was due, and by the time it runs the trigger
    shot's is due too: from the file-building only the consent to sign and the form to fill in, then the trigger
    shot's content and items; she goes straight to the trigger shot's group."""
    async with with_chen(server, db) as (work, patient):
        await start(work, trigger="2026-12-03")
        await run_due(work, at("2026-12-02 10:00"))
        got = await take(patient, 5)
        assert sorted(m.kind for m in got) == sorted(["signature_request", "form", "text", "video", "treatment_items"])
        assert [m.body["title"] for m in got if m.kind in ("signature_request", "form") and m.body] == [
            "辅助生殖治疗知情同意书", "建档基本信息"]
        assert await groups(patient) == {"试管婴儿·夜针群"}
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        assert {d["item"] for d in await work.store.deliveries(cycle.id) if d["node"] == "filing"} == {
            "consent", "basic"}


async def test_a_frozen_transfer_after_a_fresh_one_brings_the_transfer_content_and_the_test_form_again(
    server: Running, db: str,
) -> None:
    """EDU-3, TRT-1: the fresh transfer did not take; months later the same cycle's frozen transfer: its content,
    its own item, and the pregnancy test's form are sent again (the first answer stays with the first transfer);
    a form answered is answered for the transfer it was sent for."""
    async with with_chen(server, db) as (work, patient):
        await start(work, fresh_transfer="2026-12-19")
        await run_due(work, at("2026-12-01 09:00"))
        await take(patient, 5)
        await run_due(work, at("2026-12-18 09:00"))
        assert [m.kind for m in await take(patient, 3)] == ["text", "article", "treatment_items"]
        await run_due(work, at("2027-01-02 09:00"))
        first_test = await take(patient, 2)
        assert [m.kind for m in first_test] == ["text", "form"]

        await frozen_transfer_on_10_march(work, patient)
        await run_due(work, at("2027-03-23 09:00"))
        second_test = await take(patient, 2)
        assert [m.kind for m in second_test] == ["text", "form"]
        assert await groups(patient) == {"试管婴儿·验孕群"}
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        pregnancy = [d["item"] for d in await work.store.deliveries(cycle.id) if d["node"] == "pregnancy"]
        assert pregnancy == ["test", "result", "test@frozen_transfer", "result@frozen_transfer"]
        second_form = await work.store.delivery(conv=second_test[1].conv, seq=second_test[1].seq)
        assert second_form is not None and second_form.pathway.item("pregnancy", second_form.item) is not None
        assert (await work.store.to_do(cycle.id)).count("验孕结果") == 1  # once, though asked for each transfer


async def test_a_frozen_transfer_cancelled_after_a_fresh_one_brings_back_nothing_of_the_fresh_one(
    server: Running, db: str,
) -> None:
    """TRT-2, IM-2: months after her fresh transfer, the frozen transfer planned next is cancelled: she is told,
    and that is all — the transfer, pregnancy test and ultrasound of the fresh transfer (long past) are not sent
    again, and she stays where she is."""
    async with with_chen(server, db) as (work, patient):
        await start(work, fresh_transfer="2026-12-19")
        for day, count in (("2026-12-01", 5), ("2026-12-18", 3), ("2027-01-02", 2), ("2027-01-16", 1)):
            await run_due(work, at(f"{day} 09:00"))
            await take(patient, count)
        assert await groups(patient) == {"试管婴儿·B超群"}
        cycle = await work.store.open_cycle("chen")
        assert cycle is not None
        before = await work.store.deliveries(cycle.id)
        await event(work, at("2027-02-20 10:00"), type="procedure_dated", id="e3", patient=CHEN,
                    procedure="frozen_transfer", day="2027-03-10")
        await event(work, at("2027-02-25 10:00"), type="procedure_cancelled", id="e4", patient=CHEN,
                    procedure="frozen_transfer")
        await run_due(work, at("2027-02-25 10:00"))
        (told,) = await take(patient, 1)
        assert told.text == texts.CANCELLED_UNANNOUNCED.format(procedure="冻胚移植")
        await run_due(work, at("2027-03-20 09:00"))
        assert await work.store.deliveries(cycle.id) == before
        assert await groups(patient) == {"试管婴儿·B超群"}

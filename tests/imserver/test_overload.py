"""One account's flood must not hold up everyone else's messages (issue 14 item 11; NFR-2, DESIGN rules 1, 2, 6;
SPEC.md §7.6).

The batch writer keeps a queue per sender and takes one draft from each in turn, so a quiet sender's message goes
into the next commit however deep a flooder's backlog is; a sender past her bound is refused at once with
``unavailable`` and ``retry_after_ms``, and nothing of hers is stored; the SDK waits that long and resends the same
``cid``. Which commit stored a message is read from Postgres (``xmin``: the id of the transaction that inserted
the row), so fairness is asserted by structure, never by timing. The writer is held on a conversation's row lock
held by the test, so what queues behind it is decided by the test, not by the scheduler.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
import trio

from clients.python import Client, ClientError, open_client
from imserver.actions.base import Actor, Context
from imserver.actions.conversations import do_create_group
from imserver.delivery import Delivery
from imserver.directory import Directory
from imserver.hub import Hub
from imserver.model import Role
from imserver.store import accounts
from imserver.store.messages import Draft
from imserver.writer import MessageWriter, Outcome
from pgtrio.bridge import Store, open_store
from protocol import ErrorCode, ProtocolError
from protocol.frames import Send, SendAnswer, Sender
from tests.conftest import PASSWORD, PASSWORD_HASH, Running
from tests.conftest import test_settings as make_settings
from tests.imserver.test_lifecycle import held_conversation, wait_for_lock_waiter
from tests.imserver.test_limits import sample

TIMEOUT = 10
BATCH = 4
BOUND = 10
"""The flooder's queue bound in the server tests (``writer_sender_queue``)."""


async def committed(store: Store, where: str = "true") -> dict[str, dict[str, Any]]:
    """cid -> the stored row (``tx``: the transaction that stored it, that is, its batch), straight from Postgres."""
    async def fetch(db: Any) -> list[Any]:
        return list(await db.fetch(
            f"select client_id, conv_id, seq, id, xmin::text::bigint as tx from messages where {where}"))
    return {r["client_id"]: dict(r) for r in await store.run("test_committed", fetch, transaction=False)}


def batches(rows: dict[str, dict[str, Any]]) -> list[set[str]]:
    """The cids of each commit, in commit order."""
    by_tx: dict[int, set[str]] = {}
    for cid, row in sorted(rows.items(), key=lambda item: item[1]["id"]):
        by_tx.setdefault(row["tx"], set()).add(cid)
    return list(by_tx.values())


# -- the writer alone, on a real database ------------------------------------------------------


async def make_writer(store: Store, **bounds: Any) -> MessageWriter:
    directory = Directory(store)
    return MessageWriter(store, Delivery(store, directory, Hub()), jitter=lambda: 0.5, **bounds)


async def group_of(store: Store, name: str) -> tuple[int, int]:
    """A new patient and a group of hers (owned by a new staff member): (her id, the group's id)."""
    owner = await accounts.create_user(store, f"{name}-owner", name, Role.STAFF, PASSWORD_HASH)
    patient = await accounts.create_user(store, name, name, Role.PATIENT, PASSWORD_HASH)
    return patient.id, await do_create_group(Context(store), Actor.operator(), name, owner.id, [patient.id])


def draft(sender: int, conv: int, cid: str) -> Draft:
    return Draft(conv, sender, Sender(f"u{sender}", "x", "patient", ""), "text", cid, None, cid)


async def test_each_batch_takes_one_draft_from_each_sender_in_turn(db: str) -> None:
    async with open_store(db, max_size=2) as store:
        (a, ga), (b, gb), (c, gc) = [await group_of(store, name) for name in ("a", "b", "c")]
        writer = await make_writer(store, max_batch=3)
        outcomes: dict[str, Outcome] = {}

        def done(cid: str) -> Callable[[Outcome], None]:
            return lambda outcome: outcomes.__setitem__(cid, outcome)
        # Queued before the writer runs, in this order: a's backlog first, then one of b's and two of c's.
        for sender, conv, cids in ((a, ga, ["a0", "a1", "a2", "a3", "a4", "a5"]), (b, gb, ["b0"]),
                                   (c, gc, ["c0", "c1"])):
            for cid in cids:
                writer.submit(draft(sender, conv, cid), done(cid))
        writer.close()
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.run)
        assert writer.finished.is_set()
        rows = await committed(store)
        assert batches(rows) == [{"a0", "b0", "c0"}, {"a1", "c1", "a2"}, {"a3", "a4", "a5"}]
        # Each sender's messages keep her order, and every outcome is the stored row.
        assert [rows[f"a{i}"]["seq"] for i in range(6)] == [1, 2, 3, 4, 5, 6]
        assert {cid: (o.seq, o.id) for cid, o in outcomes.items() if not isinstance(o, ProtocolError)} == {
            cid: (row["seq"], row["id"]) for cid, row in rows.items()}


async def test_past_its_bound_a_sender_is_shed_and_under_a_full_total_only_the_heaviest_are(db: str) -> None:
    async with open_store(db, max_size=2) as store:
        (a, ga), (b, gb), (c, gc) = [await group_of(store, name) for name in ("a", "b", "c")]
        writer = await make_writer(store, queue=8, sender_queue=6)
        answered: list[str] = []

        def submit(sender: int, conv: int, cid: str) -> None:
            writer.submit(draft(sender, conv, cid), lambda outcome: answered.append(cid))
        for i in range(6):
            submit(a, ga, f"a{i}")
        with pytest.raises(ProtocolError) as own:
            submit(a, ga, "a6")  # her own bound: 6 queued
        assert (own.value.code, own.value.retry_after_ms) == (ErrorCode.UNAVAILABLE, round(100 + 900 * 6 / 8))
        for cid in ("b0", "b1", "b2"):  # 8 queued in all from the second on, but b is below her share
            submit(b, gb, cid)
        submit(c, gc, "c0")  # a sender with nothing queued always gets in
        # 10 queued by 3 senders, over the bound: b with 3 has her share of it (8 / 3) and is shed; c with 1 is not.
        with pytest.raises(ProtocolError) as total:
            writer.admit(b)
        assert (total.value.code, total.value.retry_after_ms) == (ErrorCode.UNAVAILABLE, 1000)
        writer.admit(c)
        writer.close()
        with pytest.raises(ProtocolError) as closed:
            writer.admit(c)  # shutting down: nothing more is taken
        assert closed.value.code == ErrorCode.UNAVAILABLE and closed.value.retry_after_ms is None
        with trio.fail_after(TIMEOUT):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer.run)
        assert sorted(answered) == sorted(await committed(store)) == [
            "a0", "a1", "a2", "a3", "a4", "a5", "b0", "b1", "b2", "c0"]


# -- through the server: a flooder and a quiet sender in another group --------------------------


@pytest.mark.parametrize("settings", [make_settings(batch_max=BATCH, writer_sender_queue=BOUND)], ids=["bounds"])
async def test_a_quiet_senders_message_is_not_queued_behind_a_flood_and_the_flood_is_shed(
    server: Running, db: str
) -> None:
    await server.user("dr", Role.STAFF)
    for name in ("flooder", "quiet"):
        await server.user(name)
    async with (
        open_client(server.url, username="dr", password=PASSWORD) as dr,
        open_client(server.url, username="flooder", password=PASSWORD) as flooder,
        open_client(server.url, username="flooder", password=PASSWORD, device="bot-2") as flooder_too,
        open_client(server.url, username="quiet", password=PASSWORD) as quiet,
        trio.open_nursery() as nursery,
    ):
        flood_group = (await dr.request("group_create", name="flood", members=["flooder"]))["conv"]
        quiet_group = (await dr.request("group_create", name="quiet", members=["quiet"]))["conv"]
        acks: dict[str, SendAnswer] = {}

        async def send(client: Client, conv: str, cid: str) -> None:
            acks[cid] = await client.send(conv, cid, cid=cid)

        with trio.fail_after(TIMEOUT):
            async with held_conversation(db, int(flood_group[2:])) as release:
                # The writer commits "f0" and waits on the lock; the flood queues behind it up to her bound.
                nursery.start_soon(send, flooder, flood_group, "f0")
                await wait_for_lock_waiter(server.store)
                for i in range(1, BOUND + 1):
                    nursery.start_soon(send, flooder, flood_group, f"f{i}")
                await queued(BOUND)
                # Past her bound she is answered at once, the writer still stuck: unavailable, retry later.
                with pytest.raises(ClientError) as shed:
                    await flooder_too.request(Send(conv=flood_group, cid="f-shed", text="f-shed"))
                assert shed.value.code == "unavailable" and shed.value.retry_after_ms > 0
                # The SDK's send is shed too, and resends after retry_after_ms.
                shed_before = sample("imserver_sends_shed_total", bound="sender")
                nursery.start_soon(send, flooder, flood_group, "f-retried")
                while sample("imserver_sends_shed_total", bound="sender") == shed_before:  # noqa: ASYNC110
                    await trio.sleep(0.005)  # a counter: poll it
                # Another sender in another group is not refused: her message waits behind one commit only.
                nursery.start_soon(send, quiet, quiet_group, "q0")
                await queued(BOUND + 1)
                await release()
            while len(acks) < BOUND + 3:  # noqa: ASYNC110 (the sends answer in their own tasks)
                await trio.sleep(0.01)

    rows = await committed(server.store)
    flood = {f"f{i}" for i in range(1, BOUND + 1)}
    order = batches(rows)
    assert order[0] == {"f0"}
    # The next commit is one of each queued sender in turn: the quiet message goes with the flood's oldest, ahead of
    # the rest of the flood (first-come, first-served, it would have waited for all of it).
    assert "q0" in order[1] and len(order[1] & flood) == BATCH - 1, order
    assert len(set().union(*order[2:]) & flood) == BOUND - (BATCH - 1), order
    # Nothing acked is lost or stored twice: every cid once, as acked; what was shed was not stored.
    assert "f-shed" not in rows
    assert set(rows) == set(acks) == flood | {"f0", "q0", "f-retried"}
    assert {cid: (a.seq, a.id, a.dup) for cid, a in acks.items()} == {
        cid: (r["seq"], r["id"], False) for cid, r in rows.items()}
    assert sorted(r["seq"] for r in rows.values() if r["conv_id"] == int(flood_group[2:])) == list(
        range(1, BOUND + 3))


async def queued(count: int) -> None:
    """Until the writer's queues hold ``count`` drafts (a gauge: polled)."""
    while sample("imserver_writer_queue_depth") < count:  # noqa: ASYNC110
        await trio.sleep(0.005)

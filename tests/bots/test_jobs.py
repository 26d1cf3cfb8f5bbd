"""Durable jobs in a bot's own schema: claimed with SKIP LOCKED, leased, fenced, retried (DESIGN rule 9).

Their time is a manual clock (DESIGN rule 10): leases pass and backoffs run out when a test moves it, and a test
knows a runner has looked again when it has read the clock."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import trio

from bots.framework.jobs import Job, Jobs
from bots.framework.state import BotState
from pgtrio.bridge import open_store
from tests.helpers import ManualClock

T0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


async def test_scheduling_is_idempotent_by_key(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_echo", clock=ManualClock(T0))
        assert await BotState(store, "echo").migrate() == [1, 2, 3, 4, 5]
        assert await jobs.schedule("remind:42:2026-12-01", "remind", T0 + MINUTE, {"patient": 42})
        assert not await jobs.schedule("remind:42:2026-12-01", "remind", T0, {"patient": 42})
        assert (await jobs.state("remind:42:2026-12-01") or {})["state"] == "requested"
        assert await jobs.claim(10) == []  # not due yet


async def test_a_job_due_later_runs_once_after_a_restart_in_between(db: str) -> None:
    ran: list[tuple[str, int]] = []
    handled = trio.Event()

    async def remind(job: Job) -> None:
        ran.append((job.key, job.attempt))
        handled.set()

    clock = ManualClock(T0)
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_pathway", clock=clock)
        await BotState(store, "pathway").migrate()
        await jobs.schedule("notice:1", "remind", T0 + MINUTE)
        async with trio.open_nursery() as nursery:  # the first process runs a while, then stops before it is due
            await nursery.start(jobs.run, {"remind": remind}, 20, 0.01)
            await clock.wait_read(3)  # it looked, found nothing due, and looked again
            nursery.cancel_scope.cancel()
    assert ran == []
    clock.advance(MINUTE)
    async with open_store(db, min_size=1, max_size=2) as store:  # the restarted process
        jobs = Jobs(store, "bot_pathway", clock=clock)
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"remind": remind}, 20, 0.01)
            with trio.fail_after(5):
                await handled.wait()
                await clock.wait_read(4)  # it recorded the job done, then looked for more, twice
            nursery.cancel_scope.cancel()
        assert (await jobs.state("notice:1") or {})["state"] == "completed"
    assert ran == [("notice:1", 1)]


async def test_a_runner_that_dies_mid_job_loses_nothing_and_its_late_result_is_fenced(db: str) -> None:
    clock = ManualClock(T0)
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_followup", clock=clock)
        await BotState(store, "followup").migrate()
        await jobs.schedule("call:7", "call", T0)
        (first,) = await jobs.claim(5)  # this runner "dies" holding the job
        clock.advance(timedelta(seconds=jobs.lease_s - 1))
        assert await jobs.claim(5) == []  # leased: nobody else takes it meanwhile
        clock.advance(timedelta(seconds=2))
        (second,) = await jobs.claim(5)  # the lease passed: another runner takes it
        assert (second.key, second.attempt) == ("call:7", 2)
        assert not await jobs.complete(first)  # the dead runner's late result does not count
        assert await jobs.complete(second)
        assert (await jobs.state("call:7") or {})["state"] == "completed"


async def test_two_instances_never_run_the_same_job(db: str) -> None:
    done: Counter[str] = Counter()
    all_done = trio.Event()
    async with open_store(db, min_size=1, max_size=2) as setup:
        await BotState(setup, "dunning").migrate()
        for i in range(150):
            await Jobs(setup, "bot_dunning").schedule(f"fee:{i}", "dun", T0)

    async def instance(clock: ManualClock, stopped: trio.Event) -> None:
        async with open_store(db, min_size=1, max_size=3) as store:
            jobs = Jobs(store, "bot_dunning", clock=clock)

            async def dun(job: Job) -> None:
                await trio.sleep(0.001)
                done[job.key] += 1
                if len(done) == 150:
                    all_done.set()
            async with trio.open_nursery() as nursery:
                await nursery.start(jobs.run, {"dun": dun}, 7, 0.01)
                await stopped.wait()
                nursery.cancel_scope.cancel()

    stopped = trio.Event()
    clocks = [ManualClock(T0), ManualClock(T0)]
    async with trio.open_nursery() as nursery:
        for clock in clocks:
            nursery.start_soon(instance, clock, stopped)
        with trio.fail_after(20):
            await all_done.wait()
            for clock in clocks:  # each records what it ran, then looks for more, twice: nothing more happens
                await clock.wait_read(7 + 2)
        stopped.set()
    assert set(done) == {f"fee:{i}" for i in range(150)}
    assert set(done.values()) == {1}


async def test_failures_are_retried_with_backoff_then_given_up(db: str) -> None:
    calls: Counter[str] = Counter()

    async def flaky(job: Job) -> None:
        calls[job.key] += 1
        if job.key == "never" or calls[job.key] < 3:
            raise ConnectionError("SMS gateway timed out")

    clock = ManualClock(T0)
    keys = ("twice-then-ok", "never", "unknown-kind")
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_outbox", clock=clock)
        await BotState(store, "outbox").migrate()
        await jobs.schedule("twice-then-ok", "send", T0)
        await jobs.schedule("never", "send", T0, max_attempts=3)
        await jobs.schedule("unknown-kind", "no-such-kind", T0, max_attempts=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"send": flaky}, 20, 0.01)
            with trio.fail_after(10):
                while {(await jobs.state(k) or {}).get("state") for k in keys} != {"completed", "failed"}:
                    await clock.wait_read(2)  # the runner ran what was due by now
                    clock.advance(10 * MINUTE)  # past any backoff here
            nursery.cancel_scope.cancel()
        ok, never, unknown = [await jobs.state(k) or {} for k in keys]
    assert (ok["state"], ok["attempts"]) == ("completed", 3)
    assert (never["state"], never["attempts"]) == ("failed", 3)
    assert never["last_error"] == "ConnectionError: SMS gateway timed out"
    assert unknown["state"] == "failed" and "no handler" in unknown["last_error"]
    assert calls == {"twice-then-ok": 3, "never": 3}


async def test_a_handler_is_stopped_before_its_lease_ends_and_a_job_that_kills_its_runner_gives_up(db: str) -> None:
    clock = ManualClock(T0)
    stopped = trio.Event()
    async with open_store(db, min_size=1, max_size=2) as store:
        await BotState(store, "lease").migrate()
        jobs = Jobs(store, "bot_lease", lease_s=0.3, clock=clock)
        await jobs.schedule("slow", "slow", T0, max_attempts=1)

        async def slow(job: Job) -> None:
            try:
                await trio.sleep(10)  # would outlive its lease: another runner could start it meanwhile
            finally:
                stopped.set()
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"slow": slow}, 5, 0.01)
            with trio.fail_after(5):
                await stopped.wait()
                await clock.wait_read(2)  # its failure is recorded, and the runner looks for more
            nursery.cancel_scope.cancel()
        assert (await jobs.state("slow") or {})["state"] == "failed"
        assert "TooSlowError" in (await jobs.state("slow") or {})["last_error"]

        await jobs.schedule("crashes", "x", T0, max_attempts=2)
        for _ in range(2):  # each claiming runner "dies" holding it
            assert [j.key for j in await jobs.claim(5)] == ["crashes"]
            clock.advance(timedelta(seconds=1))  # its lease passes
        assert await jobs.claim(5) == []
        assert (await jobs.state("crashes") or {})["state"] == "failed"


async def test_the_most_urgent_due_job_is_claimed_first(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        await BotState(store, "dunning").migrate()
        jobs = Jobs(store, "bot_dunning", clock=ManualClock(T0))
        await jobs.schedule("routine", "dun", T0 - MINUTE)
        await jobs.schedule("overdue", "dun", T0 - timedelta(seconds=1), priority=10)
        await jobs.schedule("later", "dun", T0 + 60 * MINUTE, priority=99)  # urgent, but not due
        assert [j.key for j in await jobs.claim(1)] == ["overdue"]
        assert [j.key for j in await jobs.claim(5)] == ["routine"]


async def test_run_due_runs_exactly_what_is_due_by_a_given_time(db: str) -> None:
    """Tests drive a whole treatment cycle by date, with no sleeping (TRT-2)."""
    day0 = datetime(2026, 3, 1, 1, 0, tzinfo=UTC)
    ran: list[tuple[str, datetime]] = []

    async def remind(job: Job) -> None:
        ran.append((job.key, job.now))
        if job.key == "flaky" and job.attempt == 1:
            raise ConnectionError("gateway down")

    async with open_store(db, min_size=1, max_size=2) as store:
        await BotState(store, "pathway").migrate()
        jobs = Jobs(store, "bot_pathway", backoff_s=600)
        for key, day in (("day1", 1), ("day2", 2), ("flaky", 1)):
            await jobs.schedule(key, "remind", day0 + timedelta(days=day))
        assert await jobs.run_due({"remind": remind}, now=day0) == 0
        assert await jobs.run_due({"remind": remind}, now=day0 + timedelta(days=1)) == 2
        assert (await jobs.state("flaky") or {})["due_at"] == day0 + timedelta(days=1, seconds=600)  # backoff from then
        assert await jobs.run_due({"remind": remind}, now=day0 + timedelta(days=1, seconds=599)) == 0
        assert await jobs.run_due({"remind": remind}, now=day0 + timedelta(days=2)) == 2
    assert sorted(ran) == [("day1", day0 + timedelta(days=1)), ("day2", day0 + timedelta(days=2)),
                           ("flaky", day0 + timedelta(days=1)), ("flaky", day0 + timedelta(days=2))]

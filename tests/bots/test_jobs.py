"""Durable jobs in a bot's own schema: claimed with SKIP LOCKED, leased, fenced, retried (DESIGN rule 9)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import trio

from bots.framework.jobs import Job, Jobs
from bots.framework.state import BotState
from pgtrio.bridge import open_store


def soon(seconds: float = 0.0) -> datetime:
    return datetime.now(UTC) + timedelta(seconds=seconds)


async def test_scheduling_is_idempotent_by_key(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_echo")
        assert await BotState(store, "echo").migrate() == [1, 2, 3, 4, 5]
        assert await jobs.schedule("remind:42:2026-12-01", "remind", soon(60), {"patient": 42})
        assert not await jobs.schedule("remind:42:2026-12-01", "remind", soon(1), {"patient": 42})
        assert (await jobs.state("remind:42:2026-12-01") or {})["state"] == "requested"
        assert await jobs.claim(10) == []  # not due yet


async def test_a_job_due_later_runs_once_after_a_restart_in_between(db: str) -> None:
    ran: list[tuple[str, int]] = []

    async def remind(job: Job) -> None:
        ran.append((job.key, job.attempt))

    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_pathway")
        await BotState(store, "pathway").migrate()
        await jobs.schedule("notice:1", "remind", soon(0.8))
        async with trio.open_nursery() as nursery:  # the first process runs a while, then stops before it is due
            await nursery.start(jobs.run, {"remind": remind})
            await trio.sleep(0.3)
            nursery.cancel_scope.cancel()
    assert ran == []
    async with open_store(db, min_size=1, max_size=2) as store:  # the restarted process
        jobs = Jobs(store, "bot_pathway")
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"remind": remind}, 20, 0.05)
            with trio.fail_after(5):
                while (await jobs.state("notice:1") or {}).get("state") != "completed":  # noqa: ASYNC110
                    await trio.sleep(0.05)
            await trio.sleep(0.3)  # and nothing more happens
            nursery.cancel_scope.cancel()
    assert ran == [("notice:1", 1)]


async def test_a_runner_that_dies_mid_job_loses_nothing_and_its_late_result_is_fenced(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_followup", lease_s=0.3)
        await BotState(store, "followup").migrate()
        await jobs.schedule("call:7", "call", soon())
        (first,) = await jobs.claim(5)  # this runner "dies" holding the job
        assert await jobs.claim(5) == []  # leased: nobody else takes it meanwhile
        await trio.sleep(0.4)
        (second,) = await jobs.claim(5)  # the lease passed: another runner takes it
        assert (second.key, second.attempt) == ("call:7", 2)
        assert not await jobs.complete(first)  # the dead runner's late result does not count
        assert await jobs.complete(second)
        assert (await jobs.state("call:7") or {})["state"] == "completed"


async def test_two_instances_never_run_the_same_job(db: str) -> None:
    done: Counter[str] = Counter()
    async with open_store(db, min_size=1, max_size=2) as setup:
        await BotState(setup, "dunning").migrate()
        for i in range(150):
            await Jobs(setup, "bot_dunning").schedule(f"fee:{i}", "dun", soon())

    async def instance(stopped: trio.Event) -> None:
        async with open_store(db, min_size=1, max_size=3) as store:
            jobs = Jobs(store, "bot_dunning")

            async def dun(job: Job) -> None:
                await trio.sleep(0.001)
                done[job.key] += 1
            async with trio.open_nursery() as nursery:
                await nursery.start(jobs.run, {"dun": dun}, 7, 0.02)
                await stopped.wait()
                nursery.cancel_scope.cancel()

    stopped = trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(instance, stopped)
        nursery.start_soon(instance, stopped)
        with trio.fail_after(20):
            while len(done) < 150:  # noqa: ASYNC110
                await trio.sleep(0.05)
        await trio.sleep(0.2)
        stopped.set()
    assert set(done) == {f"fee:{i}" for i in range(150)}
    assert set(done.values()) == {1}


async def test_failures_are_retried_with_backoff_then_given_up(db: str) -> None:
    calls: Counter[str] = Counter()

    async def flaky(job: Job) -> None:
        calls[job.key] += 1
        if job.key == "never" or calls[job.key] < 3:
            raise ConnectionError("SMS gateway timed out")

    async with open_store(db, min_size=1, max_size=2) as store:
        jobs = Jobs(store, "bot_outbox", backoff_s=0.05)
        await BotState(store, "outbox").migrate()
        await jobs.schedule("twice-then-ok", "send", soon())
        await jobs.schedule("never", "send", soon(), max_attempts=3)
        await jobs.schedule("unknown-kind", "no-such-kind", soon(), max_attempts=1)
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"send": flaky}, 20, 0.02)
            with trio.fail_after(10):
                while {(await jobs.state(k) or {}).get("state") for k in ("twice-then-ok", "never", "unknown-kind")} \
                        != {"completed", "failed"}:  # noqa: ASYNC110
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        ok, never, unknown = [await jobs.state(k) or {} for k in ("twice-then-ok", "never", "unknown-kind")]
    assert (ok["state"], ok["attempts"]) == ("completed", 3)
    assert (never["state"], never["attempts"]) == ("failed", 3)
    assert never["last_error"] == "ConnectionError: SMS gateway timed out"
    assert unknown["state"] == "failed" and "no handler" in unknown["last_error"]
    assert calls == {"twice-then-ok": 3, "never": 3}


async def test_a_handler_is_stopped_before_its_lease_ends_and_a_job_that_kills_its_runner_gives_up(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        await BotState(store, "lease").migrate()
        jobs = Jobs(store, "bot_lease", lease_s=0.3, backoff_s=0.01)
        await jobs.schedule("slow", "slow", soon(), max_attempts=1)

        async def slow(job: Job) -> None:
            await trio.sleep(10)  # would outlive its lease: another runner could start it meanwhile
        async with trio.open_nursery() as nursery:
            await nursery.start(jobs.run, {"slow": slow}, 5, 0.02)
            with trio.fail_after(5):
                while (await jobs.state("slow") or {}).get("state") != "failed":  # noqa: ASYNC110
                    await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        assert "TooSlowError" in (await jobs.state("slow") or {})["last_error"]

        await jobs.schedule("crashes", "x", soon(), max_attempts=2)
        for _ in range(2):  # each claiming runner "dies" holding it
            assert [j.key for j in await jobs.claim(5)] == ["crashes"]
            await trio.sleep(0.35)
        assert await jobs.claim(5) == []
        assert (await jobs.state("crashes") or {})["state"] == "failed"


async def test_the_most_urgent_due_job_is_claimed_first(db: str) -> None:
    async with open_store(db, min_size=1, max_size=2) as store:
        await BotState(store, "dunning").migrate()
        jobs = Jobs(store, "bot_dunning")
        await jobs.schedule("routine", "dun", soon(-60))
        await jobs.schedule("overdue", "dun", soon(-1), priority=10)
        await jobs.schedule("later", "dun", soon(3600), priority=99)  # urgent, but not due
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

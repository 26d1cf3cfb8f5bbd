"""The coordinator of a load run: plans who does what, drives the workers, checks and measures.

One run: mint sessions, start the worker processes (each connects its share of
users), then for each offered rate let them send for ``duration_s``, wait for
the deliveries to drain, and compare what every receiver got with what
Postgres stored (the durable truth). Server CPU and memory come from its
``/metrics``; the machine's and Postgres's CPU from ``/proc``.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
import urllib.request
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import msgspec
import trio

from imserver.admin import Admin
from load import setup
from load.scenario import Scenario
from load.stats import Histogram


@dataclass
class Plan:
    """Every online user and churner of a run, as worker job specs."""

    agents: list[dict[str, Any]]
    churners: list[dict[str, Any]]
    positions: dict[str, int]
    """Where each conversation was when the run began (address: last seq)."""
    storm_convs: list[str]
    flooders: list[dict[str, Any]]


async def make_plan(admin: Admin, scenario: Scenario) -> Plan:
    layout = await setup.layout_of(admin, scenario)
    convs_of: dict[int, list[str]] = defaultdict(list)
    sends: dict[int, list[str]] = defaultdict(list)
    for group in range(scenario.groups):
        addr = layout.groups[group]
        for k, number in enumerate(scenario.group_members(group)):
            user = scenario.member(number)
            convs_of[user].append(addr)
            if k < scenario.senders:
                sends[user].append(addr)
    for pair in range(scenario.dm_pairs):
        addr = layout.pairs[pair]
        for user in (2 * pair, 2 * pair + 1):
            convs_of[user].append(addr)
            sends[user].append(addr)
    online = sorted(set(range(scenario.online)) | set(sends))
    churn = [n for n in range(scenario.online, scenario.online + scenario.churn_users) if n not in sends]
    tokens = await setup.mint_tokens(admin, [layout.user_ids[n] for n in online + churn] + layout.flooders)
    storm = {n for n in online if n not in sends}
    storm = set(sorted(storm)[: scenario.reconnect_storm])
    agents = [
        {"id": layout.user_ids[n], "token": tokens[i], "convs": convs_of[n], "sends": sends[n], "storm": n in storm}
        for i, n in enumerate(online)
    ]
    churners = [{"id": layout.user_ids[n], "token": tokens[len(online) + i]} for i, n in enumerate(churn)]
    flood_tokens = tokens[len(online) + len(churn):]
    flooders = [{"id": user, "token": token, "conv": conv}
                for user, token, conv in zip(layout.flooders, flood_tokens, layout.flood_groups, strict=True)]
    positions = await admin.last_seqs(layout.addresses())
    storm_convs = sorted({c for n in storm for c in convs_of[n]})
    return Plan(agents, churners, positions, storm_convs, flooders)


class WorkerProcess:
    """One ``python -m load.worker`` child and its line protocol."""

    def __init__(self, process: trio.Process) -> None:
        self.process = process
        self._buffer = b""

    async def tell(self, **command: Any) -> None:
        assert self.process.stdin is not None
        await self.process.stdin.send_all((json.dumps(command, ensure_ascii=False) + "\n").encode())

    async def hear(self, event: str) -> dict[str, Any]:
        """The next message from the worker, which must be ``event``. Error handling: RuntimeError if it died."""
        assert self.process.stdout is not None
        while b"\n" not in self._buffer:
            chunk = await self.process.stdout.receive_some(1 << 20)
            if not chunk:
                raise RuntimeError(f"load worker exited (status {self.process.poll()}) while we waited for {event}")
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        message: dict[str, Any] = json.loads(line)
        if message.get("event") != event:
            raise RuntimeError(f"load worker said {message.get('event')!r}, expected {event!r}")
        return message


async def _ask(
    workers: list[WorkerProcess], event: str, command: dict[str, Any] | None = None,
    *, each: list[dict[str, Any]] | None = None,
) -> list[dict[str, Any]]:
    """Send ``command`` (or ``each[i]`` to worker i; or nothing) and gather the ``event`` answers concurrently."""
    answers: list[dict[str, Any]] = [{} for _ in workers]

    async def one(i: int) -> None:
        told = each[i] if each is not None else command
        if told is not None:
            await workers[i].tell(**told)
        answers[i] = await workers[i].hear(event)
    async with trio.open_nursery() as nursery:
        for i in range(len(workers)):
            nursery.start_soon(one, i)
    return answers


SAMPLE_EVERY = 5.0
"""Seconds between samples. A scrape costs a server with 10,000 connections ~15 ms of its own CPU (the process
collector lists /proc/self/fd): once a second that was 1.5 % of a core counted against the server."""


class Sampler:
    """Server CPU and RSS from its /metrics, machine and Postgres CPU from /proc, every ``SAMPLE_EVERY`` seconds
    (and when a phase begins and ends: the CPU figures are over whole phases)."""

    def __init__(self, metrics_url: str | None) -> None:
        self.metrics_url = metrics_url
        self.samples: list[dict[str, float]] = []

    async def run(self) -> None:
        while True:
            self.samples.append(await self.sample())
            await trio.sleep(SAMPLE_EVERY)

    async def sample(self) -> dict[str, float]:
        found: dict[str, float] = {"t": time.monotonic(), **_proc_cpu()}
        if self.metrics_url:
            try:
                text = await trio.to_thread.run_sync(_fetch, self.metrics_url)
            except OSError:
                return found
            found["shed"] = 0.0
            for line in text.splitlines():
                name, _, value = line.partition(" ")
                if name in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
                    found[name] = float(value)
                elif name.startswith("imserver_sends_shed_total{"):
                    found["shed"] = found.get("shed", 0.0) + float(value)
        return found

    def window(self, start: dict[str, float], end: dict[str, float]) -> dict[str, float | None]:
        wall = end["t"] - start["t"]
        def pct(key: str) -> float | None:
            if key not in start or key not in end or wall <= 0:
                return None
            return round(100 * (end[key] - start[key]) / wall, 1)
        rss = [s["process_resident_memory_bytes"] for s in (start, *self.samples, end)
               if start["t"] <= s["t"] <= end["t"] and "process_resident_memory_bytes" in s]
        return {
            "server_shed": int(end["shed"] - start.get("shed", 0)) if "shed" in end else None,
            "server_cpu_pct": pct("process_cpu_seconds_total"),
            "server_rss_mb": _mb(max(rss)) if rss else None,
            "postgres_cpu_pct": pct("postgres_cpu_s"),
            "machine_cpu_pct": pct("machine_busy_s"),
        }


def _mb(size: float | None) -> float | None:
    return None if size is None else round(size / 2**20, 1)


def _fetch(url: str) -> str:
    with urllib.request.urlopen(url, timeout=2) as answer:
        return str(answer.read().decode())


_TICKS = os.sysconf("SC_CLK_TCK")


def _proc_cpu() -> dict[str, float]:
    """CPU seconds used so far by the whole machine and by Postgres processes."""
    found: dict[str, float] = {}
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
        found["machine_busy_s"] = (sum(fields) - fields[3] - fields[4]) / _TICKS  # minus idle and iowait
    except OSError:
        return found
    postgres = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        name = stat[stat.find("(") + 1:stat.rfind(")")]
        if name == "postgres":
            rest = stat[stat.rfind(")") + 2:].split()
            postgres += int(rest[11]) + int(rest[12]) + int(rest[13]) + int(rest[14])  # utime stime cutime cstime
    found["postgres_cpu_s"] = postgres / _TICKS
    return found


@dataclass
class Run:
    scenario: Scenario
    url: str
    admin: Admin
    metrics_url: str | None
    log: Any = field(default=sys.stderr)
    _load_cpu_s: float = 0.0
    """CPU seconds the workers had used when the previous step ended."""
    _counted: tuple[int, int] = (0, 0)
    """Expected and delivered deliveries of the steps before this one (the workers count from the run's start)."""
    _acked: dict[str, dict[str, int]] = field(default_factory=dict)
    """Acks received since the run began: conversation -> sender id -> count."""

    def say(self, text: str) -> None:
        print(f"[imload {time.strftime('%H:%M:%S')}] {text}", file=self.log, flush=True)

    async def execute(self, rates: list[float]) -> dict[str, Any]:
        scenario = self.scenario
        plan = await make_plan(self.admin, scenario)
        sampler = Sampler(self.metrics_url)
        self.say(f"{len(plan.agents)} users online, {len(plan.churners)} churners, {scenario.workers} workers")
        async with trio.open_nursery() as nursery:
            nursery.start_soon(sampler.run)
            workers = await self._start_workers(nursery, plan)
            ready = await _ask(workers, "ready")
            connected = sum(r["connected"] for r in ready)
            failures = _merge_counts(r["failed"] for r in ready)
            self.say(f"connected {connected} in {max(r['seconds'] for r in ready)} s; failures {failures or 'none'}")
            idle_before = await sampler.sample()
            steps = []
            for rate in rates:
                steps.append(await self._step(workers, plan, sampler, rate))
            storm = await self._storm(workers, plan) if scenario.reconnect_storm else None
            await _ask(workers, "bye", {"cmd": "quit"})
            nursery.cancel_scope.cancel()
        return {
            "scenario": msgspec.to_builtins(scenario),
            "connected": connected, "connect_failures": failures,
            "steps": steps, "reconnect_storm": storm,
            "idle_server_rss_mb": _mb(idle_before.get("process_resident_memory_bytes")),
        }

    async def _start_workers(self, nursery: trio.Nursery, plan: Plan) -> list[WorkerProcess]:
        scenario = self.scenario
        filler = setup.chat_text(scenario.body_bytes - 17)  # after the 16-hex-digit send stamp and a space
        workers = []
        flood_workers = scenario.flood.workers if scenario.flood else 0
        for w in range(scenario.workers + flood_workers):
            process = await nursery.start(_spawn)
            worker = WorkerProcess(process)
            light = w < scenario.workers  # flooders have processes of their own: they must not slow the light
            await worker.tell(
                url=self.url, scenario=msgspec.to_builtins(scenario), filler=filler, positions=plan.positions,
                agents=plan.agents[w::scenario.workers] if light else [],
                churners=plan.churners[w::scenario.workers] if light else [],
                flooders=[] if light else plan.flooders[w - scenario.workers::flood_workers],
            )
            workers.append(worker)
        return workers

    async def _step(
        self, workers: list[WorkerProcess], plan: Plan, sampler: Sampler, rate: float
    ) -> dict[str, Any]:
        scenario = self.scenario
        slots = [len(a["sends"]) for a in plan.agents]
        per_worker = [sum(slots[w::scenario.workers]) if w < scenario.workers else 0 for w in range(len(workers))]
        total = sum(per_worker) or 1
        self.say(f"offering {rate:g} messages/s for {scenario.duration_s:g} s")
        before = await sampler.sample()
        began = time.time()
        sent = await _ask(workers, "sent", each=[
            {"cmd": "traffic", "rate": rate * n / total, "duration": scenario.duration_s,
             "churn_per_s": scenario.churn_per_s / scenario.workers}
            for n in per_worker
        ])
        after = await sampler.sample()
        elapsed = max(s["seconds"] for s in sent[:scenario.workers])  # the light traffic's, not a flood's tail
        checked, stored = await self._drain(workers, plan)
        tallies = [c["tally"] for c in checked]
        ack, deliver = Histogram(), Histogram()
        for t in tallies:
            ack.merge(Histogram.from_json(t["ack"]))
            deliver.merge(Histogram.from_json(t["deliver"]))
        accepted = sum(s["tally"]["accepted"] for s in sent)
        delivered = sum(t["delivered"] for t in tallies)
        result = {
            "offered_per_s": rate,
            "seconds": elapsed,
            "sent": sum(s["tally"]["sent"] for s in sent),
            "accepted": accepted,
            "accepted_per_s": round(accepted / elapsed, 1),
            "errors": _merge_counts(s["tally"]["errors"] for s in sent),
            "behind_schedule": sum(s["tally"]["behind"] for s in sent),
            "expected_deliveries": sum(c["expected"] for c in checked) - self._counted[0],
            "delivered": sum(c["delivered"] for c in checked) - self._counted[1],
            "delivered_per_s": round(delivered / elapsed, 1),
            "missing": sum(c["missing"] for c in checked),
            "unexpected": sum(c["extra"] for c in checked),
            "duplicates": sum(t["duplicates"] for t in tallies),
            "out_of_order": sum(t["out_of_order"] for t in tallies),
            "reconnects": sum(t["reconnects"] for t in tallies),
            "churned": sum(t["churned"] for t in tallies),
            "stored": checked[0]["stored_total"] if checked else 0,
            "send_to_ack_ms": ack.summary(),
            "send_to_deliver_ms": deliver.summary(),
            **sampler.window(before, after),
            "load_cpu_pct": round(100 * (sum(c["cpu_s"] for c in checked) - self._load_cpu_s) / elapsed, 1),
            "worst_deliver_ms_by_second": _worst_by_second(tallies),
            **self._acked_against(sent, stored),
        }
        if scenario.flood:
            result["flood"] = _flood_result(scenario, began, sent, tallies)
        self._counted = (self._counted[0] + result["expected_deliveries"], self._counted[1] + result["delivered"])
        self._load_cpu_s = sum(c["cpu_s"] for c in checked)
        result["complete"] = (
            result["missing"] == 0 and result["duplicates"] == 0 and result["out_of_order"] == 0
            and result["unexpected"] == 0 and result["acked_not_stored"] == 0
        )
        result["passes"] = (
            result["complete"] and not result["errors"]
            and result["accepted_per_s"] >= 0.95 * rate
            and result["send_to_deliver_ms"]["p99"] <= scenario.p99_target_ms
        )
        self.say(
            f"accepted {result['accepted_per_s']}/s, delivered {result['delivered_per_s']}/s, "
            f"p99 deliver {result['send_to_deliver_ms']['p99']} ms, missing {result['missing']}, "
            f"dup {result['duplicates']}, server cpu {result['server_cpu_pct']} %"
        )
        if "flood" in result:
            flood = result["flood"]
            self.say(f"light p99 deliver before / during / after the flood: {flood['light_p99_ms']} ms; "
                     f"recovered {flood['recovered_after_s']} s after it; flood acked {flood['acked_per_s']}/s, "
                     f"errors {flood['errors'] or 'none'}")
        return result

    def _acked_against(self, sent: list[dict[str, Any]], stored: dict[str, dict[str, int]]) -> dict[str, int]:
        """Acks received so far in the run (light and flood senders) against what Postgres stored, per sender and
        conversation: an acked message missing from the database is lost; more stored than acked is a message
        stored without its ack reaching the sender (or twice)."""
        for s in sent:
            for conv, senders in s["tally"]["acked"].items():
                mine = self._acked.setdefault(conv, {})
                for sender, n in senders.items():
                    mine[sender] = mine.get(sender, 0) + n
        lost = extra = 0
        for conv in self._acked.keys() | stored.keys():
            acked, found = self._acked.get(conv, {}), stored.get(conv, {})
            for sender in acked.keys() | found.keys():
                lost += max(acked.get(sender, 0) - found.get(sender, 0), 0)
                extra += max(found.get(sender, 0) - acked.get(sender, 0), 0)
        return {"acked_not_stored": lost, "stored_not_acked": extra}

    async def _drain(
        self, workers: list[WorkerProcess], plan: Plan
    ) -> tuple[list[dict[str, Any]], dict[str, dict[str, int]]]:
        """Check until every receiver has everything stored, or ``drain_s`` has passed; the checks and what
        each sender stored in each conversation."""
        deadline = time.monotonic() + self.scenario.drain_s
        while True:
            stored = await self.admin.stored_since(plan.positions)
            by_address = {conv: {str(s): n for s, n in senders.items()} for conv, senders in stored.items()}
            checked = await _ask(workers, "checked", {"cmd": "check", "stored": by_address})
            total = sum(sum(s.values()) for s in by_address.values())
            for c in checked:
                c["stored_total"] = total
            if sum(c["missing"] for c in checked) == 0 or time.monotonic() > deadline:
                return checked, by_address
            await trio.sleep(0.5)

    async def _storm(self, workers: list[WorkerProcess], plan: Plan) -> dict[str, Any]:
        scenario = self.scenario
        dropped = sum(d["count"] for d in await _ask(workers, "dropped", {"cmd": "drop"}))
        self.say(f"storm: {dropped} dropped; {scenario.storm_missed} messages into {len(plan.storm_convs)} convs")
        owner: dict[str, int] = {}  # one sender per conversation, so each gets exactly storm_missed messages
        for i, agent in enumerate(plan.agents):
            for conv in agent["sends"]:
                owner.setdefault(conv, i % scenario.workers)
        await _ask(workers, "burst", each=[{
            "cmd": "burst", "count": scenario.storm_missed,
            "convs": [c for c in plan.storm_convs if owner.get(c) == w],
        } for w in range(len(workers))])
        started = time.monotonic()
        back = await _ask(workers, "reconnected", {"cmd": "reconnect"})
        seconds = time.monotonic() - started
        checked, _ = await self._drain(workers, plan)
        synced = Histogram()
        for b in back:
            synced.merge(Histogram.from_json(b["synced"]))
        result = {
            "clients": dropped, "missed_each": scenario.storm_missed,
            "reconnected": sum(b["count"] for b in back),
            "failures": _merge_counts(b["failed"] for b in back),
            "all_synced_s": round(seconds, 2),
            "synced_s": {k: round(v / 1000, 2) for k, v in synced.summary().items() if k != "count"},
            "missing": sum(c["missing"] for c in checked),
            "duplicates": sum(c["tally"]["duplicates"] for c in checked),
            "out_of_order": sum(c["tally"]["out_of_order"] for c in checked),
        }
        self.say(f"storm: {result['reconnected']} back and synced in {result['all_synced_s']} s, "
                 f"missing {result['missing']}, duplicates {result['duplicates']}")
        return result


async def _spawn(*, task_status: trio.TaskStatus[trio.Process]) -> None:
    """A worker process owned by the run's nursery: killed if the run ends early."""
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "load.worker"], stdin=-1, stdout=-1,
    )
    try:
        task_status.started(process)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


def _worst_by_second(tallies: list[dict[str, Any]]) -> list[float]:
    """The slowest delivery of the messages sent in each second of the step, in order: a stall shows as a bump."""
    worst: dict[int, float] = {}
    for t in tallies:
        for second, ms in t["worst"].items():
            worst[int(second)] = max(worst.get(int(second), 0.0), ms)
    return [round(worst[s], 1) for s in sorted(worst)]


def _flood_result(
    scenario: Scenario, began: float, sent: list[dict[str, Any]], tallies: list[dict[str, Any]]
) -> dict[str, Any]:
    """The light traffic before, during and after the flood (by the second each message was sent in), how long
    after the flood its p99 send→deliver stayed within ``p99_target_ms`` for good, and what the flooders got."""
    assert scenario.flood is not None
    start = began + scenario.flood.start_s
    end = start + scenario.flood.duration_s
    deliver: dict[int, Histogram] = {}
    ack: dict[int, Histogram] = {}
    for t in tallies:
        for into, key in ((deliver, "deliver_by_second"), (ack, "ack_by_second")):
            for second, h in t[key].items():
                into.setdefault(int(second), Histogram()).merge(Histogram.from_json(h))
    windows = {"before": (began, start), "during": (start, end), "after": (end, math.inf)}

    def window(by_second: dict[int, Histogram], since: float, until: float) -> Histogram:
        merged = Histogram()
        for second, h in by_second.items():
            if since <= second + 0.5 < until:  # a second belongs where most of it lies
                merged.merge(h)
        return merged
    p99 = {s: round(deliver[s].percentile_ms(0.99), 1) for s in sorted(deliver)}
    late = [s for s in p99 if s + 1 > end and p99[s] > scenario.p99_target_ms]
    flood = _merge_counts(s["tally"]["flood"] for s in sent)
    answered = max(s["tally"]["flood_done_s"] for s in sent)
    return {
        "window_s": [round(start - began, 1), round(end - began, 1)],
        "last_answer_after_s": round(answered - (end - began), 1),
        "light_deliver_ms": {name: window(deliver, *w).summary() for name, w in windows.items()},
        "light_ack_ms": {name: window(ack, *w).summary() for name, w in windows.items()},
        "light_p99_ms": [window(deliver, *w).summary()["p99"] for w in windows.values()],
        "recovered_after_s": round(max(max(late, default=end) + 1 - end, 0), 1) if late else 0.0,
        "light_p99_ms_by_second": list(p99.values()),
        "sent": flood.get("sent", 0), "acked": flood.get("acked", 0),
        "acked_per_s": round(flood.get("acked", 0) / scenario.flood.duration_s, 1),
        "errors": {k[6:]: v for k, v in flood.items() if k.startswith("error:")},
    }


def _merge_counts(counts: Any) -> dict[str, int]:
    merged: dict[str, int] = {}
    for c in counts:
        for key, n in c.items():
            merged[key] = merged.get(key, 0) + n
    return merged

"""The pathway bot's durable jobs (EDU-3, EDU-4, IM-2, TRT-2): what happens when a node, a procedure's items or a
doctor's order falls due. Each job is idempotent: messages carry fixed client ids (``pw:...``), so a job run again
after a crash sends nothing twice; a job whose date has since changed, or whose cycle ended, does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import date
from typing import Any

from bots.framework.jobs import Handler, Job
from bots.framework.outbox import Outbox
from bots.pathway.definition import Item, Node
from bots.pathway.render import Outgoing, item_message, treatment_message
from bots.pathway.store import CycleRow, PathwayStore
from clients.python import Client, ClientError

log = logging.getLogger(__name__)


class Work:
    def __init__(self, outbox: Outbox, files: Mapping[str, dict[str, Any]] | None = None) -> None:
        self.outbox = outbox
        self.store = PathwayStore(outbox.state)
        self.files = dict(files or {})
        """The stored attachment of each file the pathways ship (uploaded at start)."""

    def handlers(self) -> dict[str, Handler]:
        return {"node": self.node, "treatment": self.treatment, "order": self.order}

    @property
    def client(self) -> Client:
        if self.outbox.client is None:
            raise RuntimeError("the bot is not connected; the job is tried again later")
        return self.outbox.client

    async def node(self, job: Job) -> None:
        """Her node begins: move her (her husband follows) into the node's group, send its welcome and content."""
        cycle = await self.store.cycle(job.payload["cycle"])
        if cycle is None:
            return
        node = cycle.pathway.node(job.payload["node"])
        if cycle.cycle.node_date(node) != date.fromisoformat(job.payload["day"]):
            return  # the date changed since: the job for the new date does it
        await self._move(cycle, node, job)
        for item in (*node.welcome, *node.content):
            await self._send_item(cycle, node.key, item, job)

    async def treatment(self, job: Job) -> None:
        """A procedure's items (TRT-1, TRT-2), in her service conversation."""
        cycle = await self.store.cycle(job.payload["cycle"])
        day = date.fromisoformat(job.payload["day"])
        procedure = job.payload["procedure"]
        if cycle is None or cycle.dates.get(procedure) != day:
            return
        treatment = cycle.pathway.node(job.payload["node"]).treatment[procedure]
        await self._send(cycle, job.payload["node"], f"treatment:{procedure}", treatment_message(treatment, day), job)

    async def order(self, job: Job) -> None:
        """Education for a doctor's order (EDU-4), as soon as the order arrives."""
        cycle = await self.store.cycle(job.payload["cycle"])
        if cycle is None:
            return
        rule = next(r for r in cycle.pathway.orders if r.key == job.payload["rule"])
        for item in rule.items:
            await self._send(cycle, "orders", f"order:{rule.key}:{item.key}", item_message(item, self.files), job)

    async def _send_item(self, cycle: CycleRow, node: str, item: Item, job: Job) -> None:
        if item.file and item.file not in self.files:
            log.warning("a pathway file is missing; item skipped", extra={"file": item.file, "item": item.key})
            return
        await self._send(cycle, node, item.key, item_message(item, self.files), job)

    async def _send(self, cycle: CycleRow, node: str, item: str, out: Outgoing, job: Job) -> None:
        conv = f"u:{cycle.patient}"
        ack = await self.client.send(conv, out.text, kind=out.kind, body=out.body, cid=f"pw:{cycle.id}:{node}:{item}")
        await self.store.delivered(cycle.id, node, item, out.kind, ack["conv"], ack["seq"], job.now)

    async def _move(self, cycle: CycleRow, node: Node, job: Job) -> None:
        group = await self._group(cycle, node)
        previous = await self.store.current_group(cycle.id)
        if previous == group:
            return
        await self.client.request("group_add", conv=group, user=cycle.patient)
        if previous is not None:
            try:
                await self.client.request("group_remove", conv=previous, user=cycle.patient)
            except ClientError as exc:
                if exc.code != "not_found":  # she had left already
                    raise
        await self.store.moved(cycle.id, previous, group, job.now)

    async def _group(self, cycle: CycleRow, node: Node) -> str:
        """The node's group, created by the bot the first time a patient reaches the node."""
        found = await self.store.node_group(cycle.pathway.key, node.key)
        if found is not None:
            return found
        made = await self.client.request("group_create", name=node.group)
        return await self.store.keep_node_group(cycle.pathway.key, node.key, made["conv"])

"""Group commit: concurrent sends share commits, and each is acked only once it is stored (DESIGN rule 1)."""

from __future__ import annotations

import trio

from clients.python import open_client
from imserver import metrics
from imserver.model import Role
from protocol.frames import SendAnswer
from tests.conftest import PASSWORD, Running


def batches() -> tuple[float, float]:
    """(batches committed, messages in them) so far, from the server's own histogram."""
    samples = {s.name: s.value for s in metrics.BATCH_SIZE.collect()[0].samples}
    return samples["imserver_batch_size_count"], samples["imserver_batch_size_sum"]


async def test_concurrent_sends_share_commits_and_every_ack_is_stored(server: Running) -> None:
    await server.user("bot", Role.BOT)
    count_before, sum_before = batches()
    acks: list[SendAnswer] = []
    async with open_client(server.url, username="bot", password=PASSWORD) as bot:
        group = (await bot.request("group_create", name="g"))["conv"]

        async def sender(n: int) -> None:
            for i in range(25):
                acks.append(await bot.send(group, f"{n}-{i}"))
        async with trio.open_nursery() as nursery:
            for n in range(16):
                nursery.start_soon(sender, n)
        (stored,) = await bot.sync({group: 0}, limit=500)
    count_after, sum_after = batches()
    committed, messages = count_after - count_before, sum_after - sum_before
    assert messages >= 400 and committed < messages, "400 concurrent sends must not take 400 commits"
    assert sorted(a.seq for a in acks) == list(range(1, 401))
    assert [(m.seq, m.id) for m in stored.messages] == sorted((a.seq, a.id) for a in acks)

"""The pathway bot's store on a fresh database, migrated, with the shipped IVF pathway published."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from bots.framework.state import BotState
from bots.pathway.definition import shipped
from bots.pathway.store import PathwayStore
from pgtrio.bridge import open_store


@pytest.fixture
async def store(db: str) -> AsyncIterator[PathwayStore]:
    async with open_store(db, min_size=1, max_size=2) as pool:
        state = BotState(pool, "pathway", "bots.pathway.migrations")
        await state.migrate()
        pathways = PathwayStore(state)
        await pathways.publish(next(p for p in shipped() if p.key == "ivf"))
        yield pathways

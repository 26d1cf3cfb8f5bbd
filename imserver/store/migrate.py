"""The server's schema: the SQL files in ``imserver/migrations``, applied by ``pgtrio.migrate``."""

from __future__ import annotations

from pgtrio import migrate as _migrations
from pgtrio.bridge import Store

PACKAGE = "imserver.migrations"


def available() -> list[_migrations.Migration]:
    return _migrations.available(PACKAGE)


async def migrate(store: Store) -> list[int]:
    """Apply every pending server migration in one transaction; return the versions applied."""
    return await _migrations.migrate(store, PACKAGE)

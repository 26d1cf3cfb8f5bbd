"""``imserver migrate``: ordered SQL files, each applied once and recorded (the store)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess

import asyncpg
import pytest

from imserver.store.migrate import available
from tests.conftest import admin_sql, with_database
from tests.helpers import script


def recorded_versions(dsn: str) -> list[int]:
    async def read() -> list[int]:
        conn = await asyncpg.connect(dsn)
        try:
            return [r[0] for r in await conn.fetch("select version from schema_migrations order by version")]
        finally:
            await conn.close()
    return asyncio.run(read())


@pytest.mark.slow
def test_migrate_applies_each_file_once_and_run_refuses_an_old_schema(postgres: str) -> None:
    name = "imtest_migrate_" + os.urandom(4).hex()
    admin_sql(postgres, f"create database {name}")
    dsn = with_database(postgres, name)
    env = {**os.environ, "DATABASE_URL": dsn}

    def imserver(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([script("imserver"), *args], env=env, capture_output=True, text=True, timeout=60)
    try:
        run = imserver("run", "--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0")
        assert run.returncode != 0 and "imserver migrate" in run.stderr
        everything = [m.version for m in available()]
        assert json.loads(imserver("migrate").stdout) == {"applied": everything}
        assert json.loads(imserver("migrate").stdout) == {"applied": []}
        assert recorded_versions(dsn) == everything
    finally:
        admin_sql(postgres, f"drop database if exists {name} with (force)")

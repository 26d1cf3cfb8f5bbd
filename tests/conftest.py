"""Shared fixtures: a real Postgres (never a mock), a fresh database per test, a real server on real sockets.

Postgres comes from TEST_DATABASE_URL, else the local server on 127.0.0.1:5432,
else a private cluster started from the local binaries (imserver.pgcluster).
Each test gets a database of its own holding the migrated schema and nothing else (tests/databases.py).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import AsyncIterator, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import trio
from argon2 import PasswordHasher, profiles

from imserver.config import Settings
from imserver.model import Role, User
from imserver.pgcluster import PrivateCluster
from imserver.server import Addresses, ChatServer, open_keys
from imserver.store import accounts
from imserver.store.migrate import migrate
from pgtrio.bridge import Store, open_store
from protocol.clock import Clock, system_clock
from tests.databases import Databases, admin_sql, with_database

PASSWORD = "secret-pass-1"
PASSWORD_HASH = PasswordHasher.from_parameters(profiles.CHEAPEST).hash(PASSWORD)
"""The password hash of the tests' accounts: argon2id as the server stores it, at argon2's cheapest cost. The
server checks it as any other; at the production cost, checking it at every login and making it for every
account took a large part of the suite's time."""


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """A test that starts a process must be marked ``slow`` (``make test-fast`` leaves those out): one that is not
    fails when it tries."""
    if item.get_closest_marker("slow"):
        return (yield)

    def refused(*args: Any, **kwargs: Any) -> None:
        raise AssertionError(f"{item.nodeid} starts a process: mark it @pytest.mark.slow")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(subprocess.Popen, "_execute_child", refused)
        return (yield)


def _reachable(dsn: str) -> bool:
    try:
        admin_sql(dsn, "select 1")
        return True
    except (OSError, asyncpg.PostgresError):
        return False


@pytest.fixture(scope="session")
def postgres() -> Iterator[str]:
    """An admin DSN for a Postgres server the tests may create databases on."""
    dsn = os.environ.get("TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    if _reachable(dsn):
        yield dsn
        return
    folder = Path(tempfile.mkdtemp(prefix="imserver-test-", dir="/var/tmp"))
    try:
        with PrivateCluster(folder) as private:
            yield private
    finally:
        shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="session")
def template_db(postgres: str) -> Iterator[str]:
    name = f"imtest_tpl_{uuid.uuid4().hex[:8]}"
    admin_sql(postgres, f"create database {name}")

    async def setup() -> None:
        async with open_store(with_database(postgres, name), min_size=1, max_size=1) as store:
            await migrate(store)
    trio.run(setup)
    yield name
    admin_sql(postgres, f"drop database if exists {name} with (force)")


@pytest.fixture(scope="session")
def databases(postgres: str, template_db: str) -> Iterator[Databases]:
    pool = Databases(postgres, template_db)
    yield pool
    pool.close()


@pytest.fixture
def db(databases: Databases) -> Iterator[str]:
    """A DSN for a migrated database of this test's own, holding nothing else."""
    dsn = databases.take()
    yield dsn
    databases.give_back(dsn)


@dataclass
class Running:
    """A server started for one test, and helpers to set it up."""

    server: ChatServer
    store: Store
    addresses: Addresses
    settings: Settings

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.addresses.ws_port}/"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.addresses.http_port}"

    async def user(self, username: str, role: Role = Role.PATIENT, name: str | None = None) -> User:
        return await accounts.create_user(self.store, username, name or username, role, PASSWORD_HASH)


def test_settings(**overrides: Any) -> Settings:
    return dataclasses.replace(
        Settings(), listen="127.0.0.1:0", http_listen="127.0.0.1:0", shutdown_grace=2.0, **overrides
    )


@pytest.fixture
def settings() -> Settings:
    """Override in a test module to change server settings."""
    return test_settings()


@pytest.fixture
def clock() -> Clock:
    """The server's clock (``{{today}}``); parametrize ``clock`` in a test to fix the time it runs at."""
    return system_clock


@pytest.fixture
async def server(db: str, settings: Settings, clock: Clock, nursery: trio.Nursery) -> AsyncIterator[Running]:
    async with open_store(db, max_size=4) as store:
        chat = ChatServer(settings, store, await open_keys(store), clock=clock)
        async with trio.open_nursery() as inner:
            addresses = await inner.start(chat.serve)
            yield Running(chat, store, addresses, settings)
            chat.shutdown()

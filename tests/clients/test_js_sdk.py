"""The TypeScript SDK (clients/js) passes its own tests, those against this real server among them.

``npm test`` runs the SDK's unit tests (the codec against protocol/vectors, the generated types against
protocol/schema.json, the outbox across a reload, backoff, the client against a scripted server) and
clients/js/test/integration.test.ts, which logs in to the server started here with the accounts made here: a
doctor and two patients in a group, messages both ways, a network cut and a message typed offline, a resend
after a lost answer, a hidden seq, a file, a quick reply and read markers (issue 15; IM-19, MSG-3, MSG-4,
SPEC.md §5.1, §5.2.1). Its node_modules come from ``npm ci`` (the Makefile and .ci/run).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import trio

from imserver.model import Role
from tests.conftest import PASSWORD, Running

pytestmark = pytest.mark.slow  # starts node

JS = Path(__file__).resolve().parents[2] / "clients" / "js"


async def test_the_typescript_sdk_against_the_server(server: Running) -> None:
    assert (JS / "node_modules").is_dir(), "clients/js has no node_modules: run `make install-js` (npm ci)"
    await server.user("dr_wang", Role.STAFF, "王医生")
    await server.user("chen_hong", Role.PATIENT, "陈红")
    await server.user("li_mei", Role.PATIENT, "李梅")
    env = {**os.environ, "IMSERVER_URL": server.url, "IMSERVER_PASSWORD": PASSWORD}
    done = await trio.run_process(["npm", "test"], cwd=JS, env=env, capture_stdout=True,
                                  stderr=subprocess.STDOUT, check=False)
    output = done.stdout.decode()
    assert done.returncode == 0, output[-20_000:]
    assert "# SKIP" not in output and "# fail 0" in output, output[-5_000:]  # the server's tests ran

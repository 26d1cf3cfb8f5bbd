"""Serving a Starlette app over HTTP under trio, for the simulators and for the bots' own small HTTP APIs (the
pathway bot's mini-program feed): one place that knows how Hypercorn's trio worker is started and stopped."""

from __future__ import annotations

import logging

import hypercorn.config
import hypercorn.trio
import trio
from starlette.applications import Starlette


async def serve(
    app: Starlette, host: str = "127.0.0.1", port: int = 0, *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` under Hypercorn's trio worker until cancelled; ``task_status.started`` gets its URL."""
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")

    class FirstUrl:
        def started(self, binds: list[str]) -> None:
            task_status.started(binds[0])
    await hypercorn.trio.serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=FirstUrl())  # type: ignore[arg-type]

"""``imweb run``: serve the web front door (webadmin.app) on ``web_listen`` until SIGINT or SIGTERM.

Settings as for ``imserver run`` (docs/configuration.md): DATABASE_URL, web_listen, public_ws_url, web_root,
view_issuer_key, view_token_minutes. Exit status 0 when stopped by a signal, 1 for a bad setting.
"""

from __future__ import annotations

import argparse
import signal
import sys

import trio

import jsonlog
from imserver.admin import open_admin
from imserver.config import Settings, split_hostport
from integrations.serving import serve
from protocol.clock import Clock, system_clock
from webadmin.app import WebConfig, web_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="imweb", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["run"])
    parser.parse_args(argv)
    jsonlog.setup()
    try:
        settings = Settings.load()
        config = WebConfig.from_settings(settings)
        split_hostport(settings.web_listen)
        if not settings.database_url:
            raise ValueError("DATABASE_URL is not set")
    except ValueError as exc:
        print(f"imweb: {exc}", file=sys.stderr)
        sys.exit(1)
    trio.run(serve_until_signal, settings.database_url, settings.web_listen, config, system_clock)


async def serve_until_signal(
    database_url: str, listen: str, config: WebConfig, clock: Clock, *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve on ``listen`` (host:port) until SIGINT or SIGTERM; ``task_status.started`` gets the front door's URL."""
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with open_admin(database_url) as admin, trio.open_nursery() as nursery:
            task_status.started(await nursery.start(serve, web_app(admin, config, clock), *split_hostport(listen)))
            async for _ in signals:
                nursery.cancel_scope.cancel()
                break


if __name__ == "__main__":
    main()

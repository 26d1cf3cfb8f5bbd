"""``python -m integrations.simulator wechat|sms|phone|his --port N``: one outside system's simulator as a process.

Prints one JSON line when listening, ``{"system": "sms", "url": "http://127.0.0.1:40123"}`` (port 0
picks a free port), then serves until stopped (Ctrl-C, SIGTERM). Credentials default to the demo
ones (``integrations.<system>.simulator.DEMO_*``). Tests and the demo launcher (``imdemo``) start it this way.
"""

from __future__ import annotations

import argparse
import json
import signal
from functools import partial

import trio
from starlette.applications import Starlette

import jsonlog
from integrations.his import simulator as his
from integrations.phone import simulator as phone
from integrations.serving import serve
from integrations.sms import simulator as sms
from integrations.wechat import simulator as wechat

SYSTEMS = ("wechat", "sms", "phone", "his")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m integrations.simulator", description=__doc__.split("\n")[0])
    parser.add_argument("system", choices=SYSTEMS)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--app-id", default=wechat.DEMO_APP_ID, help="wechat: the app id it accepts")
    parser.add_argument("--secret", default=wechat.DEMO_SECRET, help="wechat: the app secret it accepts")
    parser.add_argument("--api-key", help="sms, phone, his: the API key it accepts (default: the demo key)")
    return parser


def create_app(
    system: str, *, app_id: str = wechat.DEMO_APP_ID, secret: str = wechat.DEMO_SECRET, api_key: str | None = None,
) -> Starlette:
    """The simulator of ``system``; credentials it accepts: WeChat's app id and secret, the others' API key."""
    if system == "wechat":
        return wechat.create_app(app_id, secret)
    module = {"sms": sms, "phone": phone, "his": his}[system]
    return module.create_app(api_key or module.DEMO_KEY)


async def _serve(args: argparse.Namespace) -> None:
    """Serve until SIGINT or SIGTERM, then stop quietly: a terminal's Ctrl-C reaches every process of the demo."""
    app = create_app(args.system, app_id=args.app_id, secret=args.secret, api_key=args.api_key)
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(serve, app, args.host, args.port))
            print(json.dumps({"system": args.system, "url": url}), flush=True)
            async for _ in signals:
                nursery.cancel_scope.cancel()


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    jsonlog.setup(system=args.system)
    trio.run(_serve, args)


if __name__ == "__main__":
    main()

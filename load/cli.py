"""The ``imload`` command: set up a scenario's data, run it against a server, or ramp to find the ceiling.

    imload setup SCENARIO.json
    imload run SCENARIO.json --url ws://HOST:PORT [--out RESULT.json]
    imload ramp SCENARIO.json --url ws://HOST:PORT [--out RESULT.json]

The database is DATABASE_URL (or ``--database-url``): setup writes there, and a
run mints its sessions there and counts the stored messages at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio

from imserver.admin import open_admin
from load import report, scenario, setup
from load.run import Run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="imload", description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("setup", "run", "ramp"):
        p = sub.add_parser(name)
        p.add_argument("scenario", help="scenario file (JSON; see load/scenarios/)")
        p.add_argument("--database-url", default=os.environ.get("DATABASE_URL", ""))
        if name != "setup":
            p.add_argument("--url", required=True, help="the server's WebSocket URL, ws://HOST:PORT/")
            p.add_argument("--metrics", help="the server's /metrics URL (default: same host, WebSocket port + 1)")
            p.add_argument("--out", help="RESULT.json to write (a .md summary and, for ramp, a .png go beside it)")
    args = parser.parse_args(argv)
    if not args.database_url:
        parser.error("set DATABASE_URL or pass --database-url")
    try:
        plan = scenario.load(args.scenario)
    except (OSError, ValueError) as exc:
        print(f"imload: {exc}", file=sys.stderr)
        return 2
    status = 2
    try:
        status = trio.run(_main, args, plan)
    except* LookupError as group:  # raised inside the store's nursery, so it comes in a group
        leaf: BaseException = group
        while isinstance(leaf, BaseExceptionGroup):
            leaf = leaf.exceptions[0]
        print(f"imload: {leaf}", file=sys.stderr)
    return status


async def _main(args: argparse.Namespace, plan: scenario.Scenario) -> int:
    async with open_admin(args.database_url) as admin:
        if args.command == "setup":
            started = time.perf_counter()
            await admin.migrate()
            layout = await setup.setup(admin, plan)
            print(
                f"imload: {plan.name}: {len(layout.user_ids)} users, {len(layout.groups)} groups, "
                f"{len(layout.pairs)} pairs ready in {time.perf_counter() - started:.1f} s"
            )
            return 0
        rates = plan.ramp if args.command == "ramp" else [plan.messages_per_s]
        if not rates:
            print("imload: ramp needs a `ramp` list of rates in the scenario", file=sys.stderr)
            return 2
        begun = time.strftime("%Y-%m-%d %H:%M:%S")
        run = Run(plan, args.url, admin, args.metrics or _metrics_url(args.url))
        result = await run.execute(rates)
    result |= {"command": args.command, "url": args.url, "started": begun, "machine": _machine()}
    _headline(result)
    text = report.summary(result)
    out = Path(args.out or f"imload-{plan.name}-{args.command}.json")
    await trio.to_thread.run_sync(_write, out, result, text)
    print(text)
    print(f"imload: wrote {out}", file=sys.stderr)
    return 0


def _write(out: Path, result: dict[str, Any], text: str) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
    out.with_suffix(".md").write_text(text)
    if result["command"] == "ramp":
        report.chart(result, out.with_suffix(".png"))


def _headline(result: dict[str, Any]) -> None:
    """The figures of the run (or of the ramp's highest passing step) at the top level of RESULT.json."""
    steps = result["steps"]
    passing = [s for s in steps if s["passes"]]
    if result["command"] == "ramp":
        result["ceiling_per_s"] = max((s["offered_per_s"] for s in passing), default=None)
    best = max(passing, key=lambda s: s["offered_per_s"]) if passing and result["command"] == "ramp" else steps[-1]
    keys = (
        "accepted_per_s", "delivered_per_s", "expected_deliveries", "delivered", "duplicates", "out_of_order",
        "missing", "send_to_deliver_ms", "send_to_ack_ms", "server_rss_mb", "server_cpu_pct", "stored", "accepted",
    )
    result |= {k: best[k] for k in keys}


def _metrics_url(ws_url: str) -> str:
    parts = urlsplit(ws_url)
    return f"http://{parts.hostname}:{(parts.port or 80) + 1}/metrics"


def _machine() -> str:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    return f"{os.cpu_count()} cores, {cpu or platform.machine()}, Python {platform.python_version()}"


if __name__ == "__main__":
    sys.exit(main())

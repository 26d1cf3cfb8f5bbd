"""``imdemo`` (``make demo``): start the whole system on one machine with demo data; Ctrl-C stops it.

Exit status: 0 when it was stopped (Ctrl-C, SIGINT or SIGTERM), at any moment, start-up included; 1 when it
could not start (no Postgres binaries, a bad setting; other failures show their traceback). Settings as for
``imserver run`` (docs/configuration.md); IMSERVER_DATA is where the private Postgres lives without DATABASE_URL.
"""

from __future__ import annotations

import argparse
import signal
import sys
from typing import NoReturn

import jsonlog
from imserver.config import Settings
from imserver.pgcluster import ClusterError
from launcher import texts
from launcher.demo import run_demo
from protocol.clock import system_clock


def main(argv: list[str] | None = None) -> None:
    argparse.ArgumentParser(prog="imdemo", description=__doc__.split("\n")[0]).parse_args(argv)
    jsonlog.setup()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stopped like Ctrl-C, also before the server is up
    try:
        settings = Settings.load()
    except ValueError as exc:
        _fail(exc)
    try:
        run_demo(settings, system_clock)
    except* KeyboardInterrupt:
        pass  # Ctrl-C before the server listened (it handles its own once up): a stop all the same
    except* ClusterError as group:  # raised by the private cluster outside trio, so alone in its group
        _fail(group.exceptions[0])
    print(texts.STOPPED, flush=True)


def _fail(error: BaseException) -> NoReturn:
    print(texts.FAILED.format(error=error), file=sys.stderr)
    sys.exit(1)


if __name__ == "__main__":
    main()

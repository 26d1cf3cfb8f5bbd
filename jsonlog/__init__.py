"""One log format for every process: one JSON object per line on stderr, for the hospital's log collector (NFR-2).

The server, each bot, the simulators and the demo launcher all log this way, so their lines can be read, filtered
and collected alike (docs/operations.md, "Logs"). A leaf package: it imports the standard library only, and every
other package may import it.
"""

from __future__ import annotations

import json
import logging
import sys
import time

_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}
QUIET = ("httpx", "httpcore")
"""Libraries that log every request at INFO (a HIS poll every few seconds): only their warnings are logged; a
failed request reaches the log as the caller's own warning."""


class JsonFormatter(logging.Formatter):
    """A record as one JSON object: ``ts`` (UTC), ``level``, ``logger``, ``msg``, the process's ``fields``, then
    the record's context (``extra=``) and ``exc`` (a traceback) if any."""

    def __init__(self, fields: dict[str, str] | None = None) -> None:
        super().__init__()
        self.fields = fields or {}

    def format(self, record: logging.LogRecord) -> str:
        entry = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry |= self.fields
        entry |= {k: v for k, v in vars(record).items() if k not in _STANDARD}
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False, default=str)


def setup(level: str = "info", **fields: str) -> None:
    """Log this process's records at ``level`` and above as JSON lines on stderr, each with ``fields`` (a bot's
    process passes ``bot=NAME``, so every line it writes says which bot)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(fields))
    logging.basicConfig(level=level.upper(), handlers=[handler], force=True)
    for name in QUIET:
        logging.getLogger(name).setLevel(logging.WARNING)

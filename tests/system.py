"""The whole system as ``make demo`` starts it (``imdemo``), as a process group of its own, for the tests that need
every part running: the demo's own tests and the browser tests."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from tests.helpers import script

ROOT = Path(__file__).resolve().parents[1]
READY = "按 Ctrl-C 停止。"
"""The banner's last line: everything is up."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Demo:
    """One ``imdemo`` process group and everything it printed, line by line: on the private Postgres cluster it runs
    in ``private_cluster`` (as ``make demo`` does on a fresh machine), or on the database ``database_url``."""

    def __init__(self, *, private_cluster: Path | None = None, database_url: str = "") -> None:
        self.data = private_cluster
        self.ws_port = free_port()
        self.web_port = free_port()
        env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
        env |= {"IMSERVER_DATA": str(private_cluster)} if private_cluster else {"DATABASE_URL": database_url}
        env |= {"IMSERVER_LISTEN": f"127.0.0.1:{self.ws_port}", "IMSERVER_HTTP_LISTEN": f"127.0.0.1:{free_port()}",
                "IMSERVER_WEB_LISTEN": f"127.0.0.1:{self.web_port}"}
        self.process = subprocess.Popen([script("imdemo")], cwd=ROOT, env=env, start_new_session=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self._changed = threading.Condition()
        assert self.process.stdout is not None and self.process.stderr is not None
        self._readers = [threading.Thread(target=self._read, args=(pipe, lines), daemon=True)
                         for pipe, lines in ((self.process.stdout, self.stdout), (self.process.stderr, self.stderr))]
        for reader in self._readers:
            reader.start()
        self.wait_for(lambda: READY in self.stdout or self.process.poll() is not None, 180)
        assert READY in self.stdout, f"the demo did not start: {self.stdout} {self.stderr}"

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.ws_port}/"

    @property
    def web(self) -> str:
        """The web front door: the chat app."""
        return f"http://127.0.0.1:{self.web_port}"

    @property
    def running(self) -> bool:
        return self.process.poll() is None

    def _read(self, pipe: IO[bytes], lines: list[str]) -> None:
        for raw in pipe:
            with self._changed:
                lines.append(raw.decode(errors="replace").rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, condition: Callable[[], bool], seconds: float) -> None:
        """Wait until ``condition`` holds, checked on each line printed. Error handling: AssertionError."""
        with self._changed:
            assert self._changed.wait_for(condition, seconds), f"timed out: {self.stdout[-5:]} {self.stderr[-5:]}"

    def logs(self) -> list[dict[str, Any]]:
        """Every line on stderr as the JSON object it must be."""
        return [json.loads(line) for line in list(self.stderr)]

    def interrupt(self) -> int:
        """Ctrl-C, as a terminal sends it: SIGINT to every process of the group. Returns the exit status."""
        os.killpg(self.process.pid, signal.SIGINT)
        status = self.process.wait(60)
        for reader in self._readers:
            reader.join(10)
        return status

"""Server settings: defaults, then an optional TOML file, then ``IMSERVER_*`` environment variables.

Every setting is documented in docs/configuration.md; the names there are the
field names below (TOML keys are the same, environment variables are upper
case with the ``IMSERVER_`` prefix). ``DATABASE_URL`` is read as is.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Settings:
    """Every setting of a server process, with its default (docs/configuration.md)."""

    database_url: str = ""
    listen: str = "127.0.0.1:8080"
    """host:port of the WebSocket listener."""
    http_listen: str = "127.0.0.1:8081"
    """host:port of /healthz and /metrics; keep it off the public network."""
    web_listen: str = "127.0.0.1:8082"
    """host:port of the web front door (``imweb``): the chat app, and the API for the mini-program's back end."""
    public_ws_url: str = ""
    """The WebSocket URL the web app connects to, as a phone reaches it (behind the hospital's proxy, e.g.
    wss://im.example-hospital.cn/ws); empty: ws:// (wss:// with TLS) on ``listen``'s host and port."""
    web_root: str = ""
    """The built chat app (``clients/web/dist``); empty: that folder of this checkout."""
    view_issuer_key: str = ""
    """The secret with which the mini-program's back end asks for view tokens (``POST /api/view-tokens``);
    empty: that API is off. Give it in the environment, not in a file others can read."""
    view_token_minutes: int = 60
    """How long a view token (a read-only session for the mini-program, IM-17) is valid."""
    tls_cert: str = ""
    tls_key: str = ""
    max_frame: int = 64 * 1024
    hard_max_frame: int = 1024 * 1024
    """Frames above this are not read at all: the WebSocket is closed with 1009."""
    max_text: int = 4000
    rate: float = 20.0
    burst: int = 50
    bot_rate: float = 500.0
    bot_burst: int = 1000
    outbound_queue: int = 1024
    hello_timeout: float = 10.0
    """Seconds a new connection has to complete its hello."""
    password_checks: int = field(default_factory=lambda: min(os.cpu_count() or 1, 4))
    """Password checks (argon2: 64 MiB and a core each) at once; logins beyond them are shed (``rate_limited``)."""
    idle_timeout: float = 120.0
    """Seconds of silence from a client before the server pings it. Carrier NATs in China keep an idle TCP mapping
    for minutes (WeChat's own heartbeat is about 4.5 min), so two minutes keeps phones reachable; each ping costs
    the server ~0.3 ms of CPU, which at 60 s was 6 % of a core for 10,000 silent phones (load/RESULTS.md)."""
    pong_timeout: float = 20.0
    batch_max: int = 100
    """Messages per commit at most; small commits keep a quiet sender's wait short under a flood."""
    writer_queue: int = 10_000
    """Messages waiting for the batch writer in all; past it, the senders with most queued are shed."""
    writer_sender_queue: int = 500
    """Messages of one sender waiting for the batch writer; past it, her sends are shed (``unavailable``)."""
    token_days: int = 30
    db_pool_size: int = 8
    warm_messages: int = 200_000
    """At start, load the rosters of the conversations among this many most recent messages (0: none)."""
    shutdown_grace: float = 5.0
    """Seconds to wait for outbound frames to drain on shutdown."""
    upload_types: str = (
        "image/jpeg,image/png,image/gif,image/webp,audio/amr,audio/mpeg,audio/mp4,audio/aac,audio/ogg,"
        "video/mp4,video/quicktime,application/pdf"
    )
    """Comma-separated file types that may be uploaded (imserver/filetypes.py knows how to check them)."""
    max_image: int = 10 * 1024 * 1024
    max_audio: int = 10 * 1024 * 1024
    max_video: int = 50 * 1024 * 1024
    max_pdf: int = 20 * 1024 * 1024
    upload_quota: int = 200 * 1024 * 1024
    """Bytes a patient or family account may begin uploading per ``upload_window``."""
    upload_window: float = 86400.0
    upload_expiry: float = 86400.0
    """Seconds after its last part that an unfinished upload is dropped."""

    @classmethod
    def load(cls, env: Mapping[str, str] | None = None, path: str | Path | None = None) -> Settings:
        """Error handling: raises ValueError naming an unknown key or a value of the wrong type."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        path = path or env.get("IMSERVER_CONFIG")
        if path:
            with open(path, "rb") as f:
                values.update(tomllib.load(f))
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for name in fields:
            key = f"IMSERVER_{name.upper()}"
            if key in env:
                values[name] = env[key]
        if env.get("DATABASE_URL"):
            values["database_url"] = env["DATABASE_URL"]
        unknown = set(values) - set(fields)
        if unknown:
            raise ValueError(f"unknown settings: {', '.join(sorted(unknown))}")
        default = cls()
        for name, value in values.items():
            kind = type(getattr(default, name))
            try:
                values[name] = kind(value)
            except (TypeError, ValueError):
                raise ValueError(f"setting {name} must be {kind.__name__}, got {value!r}") from None
        return dataclasses.replace(default, **values)


def split_hostport(value: str) -> tuple[str, int]:
    """'host:port' -> (host, port); error handling: ValueError on a bad value."""
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"expected HOST:PORT, got {value!r}")
    return host.strip("[]") or "0.0.0.0", int(port)

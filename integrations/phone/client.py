"""Client of the hospital's outbound robot-call system (docs/integrations/phone.md): ``POST /calls`` with
the text to speak (``Authorization: Bearer <key>``, ``Idempotency-Key``), how it went by ``GET /calls/{id}``."""

from __future__ import annotations

from typing import Any

from integrations.http import Service
from integrations.numbers import Contract, NumberClient

CONTRACT = Contract(
    system="phone", send_path="/calls", status_path="/calls/{id}", sender_field="caller",
    outcomes={
        "queued": "pending", "ringing": "pending", "in_progress": "pending",
        "answered": "delivered", "no_answer": "failed", "busy": "failed", "failed": "failed",
    },
    accepted="queued", success="answered", id_prefix="call", max_text=1000,
)


def connect(url: str, api_key: str, **options: Any) -> Service:
    """The call system's endpoint with its key; ``options`` are Service's (timeout, retry, breaker)."""
    return Service(CONTRACT.system, url, headers={"Authorization": f"Bearer {api_key}"}, **options)


def phone_client(service: Service, caller: str | None = None) -> NumberClient:
    """``caller``: the number the call comes from (the center's own line); None: the system's default."""
    return NumberClient(CONTRACT, service, caller)

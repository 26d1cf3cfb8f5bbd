"""Client of the hospital's SMS gateway (docs/integrations/sms.md): ``POST /sms/send`` with the API key
in ``X-Api-Key`` and an ``Idempotency-Key``; delivery reports by ``GET /sms/status/{id}``."""

from __future__ import annotations

from typing import Any

from integrations.http import Service
from integrations.numbers import Contract, NumberClient

CONTRACT = Contract(
    system="sms", send_path="/sms/send", status_path="/sms/status/{id}", sender_field="sign",
    outcomes={"accepted": "pending", "pending": "pending", "delivered": "delivered", "failed": "failed"},
    accepted="accepted", success="delivered", id_prefix="sms", max_text=500,
)


def connect(url: str, api_key: str, **options: Any) -> Service:
    """The gateway's endpoint with its key; ``options`` are Service's (timeout, retry, breaker)."""
    return Service(CONTRACT.system, url, headers={"X-Api-Key": api_key}, **options)


def sms_client(service: Service, sign: str | None = None) -> NumberClient:
    """``sign``: the signature the gateway shows in 【】 (the hospital's name); None: the gateway's default."""
    return NumberClient(CONTRACT, service, sign)

"""Systems that take a text for a mobile number and report what became of it: the SMS gateway and the
robot-call system. Their contracts differ in paths and words only, so each is described by a
:class:`Contract` (in its ``client`` module), which one client here and one set of simulator routes
(``integrations.simulation.number_routes``) both follow.

The shape (docs/integrations/sms.md, phone.md): ``POST <send>`` with ``{"to", "text", <sender>?}`` and
an ``Idempotency-Key`` answers ``{"id", "status": <accepted>}``; ``GET <status>`` answers
``{"id", "status"}``, the status one of ``outcomes``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from integrations.delivery import Outcome, Report
from integrations.http import Service, text_field


@dataclass(frozen=True)
class Contract:
    system: str
    send_path: str
    status_path: str
    """With ``{id}`` where the id goes."""
    sender_field: str
    """The optional field naming who it comes from: the SMS signature, the calling number."""
    outcomes: Mapping[str, Outcome]
    """Every status word the system uses, and what it means."""
    accepted: str
    """The status of a message just accepted."""
    success: str
    """The status of a message that reached the person."""
    id_prefix: str
    max_text: int


class NumberClient:
    """Send a text to a mobile number and ask what became of it, as ``contract`` says."""

    def __init__(self, contract: Contract, service: Service, sender: str | None = None) -> None:
        self.contract = contract
        self.service = service
        self.sender = sender

    async def send(self, to: str, text: str, *, key: str) -> str:
        """Send ``text`` to mobile number ``to``; returns the system's id for it. The same ``key`` sends once.

        Error handling: Refused (bad number, bad text, wrong key), Unavailable (retry later).
        """
        body: dict[str, Any] = {"to": to, "text": text}
        if self.sender:
            body[self.contract.sender_field] = self.sender
        answer = await self.service.call("POST", self.contract.send_path, key=key, json=body)
        return text_field(self.contract.system, answer, "id")

    async def report(self, message_id: str) -> Report:
        """What became of it; an unknown status word is taken as still pending."""
        answer = await self.service.call("GET", self.contract.status_path.format(id=message_id))
        status = text_field(self.contract.system, answer, "status")
        return Report(self.contract.outcomes.get(status, "pending"), status)

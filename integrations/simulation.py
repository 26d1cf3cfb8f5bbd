"""What every simulator shares: the received log, fault controls, idempotent answers (served by integrations.serving).

A simulator is a Starlette app implementing one outside system's contract (docs/integrations/).
:class:`Simulator` wraps each contract endpoint so that for every request it

1. records it (method, path, query, idempotency key, body, the status answered);
2. applies the faults it was told to: *hang* (never answer: the client times out and the work
   was not done) or *fail* (answer with an error status, work not done);
3. answers a request whose idempotency key has already led to a message with that first answer
   and does nothing again, so "delivered exactly once" is observable in ``messages``;
4. runs the endpoint and remembers its answer under the key if it accepted a message (a
   refusal is not remembered: the same key may succeed later); told to be *slow*, it then
   waits ``delay`` seconds before answering (the work is done, the answer is late: a client
   that times out meanwhile repeats a request that already worked).

Control endpoints, not part of any contract::

    POST /_sim/faults    {"fail": n, "status": 503, "hang": n, "slow": n, "delay": s, "outcome": "..."}
                         the next n requests fail / hang / are answered s seconds late;
                         messages accepted from now on end in ``outcome`` (the system's own
                         word, e.g. "failed" for an SMS, "no_answer" for a call; default: success)
    GET  /_sim/received  {"requests": [...], "messages": [...]}
    POST /_sim/reset     forget everything: log, faults, remembered answers, the system's state

``python -m integrations.simulator`` serves one of them as a process of its own.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.http import IDEMPOTENCY_HEADER
from integrations.numbers import Contract

Answer = tuple[int, dict[str, Any]]
Endpoint = Callable[[Request, Any], Awaitable[Answer]]
"""A contract endpoint: the request and its parsed JSON body (None for a GET), to a status and a JSON answer."""
KeyOf = Callable[[Request, Any], str | None]

HANG_S = 3600.0
"""How long a hanging request waits; the client gives up long before."""

PHONE_NUMBER = re.compile(r"^(\+?86)?1[3-9]\d{9}$")
"""A mainland China mobile number, with or without the country code: what the SMS and call systems accept."""


@dataclass
class Faults:
    fail: int = 0
    status: int = 503
    hang: int = 0
    slow: int = 0
    delay: float = 0.0
    outcome: str | None = None


def header_key(request: Request, body: Any) -> str | None:
    return request.headers.get(IDEMPOTENCY_HEADER)


class Simulator:
    """The shared half of one simulator: wrap its endpoints with :meth:`route`, then build :meth:`app`."""

    def __init__(self, system: str) -> None:
        self.system = system
        self.requests: list[dict[str, Any]] = []
        self.messages: list[dict[str, Any]] = []
        self.faults = Faults()
        self._answers: dict[str, Answer] = {}

    def accept(self, prefix: str, message: dict[str, Any]) -> dict[str, Any]:
        """Record a message the system now delivers, under a new id ``<prefix>_<n>``; it carries the set ``outcome``."""
        message = {"id": f"{prefix}_{len(self.messages) + 1}", **message, "outcome": self.faults.outcome}
        self.messages.append(message)
        return message

    def find(self, message_id: str) -> dict[str, Any] | None:
        return next((m for m in self.messages if m["id"] == message_id), None)

    def route(self, path: str, endpoint: Endpoint, method: str, *, key: KeyOf = header_key) -> Route:
        """A contract endpoint with recording, faults and idempotency; ``key`` finds a request's idempotency key."""
        async def handle(request: Request) -> Response:
            body = await _json_body(request) if method == "POST" else None
            entry: dict[str, Any] = {
                "method": method, "path": request.url.path, "query": dict(request.query_params),
                "key": request.headers.get(IDEMPOTENCY_HEADER), "body": body, "status": None,
            }
            self.requests.append(entry)
            status, answer = await self._answer(request, body, endpoint, key)
            entry["status"] = status
            return JSONResponse(answer, status_code=status)
        return Route(path, handle, methods=[method])

    async def _answer(self, request: Request, body: Any, endpoint: Endpoint, key: KeyOf) -> Answer:
        if body is _UNREADABLE:
            return 400, {"error": "bad_json", "message": "the body is not JSON"}
        if self.faults.hang:
            self.faults.hang -= 1
            await trio.sleep(HANG_S)
        if self.faults.fail:
            self.faults.fail -= 1
            return self.faults.status, {"error": "simulated_failure", "message": f"told to fail ({self.faults.status})"}
        idempotency = key(request, body)
        if idempotency is not None and idempotency in self._answers:
            return self._answers[idempotency]
        accepted = len(self.messages)
        answer = await endpoint(request, body)
        if idempotency is not None and len(self.messages) > accepted:  # only an answer that did something
            self._answers[idempotency] = answer
        if self.faults.slow:
            self.faults.slow -= 1
            await trio.sleep(self.faults.delay)
        return answer

    def app(self, routes: list[Route], *, on_reset: Callable[[], None] = lambda: None) -> Starlette:
        """The contract's routes plus the control endpoints; ``on_reset`` clears the system's own state."""
        async def faults(request: Request) -> Response:
            try:
                given = json.loads(await request.body() or b"{}")
                self.faults = Faults(**{**asdict(self.faults), **given})
            except (ValueError, TypeError) as exc:
                return JSONResponse({"error": "bad_faults", "message": str(exc)}, status_code=400)
            return JSONResponse(asdict(self.faults))

        async def received(request: Request) -> Response:
            return JSONResponse({"requests": self.requests, "messages": self.messages})

        async def reset(request: Request) -> Response:
            self.requests.clear()
            self.messages.clear()
            self._answers.clear()
            self.faults = Faults()
            on_reset()
            return JSONResponse({"reset": True})

        controls = [
            Route("/_sim/faults", faults, methods=["POST"]),
            Route("/_sim/received", received, methods=["GET"]),
            Route("/_sim/reset", reset, methods=["POST"]),
        ]
        return Starlette(routes=[*routes, *controls])


def number_routes(sim: Simulator, contract: Contract, authorized: Callable[[Request], bool]) -> list[Route]:
    """The two endpoints of a text-to-a-number system (integrations.numbers): send, and its status.

    A message ends in the contract's ``success`` status at once, unless the ``outcome`` fault names another.
    """
    async def send(request: Request, body: Any) -> Answer:
        if not authorized(request):
            return UNAUTHORIZED
        refusal = _bad_recipient_or_text(body, contract.max_text)
        if refusal is not None:
            return refusal
        fields = {"to": body["to"], "text": body["text"], contract.sender_field: body.get(contract.sender_field)}
        message = sim.accept(contract.id_prefix, fields)
        return 200, {"id": message["id"], "status": contract.accepted}

    async def status(request: Request, body: Any) -> Answer:
        if not authorized(request):
            return UNAUTHORIZED
        message = sim.find(request.path_params["id"])
        if message is None:
            return 404, {"error": "not_found", "message": "no such id"}
        return 200, {"id": message["id"], "status": message["outcome"] or contract.success}

    return [sim.route(contract.send_path, send, "POST"), sim.route(contract.status_path, status, "GET")]


UNAUTHORIZED: Answer = (401, {"error": "unauthorized", "message": "missing or wrong API key"})


def _bad_recipient_or_text(body: Any, max_text: int) -> Answer | None:
    """The refusal of a ``{"to": mobile number, "text": ...}`` request that breaks the contract, or None."""
    if not isinstance(body, dict):
        return 400, {"error": "bad_request", "message": "the body must be a JSON object"}
    if not isinstance(body.get("to"), str) or not PHONE_NUMBER.match(body["to"]):
        return 400, {"error": "invalid_number", "message": f"not a mobile number: {body.get('to')!r}"}
    if not isinstance(body.get("text"), str) or not 1 <= len(body["text"]) <= max_text:
        return 400, {"error": "invalid_text", "message": f"text must be 1-{max_text} characters"}
    return None


_UNREADABLE = object()


async def _json_body(request: Request) -> Any:
    try:
        return json.loads(await request.body())
    except ValueError:
        return _UNREADABLE

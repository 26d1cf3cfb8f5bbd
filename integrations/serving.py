"""Serving a Starlette app over HTTP under trio, for the simulators and for the small HTTP APIs that hospital
systems call (the pathway bot's mini-program feed, webadmin's view tokens): one place that knows how Hypercorn's
trio worker is started and stopped, and how such an API checks its callers' keys and answers errors as JSON."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence

import hypercorn.config
import hypercorn.trio
import trio
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute


async def serve(
    app: Starlette, host: str = "127.0.0.1", port: int = 0, *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` under Hypercorn's trio worker until cancelled; ``task_status.started`` gets its URL."""
    config = hypercorn.config.Config()
    config.bind = [f"{host}:{port}"]
    config.accesslog = None
    config.errorlog = logging.getLogger("hypercorn.error")

    class FirstUrl:
        def started(self, binds: list[str]) -> None:
            task_status.started(binds[0])
    await hypercorn.trio.serve(app, config, shutdown_trigger=trio.sleep_forever, task_status=FirstUrl())  # type: ignore[arg-type]


class Refusal(Exception):
    """A request answered with an error: ``{"error": code, "message": message}`` and ``status``."""

    def __init__(self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


def unauthorized() -> Refusal:
    return Refusal(401, "unauthorized", "missing or wrong API key (Authorization: Bearer <key>)",
                   {"WWW-Authenticate": "Bearer"})


def bearer_key(request: Request, secrets: Sequence[bytes]) -> int | None:
    """Which of ``secrets`` (1, 2…) the request's ``Authorization: Bearer`` carries, for the audit record (never
    the key itself); None for none. Every key is compared, in constant time: how long it takes says nothing."""
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    token = given.strip().encode()
    if scheme.lower() != "bearer" or not token:
        return None
    found = None
    for number, secret in enumerate(secrets, 1):
        if hmac.compare_digest(token, secret) and secret:
            found = number
    return found


def json_api(routes: Sequence[BaseRoute], *, failure: str) -> Starlette:
    """An app whose every answer is JSON: ``Refusal``s as they say, Starlette's own refusals (no such path, another
    method) as ``not_found``/``method_not_allowed``, and a failure of ours as 500 ``internal`` with ``failure`` as
    its message and no detail (Starlette logs the exception)."""
    async def refused(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, Refusal)
        return _error(exc.status, exc.code, exc.message, exc.headers)

    async def failed(request: Request, exc: Exception) -> Response:
        return _error(500, "internal", failure)

    return Starlette(routes=list(routes), exception_handlers={
        Refusal: refused, HTTPException: _http_error, Exception: failed,
    })


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> Response:
    return JSONResponse({"error": code, "message": message}, status_code=status, headers=headers)


_HTTP_CODES = {404: ("not_found", "no such path"), 405: ("method_not_allowed", "this method is not allowed here")}


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code, message = _HTTP_CODES.get(exc.status_code, ("bad_request", "request refused"))
    return _error(exc.status_code, code, message, exc.headers)

"""The web front door as an ASGI app: the built chat app, its runtime configuration, and view tokens (IM-17).

- ``GET /`` and ``GET /view``: the chat app's page (the app reads which one from its URL); ``/assets/...``: its
  files, cached for good (their names carry a hash of their content), while the page itself is never cached,
  so a new build reaches phones on their next visit.
- ``GET /config.json``: what the app needs to know at run time, the WebSocket URL above all (not built in: the
  same build serves every hospital).
- ``POST /api/view-tokens``: the mini-program back end (``Authorization: Bearer <view_issuer_key>``) asks for a
  read-only session for one patient or family account; the answer's ``path`` (``/view#token=...``) is what
  the mini-program's ``web-view`` opens. The token is in the fragment, which browsers never send to a server,
  so it stays out of access logs. docs/web.md describes the contract.

Error handling: the API answers JSON errors (``integrations.serving.json_api``); a missing build is a 503 page
that says how to build it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

import msgspec
from msgspec import Meta
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from imserver.admin import Admin
from imserver.config import Settings, split_hostport
from integrations.serving import Refusal, bearer_key, json_api, unauthorized
from protocol.clock import HOSPITAL_ZONE, Clock
from protocol.frames import USERNAME_PATTERN
from webadmin import texts

log = logging.getLogger(__name__)

VIEW_TOKENS = "/api/view-tokens"
PAGE_CACHE = "no-cache"
ASSET_CACHE = "public, max-age=31536000, immutable"
MIN_KEY = 16
"""The shortest issuer key accepted: a short key is guessable."""


class ViewTokenRequest(msgspec.Struct, forbid_unknown_fields=True):
    username: Annotated[str, Meta(pattern=USERNAME_PATTERN)]
    minutes: Annotated[int, Meta(ge=1)] | None = None
    """Shorter than ``view_token_minutes`` if the back end wants; never longer."""


@dataclass(frozen=True)
class WebConfig:
    """What the front door serves, from the server's settings."""

    root: Path
    ws_url: str
    issuer_keys: tuple[bytes, ...]
    view_minutes: int

    @classmethod
    def from_settings(cls, settings: Settings) -> WebConfig:
        """Error handling: ValueError for an issuer key too short to be secret."""
        if settings.view_issuer_key and len(settings.view_issuer_key) < MIN_KEY:
            raise ValueError(f"view_issuer_key needs at least {MIN_KEY} characters")
        root = Path(settings.web_root) if settings.web_root else Path(__file__).parent.parent / "clients/web/dist"
        keys = (settings.view_issuer_key.encode(),) if settings.view_issuer_key else ()
        return cls(root, settings.public_ws_url or default_ws_url(settings), keys, settings.view_token_minutes)


def default_ws_url(settings: Settings) -> str:
    """The chat server's own listener, for a machine where the app and the server are reached alike (the demo)."""
    host, port = split_hostport(settings.listen)
    host = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    return f"{'wss' if settings.tls_cert else 'ws'}://{host}:{port}/"


def web_app(admin: Admin, config: WebConfig, clock: Clock) -> Any:
    """The front door's ASGI app (module docstring)."""
    async def page(request: Request) -> Response:
        index = config.root / "index.html"
        if not index.is_file():
            return HTMLResponse(texts.NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"})
        return FileResponse(index, headers={"Cache-Control": PAGE_CACHE})

    async def runtime_config(request: Request) -> Response:
        return JSONResponse({"ws_url": config.ws_url}, headers={"Cache-Control": "no-store"})

    async def view_tokens(request: Request) -> Response:
        key = bearer_key(request, config.issuer_keys)
        if key is None:
            log.warning("view token asked without a valid key",
                        extra={"client": request.client.host if request.client else None})
            raise unauthorized()
        try:
            asked = msgspec.json.decode(await request.body(), type=ViewTokenRequest)
        except msgspec.ValidationError as exc:
            raise Refusal(400, "invalid_body", str(exc)) from None
        except msgspec.DecodeError:
            raise Refusal(400, "invalid_body", "the body must be a JSON object") from None
        minutes = min(asked.minutes or config.view_minutes, config.view_minutes)
        expires = clock() + timedelta(minutes=minutes)
        token = await admin.view_token(asked.username, expires_at=expires, issuer=f"api:view:{key}")
        if token is None:
            raise Refusal(404, "unknown_user", "no active patient or family account with this username")
        log.info("view token issued", extra={"username": asked.username, "minutes": minutes})
        return JSONResponse(
            {"token": token, "path": f"/view#token={token}",
             "expires_at": expires.astimezone(HOSPITAL_ZONE).isoformat(timespec="seconds")},
            status_code=201, headers={"Cache-Control": "no-store"},
        )

    routes: list[BaseRoute] = [
        Route("/", page, methods=["GET"]),
        Route("/view", page, methods=["GET"]),
        Route("/config.json", runtime_config, methods=["GET"]),
        Route(VIEW_TOKENS, view_tokens, methods=["POST"]),
        Mount("/assets", app=_Assets(directory=config.root / "assets", check_dir=False)),
    ]
    return json_api(routes, failure="the request could not be served; try again later")


class _Assets(StaticFiles):
    """The build's hashed files, cached for a year."""

    async def get_response(self, path: str, scope: Any) -> Response:
        response = await super().get_response(path, scope)
        if response.status_code == 200:
            response.headers["Cache-Control"] = ASSET_CACHE
        return response

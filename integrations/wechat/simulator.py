"""A simulated WeChat official-account API speaking docs/integrations/wechat.md: access tokens and
template messages, with WeChat's habits (HTTP 200 with an ``errcode``; ``client_msg_id`` makes a send
idempotent per follower) and the shared fault controls (integrations.simulation). Extra control:
``POST /_sim/expire_tokens`` makes every token handed out so far invalid (``errcode`` 40001).
"""

from __future__ import annotations

import secrets
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.simulation import Answer, Simulator

DEMO_APP_ID = "wx0000demo0000"
DEMO_SECRET = "demo-wechat-secret"
TOKEN_SECONDS = 7200


def _error(code: int, message: str) -> Answer:
    return 200, {"errcode": code, "errmsg": message}


def _send_key(request: Request, body: Any) -> str | None:
    """WeChat de-duplicates by follower and ``client_msg_id`` (not by a header)."""
    if isinstance(body, dict) and body.get("client_msg_id"):
        return f"{body.get('touser')}:{body['client_msg_id']}"
    return None


def create_app(app_id: str = DEMO_APP_ID, secret: str = DEMO_SECRET) -> Starlette:
    sim = Simulator("wechat")
    tokens: set[str] = set()

    async def token(request: Request, body: Any) -> Answer:
        query = request.query_params
        if query.get("grant_type") != "client_credential":
            return _error(40002, "invalid grant_type")
        if query.get("appid") != app_id:
            return _error(40013, "invalid appid")
        if query.get("secret") != secret:
            return _error(40125, "invalid appsecret")
        issued = secrets.token_urlsafe(24)
        tokens.add(issued)
        return 200, {"access_token": issued, "expires_in": TOKEN_SECONDS}

    async def send(request: Request, body: Any) -> Answer:
        if request.query_params.get("access_token") not in tokens:
            return _error(40001, "invalid credential, access_token is invalid or not latest")
        if not isinstance(body, dict) or not isinstance(body.get("data"), dict) or not body.get("template_id"):
            return _error(47001, "data format error")
        openid = body.get("touser")
        if not isinstance(openid, str) or not openid.startswith("o"):
            return _error(40003, "invalid openid")
        message = sim.accept("msg", {k: body.get(k) for k in ("touser", "template_id", "url", "data", "client_msg_id")})
        return 200, {"errcode": 0, "errmsg": "ok", "msgid": int(message["id"].removeprefix("msg_"))}

    async def expire_tokens(request: Request) -> Response:
        tokens.clear()
        return JSONResponse({"expired": True})

    routes = [
        sim.route("/cgi-bin/token", token, "GET"),
        sim.route("/cgi-bin/message/template/send", send, "POST", key=_send_key),
        Route("/_sim/expire_tokens", expire_tokens, methods=["POST"]),
    ]
    return sim.app(routes, on_reset=tokens.clear)

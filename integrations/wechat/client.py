"""Client of the WeChat official-account API (docs/integrations/wechat.md): an access token fetched with
the app id and secret (``GET /cgi-bin/token``) and cached until shortly before it expires, then
``POST /cgi-bin/message/template/send?access_token=...``.

WeChat answers errors with HTTP 200 and an ``errcode``: -1 ("system busy") is retried like a 5xx;
40001, 40014 and 42001 (the token is invalid or expired, e.g. because another program fetched a new
one) drop the cached token and send once more with a fresh one; every other code is a refusal. A
send carries ``client_msg_id`` (WeChat's own de-duplication per follower) and the ``Idempotency-Key``
header, both the caller's key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import httpx
import trio

from integrations.http import Check, Refused, Service, TryAgain, Unavailable, text_field

SYSTEM = "wechat"
BUSY = -1
TOKEN_REFUSED = frozenset({40001, 40014, 42001})
TOKEN_MARGIN_S = 300.0
"""Fetch a new token this long before the old one expires, so no send goes out with a dying one."""


def connect(url: str = "https://api.weixin.qq.com", **options: Any) -> Service:
    """The API's endpoint (the real one by default); credentials go with each token request, not in headers."""
    return Service(SYSTEM, url, **options)


class WeChatClient:
    def __init__(
        self, service: Service, app_id: str, secret: str, *, clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.service = service
        self._app_id = app_id
        self._secret = secret
        self._clock = clock
        self._token: str | None = None
        self._expires = 0.0
        self._lock = trio.Lock()

    async def send_template(
        self, openid: str, template_id: str, data: Mapping[str, str], *, key: str, url: str | None = None,
    ) -> str:
        """Send a template message to the follower ``openid``; returns WeChat's msgid. The same ``key`` sends once.

        ``data`` maps the template's field names to their text. ``url`` is the page opened when tapped.

        Error handling: Refused (not a follower, bad template, bad credentials: see the errcode),
        Unavailable (retry later).
        """
        body: dict[str, Any] = {
            "touser": openid, "template_id": template_id, "client_msg_id": key,
            "data": {name: {"value": value} for name, value in data.items()},
        }
        if url:
            body["url"] = url
        for _ in range(2):
            token = await self._access_token()
            answer = await self.service.call(
                "POST", "/cgi-bin/message/template/send", key=key, json=body, params={"access_token": token},
                check=_errcode(allow=TOKEN_REFUSED),
            )
            if answer.get("errcode", 0) in TOKEN_REFUSED:
                self._forget(token)
                continue
            return str(answer.get("msgid", ""))
        raise Unavailable(SYSTEM, "a freshly fetched access token was refused")

    async def _access_token(self) -> str:
        """The cached token, or a new one; one fetch at a time, so concurrent sends share it."""
        async with self._lock:
            if self._token is None or self._clock() >= self._expires:
                params = {"grant_type": "client_credential", "appid": self._app_id, "secret": self._secret}
                answer = await self.service.call("GET", "/cgi-bin/token", params=params, check=_errcode())
                self._token = text_field(SYSTEM, answer, "access_token")
                self._expires = self._clock() + float(answer.get("expires_in", 7200)) - TOKEN_MARGIN_S
            return self._token

    def _forget(self, token: str) -> None:
        if self._token == token:
            self._token = None


def _errcode(allow: frozenset[int] = frozenset()) -> Check:
    """Judge WeChat's HTTP 200 answers by their ``errcode`` (module docstring)."""
    def check(response: httpx.Response) -> None:
        answer = response.json()
        if not isinstance(answer, dict):
            raise TryAgain(f"answer is not a JSON object: {answer!r:.200}")
        code = answer.get("errcode", 0)
        if code == 0 or code in allow:
            return
        message = f"errcode {code}: {answer.get('errmsg', '')}"
        if code == BUSY:
            raise TryAgain(message)
        raise Refused(SYSTEM, message)
    return check

"""The outside channels of the outbox (WeChat, SMS, phone), configured from the environment.

Each :class:`Channel` turns a notification into one outside system's request (through the
``integrations`` clients) and, where the system reports delivery, asks what became of it. A
channel that is not configured is absent: a step on it is recorded failed and the escalation
moves on. Environment (bots/README.md, docs/configuration.md)::

    IMBOT_WECHAT_URL   IMBOT_WECHAT_APP_ID  IMBOT_WECHAT_SECRET  IMBOT_WECHAT_TEMPLATE  IMBOT_WECHAT_FIELDS
    IMBOT_SMS_URL      IMBOT_SMS_KEY        IMBOT_SMS_SIGN
    IMBOT_PHONE_URL    IMBOT_PHONE_KEY      IMBOT_PHONE_CALLER
    IMBOT_HTTP_TIMEOUT (seconds, default 5)
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from typing import Protocol

from bots.framework import texts
from integrations.delivery import Report
from integrations.numbers import NumberClient
from integrations.phone import client as phone
from integrations.sms import client as sms
from integrations.wechat import client as wechat


@dataclass(frozen=True)
class Recipient:
    """Whom to notify: the account (for the app) and the contact data the calling bot has for them."""

    username: str
    phone: str | None = None
    openid: str | None = None
    """The person's openid with the hospital's WeChat official account."""


@dataclass(frozen=True)
class Note:
    """What to say: a title, the text, and optionally the page it opens (``app://``, ``mp://``, ``https://``)."""

    title: str
    content: str
    link: str | None = None


class ChannelConfigError(ValueError):
    """A channel's URL is set without what it needs; names the variable."""


class Undeliverable(Exception):
    """This channel cannot reach this person (no phone number, no openid): trying again will not help."""


class Channel(Protocol):
    reports: bool
    """Whether the system gives delivery reports (``report``)."""

    async def send(self, to: Recipient, note: Note, key: str) -> str:
        """Hand the note to the outside system, idempotently by ``key``; the system's id for it.

        Error handling: Undeliverable and integrations' Refused are final; Unavailable may pass.
        """

    async def report(self, ref: str) -> Report:
        """What became of it (only asked when ``reports``)."""


class WeChatChannel:
    """A template message: the note's title and text go into the template's two ``fields``."""

    reports = False  # WeChat pushes TEMPLATESENDJOBFINISH to the account's callback instead (docs/integrations)

    def __init__(self, client: wechat.WeChatClient, template_id: str, fields: tuple[str, str]) -> None:
        self.client = client
        self.template_id = template_id
        self.fields = fields

    async def send(self, to: Recipient, note: Note, key: str) -> str:
        if not to.openid:
            raise Undeliverable("no WeChat openid for this person")
        data = dict(zip(self.fields, (note.title, note.content), strict=True))
        link = note.link if note.link and note.link.startswith(("http://", "https://")) else None
        return await self.client.send_template(to.openid, self.template_id, data, key=key, url=link)

    async def report(self, ref: str) -> Report:
        raise NotImplementedError("WeChat gives no delivery reports to ask for")


class NumberChannel:
    """An SMS or a robot call: the note as one text (``template`` from texts.py) to the person's mobile."""

    reports = True

    def __init__(self, client: NumberClient, template: str) -> None:
        self.client = client
        self.template = template

    async def send(self, to: Recipient, note: Note, key: str) -> str:
        if not to.phone:
            raise Undeliverable("no mobile number for this person")
        return await self.client.send(to.phone, self.template.format(title=note.title, content=note.content), key=key)

    async def report(self, ref: str) -> Report:
        return await self.client.report(ref)


@asynccontextmanager
async def open_channels(env: Mapping[str, str]) -> AsyncIterator[dict[str, Channel]]:
    """The channels ``env`` configures (module docstring), their connections closed at the end.

    Error handling: ChannelConfigError naming the variable when a channel's URL is set without its credentials.
    """
    def need(name: str) -> str:
        if not env.get(name):
            raise ChannelConfigError(f"{name} is required when {name.rsplit('_', 1)[0]}_URL is set")
        return env[name]

    try:
        timeout = float(env.get("IMBOT_HTTP_TIMEOUT") or 5)
    except ValueError:
        raise ChannelConfigError("IMBOT_HTTP_TIMEOUT must be a number of seconds") from None
    channels: dict[str, Channel] = {}
    async with AsyncExitStack() as stack:
        if url := env.get("IMBOT_WECHAT_URL"):
            app_id, secret, template = (need(f"IMBOT_WECHAT_{n}") for n in ("APP_ID", "SECRET", "TEMPLATE"))
            fields = (env.get("IMBOT_WECHAT_FIELDS") or "first,keyword1").split(",")
            if len(fields) != 2 or not all(fields):
                raise ChannelConfigError("IMBOT_WECHAT_FIELDS names two template fields, for the title and the text")
            service = await stack.enter_async_context(wechat.connect(url, timeout=timeout))
            client = wechat.WeChatClient(service, app_id, secret)
            channels["wechat"] = WeChatChannel(client, template, (fields[0], fields[1]))
        if url := env.get("IMBOT_SMS_URL"):
            service = await stack.enter_async_context(sms.connect(url, need("IMBOT_SMS_KEY"), timeout=timeout))
            channels["sms"] = NumberChannel(sms.sms_client(service, env.get("IMBOT_SMS_SIGN")), texts.OUTBOX_SMS)
        if url := env.get("IMBOT_PHONE_URL"):
            service = await stack.enter_async_context(phone.connect(url, need("IMBOT_PHONE_KEY"), timeout=timeout))
            channels["phone"] = NumberChannel(phone.phone_client(service, env.get("IMBOT_PHONE_CALLER")),
                                              texts.OUTBOX_CALL)
        yield channels

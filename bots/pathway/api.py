"""The treatment-item feed for the hospital's mini-program (TRT-4): a read-only HTTP API the pathway bot serves.

``GET /pathway/v1/notices?his_id=...`` (or ``?username=...``; exactly one) answers a patient's treatment-item
notices, newest first, each rendered again from her cycle's pathway version and the procedure's date by the same
function that rendered the message she was sent (``render.treatment_message``). The contract, its errors and its
configuration: docs/pathway-api.md.

Error handling: every answer is JSON. A request without one of the configured keys gets 401 (with
``WWW-Authenticate: Bearer``) before anything is looked up; a bad query 400, an unknown patient 404, any method
but GET 405, a failure of ours 500 with no detail (the exception goes to the log, never into an answer). Logs
carry ids only: the patient's username and counts, never what was sent to her.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import trio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bots.framework.channels import ChannelConfigError
from bots.pathway.render import treatment_message
from bots.pathway.store import NoticeRow, PathwayStore
from integrations.serving import Refusal, bearer_key, json_api, serve, unauthorized
from protocol.clock import HOSPITAL_ZONE
from protocol.frames import USERNAME_PATTERN

log = logging.getLogger(__name__)

PATH = "/pathway/v1/notices"
DEFAULT_LIMIT = 50
MAX_LIMIT = 100
MAX_HIS_ID = 64
"""The longest record number the hospital system's events may carry (bots.pathway.events.Patient)."""
MIN_KEY = 16
"""The shortest API key accepted in IMBOT_PATHWAY_API_KEYS: a short key is guessable."""

_USERNAME = re.compile(USERNAME_PATTERN)


def notices_app(store: PathwayStore, keys: Iterable[str]) -> Starlette:
    """The feed as an ASGI app; a request must carry ``Authorization: Bearer <one of keys>`` (blank keys never
    match)."""
    secrets = [key.encode() for key in keys if key]

    async def notices(request: Request) -> Response:
        key = bearer_key(request, secrets)
        if key is None:
            client = request.client.host if request.client else None
            log.warning("pathway api: request without a valid key", extra={"client": client})
            raise unauthorized()
        username, his_id, limit = _query(request)
        found = await store.treatment_notices(username=username, his_id=his_id, limit=limit)
        caller = f"api:{key}"
        if found is None:  # a look-up of someone's data is recorded, found or not
            asked = {"username": username} if username else {"his_id": his_id}
            await store.state.audit(caller, "api:notices", detail={"asked": asked, "patient": None})
            raise Refusal(404, "unknown_patient", "no patient with this " + ("username" if username else "his_id"))
        log.info("pathway api: notices served", extra={"patient": found.patient, "notices": len(found.notices)})
        await store.state.audit(caller, "api:notices", detail={"patient": found.patient, "notices": len(found.notices)})
        return JSONResponse({"patient": {"username": found.patient, "his_id": found.his_id},
                             "notices": [n for n in map(_notice, found.notices) if n is not None]})

    return json_api([Route(PATH, notices, methods=["GET"])], failure="the notices could not be read; try again later")


def _query(request: Request) -> tuple[str | None, str | None, int]:
    """``username``, ``his_id`` (exactly one of them) and ``limit`` from the query. Error handling: Refusal (400)."""
    params = request.query_params
    for name in ("username", "his_id", "limit"):
        if len(params.getlist(name)) > 1:
            raise Refusal(400, "invalid_parameter", f"{name}: give it once")
    username, his_id = params.get("username"), params.get("his_id")
    if username is None and his_id is None:
        raise Refusal(400, "missing_parameter", "name the patient: his_id or username")
    if username is not None and his_id is not None:
        raise Refusal(400, "conflicting_parameters", "name the patient once: his_id or username, not both")
    if username is not None and not _USERNAME.match(username):
        raise Refusal(400, "invalid_parameter", "username: 1-64 characters: a-z, 0-9, '_', '.', '-'")
    if his_id is not None and not 1 <= len(his_id) <= MAX_HIS_ID:
        raise Refusal(400, "invalid_parameter", f"his_id: 1-{MAX_HIS_ID} characters")
    given = params.get("limit", str(DEFAULT_LIMIT))
    if not given.isascii() or not given.isdigit() or not 1 <= int(given) <= MAX_LIMIT:
        raise Refusal(400, "invalid_parameter", f"limit: a whole number from 1 to {MAX_LIMIT}")
    return username, his_id, int(given)


def _notice(row: NoticeRow) -> dict[str, Any] | None:
    """A notice as the feed gives it: the ``treatment_items`` message rendered again; None if its pathway version
    has no such procedure (not for a notice the bot sent: it sent what this version has)."""
    try:
        treatment = row.pathway.node(row.node).treatment[row.procedure]
    except KeyError:
        log.warning("pathway api: a notice's procedure is not in its pathway; left out",
                    extra={"notice": row.id, "cycle": row.cycle})
        return None
    body = treatment_message(treatment, row.day).body or {}
    return {"id": row.id, "cycle": row.cycle, "pathway": row.pathway.key, "procedure": row.procedure,
            "title": body["title"], "day": body["day"], "items": body["items"],
            "sent_at": row.sent_at.astimezone(HOSPITAL_ZONE).isoformat(), "read": row.read, "current": row.current}


@dataclass(frozen=True)
class ApiConfig:
    host: str
    port: int
    keys: tuple[str, ...]


def api_config(env: Mapping[str, str]) -> ApiConfig | None:
    """The feed's settings from the environment; None when IMBOT_PATHWAY_API_PORT is unset (no feed).

    Error handling: ChannelConfigError naming the variable: a port that is not one, no keys, a key too short.
    """
    port_text = env.get("IMBOT_PATHWAY_API_PORT", "").strip()
    if not port_text:
        return None
    if not port_text.isascii() or not port_text.isdigit() or int(port_text) > 65535:
        raise ChannelConfigError("IMBOT_PATHWAY_API_PORT must be a port number (0-65535)")
    keys = tuple(key.strip() for key in env.get("IMBOT_PATHWAY_API_KEYS", "").split(",") if key.strip())
    if not keys:
        raise ChannelConfigError("IMBOT_PATHWAY_API_KEYS is required when IMBOT_PATHWAY_API_PORT is set")
    if any(len(key) < MIN_KEY for key in keys):
        raise ChannelConfigError(f"IMBOT_PATHWAY_API_KEYS: each key needs at least {MIN_KEY} characters")
    host = env.get("IMBOT_PATHWAY_API_HOST", "").strip() or "127.0.0.1"
    return ApiConfig(host, int(port_text), keys)


async def serve_api(
    store: PathwayStore, env: Mapping[str, str], *,
    task_status: trio.TaskStatus[str | None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the feed (TRT-4) as ``env`` configures it, until cancelled; ``task_status.started`` gets its URL, or
    None at once when IMBOT_PATHWAY_API_PORT is unset (then this returns: no feed).

    Error handling: ChannelConfigError naming the variable for a bad configuration (see :func:`api_config`),
    before anything is bound.
    """
    config = api_config(env)
    if config is None:
        task_status.started(None)
        return
    log.info("pathway api: serving", extra={"host": config.host, "port": config.port, "keys": len(config.keys)})
    await serve(notices_app(store, config.keys), config.host, config.port, task_status=task_status)

"""A simulated hospital-system event feed speaking docs/integrations/his.md, with the shared fault controls
(integrations.simulation). Tests and operators publish events with ``POST /_sim/events`` (a JSON list of
documents, kept as given, malformed ones included), as the HIS would after a doctor writes orders.
"""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from integrations.his.client import MAX_PAGE, SYSTEM
from integrations.simulation import UNAUTHORIZED, Answer, Simulator

DEMO_KEY = "demo-his-key"


def create_app(api_key: str = DEMO_KEY) -> Starlette:
    sim = Simulator(SYSTEM)
    feed: list[Any] = []

    async def events(request: Request, body: Any) -> Answer:
        if request.headers.get("x-api-key") != api_key:
            return UNAUTHORIZED
        try:
            after = int(request.query_params.get("after") or 0)
            limit = min(int(request.query_params.get("limit") or 100), MAX_PAGE)
        except ValueError:
            return 400, {"error": "bad_request", "message": "after and limit are whole numbers"}
        if after < 0 or after > len(feed) or limit < 1:
            return 400, {"error": "bad_request", "message": f"no cursor {after}"}
        page = feed[after:after + limit]
        return 200, {"events": page, "next": str(after + len(page))}

    async def publish(request: Request) -> Response:
        given = await request.json()
        feed.extend(given if isinstance(given, list) else [given])
        return JSONResponse({"published": len(feed)})

    app = sim.app([sim.route("/his/events", events, "GET")], on_reset=feed.clear)
    app.router.routes.append(Route("/_sim/events", publish, methods=["POST"]))
    return app

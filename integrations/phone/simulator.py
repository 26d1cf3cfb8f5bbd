"""A simulated robot-call system speaking docs/integrations/phone.md (the contract in
``integrations.phone.client``), with the shared fault controls (integrations.simulation). Every call is
answered at once, unless the ``outcome`` fault names another end (``no_answer``, ``busy``, ``failed``,
or ``ringing`` for one still going on).
"""

from __future__ import annotations

from starlette.applications import Starlette

from integrations.phone.client import CONTRACT
from integrations.simulation import Simulator, number_routes

DEMO_KEY = "demo-phone-key"


def create_app(api_key: str = DEMO_KEY) -> Starlette:
    sim = Simulator(CONTRACT.system)
    bearer = f"Bearer {api_key}"
    return sim.app(number_routes(sim, CONTRACT, lambda request: request.headers.get("authorization") == bearer))

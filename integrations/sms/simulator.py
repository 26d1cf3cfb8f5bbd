"""A simulated SMS gateway speaking docs/integrations/sms.md (the contract in ``integrations.sms.client``),
with the shared fault controls (integrations.simulation). Every number the contract accepts is delivered
at once, unless the ``outcome`` fault says ``failed`` (or ``pending``).
"""

from __future__ import annotations

from starlette.applications import Starlette

from integrations.simulation import Simulator, number_routes
from integrations.sms.client import CONTRACT

DEMO_KEY = "demo-sms-key"


def create_app(api_key: str = DEMO_KEY) -> Starlette:
    sim = Simulator(CONTRACT.system)
    return sim.app(number_routes(sim, CONTRACT, lambda request: request.headers.get("x-api-key") == api_key))

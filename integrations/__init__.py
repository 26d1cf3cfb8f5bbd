"""Adapters to the hospital's outside systems (DESIGN rule 8): WeChat template messages, the SMS gateway,
the robot-call system.

Each sub-package has a ``client`` that speaks the documented contract (docs/integrations/) over HTTP and
a ``simulator`` that implements it for tests and the demo (``python -m integrations.simulator``).
``integrations.http`` holds what every client shares (timeouts, retries, circuit breaking, idempotency
keys); ``integrations.simulation`` what every simulator shares. Nothing here knows of bots or the chat
server: the outbox (bots/framework/outbox.py) decides what to send, these only send it.
"""

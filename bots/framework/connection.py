"""What a lost connection to the server looks like from the SDK, for every part of a bot that talks to it (the
dispatcher, the runner, the outbox): on these the runner reconnects and the work is done again."""

from __future__ import annotations

import trio

from clients.python import ConnectionLost

CONNECTION_ERRORS = (ConnectionLost, OSError, trio.TooSlowError, trio.BrokenResourceError)
"""The exceptions of a lost connection; a message being handled is handled again after the reconnection."""

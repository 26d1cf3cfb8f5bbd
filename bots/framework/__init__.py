"""The bot framework: bots are protocol clients with a bot account (docs/architecture.md).

``commands`` parses and validates slash commands (pure), ``bot`` holds the ``Bot`` base and
the dispatch rule, ``runner`` logs in and keeps a bot running, ``texts`` has every sentence
a bot says. See bots/README.md.
"""

from bots.framework.bot import Bot, Context, dispatch
from bots.framework.commands import Args, ArgumentError, Command, CommandError, Kind, Param, Registry
from bots.framework.runner import Backoff, run_bot

__all__ = [
    "Args", "ArgumentError", "Backoff", "Bot", "Command", "CommandError", "Context", "Kind", "Param", "Registry",
    "dispatch", "run_bot",
]

"""Bots: ordinary protocol clients with a bot account (docs/architecture.md). ``imbot`` finds them here.

``BOTS`` maps a bot's name to the factory that makes it; add a line when you add a bot.
"""

from collections.abc import Callable

from bots.echo import EchoBot
from bots.framework import Bot
from bots.pathway.bot import PathwayBot
from bots.ward import WardBot

BOTS: dict[str, Callable[[], Bot]] = {
    EchoBot.name: EchoBot,
    WardBot.name: WardBot,
    PathwayBot.name: PathwayBot,
}

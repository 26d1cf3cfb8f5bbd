"""The echo bot: the smallest complete bot, to copy from (bots/README.md)."""

from bots.echo.bot import EchoBot

__all__ = ["EchoBot"]

from bots.ward.bot import WardBot

__all__ = ["WardBot"]

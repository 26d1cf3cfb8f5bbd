"""The echo bot: ``/echo 文本`` answers with the text. Shows a command with a parameter, nothing more."""

from __future__ import annotations

from bots.framework import Args, Bot, Command, Context, Param


class EchoBot(Bot):
    name = "echo"
    title = "回声机器人"
    description = "原样回复文字，用来试用机器人命令"

    def commands(self) -> list[Command]:
        return [Command("echo", "原样回复一段文字", (Param("文本", "要回复的文字", rest=True),), run=self.echo)]

    async def echo(self, ctx: Context, args: Args) -> None:
        await ctx.reply(str(args["文本"]))

"""The ward bot: staff move a patient between treatment-stage groups with ``/move`` (IM-2, IM-8).

The bot must be an owner or admin of both groups (the server checks that); the
staff member who asks must be a member of both, which the bot checks, so a
command typed anywhere cannot reach groups its author has no part in. The
patient joins the new group before leaving the old one, so she is never
without a group; the server brings her husband along both ways (IM-8).
"""

from __future__ import annotations

import re

from bots.framework import Args, Bot, Command, Context, Param
from bots.ward import texts
from clients.python import ClientError
from protocol.frames import GroupAdd, GroupRemove, Members

_GROUP = re.compile(r"g:[1-9][0-9]{0,17}")  # ASCII digits: \d takes any digit


class WardBot(Bot):
    name = "ward"
    title = texts.TITLE
    description = texts.DESCRIPTION

    def commands(self) -> list[Command]:
        return [Command("move", texts.MOVE_HELP, (
            Param("患者", texts.PATIENT), Param("从", texts.FROM), Param("到", texts.TO),
        ), run=self.move)]

    async def move(self, ctx: Context, args: Args) -> None:
        patient, source, target = str(args["患者"]), str(args["从"]), str(args["到"])
        for conv in (source, target):
            if not _GROUP.fullmatch(conv):
                await ctx.reply(texts.NOT_A_GROUP.format(conv=conv))
                return
        if source == target:
            await ctx.reply(texts.SAME_GROUP)
            return
        members = {}
        for conv in (source, target):
            try:
                members[conv] = (await ctx.client.whole(Members(conv=conv))).members
            except ClientError as exc:
                await ctx.reply(texts.BOT_CANNOT.format(conv=conv, reason=exc.message))
                return
            if not any(m.id == ctx.message.sender.id for m in members[conv]):
                await ctx.reply(texts.NOT_YOUR_GROUP.format(conv=conv))
                return
        if not any(m.username == patient and m.role == "patient" for m in members[source]):
            await ctx.reply(texts.NOT_IN_GROUP.format(patient=patient, conv=source))
            return
        for change in (GroupAdd(conv=target, user=patient), GroupRemove(conv=source, user=patient)):
            try:
                await ctx.client.request(change)
            except ClientError as exc:
                await ctx.reply(texts.BOT_CANNOT.format(conv=change.conv, reason=exc.message))
                return
        await ctx.reply(texts.MOVED.format(patient=patient, source=source, target=target))

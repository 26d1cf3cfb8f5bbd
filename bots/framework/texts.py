"""Every sentence a bot framework says to a person, in Simplified Chinese, in one place.

Kept apart from the logic so that the center's staff can review the wording in one file,
and so that a later translation touches nothing else.
"""

from __future__ import annotations

HELP_TITLE = "{bot}可用的命令："
HELP_TITLE_PATIENTS = "{bot}可供您使用的命令："
HELP_NOTHING_FOR_PATIENTS = "{bot}暂时没有可供您使用的命令。如需帮助，请直接留言，工作人员会尽快回复您。"
HELP_FOOTER = "发送 /help 命令名 查看某个命令的用法。"
USAGE = "用法：{usage}"
PARAM_LINE = "  {name}（{kind}{optional}）：{help}"
OPTIONAL = "，可省略"
DEFAULT = "，默认 {default}"

KIND_STR = "文字"
KIND_INT = "整数"
KIND_CHOICE = "以下之一：{choices}"

UNKNOWN_COMMAND = "没有 /{name} 这个命令。"
DID_YOU_MEAN = "您是不是想用：{names}？"
SEE_HELP = "发送 /help 查看全部命令。"
EMPTY_COMMAND = "请在 / 后面输入命令名，例如 /help。"
UNCLOSED_QUOTE = "第 {position} 个字符处的引号 {quote} 没有配对的结束引号。"

MISSING_ARGUMENT = "缺少参数 {name}（{help}）。"
TOO_MANY_ARGUMENTS = "参数太多：多出了 “{extra}”。"
REPEATED_ARGUMENT = "参数 {name} 重复给出。"
BAD_INT = "参数 {name} 应为整数，收到的是 “{value}”。"
INT_TOO_SMALL = "参数 {name} 不能小于 {minimum}，收到的是 {value}。"
INT_TOO_LARGE = "参数 {name} 不能大于 {maximum}，收到的是 {value}。"
BAD_CHOICE = "参数 {name} 应为以下之一：{choices}；收到的是 “{value}”。"
EMPTY_ARGUMENT = "参数 {name} 不能为空。"

HELP_COMMAND_HELP = "列出全部命令，或查看某个命令的用法"
HELP_COMMAND_PARAM = "要查看用法的命令名"

STAFF_ONLY = "抱歉，机器人命令仅供医护人员使用。如需帮助，请直接留言，工作人员会尽快回复您。"
FAILED = "抱歉，处理命令 /{name} 时出错了，请稍后再试或联系信息科。"

# The outbox (outbox.py): a notification as each channel says it.
OUTBOX_LINK = "查看详情"
OUTBOX_SMS = "{title}：{content}"
OUTBOX_CALL = "您好，这里是医院的提醒电话。{title}。{content}"

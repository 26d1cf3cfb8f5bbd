"""Slash command parsing, binding and help (bots/framework/commands.py): tables, and a property for any text."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bots.framework.commands import (
    ArgumentError,
    Command,
    CommandError,
    Kind,
    Param,
    ParseError,
    Registry,
    UnknownCommand,
    split,
)


async def _noop(ctx: object, args: object) -> None:
    return None


REGISTRY = Registry("测试机器人", [
    Command("echo", "原样回复", (Param("文本", "要回复的文字", rest=True),), run=_noop),
    Command("move", "把患者移到另一个群", (
        Param("patient", "患者用户名"),
        Param("group", "目标群"),
        Param("days", "几天后", Kind.INT, required=False, default=0, minimum=0, maximum=30),
    ), run=_noop),
    Command("remind", "提醒", (Param("when", "时间", Kind.CHOICE, choices=("today", "tomorrow")),), run=_noop),
    Command("members", "列出成员", run=_noop),
])


@pytest.mark.parametrize(("line", "words"), [
    ("a b  c", [("a", None, ""), ("b", None, ""), ("c", None, "")]),
    ('a "b c" d', [("a", None, ""), ("b c", None, ""), ("d", None, "")]),
    ("“王 女士”　x", [("王 女士", None, ""), ("x", None, "")]),  # Chinese quotes, full-width space
    ("‘单引号’ 'ok'", [("单引号", None, ""), ("ok", None, "")]),
    ('key=value k2="a b"', [("key=value", "key", "value"), ("k2=a b", "k2", "a b")]),
    ("天数＝3", [("天数＝3", "天数", "3")]),
    ('"a"=b 1=2 =x', [("a=b", None, ""), ("1=2", None, ""), ("=x", None, "")]),
    ('ab"c d"e', [("abc de", None, "")]),
    ("", []),
])
def test_split(line: str, words: list[tuple[str, str | None, str]]) -> None:
    assert [(w.text, w.key, w.value) for w in split(line)] == words


@pytest.mark.parametrize(("text", "name", "args"), [
    ("/echo 你好", "echo", {"文本": "你好"}),
    ('/echo 你好  "世界" a=b', "echo", {"文本": '你好  "世界" a=b'}),  # the rest, as typed
    ("/ECHO x", "echo", {"文本": "x"}),
    ("/echo 文本=只有这些", "echo", {"文本": "只有这些"}),
    ("/move alice g:12", "move", {"patient": "alice", "group": "g:12", "days": 0}),
    ('/move "alice" group=g:12 days=3', "move", {"patient": "alice", "group": "g:12", "days": 3}),
    ("/move days=30 alice g:1", "move", {"patient": "alice", "group": "g:1", "days": 30}),
    ("/remind TOMORROW", "remind", {"when": "tomorrow"}),
    ("/members", "members", {}),
    ("/help", "help", {"命令名": None}),
    ("/help move", "help", {"命令名": "move"}),
])
def test_resolve(text: str, name: str, args: dict[str, object]) -> None:
    call = REGISTRY.resolve(text)
    assert (call.command.name, call.args) == (name, args)


@pytest.mark.parametrize(("text", "param", "says"), [
    ("/echo", "文本", "缺少参数 文本"),
    ("/move alice", "group", "缺少参数 group"),
    ("/move alice g:1 x", "days", "参数 days 应为整数，收到的是 “x”"),
    ("/move alice g:1 -1", "days", "参数 days 不能小于 0"),
    ("/move alice g:1 31", "days", "参数 days 不能大于 30"),
    ("/move alice g:1 days=1 days=2", "days", "参数 days 重复给出"),
    ("/move alice g:1 2 more words", None, "参数太多：多出了 “more words”"),
    ("/members extra", None, "参数太多"),
    ("/remind someday", "when", "参数 when 应为以下之一：today、tomorrow；收到的是 “someday”"),
    ('/move "" g:1', "patient", "参数 patient 不能为空"),
])
def test_bad_arguments_name_the_argument(text: str, param: str | None, says: str) -> None:
    with pytest.raises(ArgumentError) as caught:
        REGISTRY.resolve(text)
    assert caught.value.param == param
    assert says in str(caught.value)
    assert "用法：/" in str(caught.value)


@pytest.mark.parametrize(("text", "suggestions"), [
    ("/ehco hi", ["echo"]),
    ("/mov a b", ["move"]),
    ("/mem", ["members", "move"]),
    ("/memb", ["members", "move"]),
    ("/membe", ["members"]),
    ("/remnid", ["remind"]),
    ("/xyzzy", []),
    ("/", []),
    ("/ echo", []),
])
def test_unknown_commands_suggest_the_closest(text: str, suggestions: list[str]) -> None:
    with pytest.raises(UnknownCommand) as caught:
        REGISTRY.resolve(text)
    assert caught.value.suggestions == suggestions
    answer = str(caught.value)
    assert "/help" in answer
    for name in suggestions:
        assert f"/{name}" in answer


def test_unclosed_quote() -> None:
    with pytest.raises(ParseError, match="引号"):
        REGISTRY.resolve('/echo "open')


def test_help_lists_every_command_and_describes_one() -> None:
    listing = REGISTRY.help_text()
    assert listing.splitlines()[0] == "测试机器人可用的命令："
    for usage in ("/help [命令名]", "/echo <文本…>", "/move <patient> <group> [days]", "/members"):
        assert usage in listing
    detail = REGISTRY.help_text("/move")
    assert "用法：/move <patient> <group> [days]" in detail
    assert "days（整数，可省略，默认 0）：几天后" in detail
    with pytest.raises(UnknownCommand):
        REGISTRY.help_text("mvoe")


def test_a_patients_help_lists_her_commands_and_names_no_staff_command() -> None:
    staff_commands = [c for c in REGISTRY if c is not REGISTRY.help]
    progress = Command("progress", "查看我的治疗进度", run=_noop, patients=True)
    registry = Registry("宣教助手", [*staff_commands, progress])
    listing = registry.help_text(patients=True)
    assert listing.splitlines() == ["宣教助手可供您使用的命令：", "/help [命令名]  列出全部命令，或查看某个命令的用法",
                                    "/progress  查看我的治疗进度", "发送 /help 命令名 查看某个命令的用法。"]
    assert "用法：/progress" in registry.help_text("progress", patients=True)
    with pytest.raises(UnknownCommand) as refused:  # /move exists, for staff: to her it does not
        registry.help_text("move", patients=True)
    assert refused.value.suggestions == [] and "/move" in str(refused.value) and "/members" not in str(refused.value)
    assert registry.help_text("move").startswith("/move：")  # staff still see it


def test_a_bot_without_patient_commands_says_so_to_a_patient() -> None:
    assert REGISTRY.help_text(patients=True) == (
        "测试机器人暂时没有可供您使用的命令。如需帮助，请直接留言，工作人员会尽快回复您。")


@pytest.mark.parametrize("bad", [
    lambda: Command("a b", "x"),
    lambda: Command("x", "x", (Param("a", ""), Param("a", ""))),
    lambda: Command("x", "x", (Param("a", "", rest=True), Param("b", ""))),
    lambda: Command("x", "x", (Param("a", "", required=False), Param("b", ""))),
    lambda: Command("x", "x", (Param("a", "", Kind.CHOICE),)),
    lambda: Registry("r", [Command("help", "again")]),
])
def test_bad_declarations_fail_at_once(bad: object) -> None:
    with pytest.raises(ValueError):
        bad()  # type: ignore[operator]


@given(st.text())
def test_any_text_resolves_or_raises_command_error(text: str) -> None:
    try:
        REGISTRY.resolve("/" + text)
    except CommandError as exc:
        assert str(exc)


@given(st.lists(st.sampled_from(["/", "echo", "move", "help", " ", "　", '"', "“", "”", "'", "=", "＝", "a", "1",
                                 "-", "days", "g:1"])).map("".join))
def test_command_like_text_resolves_or_raises_command_error(text: str) -> None:
    try:
        REGISTRY.resolve("/" + text)
    except CommandError as exc:
        assert str(exc)

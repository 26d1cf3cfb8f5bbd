"""Slash commands that staff type in a chat: parsing, declarations, validation, help. Pure: no I/O.

Theory of operation. A message is a command only if its text starts with ``/``. The text is
split into words at whitespace (ASCII or the full-width space of a Chinese keyboard); a word
may be quoted with ``"…"``, ``'…'`` or the Chinese quotes ``“…”`` and ``‘…’`` to hold spaces.
A word ``key=value`` (``＝`` too) whose key names a declared parameter sets that parameter;
any other word is positional, ``a=b`` included, so free text survives. Positional words fill
the declared parameters in order; a parameter declared ``rest`` takes the raw remainder of
the line, spacing and quotes as typed (``/echo 你好  "世界"`` echoes ``你好  "世界"``).

Everything a person did wrong raises :class:`CommandError` (and only that) with a message in
Simplified Chinese from :mod:`bots.framework.texts`, naming the argument and what was
expected, or suggesting the closest command names; the bot sends that message back as is.
"""

from __future__ import annotations

import difflib
import enum
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from bots.framework import texts

PREFIX = "/"
_SPACE = re.compile(r"\s")  # str.isspace and re agree on U+3000, the full-width space
_QUOTES = {'"': '"', "'": "'", "“": "”", "‘": "’"}
_EQUALS = ("=", "＝")
_KEY = re.compile(r"[^\W\d]\w*")  # an identifier, Chinese ones included
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*")

Value = str | int | None
Args = dict[str, Value]


class CommandError(Exception):
    """What the person typed cannot be run; ``str(error)`` is the answer to send them."""


class ParseError(CommandError):
    """The text cannot be split into words (an unclosed quote)."""


class UnknownCommand(CommandError):
    """No command has this name; ``suggestions`` holds the closest names, best first."""

    def __init__(self, name: str, suggestions: list[str]) -> None:
        self.name = name
        self.suggestions = suggestions
        lines = [texts.UNKNOWN_COMMAND.format(name=name) if name else texts.EMPTY_COMMAND]
        if suggestions:
            lines.append(texts.DID_YOU_MEAN.format(names="、".join(PREFIX + s for s in suggestions)))
        lines.append(texts.SEE_HELP)
        super().__init__("\n".join(lines))


class ArgumentError(CommandError):
    """An argument is missing, extra or invalid; ``param`` names it (``None`` for an extra word)."""

    def __init__(self, command: Command, param: str | None, problem: str) -> None:
        self.command = command
        self.param = param
        super().__init__(f"{problem}\n{texts.USAGE.format(usage=command.usage())}")


class Kind(enum.Enum):
    """The type of a parameter's value."""

    STR = "str"
    """Any non-empty text."""
    INT = "int"
    """A whole number, optionally within ``minimum`` and ``maximum``."""
    CHOICE = "choice"
    """One of ``choices``, compared without regard to case."""


@dataclass(frozen=True)
class Param:
    """One declared parameter of a command."""

    name: str
    help: str
    kind: Kind = Kind.STR
    required: bool = True
    default: Value = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    maximum: int | None = None
    rest: bool = False
    """Takes the raw remainder of the line; only the last parameter may."""

    def describe(self) -> str:
        if self.kind is Kind.INT:
            kind = texts.KIND_INT
        elif self.kind is Kind.CHOICE:
            kind = texts.KIND_CHOICE.format(choices="、".join(self.choices))
        else:
            kind = texts.KIND_STR
        optional = "" if self.required else texts.OPTIONAL
        if self.default is not None:
            optional += texts.DEFAULT.format(default=self.default)
        return texts.PARAM_LINE.format(name=self.name, kind=kind, optional=optional, help=self.help)

    def convert(self, command: Command, raw: str) -> Value:
        """The typed value of ``raw``. Error handling: ArgumentError naming this parameter."""
        if not raw:
            raise ArgumentError(command, self.name, texts.EMPTY_ARGUMENT.format(name=self.name))
        if self.kind is Kind.INT:
            try:
                value = int(raw)
            except ValueError:
                raise ArgumentError(command, self.name, texts.BAD_INT.format(name=self.name, value=raw)) from None
            if self.minimum is not None and value < self.minimum:
                problem = texts.INT_TOO_SMALL.format(name=self.name, minimum=self.minimum, value=value)
                raise ArgumentError(command, self.name, problem)
            if self.maximum is not None and value > self.maximum:
                problem = texts.INT_TOO_LARGE.format(name=self.name, maximum=self.maximum, value=value)
                raise ArgumentError(command, self.name, problem)
            return value
        if self.kind is Kind.CHOICE:
            for choice in self.choices:
                if choice.casefold() == raw.casefold():
                    return choice
            problem = texts.BAD_CHOICE.format(name=self.name, choices="、".join(self.choices), value=raw)
            raise ArgumentError(command, self.name, problem)
        return raw


Handler = Callable[[Any, Args], Awaitable[None]]
"""What runs a command: called with the bot's context (bots.framework.bot.Context) and the arguments."""


@dataclass(frozen=True)
class Command:
    """A command a bot understands: its name, one line of help in Chinese, and its parameters."""

    name: str
    help: str
    params: tuple[Param, ...] = ()
    run: Handler | None = field(default=None, compare=False)
    patients: bool = False
    """Patients and family may run it too (e.g. ``/progress``: where am I); others are for staff only."""

    def __post_init__(self) -> None:
        if not _NAME.fullmatch(self.name):
            raise ValueError(f"bad command name {self.name!r}")
        names = [p.name for p in self.params]
        if len(set(names)) != len(names) or not all(_KEY.fullmatch(n) for n in names):
            raise ValueError(f"/{self.name}: parameter names must be distinct identifiers")
        if any(p.rest for p in self.params[:-1]):
            raise ValueError(f"/{self.name}: only the last parameter may take the rest of the line")
        seen_optional = False
        for p in self.params:
            if p.required and seen_optional:
                raise ValueError(f"/{self.name}: a required parameter follows an optional one")
            seen_optional = seen_optional or not p.required
            if p.kind is Kind.CHOICE and not p.choices:
                raise ValueError(f"/{self.name}: parameter {p.name} has no choices")

    def usage(self) -> str:
        parts = [PREFIX + self.name]
        for p in self.params:
            label = p.name + ("…" if p.rest else "")
            parts.append(f"<{label}>" if p.required else f"[{label}]")
        return " ".join(parts)

    def describe(self) -> str:
        """The detailed help of ``/help NAME``."""
        return "\n".join([f"{PREFIX}{self.name}：{self.help}", texts.USAGE.format(usage=self.usage())]
                         + [p.describe() for p in self.params])

    def bind(self, words: Sequence[Word], line: str) -> Args:
        """Match the words after the name to the parameters. Error handling: ArgumentError."""
        by_name = {p.name: p for p in self.params}
        raw: dict[str, str] = {}
        positional: list[Word] = []
        for word in words:
            if word.key is not None and word.key in by_name:
                if word.key in raw:
                    raise ArgumentError(self, word.key, texts.REPEATED_ARGUMENT.format(name=word.key))
                raw[word.key] = word.value
            else:
                positional.append(word)
        free = [p for p in self.params if p.name not in raw]
        for word in positional:
            if not free:
                extra = line[word.start:].strip()
                raise ArgumentError(self, None, texts.TOO_MANY_ARGUMENTS.format(extra=extra))
            param = free.pop(0)
            if param.rest:
                raw[param.name] = line[word.start:].strip()
                break
            raw[param.name] = word.text
        args: Args = {}
        for p in self.params:
            if p.name in raw:
                args[p.name] = p.convert(self, raw[p.name])
            elif p.required:
                raise ArgumentError(self, p.name, texts.MISSING_ARGUMENT.format(name=p.name, help=p.help))
            else:
                args[p.name] = p.default
        return args


@dataclass(frozen=True)
class Word:
    """One word of a command line: ``text`` unquoted as a whole, ``key``/``value`` if it was ``key=value``."""

    text: str
    start: int
    """Offset of the word in the line, for parameters that take the raw rest."""
    key: str | None = None
    value: str = ""


def is_command(text: str) -> bool:
    """Whether a message is meant as a command: its text starts with ``/``."""
    return text.startswith(PREFIX)


def split(line: str) -> list[Word]:
    """The words of ``line`` (see the module docstring). Error handling: ParseError for an unclosed quote."""
    words: list[Word] = []
    i, n = 0, len(line)
    while i < n:
        if _SPACE.match(line, i):
            i += 1
            continue
        start, parts, key, mark, quoted = i, [], None, 0, False
        while i < n and not _SPACE.match(line, i):
            char = line[i]
            if char in _QUOTES:
                end = line.find(_QUOTES[char], i + 1)
                if end < 0:
                    raise ParseError(texts.UNCLOSED_QUOTE.format(position=i + 1, quote=char))
                parts.append(line[i + 1:end])
                quoted, i = True, end + 1
                continue
            if char in _EQUALS and key is None and not quoted and _KEY.fullmatch("".join(parts)):
                key, mark = "".join(parts), len(parts) + 1
            parts.append(char)
            i += 1
        text = "".join(parts)
        words.append(Word(text, start, key, "".join(parts[mark:]) if key is not None else ""))
    return words


@dataclass(frozen=True)
class Call:
    """A command line resolved against a registry: the command and its typed arguments."""

    command: Command
    args: Args


class Registry:
    """The commands of one bot, with the built-in ``/help``."""

    def __init__(self, title: str, commands: Iterable[Command] = ()) -> None:
        self.title = title
        self._commands: dict[str, Command] = {}
        self.help = Command(  # everyone's: a patient is shown the commands she may use
            "help", texts.HELP_COMMAND_HELP, (Param("命令名", texts.HELP_COMMAND_PARAM, required=False),),
            patients=True,
        )
        self.add(self.help)
        for command in commands:
            self.add(command)

    def add(self, command: Command) -> None:
        key = command.name.lower()
        if key in self._commands:
            raise ValueError(f"/{command.name} is declared twice")
        self._commands[key] = command

    def __iter__(self) -> Iterator[Command]:
        return iter(self._commands.values())

    def get(self, name: str) -> Command | None:
        return self._commands.get(name.lower())

    def resolve(self, text: str) -> Call:
        """Parse a command line (``text`` starts with ``/``) and bind its arguments.

        Error handling: CommandError (ParseError, UnknownCommand, ArgumentError) with the answer
        to send; nothing else is raised for any text.
        """
        if not is_command(text):
            raise ValueError("not a command")
        line = text[len(PREFIX):]
        words = split(line)
        if not words or words[0].start != 0:
            raise UnknownCommand("", [])
        name = words[0].text
        command = self.get(name)
        if command is None:
            raise UnknownCommand(name, self.suggest(name))
        return Call(command, command.bind(words[1:], line))

    def suggest(self, name: str, *, patients: bool = False) -> list[str]:
        """The closest command names to a mistyped one (difflib), best first, at most three; for ``patients``,
        among the commands they may run only."""
        names = [c.name for c in self.available(patients=patients)]
        close = difflib.get_close_matches(name.lower(), [n.lower() for n in names], n=3, cutoff=0.5)
        prefixed = [n for n in names if name and n.lower().startswith(name.lower()) and n.lower() not in close]
        by_lower = {n.lower(): n for n in names}
        return ([by_lower[c] for c in close] + prefixed)[:3]

    def available(self, *, patients: bool = False) -> list[Command]:
        """The commands staff may run (all), or those patients and family may run (``Command.patients``)."""
        return [c for c in self if c.patients or not patients]

    def help_text(self, name: Value = None, *, patients: bool = False) -> str:
        """The answer to ``/help`` (every command, one line each) or ``/help NAME`` (one command in detail); for
        ``patients``, of the commands they may run only, so that staff commands stay unknown to them.

        Error handling: UnknownCommand for a NAME that is not a command (for patients: not one of theirs).
        """
        commands = self.available(patients=patients)
        if name is not None:
            wanted = str(name).removeprefix(PREFIX)
            command = self.get(wanted)
            if command is None or command not in commands:
                raise UnknownCommand(wanted, self.suggest(wanted, patients=patients))
            return command.describe()
        if patients and commands == [self.help]:
            return texts.HELP_NOTHING_FOR_PATIENTS.format(bot=self.title)
        lines = [(texts.HELP_TITLE_PATIENTS if patients else texts.HELP_TITLE).format(bot=self.title)]
        lines += [f"{c.usage()}  {c.help}" for c in commands]
        lines.append(texts.HELP_FOOTER)
        return "\n".join(lines)

"""Every regular expression that reads user input runs in linear time (issue 14 item 4, DESIGN rule 6).

One pattern that backtracked (the quick-reply placeholder: ``"{{"`` and 400 spaces took 10 s) stalled the whole
server for every client. The patterns are found, not listed: every compiled pattern and ``*_PATTERN`` string at
module level in ``protocol``, ``imserver`` and ``bots``, and every ``pattern`` constraint of a msgspec struct
there. Each gets adversarial strings (long runs of one character after a prefix that gets it going, with and
without a character that makes it fail at the end) up to the longest text it can be given. The time taken is
only a guard against a hang: the bound is far above what linear matching needs.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
import time
from collections.abc import Iterator
from pathlib import Path

import msgspec
from msgspec import inspect

from protocol.frames import ABSOLUTE_MAX_TEXT

PACKAGES = ("protocol", "imserver", "bots")
ROOT = Path(__file__).resolve().parents[1]
RUNS = "a 0０_-.:/{}?中\u3000\n"
"""The characters a pattern may loop on: letters, digits (ASCII and full-width), separators, braces, spaces."""
PREFIXES = ["", "{{", "{{?", "g:", "u:", "a", "att_", "image/", "2026-", "09:", "https://"]
"""What gets a pattern past its first literal part, so that its loops see the run."""
HANG_GUARD = 10.0
"""Seconds for every pattern and every string together; linear matching needs well under one."""
RUN_GUARD = 0.25
"""Seconds for one string (the longest, 64 Ki characters, takes a few milliseconds). Strings come shortest first,
each 4 times the last: the old placeholder pattern took 0.7 s at 256 characters, and would have taken minutes at
1,024 and days at the longest, so a pattern like it fails here instead of hanging the suite."""


def modules() -> Iterator[object]:
    for name in PACKAGES:
        package = importlib.import_module(name)
        yield package
        for found in pkgutil.walk_packages(package.__path__, f"{name}."):
            yield importlib.import_module(found.name)


def struct_patterns(info: inspect.Type, seen: set[type]) -> Iterator[tuple[str, int]]:
    """The ``pattern`` constraints in a type, each with the longest string it may be given."""
    if isinstance(info, inspect.StrType) and info.pattern is not None:
        yield info.pattern, info.max_length if info.max_length is not None else ABSOLUTE_MAX_TEXT
    elif isinstance(info, inspect.StructType):
        if info.cls not in seen:
            seen.add(info.cls)
            for f in info.fields:
                yield from struct_patterns(f.type, seen)
    elif isinstance(info, inspect.ListType | inspect.SetType | inspect.FrozenSetType | inspect.VarTupleType):
        yield from struct_patterns(info.item_type, seen)
    elif isinstance(info, inspect.DictType):
        yield from struct_patterns(info.key_type, seen)
        yield from struct_patterns(info.value_type, seen)
    elif isinstance(info, inspect.UnionType):
        for t in info.types:
            yield from struct_patterns(t, seen)
    elif isinstance(info, inspect.TupleType):
        for t in info.item_types:
            yield from struct_patterns(t, seen)


def patterns() -> dict[str, tuple[re.Pattern[str], int]]:
    """Every pattern that may read user input, by where it was found, with the longest text it may read."""
    found: dict[str, tuple[re.Pattern[str], int]] = {}
    seen: set[type] = set()
    for module in modules():
        for name, value in vars(module).items():
            where = f"{module.__name__}.{name}"  # type: ignore[attr-defined]
            if isinstance(value, re.Pattern) and isinstance(value.pattern, str):
                found[where] = (value, ABSOLUTE_MAX_TEXT)
            elif isinstance(value, str) and name.endswith("_PATTERN"):
                found[where] = (re.compile(value), ABSOLUTE_MAX_TEXT)
            elif isinstance(value, type) and issubclass(value, msgspec.Struct):
                for pattern, longest in struct_patterns(inspect.type_info(value), seen):
                    found.setdefault(f"pattern {pattern!r}", (re.compile(pattern), longest))
    return found


def adversaries(pattern: re.Pattern[str], longest: int) -> Iterator[str]:
    """Runs of each character, after each prefix the pattern knows, at growing lengths up to ``longest``
    (shortest first: a pattern that backtracks takes seconds at 64 characters, and days at the longest)."""
    source = pattern.pattern.replace("\\", "")
    prefixes = [p for p in PREFIXES if p[:2] in source]
    for size in sorted({*(min(4**n, longest) for n in range(2, 8)), longest}):  # 16, 64, … 16 Ki, longest
        for prefix in prefixes:
            for char in RUNS:
                run = prefix + char * max(size - len(prefix) - 1, 0)
                yield run
                yield run + "!"


def test_every_pattern_is_found() -> None:
    """The audit sees every pattern: regular expressions are module-level names, none is written inside a call."""
    found = patterns()
    assert {"imserver.templating.PLACEHOLDER", "imserver.words._SKIPPED", "protocol.frames.USERNAME_PATTERN",
            "bots.framework.commands._KEY"} <= set(found)
    assert len([w for w in found if w.startswith("pattern ")]) >= 12, sorted(found)
    inline = re.compile(r"\bre\.(?:match|fullmatch|search|sub|subn|split|findall|finditer)\(\s*[rbuRBU]?[\"']")
    hidden = [f"{path.relative_to(ROOT)}:{number}" for package in PACKAGES for path in (ROOT / package).rglob("*.py")
              for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if inline.search(line)]
    assert not hidden, f"a regular expression written inside a call escapes this audit: {hidden}"


def test_no_pattern_backtracks_on_long_runs() -> None:
    started = time.perf_counter()
    for where, (pattern, longest) in patterns().items():
        for text in adversaries(pattern, longest):
            begun = time.perf_counter()
            for _ in pattern.finditer(text):  # every start position: the most any caller asks of it
                pass
            took = time.perf_counter() - begun
            assert took < RUN_GUARD and begun + took - started < HANG_GUARD, (
                f"{where} took {took:.2f} s on {text[:20]!r}… ({len(text)} characters)")

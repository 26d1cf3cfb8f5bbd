"""Sensitive-word filtering (IM-11): Aho-Corasick over normalised text.

Normalising makes the usual evasions match: full-width letters and digits
(NFKD), combining marks, upper case (casefold), and spaces, punctuation or symbols put between
the characters of a word (dropped before matching). A message with no listed
word takes the fast path: three C-level string passes and one automaton scan.
Only a message that matches is walked character by character, to map the match
back to the original text for masking.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from enum import StrEnum

import ahocorasick

MASK = "＊"
_SKIPPED = re.compile(r"[\W_]+")


class Policy(StrEnum):
    """What a listed word does to a message that contains it."""

    MASK = "mask"
    """Replace the word (and anything put inside it) with ＊."""
    BLOCK = "block"
    """Refuse the message; it is kept for audit, visible to staff only."""
    FLAG = "flag"
    """Let it through, and tell the group's staff."""


_NOTED = {Policy.MASK: "masked", Policy.BLOCK: "blocked", Policy.FLAG: "flagged"}
"""The list of a ``Verdict`` that names the words of each policy."""


def normalise(text: str) -> str:
    """What matching sees: compatibility-decomposed (NFKD: full-width to half-width) without combining
    marks, case-folded, and without spaces, punctuation and symbols.

    Decomposing never joins characters, so normalising a text and normalising each of its
    characters agree, which the masking path relies on.
    """
    decomposed = unicodedata.normalize("NFKD", text)
    return _SKIPPED.sub("", "".join(c for c in decomposed if not unicodedata.combining(c)).casefold())


MAX_FOUND = 100
"""Words a verdict names per policy, the first found: what the ``flag`` push and the audit log show (SPEC.md §11.5),
kept small so that they fit in a frame whatever the list holds (§3.7)."""


@dataclass
class Verdict:
    """What the filter found in a text, and the text to deliver."""

    text: str
    """The text to deliver (masked where a mask word matched)."""
    blocked: list[str] = field(default_factory=list)
    flagged: list[str] = field(default_factory=list)
    masked: list[str] = field(default_factory=list)

    def note(self, policy: str, words: Iterable[str]) -> None:
        """Name these words found under ``policy`` (``blocked``, ``flagged``, ``masked``), up to ``MAX_FOUND``."""
        found = getattr(self, policy)
        for word in words:
            if len(found) >= MAX_FOUND:
                return
            if word not in found:
                found.append(word)

    @property
    def clean(self) -> bool:
        return not (self.blocked or self.flagged or self.masked)


class WordFilter:
    """An immutable automaton of the hospital's words; build a new one when the list changes."""

    def __init__(self, entries: Iterable[tuple[str, str]] = ()) -> None:
        self._automaton = ahocorasick.Automaton()
        self.size = 0
        for word, policy in entries:
            key = normalise(word)
            if key:
                self._automaton.add_word(key, (len(key), word, Policy(policy)))
                self.size += 1
        if self.size:
            self._automaton.make_automaton()

    def check(self, text: str) -> Verdict:
        verdict = Verdict(text)
        if not self.size or not any(True for _ in self._automaton.iter(normalise(text))):
            return verdict
        # Slow path: normalise character by character, so each match maps back to the original text.
        pieces = [normalise(char) for char in text]
        origin = [index for index, piece in enumerate(pieces) for _ in piece]
        chars = list(text)
        for end, (length, word, policy) in self._automaton.iter("".join(pieces)):
            verdict.note(_NOTED[policy], [word])
            if policy is Policy.MASK:
                for i in range(origin[end - length + 1], origin[end] + 1):
                    if not chars[i].isspace():
                        chars[i] = MASK
        verdict.text = "".join(chars)
        return verdict

"""What an outside system says became of a message it accepted (its delivery report), in one vocabulary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Outcome = Literal["pending", "delivered", "failed"]


@dataclass(frozen=True)
class Report:
    outcome: Outcome
    """``pending``: ask again later; ``delivered`` and ``failed`` are final."""
    detail: str
    """The system's own word for it (``delivered``, ``no_answer``, ``busy``…)."""

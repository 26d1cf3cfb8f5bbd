"""Latency histograms that workers fill cheaply and the coordinator merges exactly.

Log-spaced buckets 1 % wide from 1 µs: recording is one ``log`` and a dict
update, a histogram of millions of samples is a few hundred numbers, and a
percentile read from it is within 1 % of the true value (the maximum is exact).
"""

from __future__ import annotations

import math
from collections import Counter

_BASE = math.log(1.01)
PERCENTILES = {"p50": 0.50, "p90": 0.90, "p99": 0.99, "p99.9": 0.999}


class Histogram:
    def __init__(self) -> None:
        self.buckets: Counter[int] = Counter()
        self.count = 0
        self.max_us = 0.0

    def record(self, us: float) -> None:
        self.buckets[int(math.log(us) / _BASE) if us > 1 else 0] += 1
        self.count += 1
        if us > self.max_us:
            self.max_us = us

    def merge(self, other: Histogram) -> None:
        self.buckets.update(other.buckets)
        self.count += other.count
        self.max_us = max(self.max_us, other.max_us)

    def percentile_ms(self, q: float) -> float:
        if not self.count:
            return 0.0
        rank = math.ceil(q * self.count)
        seen = 0
        for bucket in sorted(self.buckets):
            seen += self.buckets[bucket]
            if seen >= rank:
                return min(math.exp((bucket + 1) * _BASE), self.max_us) / 1000
        return self.max_us / 1000

    def summary(self) -> dict[str, float]:
        """``p50``…``p99.9`` and ``max`` in milliseconds, rounded for reading."""
        found = {name: round(self.percentile_ms(q), 2) for name, q in PERCENTILES.items()}
        return found | {"max": round(self.max_us / 1000, 2), "count": self.count}

    def to_json(self) -> dict[str, object]:
        return {"buckets": dict(self.buckets), "count": self.count, "max_us": self.max_us}

    @classmethod
    def from_json(cls, value: dict[str, object]) -> Histogram:
        h = cls()
        h.buckets.update({int(k): int(v) for k, v in value["buckets"].items()})  # type: ignore[attr-defined]
        h.count = int(value["count"])  # type: ignore[call-overload]
        h.max_us = float(value["max_us"])  # type: ignore[arg-type]
        return h

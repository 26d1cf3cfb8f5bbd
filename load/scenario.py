"""What a load run does: the scenario file, its derived numbers and its names in the database.

A scenario is a JSON object; unknown fields are refused so a typo does not
silently run a different test. Names of the users and groups it creates are
derived from the scenario's ``name``, which makes ``imload setup`` idempotent
and lets several scenarios share one database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

PositiveInt = Annotated[int, Meta(ge=1)]
Count = Annotated[int, Meta(ge=0)]


class Flood(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """Accounts that flood the server for a window of the run, beside the scenario's light traffic (issue 14 item 11).

    Each flooder is a patient alone in a group of her own, sending as fast as the server answers with ``in_flight``
    sends unanswered at all times through the SDK's ``send`` (which resends a shed message after its
    ``retry_after_ms``, SPEC.md §7.6). Her requests must not be rate limited: run the server with a raised ``rate``
    and ``burst`` (load/RESULTS.md).
    """

    senders: PositiveInt
    in_flight: PositiveInt = 400
    start_s: Annotated[float, Meta(ge=0)] = 5.0
    """When the flood begins, in seconds after the traffic began."""
    duration_s: Annotated[float, Meta(gt=0)] = 20.0
    retries: Count = 5
    """Resends of one shed message before the flooder gives it up (counted as an error)."""
    workers: Annotated[int, Meta(ge=1, le=64)] = 1
    """Load-generating processes of the flooders, beside the scenario's ``workers``: a light user's send and receipt
    must not wait behind the generator's own flood."""


class Scenario(msgspec.Struct, forbid_unknown_fields=True, frozen=True):
    """One load test. Rates are aggregate over all senders."""

    name: Annotated[str, Meta(pattern=r"^[a-z0-9][a-z0-9-]{0,23}$")]
    users: PositiveInt
    """Patients created for the run; groups and pairs are filled from them in order."""
    groups: Count = 0
    members_per_group: Count = 0
    senders: Count = 0
    """Members of each group who send (group traffic); 0 with dm_pairs for 1:1 traffic only."""
    dm_pairs: Count = 0
    """1:1 conversations between users 2k and 2k+1; both sides send."""
    listeners: Literal["all"] | Count = "all"
    """How many users are online receiving (the first N; senders are always online)."""
    rate: Annotated[float, Meta(ge=0)] | None = None
    """Aggregate messages per second (over groups and pairs)."""
    per_user_per_day: Annotated[float, Meta(ge=0)] | None = None
    """Alternative to ``rate``: messages per user per day, turned into an aggregate rate."""
    duration_s: Annotated[float, Meta(gt=0, le=3600)] = 30.0
    body_bytes: Annotated[int, Meta(ge=40, le=16000)] = 150
    """UTF-8 size of each message text (Chinese, 3 bytes per character)."""
    ramp: list[Annotated[float, Meta(gt=0)]] = msgspec.field(default_factory=list)
    """Rates for ``imload ramp`` to step through, each for ``duration_s``."""
    churn_per_s: Annotated[float, Meta(ge=0)] = 0.0
    """Extra users that connect, sync and disconnect, this many per second."""
    churn_users: Count = 0
    """How many users (numbered after the listeners) take turns churning."""
    reconnect_storm: Count = 0
    """After the traffic, this many listeners drop at once, miss ``storm_missed`` messages, reconnect, sync."""
    storm_missed: PositiveInt = 20
    heartbeat_s: Annotated[float, Meta(ge=0)] = 30.0
    """Each online client sends an application ping this often (what the apps do to keep NAT open); 0: never,
    like a phone in a pocket, so only the server's own keep-alive runs (issue 14 item 1)."""
    prefill_messages: Count = 0
    """Old messages written by ``imload setup`` before the run, spread over the conversations."""
    workers: Annotated[int, Meta(ge=1, le=64)] = 2
    """Load-generating processes."""
    drain_s: Annotated[float, Meta(gt=0)] = 10.0
    """After sending stops, how long receivers may take to get the last deliveries."""
    p99_target_ms: Annotated[float, Meta(gt=0)] = 100.0
    """A step passes when delivery is complete and p99 send→deliver is within this (the ramp's ceiling rule)."""
    max_in_flight: PositiveInt = 64
    """Sends a sender may have unanswered; beyond it the sender falls behind its schedule (and says so)."""
    flood: Flood | None = None
    """Flooding accounts for a window of each step; the light traffic is then measured before, during and after."""

    def __post_init__(self) -> None:
        if self.groups and not self.members_per_group:
            raise ValueError("groups need members_per_group")
        if self.members_per_group > self.users:
            raise ValueError("members_per_group is more than users")
        if self.senders > self.members_per_group:
            raise ValueError("senders is more than members_per_group")
        if 2 * self.dm_pairs > self.users:
            raise ValueError("dm_pairs needs 2 users each")
        if self.rate is not None and self.per_user_per_day is not None:
            raise ValueError("give rate or per_user_per_day, not both")
        if self.online > self.users:
            raise ValueError("listeners is more than users")
        if self.churn_users and self.online + self.churn_users > self.users:
            raise ValueError("churn_users must come after the listeners (users >= listeners + churn_users)")
        if self.churn_per_s and not self.churn_users:
            raise ValueError("churn_per_s needs churn_users")
        if self.reconnect_storm > self.online:
            raise ValueError("reconnect_storm is more than the online users")
        if self.flood and self.flood.start_s + self.flood.duration_s >= self.duration_s:
            raise ValueError("flood must end before duration_s, so that recovery can be measured")

    @property
    def online(self) -> int:
        return self.users if self.listeners == "all" else self.listeners

    @property
    def messages_per_s(self) -> float:
        if self.per_user_per_day is not None:
            return self.per_user_per_day * self.users / 86400
        return self.rate or 0.0

    def group_members(self, group: int) -> range:
        """User numbers (0-based) in a group: consecutive blocks, wrapping around the users."""
        start = (group * self.members_per_group) % self.users
        return range(start, start + self.members_per_group)

    def member(self, number: int) -> int:
        return number % self.users

    def username(self, number: int) -> str:
        return f"ld-{self.name}-{number:06d}"

    def group_name(self, group: int) -> str:
        return f"压测 {self.name} {group:04d}"

    def flooder_name(self, number: int) -> str:
        return f"ld-{self.name}-flood{number:05d}"

    def flood_group_name(self, number: int) -> str:
        return f"压测 {self.name} 刷屏 {number:05d}"


def load(path: str | Path) -> Scenario:
    """Read a scenario file. Error handling: ValueError with the field at fault."""
    try:
        return msgspec.json.decode(Path(path).read_bytes(), type=Scenario)
    except msgspec.ValidationError as exc:
        raise ValueError(f"{path}: {exc}") from None


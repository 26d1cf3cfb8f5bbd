"""Calling an outside system over HTTP without losing work and without hammering it (DESIGN rule 8).

Theory of operation. ``Service.call`` makes one logical request, in up to ``Retry.attempts``
attempts. Every attempt carries the caller's idempotency key (``Idempotency-Key``), so a system
that honours it answers a repeated request with its first answer and sends nothing twice: an
attempt whose answer was lost (a timeout) can be repeated safely. An attempt fails
*transiently* when it cannot connect, times out, or gets a 5xx or a 429: it is retried after an
exponentially growing, jittered delay (or the ``Retry-After`` the system asked for, up to
the cap). Any other 4xx is the caller's mistake and is raised at once as :class:`Refused`:
repeating it would not help. A client may also judge a 2xx answer transient (WeChat's
``errcode -1``, "system busy") by raising :class:`TryAgain` from its ``check``.

Every transient failure counts against the service's :class:`CircuitBreaker`; after
``threshold`` in a row it *opens*, and calls fail fast with :class:`CircuitOpen` (no request
is made) until ``cool_off`` seconds have passed; then one call is let through as a probe
(*half-open*): its success closes the circuit, its failure opens it for another cool-off. A
refusal (4xx) shows the system is up, so it counts as a success.

Error handling: callers get :class:`Refused` (permanent: record it, do not retry),
:class:`Unavailable` (transient: the work should be retried later, e.g. by the durable job
that asked) or its subclass :class:`CircuitOpen`.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
import trio

IDEMPOTENCY_HEADER = "Idempotency-Key"


class OutsideError(Exception):
    """An outside system did not do what was asked; ``system`` names it (``sms``, ``wechat``, ``phone``)."""

    def __init__(self, system: str, detail: str) -> None:
        self.system = system
        self.detail = detail
        super().__init__(f"{system}: {detail}")


class Refused(OutsideError):
    """The system refused the request for good (a 4xx, or an error code saying so): do not repeat it."""

    def __init__(self, system: str, detail: str, status: int | None = None) -> None:
        super().__init__(system, detail)
        self.status = status


class Unavailable(OutsideError):
    """The system could not be reached or kept failing; the same request may work later."""


class CircuitOpen(Unavailable):
    """Failing fast: the system failed too often lately, so no request was made."""


class TryAgain(Exception):
    """Raised by a ``check`` to call a 2xx answer a transient failure (e.g. WeChat's "system busy")."""


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: growing, capped, jittered (so many callers do not retry in step)."""

    first: float = 0.5
    factor: float = 2.0
    cap: float = 30.0
    jitter: float = 0.2

    def delay(self, attempt: int) -> float:
        """Seconds to wait after failed attempt ``attempt`` (0-based)."""
        base = min(self.first * self.factor**attempt, self.cap)
        return base * (1 + self.jitter * (2 * random.random() - 1))


@dataclass(frozen=True)
class Retry:
    """How often and how patiently one call is attempted."""

    attempts: int = 4
    backoff: Backoff = Backoff(first=0.2, cap=5.0, jitter=0.5)

    def delay(self, attempt: int, asked: float | None) -> float:
        """The backoff, or the system's own Retry-After (``asked``) up to the backoff's cap."""
        return self.backoff.delay(attempt) if asked is None else min(asked, self.backoff.cap)


class CircuitBreaker:
    """Fail fast while a system is down (module docstring); ``clock`` is injectable for tests."""

    def __init__(
        self, system: str, *, threshold: int = 5, cool_off: float = 30.0,
        clock: Callable[[], float] = trio.current_time,
    ) -> None:
        self.system = system
        self.threshold = threshold
        self.cool_off = cool_off
        self._clock = clock
        self._failures = 0
        self._opened_at: float | None = None
        self._probing = False

    @property
    def state(self) -> str:
        if self._opened_at is None:
            return "closed"
        return "half-open" if self._probing or self._cooled() else "open"

    def _cooled(self) -> bool:
        return self._opened_at is not None and self._clock() - self._opened_at >= self.cool_off

    def allow(self) -> None:
        """Let a call through or raise CircuitOpen; after the cool-off exactly one probe goes through."""
        if self._opened_at is None:
            return
        if self._probing or not self._cooled():
            raise CircuitOpen(self.system, "circuit open after repeated failures; not calling")
        self._probing = True

    def succeeded(self) -> None:
        self._failures = 0
        self._opened_at = None
        self._probing = False

    def failed(self) -> None:
        self._failures += 1
        if self._probing or self._failures >= self.threshold:
            self._opened_at = self._clock()
        self._probing = False


Check = Callable[[httpx.Response], None]


class Service:
    """One outside system's HTTP endpoint: base URL, credentials as headers, timeouts, retries, circuit.

    Use as ``async with Service(...) as service`` (it holds a connection pool).
    """

    def __init__(
        self, system: str, base_url: str, *, headers: Mapping[str, str] | None = None, timeout: float = 5.0,
        retry: Retry = Retry(), breaker: CircuitBreaker | None = None,
    ) -> None:
        self.system = system
        self.retry = retry
        self.breaker = breaker or CircuitBreaker(system)
        self._http = httpx.AsyncClient(base_url=base_url, headers=dict(headers or {}), timeout=timeout)

    async def __aenter__(self) -> Service:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._http.aclose()

    async def call(
        self, method: str, path: str, *, key: str | None = None, json: Any = None,
        params: Mapping[str, str] | None = None, check: Check | None = None,
    ) -> Any:
        """Make the request, retrying transient failures; return the answer's JSON.

        ``key`` goes out as ``Idempotency-Key`` on every attempt. ``check`` may inspect a 2xx
        answer and raise TryAgain (transient) or Refused (permanent).

        Error handling: Refused for a 4xx other than 429 (and whatever ``check`` refuses), at once;
        CircuitOpen if the circuit is open; Unavailable once every attempt failed transiently.
        """
        headers = {IDEMPOTENCY_HEADER: key} if key else {}
        failure = "no attempt made"
        asked: float | None = None
        for attempt in range(self.retry.attempts):
            if attempt:
                await trio.sleep(self.retry.delay(attempt - 1, asked))
            asked = None
            self.breaker.allow()
            try:
                response = await self._http.request(method, path, json=json, params=params, headers=headers)
            except httpx.TransportError as exc:  # connect errors, timeouts, broken connections
                failure = f"{type(exc).__name__}: {exc}".rstrip(": ")
                self.breaker.failed()
                continue
            if _transient(response.status_code):
                failure = f"HTTP {response.status_code}: {response.text[:200]}"
                asked = _retry_after(response)
                self.breaker.failed()
                continue
            self.breaker.succeeded()  # it answered: up, even if it refuses
            if response.status_code >= 400:
                raise Refused(self.system, f"HTTP {response.status_code}: {response.text[:500]}", response.status_code)
            try:
                if check is not None:
                    check(response)
                return response.json()
            except TryAgain as exc:
                failure = str(exc)
                self.breaker.failed()
            except ValueError as exc:  # not JSON: a proxy's error page, say
                failure = f"answer is not JSON: {exc}"
                self.breaker.failed()
        raise Unavailable(self.system, f"{failure} (after {self.retry.attempts} attempts)")


def _transient(status: int) -> bool:
    """5xx (the system's trouble) and 429 (too many requests: slow down) are worth repeating."""
    return status >= 500 or status == 429


def _retry_after(response: httpx.Response) -> float | None:
    """The seconds form of Retry-After (the date form is not used by the gateways we speak to)."""
    value = response.headers.get("retry-after", "")
    return float(value) if value.replace(".", "", 1).isdigit() else None


def text_field(system: str, answer: Any, name: str) -> str:
    """A string field of a JSON answer; an answer without it breaks the contract, which retrying will not mend."""
    if not isinstance(answer, dict) or not isinstance(answer.get(name), str):
        raise Refused(system, f"answer without {name!r}: {answer!r:.200}")
    return str(answer[name])

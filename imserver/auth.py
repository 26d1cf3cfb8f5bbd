"""Passwords and session tokens (SEC-1).

Passwords are hashed with argon2id. A token is ``payload.signature`` in
base64url, where the payload names a session and its expiry and the signature
is HMAC-SHA256 with a key only the servers hold. A valid signature proves the
server issued the token; the session row decides whether it is still alive,
which is what makes tokens revocable.
"""

from __future__ import annotations

import base64
import binascii
import functools
import os
import time
import uuid

import msgspec
import trio
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, hmac
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from protocol import ErrorCode, ProtocolError

_hasher = PasswordHasher()
TOKEN_KEY = "token_hmac"
"""The name of the servers' shared key that signs session tokens."""
FIELD_KEY = "field_aes"
"""The name of the servers' shared key that encrypts personal data at rest (SEC-2)."""


@functools.cache
def _dummy_hash() -> str:
    """A real hash to verify against when the username is unknown, so the answer takes as long either way.

    Made on first use: it costs a fifth of a second, which every operator command would pay at import.
    """
    return _hasher.hash("no such user")


async def hash_password(password: str) -> str:
    """argon2 costs tens of milliseconds of CPU: keep it off the event loop."""
    return await trio.to_thread.run_sync(_hasher.hash, password)


async def verify_password(password_hash: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return _hasher.verify(password_hash or _dummy_hash(), password) and password_hash is not None
        except (VerificationError, InvalidHashError):
            return False
    return await trio.to_thread.run_sync(check)


SHED_RETRY_MS = 1000
"""How long a login shed by ``PasswordChecks`` is told to wait; clients add their own jitter (SPEC.md §4.5)."""


class PasswordChecks:
    """Password checks, at most ``capacity`` at once; a login beyond them is refused at once (SEC-1, NFR-2).

    argon2 takes 64 MiB and a core for a tenth of a second per check: 40 wrong passwords at once
    drove a server from 64 MB to 2.4 GB. A login that finds every slot taken is answered
    ``rate_limited`` with ``retry_after_ms`` rather than queued, since queued checks would still
    hold their connections and be answered late.
    """

    def __init__(self, capacity: int) -> None:
        self._slots = trio.Semaphore(capacity)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """``verify_password`` in a free slot.

        Error handling: raises a fatal ProtocolError(RATE_LIMITED) with ``retry_after_ms`` when none is free.
        """
        try:
            self._slots.acquire_nowait()
        except trio.WouldBlock:
            raise ProtocolError(ErrorCode.RATE_LIMITED, "too many logins at once", fatal=True,
                                retry_after_ms=SHED_RETRY_MS) from None
        try:
            return await verify_password(password_hash, password)
        finally:
            self._slots.release()


class FieldCipher:
    """Encrypts personal data at rest (SEC-2): AES-256-GCM, a fresh nonce per value."""

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, text: str) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, text.encode(), None)

    def decrypt(self, blob: bytes) -> str:
        return self._aead.decrypt(blob[:12], blob[12:], None).decode()


class _Payload(msgspec.Struct, array_like=True):
    session: bytes
    expires: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issues and checks session tokens."""

    def __init__(self, key: bytes) -> None:
        self._key = key

    def _mac(self, payload: bytes) -> bytes:
        h = hmac.HMAC(self._key, hashes.SHA256())
        h.update(payload)
        return h.finalize()

    def issue(self, session_id: uuid.UUID, expires: float) -> str:
        payload = msgspec.msgpack.encode(_Payload(session_id.bytes, int(expires)))
        return f"{_b64(payload)}.{_b64(self._mac(payload))}"

    def check(self, token: str, now: float | None = None) -> uuid.UUID | None:
        """The session a genuine, unexpired token names; None for anything else."""
        try:
            head, _, sig = token.partition(".")
            payload = _unb64(head)
            h = hmac.HMAC(self._key, hashes.SHA256())
            h.update(payload)
            h.verify(_unb64(sig))
            decoded = msgspec.msgpack.decode(payload, type=_Payload)
            if decoded.expires < (time.time() if now is None else now):
                return None
            return uuid.UUID(bytes=decoded.session)
        except (ValueError, binascii.Error, InvalidSignature, msgspec.DecodeError):
            return None

"""Which files may be uploaded, how large, and whether a file's first bytes are what its type says (MSG-4).

A file is refused unless its declared type is one the server knows the signature of
and the configuration allows, its size is within the limit of its kind (images,
audio, video, PDF), and its first bytes carry that type's signature: a "PDF" that
is an executable is refused. Pure: tested with tables.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

from imserver.config import Settings

HEAD = 12
"""Bytes of a file's start that the signatures look at."""


def _ftyp(head: bytes) -> bool:
    """An ISO base media file (MP4, M4A, and QuickTime's newer files): a ``ftyp`` box first."""
    return head[4:8] == b"ftyp"


def _mpeg_frame(head: bytes) -> bool:
    """An MPEG audio frame header: 11 sync bits, and a layer (I, II or III: MP3 is layer III)."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0 and head[1] & 0x06 != 0


def _adts(head: bytes) -> bool:
    """An ADTS header, how raw AAC frames start: 12 sync bits and layer 0."""
    return len(head) >= 2 and head[0] == 0xFF and head[1] & 0xF6 == 0xF0


SIGNATURES: dict[str, Callable[[bytes], bool]] = {
    "image/jpeg": lambda h: h.startswith(b"\xff\xd8\xff"),
    "image/png": lambda h: h.startswith(b"\x89PNG\r\n\x1a\n"),
    "image/gif": lambda h: h[:6] in (b"GIF87a", b"GIF89a"),
    "image/webp": lambda h: h.startswith(b"RIFF") and h[8:12] == b"WEBP",
    "audio/amr": lambda h: h.startswith(b"#!AMR"),  # narrow band, and wide band (#!AMR-WB)
    "audio/mpeg": lambda h: h.startswith(b"ID3") or _mpeg_frame(h),
    "audio/mp4": _ftyp,
    "audio/aac": _adts,
    "audio/ogg": lambda h: h.startswith(b"OggS"),
    "video/mp4": _ftyp,
    "video/quicktime": lambda h: h[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"),
    "application/pdf": lambda h: h.startswith(b"%PDF-"),
}
"""The types the server can check; ``upload_types`` may allow fewer, never others."""


@cache
def limits(settings: Settings) -> dict[str, int]:
    """The allowed types and the largest file of each, in bytes, as the welcome announces them (SPEC.md §4.2).

    Error handling: ValueError for a configured type whose signature the server does not know.
    """
    by_kind = {
        "image": settings.max_image, "audio": settings.max_audio, "video": settings.max_video,
        "application": settings.max_pdf,
    }
    found = {}
    for mime in filter(None, (t.strip() for t in settings.upload_types.split(","))):
        if mime not in SIGNATURES:
            raise ValueError(f"upload_types: cannot check files of type {mime!r}; known: {', '.join(SIGNATURES)}")
        found[mime] = by_kind[mime.partition("/")[0]]
    return found


def matches(mime: str, head: bytes) -> bool:
    """Does a file starting with ``head`` (its first HEAD bytes, or all of a shorter file) look like ``mime``?"""
    signature = SIGNATURES.get(mime)
    return signature is not None and signature(head)

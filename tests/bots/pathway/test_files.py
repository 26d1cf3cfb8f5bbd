"""The files the shipped pathways name (EDU-2): each ships as package data beside the JSON, is whole, and passes
the chat server's own checks for the type its extension implies, so the bot's upload of it is not refused; a
video lasts the ``seconds`` its item says."""

from __future__ import annotations

import mimetypes
import struct
import zlib
from importlib import resources

import pytest

from bots.pathway.definition import Item, shipped
from imserver import filetypes
from imserver.config import Settings

NAMED = [
    (f"{pathway.key}:{item.key}:{item.file}", item)
    for pathway in shipped()
    for item in (*(i for node in pathway.nodes for i in (*node.welcome, *node.content)),
                 *(i for rule in pathway.orders for i in rule.items))
    if item.file
]
"""Every item of every shipped pathway that names a file, with an id for the test report."""


def data(item: Item) -> bytes:
    entry = resources.files("bots.pathway.pathways").joinpath(item.file)
    assert entry.is_file(), f"{item.file} does not ship beside the pathways"
    return entry.read_bytes()


def png_size(png: bytes) -> tuple[int, int]:
    """Width and height of a PNG whose every chunk is whole (CRC checked) and whose IEND ends the file."""
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    at, kinds, size = 8, [], (0, 0)
    while at < len(png):
        length, kind = struct.unpack(">I4s", png[at:at + 8])
        body, crc = png[at + 8:at + 8 + length], png[at + 8 + length:at + 12 + length]
        assert len(crc) == 4 and struct.unpack(">I", crc)[0] == zlib.crc32(kind + body), f"chunk {kind!r} is cut"
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        kinds.append(kind)
        at += 12 + length
    assert kinds[0] == b"IHDR" and b"IDAT" in kinds and kinds[-1] == b"IEND"
    return size


def boxes(data: bytes) -> dict[bytes, bytes]:
    """The ISO media boxes at one level, which must fill ``data`` exactly (ISO/IEC 14496-12 §4.2)."""
    found, at = {}, 0
    while at < len(data):
        size, kind = struct.unpack(">I4s", data[at:at + 8])
        head = 8
        if size == 1:
            size, head = struct.unpack(">Q", data[at + 8:at + 16])[0], 16
        assert size >= head and at + size <= len(data), f"box {kind!r} runs past the end"
        found.setdefault(kind, data[at + head:at + size])
        at += size
    return found


def mp4_seconds(mp4: bytes) -> float:
    """The movie's length from ``moov/mvhd`` (ISO/IEC 14496-12 §8.2.2): duration over timescale."""
    top = boxes(mp4)
    assert b"mdat" in top
    mvhd = boxes(top[b"moov"])[b"mvhd"]
    if mvhd[0] == 1:
        timescale, duration = struct.unpack(">IQ", mvhd[20:32])
    else:
        timescale, duration = struct.unpack(">II", mvhd[12:20])
    return duration / timescale


@pytest.mark.parametrize("item", [item for _, item in NAMED], ids=[name for name, _ in NAMED])
def test_the_server_would_take_it(item: Item) -> None:
    content = data(item)
    mime = mimetypes.guess_type(item.file)[0]
    assert mime is not None and mime.partition("/")[0] == item.kind, f"{item.file} is not named as an {item.kind}"
    allowed = filetypes.limits(Settings())
    assert mime in allowed
    assert 0 < len(content) <= allowed[mime]
    assert filetypes.matches(mime, content[:filetypes.HEAD]), f"{item.file} does not start as {mime} does"
    if mime == "image/png":
        assert min(png_size(content)) > 0
    elif mime == "video/mp4":
        assert mp4_seconds(content) == pytest.approx(item.seconds, abs=1)
    else:
        pytest.fail(f"{mime}: no check of a whole file of this type yet; add one")


def test_the_pathways_name_the_image_and_the_video() -> None:
    """Not vacuous: the IVF pathway's retrieval map and trigger-shot video are among the named files."""
    assert {"retrieval-map.png", "trigger.mp4"} <= {item.file for _, item in NAMED}

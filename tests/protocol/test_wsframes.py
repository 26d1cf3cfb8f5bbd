"""WebSocket framing (protocol/wsframes.py) checked against wsproto, an independent implementation (NFR-3)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from wsproto.frame_protocol import FrameProtocol, Opcode

from protocol import wsframes

payloads = st.binary(max_size=70_000) | st.sampled_from([b"", b"x" * 125, b"x" * 126, b"x" * 65535, b"x" * 65536])


def parsed_by_wsproto(data: bytes, *, client: bool) -> list[tuple[Opcode, bytes]]:
    """What wsproto reads from ``data`` (``client``: it reads as a client, so frames must be unmasked)."""
    reader = FrameProtocol(client=client, extensions=[])
    reader.receive_bytes(data)
    return [(f.opcode, bytes(f.payload)) for f in reader.received_frames()]


def feed_in_pieces(reader: wsframes.FrameReader, data: bytes, cuts: list[int]) -> list[tuple[int, bytes]]:
    out = []
    at = 0
    for cut in [*sorted(c % (len(data) + 1) for c in cuts), len(data)]:
        out += reader.feed(data[at:cut])
        at = max(at, cut)
    return out


@given(payloads)
def test_server_frames_are_what_wsproto_clients_read(payload: bytes) -> None:
    assert parsed_by_wsproto(wsframes.frame(payload), client=True) == [(Opcode.BINARY, payload)]


@given(payloads, st.binary(min_size=4, max_size=4))
def test_masked_client_frames_are_what_wsproto_servers_read(payload: bytes, mask: bytes) -> None:
    assert parsed_by_wsproto(wsframes.frame(payload, mask=mask), client=False) == [(Opcode.BINARY, payload)]


@given(st.lists(st.tuples(st.binary(max_size=3000), st.booleans()), min_size=1, max_size=8),
       st.lists(st.integers(min_value=0), max_size=10), st.booleans())
def test_reader_reassembles_what_wsproto_sends_however_it_is_split(
    parts: list[tuple[bytes, bool]], cuts: list[int], masked: bool,
) -> None:
    """Fragmented messages with pings between fragments, fed in arbitrary pieces, both directions."""
    writer = FrameProtocol(client=masked, extensions=[])  # a client masks its frames
    data, expected, current = b"", [], b""
    for i, (chunk, last) in enumerate(parts):
        finished = last or i == len(parts) - 1
        data += writer.send_data(chunk, fin=finished)
        current += chunk
        if not finished:
            data += writer.ping(b"p%d" % i)
            expected.append((wsframes.PING, b"p%d" % i))
        else:
            expected.append((wsframes.BINARY, current))
            current = b""
    reader = wsframes.FrameReader(masked=masked, max_message=1 << 20)
    assert feed_in_pieces(reader, data, cuts) == expected


def test_close_frames_round_trip() -> None:
    data = wsframes.frame(wsframes.close_payload(4003, "account_banned"), wsframes.CLOSE)
    [(opcode, payload)] = wsframes.FrameReader(masked=False, max_message=100).feed(data)
    assert opcode == wsframes.CLOSE
    assert wsframes.parse_close(payload) == (4003, "account_banned")
    assert wsframes.parse_close(b"") == (1005, "")


@pytest.mark.parametrize(("data", "masked", "code"), [
    (wsframes.frame(b"hi", mask=b"abcd"), False, 1002),       # a server must not mask
    (wsframes.frame(b"hi"), True, 1002),                       # a client must
    (bytes([0xC2, 0x02]) + b"hi", False, 1002),                # RSV1 without an extension
    (bytes([0x83, 0x00]), False, 1002),                        # reserved opcode
    (bytes([0x89, 126, 0, 126]) + b"x" * 126, False, 1002),    # control frame too long
    (bytes([0x09, 0x00]), False, 1002),                        # fragmented control frame
    (bytes([0x80, 0x00]), False, 1002),                        # continuation with nothing to continue
    (bytes([0x02, 0x01]) + b"a" + bytes([0x82, 0x01]) + b"b", False, 1002),  # new message inside another
    (wsframes.frame(b"x" * 101), False, 1009),                 # over max_message
    (bytes([0x82, 127]) + (1 << 62).to_bytes(8, "big"), False, 1009),  # refused before the payload arrives
])
def test_broken_framing_is_refused_with_its_close_code(data: bytes, masked: bool, code: int) -> None:
    with pytest.raises(wsframes.FrameError) as caught:
        wsframes.FrameReader(masked=masked, max_message=100).feed(data)
    assert caught.value.code == code


def test_fragments_count_towards_the_limit() -> None:
    reader = wsframes.FrameReader(masked=False, max_message=100)
    assert reader.feed(bytes([0x02, 60]) + b"a" * 60) == []
    with pytest.raises(wsframes.FrameError) as caught:
        reader.feed(bytes([0x80, 60]) + b"b" * 60)
    assert caught.value.code == 1009

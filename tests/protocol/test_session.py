"""The server's per-connection protocol state machine (SPEC.md §4, §7)."""

from __future__ import annotations

from typing import Any

import pytest

from protocol.codec import DEFAULT_MAX_FRAME, encode
from protocol.errors import ErrorCode, ProtocolError
from protocol.frames import OPS, REQUEST_TYPES, Hello, Request
from protocol.session import Phase, ServerSession, negotiate

HELLO: dict[str, Any] = {"op": "hello", "rid": 1, "versions": [1], "token": "t"}

#: One valid frame for each op other than hello.
MINIMAL: dict[str, dict[str, Any]] = {
    "ping": {"op": "ping", "rid": 2},
    "logout": {"op": "logout", "rid": 3},
    "convs": {"op": "convs", "rid": 4},
    "send": {"op": "send", "rid": 5, "conv": "g:1", "cid": "c1", "text": "你好"},
    "sync": {"op": "sync", "rid": 6},
    "history": {"op": "history", "rid": 7, "conv": "g:1"},
    "read": {"op": "read", "rid": 8, "conv": "g:1", "seq": 3},
    "receipt": {"op": "receipt", "rid": 13, "conv": "d:1"},
    "kinds": {"op": "kinds", "rid": 13},
    "kind_define": {"op": "kind_define", "rid": 13, "definition": {}},
    "group_create": {"op": "group_create", "rid": 9, "name": "群"},
    "group_add": {"op": "group_add", "rid": 10, "conv": "g:1", "user": "wang.fang"},
    "group_remove": {"op": "group_remove", "rid": 11, "conv": "g:1", "user": "wang.fang"},
    "members": {"op": "members", "rid": 12, "conv": "g:1"},
    "group_set": {"op": "group_set", "rid": 14, "conv": "g:12", "muted": True},
    "isolate": {"op": "isolate", "rid": 15, "conv": "g:12", "member": "a3"},
    "unisolate": {"op": "unisolate", "rid": 16, "conv": "g:12", "member": "a3"},
    "group_ban": {"op": "group_ban", "rid": 17, "conv": "g:12"},
    "group_unban": {"op": "group_unban", "rid": 18, "conv": "g:12"},
    "user_ban": {"op": "user_ban", "rid": 19, "user": "zhang.wei"},
    "user_unban": {"op": "user_unban", "rid": 20, "user": "zhang.wei"},
    "family_link": {
        "op": "family_link", "rid": 21, "patient": "chen_hong", "family": "chen_family", "relation": "husband"
    },
    "family_invite": {"op": "family_invite", "rid": 22, "conv": "g:12", "family": "chen_family"},
    "friend_request": {"op": "friend_request", "rid": 23, "conv": "g:12", "member": "a7"},
    "friend_requests": {"op": "friend_requests", "rid": 35},
    "friend_respond": {"op": "friend_respond", "rid": 24, "request": 5, "accept": True},
    "words_set": {"op": "words_set", "rid": 25, "word": "代孕", "policy": "block"},
    "words_remove": {"op": "words_remove", "rid": 26, "word": "代孕"},
    "words_list": {"op": "words_list", "rid": 27},
    "audit": {"op": "audit", "rid": 28, "since": 1795700000000, "actor": "dr_wang", "limit": 50},
    "profile": {"op": "profile", "rid": 29, "conv": "g:12", "member": "a3"},
    "upload_begin": {
        "op": "upload_begin", "rid": 30, "mime": "image/png", "size": 204800, "sha256": "0" * 64, "name": "B超.png"
    },
    "upload_part": {"op": "upload_part", "rid": 31, "id": "att_Xq3bZr9Kp2Lm", "offset": 0, "data": b"\x89PNG"},
    "upload_end": {"op": "upload_end", "rid": 32, "id": "att_Xq3bZr9Kp2Lm"},
    "fetch": {"op": "fetch", "rid": 33, "id": "att_Xq3bZr9Kp2Lm", "offset": 65536, "length": 65536},
    "team_create": {"op": "team_create", "rid": 36, "name": "移植一组"},
    "team_add": {"op": "team_add", "rid": 37, "team": "移植一组", "user": "nurse_li"},
    "team_remove": {"op": "team_remove", "rid": 38, "team": "移植一组", "user": "nurse_li"},
    "teams": {"op": "teams", "rid": 39},
    "qr_save": {"op": "qr_save", "rid": 40, "shortcut": "yz", "title": "移植", "text": "{{patient}}您好"},
    "qr_delete": {"op": "qr_delete", "rid": 41, "id": 7},
    "qr_list": {"op": "qr_list", "rid": 42},
    "qr_search": {"op": "qr_search", "rid": 43, "q": "yz"},
    "qr_render": {"op": "qr_render", "rid": 44, "conv": "g:12", "ids": [7]},
    "facts_set": {"op": "facts_set", "rid": 45, "user": "chen_hong", "key": "next_visit", "value": "12月3日"},
}
#: SPEC.md §4: the ops a read-only (mini-program) session may not use.
WRITING_OPS = {
    "send", "group_create", "group_add", "group_remove", "group_set", "isolate", "unisolate", "group_ban",
    "group_unban", "user_ban", "user_unban", "family_link", "family_invite", "friend_request", "friend_respond",
    "words_set", "words_remove", "kind_define", "upload_begin", "upload_part", "upload_end",
    "team_create", "team_add", "team_remove", "qr_save", "qr_delete", "qr_render", "facts_set",
}


def opened(*, readonly: bool = False) -> ServerSession:
    session = ServerSession()
    request = session.receive(encode(HELLO))
    assert isinstance(request, Hello)
    session.open(readonly=readonly)
    return session


def refuse(session: ServerSession, data: bytes | str) -> ProtocolError:
    with pytest.raises(ProtocolError) as info:
        session.receive(data)
    return info.value


def test_minimal_frames_cover_every_op() -> None:
    assert set(MINIMAL) | {"hello"} == OPS


def test_writes_flags_match_spec() -> None:
    writing = {t.__struct_config__.tag for t in REQUEST_TYPES if t.writes}
    assert writing == WRITING_OPS


def test_starts_awaiting_hello() -> None:
    session = ServerSession()
    assert session.phase is Phase.AWAIT_HELLO
    assert not session.readonly
    assert session.max_frame == DEFAULT_MAX_FRAME


@pytest.mark.parametrize("op", sorted(MINIMAL))
def test_op_before_hello_is_fatal(op: str) -> None:
    error = refuse(ServerSession(), encode(MINIMAL[op]))
    assert error.code is ErrorCode.AUTH_REQUIRED
    assert error.fatal
    assert error.rid == MINIMAL[op]["rid"]
    assert error.error_frame().rid == MINIMAL[op]["rid"]


def test_hello_accepted() -> None:
    session = ServerSession()
    request = session.receive(encode({**HELLO, "username": "zhang.wei", "device": "ipad", "readonly": True}))
    assert isinstance(request, Hello)
    assert request.rid == 1 and request.device == "ipad" and request.readonly
    assert session.phase is Phase.AWAIT_HELLO, "the server authenticates, then calls open()"
    session.open(readonly=True)
    assert session.phase is Phase.OPEN and session.readonly


def test_malformed_hello_is_fatal() -> None:
    """SPEC.md §4.5: before the handshake every error is fatal, with the field named."""
    session = ServerSession()
    error = refuse(session, encode({**HELLO, "versions": []}))
    assert error.code is ErrorCode.BAD_REQUEST and error.field == "versions" and error.rid == 1
    assert error.fatal


def test_second_hello_after_open() -> None:
    session = opened()
    error = refuse(session, encode({**HELLO, "rid": 99}))
    assert error.code is ErrorCode.BAD_REQUEST
    assert error.rid == 99
    assert not error.fatal
    assert session.phase is Phase.OPEN


@pytest.mark.parametrize("op", sorted(MINIMAL))
def test_open_session_accepts_every_op(op: str) -> None:
    request = opened().receive(encode(MINIMAL[op]))
    assert isinstance(request, Request)
    assert request.rid == MINIMAL[op]["rid"]


@pytest.mark.parametrize("op", sorted(MINIMAL))
def test_readonly_session(op: str) -> None:
    session = opened(readonly=True)
    if op in WRITING_OPS:
        error = refuse(session, encode(MINIMAL[op]))
        assert error.code is ErrorCode.READ_ONLY
        assert error.rid == MINIMAL[op]["rid"]
        assert not error.fatal
    else:
        assert session.receive(encode(MINIMAL[op])).rid == MINIMAL[op]["rid"]


@pytest.mark.parametrize("open_first", [False, True])
def test_text_message_is_bad_frame(open_first: bool) -> None:
    session = opened() if open_first else ServerSession()
    error = refuse(session, '{"op": "ping", "rid": 1}')
    assert error.code is ErrorCode.BAD_FRAME
    assert error.rid is None
    assert error.fatal is not open_first  # fatal only before the handshake


def test_oversize_frame() -> None:
    session = opened()
    big = {"op": "send", "rid": 5, "conv": "g:1", "cid": "c1", "text": "x" * DEFAULT_MAX_FRAME}
    error = refuse(session, encode(big))
    assert error.code is ErrorCode.FRAME_TOO_LARGE
    assert not error.fatal
    assert session.receive(encode(MINIMAL["ping"])).rid == 2, "the connection goes on"


def test_frame_exactly_at_the_limit() -> None:
    """``max_frame`` is inclusive: a frame of exactly that many bytes is accepted."""
    data = encode({"op": "ping", "rid": 2, "pad": "x" * 80})
    session = ServerSession(max_frame=len(data))
    session.open(readonly=False)
    assert session.receive(data).rid == 2
    smaller = ServerSession(max_frame=len(data) - 1)
    smaller.open(readonly=False)
    assert refuse(smaller, data).code is ErrorCode.FRAME_TOO_LARGE


def test_configured_max_frame() -> None:
    session = ServerSession(max_frame=1024)
    session.open(readonly=False)
    error = refuse(session, encode({"op": "send", "rid": 1, "conv": "g:1", "cid": "c", "text": "字" * 400}))
    assert error.code is ErrorCode.FRAME_TOO_LARGE


def test_negotiate_picks_version_1() -> None:
    assert negotiate(Hello(rid=1, versions=[1])) == 1
    assert negotiate(Hello(rid=1, versions=[3, 2, 1])) == 1


def test_negotiate_refuses_unknown_versions() -> None:
    with pytest.raises(ProtocolError) as info:
        negotiate(Hello(rid=7, versions=[2, 3]))
    assert info.value.code is ErrorCode.UNSUPPORTED_VERSION
    assert info.value.fatal
    assert info.value.rid == 7
    assert info.value.error_frame().code == "unsupported_version"


def test_unknown_op_before_hello_is_fatal() -> None:
    """SPEC.md §4: any op before a successful hello is refused with fatal auth_required."""
    error = refuse(ServerSession(), encode({"op": "typing", "rid": 5}))
    assert error.code is ErrorCode.AUTH_REQUIRED
    assert error.fatal

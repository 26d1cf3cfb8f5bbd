"""Protocol v1 of the hospital chat: frames, codec and rules, with no I/O (see SPEC.md)."""

from protocol.codec import (
    DEFAULT_MAX_FRAME,
    decode_answer,
    decode_frame,
    decode_message,
    decode_push,
    decode_request,
    encode,
    mismatch,
    peek,
)
from protocol.errors import MESSAGES_ZH, ErrorCode, ProtocolError
from protocol.frames import PROTOCOL_VERSIONS, ErrorFrame, Message, Push, Request, Sender, answer_type
from protocol.session import Phase, ServerSession, negotiate

__all__ = [
    "DEFAULT_MAX_FRAME",
    "MESSAGES_ZH",
    "PROTOCOL_VERSIONS",
    "ErrorCode",
    "ErrorFrame",
    "Message",
    "Phase",
    "ProtocolError",
    "Push",
    "Request",
    "Sender",
    "ServerSession",
    "answer_type",
    "decode_answer",
    "decode_frame",
    "decode_message",
    "decode_push",
    "decode_request",
    "encode",
    "mismatch",
    "negotiate",
    "peek",
]

"""Protocol v1 of the hospital chat: frames, codec and rules, with no I/O (see SPEC.md)."""

from protocol.codec import DEFAULT_MAX_FRAME, decode_frame, decode_message, decode_request, encode
from protocol.errors import MESSAGES_ZH, ErrorCode, ProtocolError
from protocol.frames import PROTOCOL_VERSIONS, Message, Sender
from protocol.session import Phase, ServerSession, negotiate

__all__ = [
    "DEFAULT_MAX_FRAME",
    "MESSAGES_ZH",
    "PROTOCOL_VERSIONS",
    "ErrorCode",
    "Message",
    "Phase",
    "ProtocolError",
    "Sender",
    "ServerSession",
    "decode_frame",
    "decode_message",
    "decode_request",
    "encode",
    "negotiate",
]

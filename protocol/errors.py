"""Error codes of protocol v1 (SPEC.md §7) and the Chinese text shown to users.

Codes are stable: clients branch on them. Messages are for people and may be
reworded; they live here, in one place, so they can be reviewed and changed.
"""

from __future__ import annotations

from enum import StrEnum

from protocol.frames import ErrorFrame


class ErrorCode(StrEnum):
    """Stable error codes carried in ``error`` and ``bye`` frames."""

    #: The frame is not one msgpack map, or is a text WebSocket message.
    BAD_FRAME = "bad_frame"
    #: The frame exceeds ``limits.max_frame``.
    FRAME_TOO_LARGE = "frame_too_large"
    #: ``hello`` offered no protocol version the server speaks.
    UNSUPPORTED_VERSION = "unsupported_version"
    #: An op other than ``hello`` arrived before the handshake completed.
    AUTH_REQUIRED = "auth_required"
    #: Wrong username or password.
    AUTH_FAILED = "auth_failed"
    #: The session token is malformed, expired or revoked: log in with the password again.
    TOKEN_INVALID = "token_invalid"
    #: The ``op`` value is not known to this server.
    UNKNOWN_OP = "unknown_op"
    #: A field is missing, of the wrong type or out of range; ``field`` names it.
    BAD_REQUEST = "bad_request"
    #: The conversation or user does not exist (or is not visible to this user).
    NOT_FOUND = "not_found"
    #: The user may not do this.
    FORBIDDEN = "forbidden"
    #: The session is read-only (mini-program mode) and may not send.
    READ_ONLY = "read_only"
    #: The message text is longer than ``limits.max_text``.
    TEXT_TOO_LONG = "text_too_long"
    #: A file is larger than its type allows (``limits.files``, SPEC.md §5.18).
    FILE_TOO_LARGE = "file_too_large"
    #: Too many requests; retry after ``retry_after_ms``.
    RATE_LIMITED = "rate_limited"
    #: The server is shutting down or its database is unreachable; retry later.
    UNAVAILABLE = "unavailable"
    #: A bug on the server; the request changed nothing.
    INTERNAL = "internal"
    #: (bye) The connection could not keep up with its outbound messages; resync.
    SLOW_CONSUMER = "slow_consumer"
    #: (bye) No frame and no pong within the idle timeout.
    IDLE_TIMEOUT = "idle_timeout"
    #: The group is muted (mute all): only its owners, admins, staff and bots may send.
    MUTED = "muted"
    #: Family members may read this group but not speak in it.
    FAMILY_READ_ONLY = "family_read_only"
    #: The group is banned: show the blocked screen; nothing can be read or sent.
    GROUP_BANNED = "group_banned"
    #: The account is banned: it may not log in (also a bye reason).
    ACCOUNT_BANNED = "account_banned"
    #: The message contains a word the hospital does not allow; it was not sent.
    SENSITIVE_WORDS = "sensitive_words"
    #: (bye) The server is shutting down.
    SHUTDOWN = "shutdown"
    #: (bye) This session was logged out or its token revoked.
    SESSION_ENDED = "session_ended"
    #: The ``cid`` is that of a message the sender sent to another conversation: a client bug; not sent.
    CID_REUSED = "cid_reused"


MESSAGES_ZH: dict[ErrorCode, str] = {
    ErrorCode.BAD_FRAME: "无法识别的数据帧",
    ErrorCode.FRAME_TOO_LARGE: "数据帧过大",
    ErrorCode.UNSUPPORTED_VERSION: "客户端版本过旧，请升级后再试",
    ErrorCode.AUTH_REQUIRED: "请先登录",
    ErrorCode.AUTH_FAILED: "用户名或密码错误",
    ErrorCode.TOKEN_INVALID: "登录已失效，请重新登录",
    ErrorCode.UNKNOWN_OP: "不支持的操作",
    ErrorCode.BAD_REQUEST: "请求参数有误",
    ErrorCode.NOT_FOUND: "会话或用户不存在",
    ErrorCode.FORBIDDEN: "没有权限进行此操作",
    ErrorCode.READ_ONLY: "当前为只读模式，不能发送消息",
    ErrorCode.TEXT_TOO_LONG: "消息内容过长",
    ErrorCode.FILE_TOO_LARGE: "文件过大，无法发送",
    ErrorCode.RATE_LIMITED: "操作过于频繁，请稍后再试",
    ErrorCode.UNAVAILABLE: "服务暂时不可用，请稍后再试",
    ErrorCode.INTERNAL: "服务器内部错误",
    ErrorCode.MUTED: "本群已开启全员禁言",
    ErrorCode.FAMILY_READ_ONLY: "家属在群内仅可查看，不能发言",
    ErrorCode.GROUP_BANNED: "该群已被封禁",
    ErrorCode.ACCOUNT_BANNED: "该账号已被封禁，如有疑问请联系医院",
    ErrorCode.SENSITIVE_WORDS: "消息包含不当内容，未能发送",
    ErrorCode.SLOW_CONSUMER: "网络过慢，连接已断开，请重新连接",
    ErrorCode.IDLE_TIMEOUT: "连接超时，请重新连接",
    ErrorCode.SHUTDOWN: "服务器维护中，请稍后重新连接",
    ErrorCode.SESSION_ENDED: "您已退出登录",
    ErrorCode.CID_REUSED: "消息发送异常，请重新发送",
}


class ProtocolError(Exception):
    """A request the server refuses; becomes an ``error`` frame (SPEC.md §7).

    ``message`` is the Chinese text for people; ``detail`` is for developers
    (which field, which limit) and may be in English.

    ``fatal`` errors close the connection after the frame is sent: they are
    protocol violations after which the peer's state cannot be trusted.
    """

    def __init__(
        self,
        code: ErrorCode,
        detail: str | None = None,
        *,
        rid: int | None = None,
        field: str | None = None,
        fatal: bool = False,
        retry_after_ms: int | None = None,
    ) -> None:
        self.code = code
        self.message = MESSAGES_ZH[code]
        self.detail = detail
        self.rid = rid
        self.field = field
        self.fatal = fatal
        self.retry_after_ms = retry_after_ms
        super().__init__(f"{code}: {detail or self.message}")

    def error_frame(self) -> ErrorFrame:
        """The ``error`` frame for this error (SPEC.md §3.3)."""
        return ErrorFrame(code=str(self.code), message=self.message, rid=self.rid, detail=self.detail,
                          field=self.field, retry_after_ms=self.retry_after_ms)

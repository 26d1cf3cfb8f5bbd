/** What a request can fail with: the server's refusal, or no answer at all. */

import type { ErrorCode, ErrorFrame } from "./generated/protocol.js";

/**
 * The server answered `error` (SPEC.md §3.3, §7): the request changed nothing (except `sensitive_words`, §7.1).
 * Branch on `code`; show `message` (Chinese, for people); `field` names the offending field when known.
 * A code this SDK does not know is to be treated like `internal` (SPEC.md §9).
 */
export class ServerError extends Error {
  override name = "ServerError";
  readonly code: ErrorCode | (string & {});
  readonly detail: string | undefined;
  readonly field: string | undefined;
  /** With `rate_limited` (and `unavailable`, when the server says): how long to wait before resending. */
  readonly retryAfterMs: number | undefined;

  constructor(frame: Pick<ErrorFrame, "code" | "message" | "detail" | "field" | "retry_after_ms">) {
    super(frame.message);
    this.code = frame.code;
    this.detail = frame.detail ?? undefined;
    this.field = frame.field ?? undefined;
    this.retryAfterMs = frame.retry_after_ms == null ? undefined : Number(frame.retry_after_ms);
  }

  /** Whether sending the same request again later can succeed (SPEC.md §7.1). */
  get retryable(): boolean {
    return this.code === "rate_limited" || this.code === "unavailable" || this.code === "internal";
  }
}

/**
 * The connection closed before the answer came: the request may or may not have taken effect (SPEC.md §7.4).
 * `code` and `reason` are the WebSocket close code and reason, when there were any.
 */
export class ConnectionLost extends Error {
  override name = "ConnectionLost";

  constructor(readonly code?: number, readonly reason?: string) {
    super(`connection closed (${code ?? "no code"} ${reason ?? ""})`.trim());
  }
}

/** No answer within the request's time (SPEC.md §3.4): treat the request as lost, as for ConnectionLost. */
export class RequestTimeout extends Error {
  override name = "RequestTimeout";
}

/** The client was stopped (`stop`, `logout`, or a refusal it cannot get past, such as `auth_failed`). */
export class ClientStopped extends Error {
  override name = "ClientStopped";

  constructor(override readonly cause?: ServerError) {
    super(cause ? `stopped: ${cause.code}` : "stopped");
  }
}

/** The frame is larger than the server takes (`limits.max_frame`, SPEC.md §2.3); it was not sent. */
export class FrameTooLarge extends Error {
  override name = "FrameTooLarge";

  constructor(readonly size: number, readonly limit: number) {
    super(`a frame of ${size} bytes is over the limit of ${limit}`);
  }
}

/**
 * One WebSocket in use: requests paired with their answers by `rid` (SPEC.md §3), pushes handed on, each
 * request timed out on its own (SPEC.md §3.4), and the news of its end. It knows nothing of logging in or of
 * reconnecting: the client makes a new Link for every connection.
 */

import type { Clock, Timer } from "./clock.js";
import { decodeFrame, encodeFrame, FrameError, type RawFrame } from "./codec.js";
import { ConnectionLost, FrameTooLarge, RequestTimeout, ServerError } from "./errors.js";
import type { Bye, ErrorFrame } from "./generated/protocol.js";
import type { Transport } from "./transport.js";

/** The largest frame anyone sends (SPEC.md §2.3, §3.7); the welcome announces the client's own limit. */
export const HARD_FRAME_LIMIT = 1 << 20;

interface Pending {
  resolve(frame: RawFrame): void;
  reject(error: Error): void;
  timer: Timer;
}

export interface LinkEvents {
  /** A frame without `rid` other than an error: a push, known or not. */
  push(frame: RawFrame): void;
  /** An error the server could not pair with a request (SPEC.md §3.4): a bug in this client. */
  unpaired(frame: ErrorFrame): void;
  /** A message that is not one frame (SPEC.md §2.2): a bug on one side. */
  malformed(error: FrameError | string): void;
}

export class Link {
  /** When a frame last came from the server (by the client's clock). */
  lastHeard: number;
  /** The frame limit the welcome announced; until then, the hard cap. */
  maxFrame = HARD_FRAME_LIMIT;
  /** The `bye` the server sent before closing, if it did (SPEC.md §7.4). */
  bye: Bye | undefined;
  /** Settles when the connection has ended, with the close code and reason. */
  readonly closed: Promise<ConnectionLost>;
  private lost: ConnectionLost | undefined;
  private nextRid = 1;
  private readonly pending = new Map<number, Pending>();
  private markClosed!: (lost: ConnectionLost) => void;

  constructor(
    private readonly transport: Transport,
    private readonly clock: Clock,
    private readonly events: LinkEvents,
  ) {
    this.lastHeard = clock.now();
    this.closed = new Promise((resolve) => (this.markClosed = resolve));
    transport.onmessage = (data) => this.receive(data);
    transport.onclose = (code, reason) => this.end(new ConnectionLost(code, reason));
  }

  get open(): boolean {
    return this.lost === undefined;
  }

  /**
   * Send `frame` (an op and its fields) with the next `rid` and wait for its answer.
   *
   * Error handling: ServerError for an `error` answer; ConnectionLost when the connection ended first and
   * RequestTimeout when no answer came in `timeoutMs` (the request may or may not have taken effect);
   * FrameTooLarge, before sending, for a frame over `maxFrame`.
   */
  request(frame: { op: string; [field: string]: unknown }, timeoutMs: number): Promise<RawFrame> {
    if (this.lost) return Promise.reject(this.lost);
    const rid = this.nextRid++;
    const data = encodeFrame({ ...frame, rid });
    if (data.byteLength > this.maxFrame) return Promise.reject(new FrameTooLarge(data.byteLength, this.maxFrame));
    return new Promise<RawFrame>((resolve, reject) => {
      const timer = this.clock.setTimeout(() => {
        this.pending.delete(rid);
        reject(new RequestTimeout(`no answer to ${frame.op} in ${timeoutMs} ms`));
      }, timeoutMs);
      this.pending.set(rid, { resolve, reject, timer });
      this.transport.send(data);
    });
  }

  /** Close the connection, by the client's choice (1000) or because it seems dead. */
  close(code = 1000, reason = ""): void {
    this.transport.close(code, reason);
    this.end(new ConnectionLost(code, reason));
  }

  private receive(data: Uint8Array | string): void {
    this.lastHeard = this.clock.now();
    if (typeof data === "string") {
      this.events.malformed("a text message");
      return;
    }
    let frame: RawFrame;
    try {
      frame = decodeFrame(data);
    } catch (error) {
      this.events.malformed(error as FrameError);
      return;
    }
    const { op, rid } = frame;
    if (op === "ok" || op === "error") {
      const pending = typeof rid === "number" ? this.pending.get(rid) : undefined;
      if (pending) {
        this.pending.delete(rid as number);
        this.clock.clearTimeout(pending.timer);
        if (op === "ok") pending.resolve(frame);
        else pending.reject(new ServerError(frame as unknown as ErrorFrame));
      } else if (op === "error" && rid == null) {
        this.events.unpaired(frame as unknown as ErrorFrame);
      } // else the answer to a request that timed out
      return;
    }
    if (op === "bye") this.bye = frame as unknown as Bye;
    this.events.push(frame);
  }

  private end(lost: ConnectionLost): void {
    if (this.lost) return;
    this.lost = lost;
    this.transport.onmessage = null;
    this.transport.onclose = null;
    for (const pending of this.pending.values()) {
      this.clock.clearTimeout(pending.timer);
      pending.reject(lost);
    }
    this.pending.clear();
    this.markClosed(lost);
  }
}

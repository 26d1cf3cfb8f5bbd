/**
 * Test doubles for the client's own logic (the real server is in integration.test.ts): a clock the test moves
 * (DESIGN rule 10: nothing here waits for real time) and a server the test plays by hand, frame by frame.
 */

import assert from "node:assert/strict";
import type { Clock, Timer } from "../src/clock.js";
import { decodeFrame, encodeFrame, type RawFrame } from "../src/codec.js";
import type { Connector, Transport } from "../src/transport.js";

/** Let every callback and promise that is ready run. */
export const settle = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

export class ManualClock implements Clock {
  private timers = new Map<number, { due: number; callback: () => void }>();
  private nextId = 1;

  constructor(private time = 1_764_219_600_000) {}

  now(): number {
    return this.time;
  }

  setTimeout(callback: () => void, ms: number): Timer {
    const id = this.nextId++;
    this.timers.set(id, { due: this.time + ms, callback });
    return id;
  }

  clearTimeout(timer: Timer): void {
    this.timers.delete(timer as number);
  }

  /** The delays of the timers set now, from now, soonest first. */
  pending(): number[] {
    return [...this.timers.values()].map((timer) => timer.due - this.time).sort((a, b) => a - b);
  }

  /** Move time on by `ms`, running each timer that falls due, in order, and what it sets off. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    await settle();
    for (;;) {
      const due = [...this.timers.entries()].filter(([, t]) => t.due <= end).sort((a, b) => a[1].due - b[1].due)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = due[1].due;
      due[1].callback();
      await settle();
    }
    this.time = end;
  }
}

/** One connection as the fake server sees it. */
export class FakeSocket implements Transport {
  onopen: (() => void) | null = null;
  onmessage: ((data: Uint8Array | string) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;
  readonly received: RawFrame[] = [];
  closed: { code?: number; reason?: string } | undefined;
  private arrived: () => void = () => undefined;

  send(data: Uint8Array): void {
    this.received.push(decodeFrame(data));
    this.arrived();
  }

  /** The frames with `op` the client sent, once there are `count` of them (for a client that waits on storage). */
  async sent(op: string, count: number): Promise<RawFrame[]> {
    for (;;) {
      const frames = this.received.filter((f) => f.op === op);
      if (frames.length >= count) return frames;
      await new Promise<void>((resolve) => (this.arrived = resolve));
    }
  }

  close(code?: number, reason?: string): void {
    this.closed = { ...(code === undefined ? {} : { code }), ...(reason === undefined ? {} : { reason }) };
  }

  /** The server sends `frame`. */
  deliver(frame: object): void {
    this.onmessage?.(encodeFrame(frame));
  }

  /** The connection ends (1006: the network failed). */
  drop(code = 1006, reason = ""): void {
    this.onclose?.(code, reason);
  }

  /** The request the client sent with `op`, the last one if several. */
  last(op: string): RawFrame {
    const frame = [...this.received].reverse().find((f) => f.op === op);
    assert.ok(frame, `the client sent no ${op} (it sent ${this.received.map((f) => f.op).join(", ") || "nothing"})`);
    return frame;
  }

  /** Answer the client's last request with `op`. */
  answer(op: string, fields: object = {}): void {
    this.deliver({ op: "ok", rid: this.last(op).rid, ...fields });
  }

  /** Refuse the client's last request with `op`. */
  refuse(op: string, code: string, fields: object = {}): void {
    this.deliver({ op: "error", rid: this.last(op).rid, code, message: "不行", ...fields });
  }
}

/** A welcome as the server sends it (SPEC.md §4.2). */
export function welcome(fields: object = {}): object {
  return {
    version: 1,
    session: "s-1",
    user: { id: "u1", username: "chen_hong", name: "陈红", role: "patient" },
    readonly: false,
    limits: { max_frame: 65536, max_text: 4000, rate: 20.0, burst: 50, files: { "image/png": 10485760 } },
    server_time: 1764219600000,
    ...fields,
  };
}

/** A Connector whose every connection is a FakeSocket the test drives; `sockets` lists them in order. */
export class FakeServer {
  readonly sockets: FakeSocket[] = [];
  readonly connect: Connector = () => {
    const socket = new FakeSocket();
    this.sockets.push(socket);
    return socket;
  };

  get socket(): FakeSocket {
    const socket = this.sockets.at(-1);
    assert.ok(socket, "no connection was opened");
    return socket;
  }

  /** Open the latest connection and welcome its hello, then answer the first catch-up with nothing. */
  async accept(fields: object = {}, convs: object[] = []): Promise<FakeSocket> {
    const socket = this.socket;
    socket.onopen?.();
    await settle();
    socket.answer("hello", welcome(fields));
    await settle();
    socket.answer("sync", { convs });
    await settle();
    return socket;
  }
}

/** A message object (SPEC.md §6). */
export function message(conv: string, seq: number, text = `m${seq}`): object {
  return {
    id: 1000 + seq, conv, seq, sender: { id: "u2", name: "王医生", role: "staff" }, kind: "text", text, ts: 1764219600000 + seq,
  };
}

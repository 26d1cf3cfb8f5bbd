/**
 * The socket is injected: the client needs only a Transport, one WebSocket as an object that sends binary
 * messages and reports what comes back. Adapters here make one from a browser's `WebSocket` (or Node's `ws`,
 * which has the same interface) and from a WeChat mini-program's `wx.connectSocket`.
 */

/** One WebSocket connection (SPEC.md §2.1). The client sets the handlers right after creating it. */
export interface Transport {
  /** Send one binary message. */
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  onopen: (() => void) | null;
  /** A binary message as bytes; a text message (never part of the protocol, SPEC.md §2.2) as a string. */
  onmessage: ((data: Uint8Array | string) => void) | null;
  /** Called once, when the connection closed or failed (code 1006 when there was no close frame). */
  onclose: ((code: number, reason: string) => void) | null;
}

/** Opens a Transport to `url`; the client calls it for every (re)connection. */
export type Connector = (url: string) => Transport;

/** Handlers of a Transport, called at most once for close. */
class Handlers {
  onopen: (() => void) | null = null;
  onmessage: ((data: Uint8Array | string) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;
  private ended = false;

  closed(code: number, reason: string): void {
    if (this.ended) return;
    this.ended = true;
    this.onclose?.(code, reason);
  }
}

/** What this SDK uses of the WHATWG `WebSocket` (browsers, `ws` in Node). */
export interface WebSocketLike {
  binaryType: string;
  send(data: Uint8Array): void;
  close(code?: number, reason?: string): void;
  addEventListener(type: "open" | "message" | "close" | "error", listener: (event: never) => void): void;
}

export type WebSocketClass = new (url: string) => WebSocketLike;

/**
 * A Connector over the WHATWG `WebSocket`: the browser's by default, or e.g. `ws`'s in Node.
 * Messages arrive as ArrayBuffers (`binaryType` `arraybuffer`).
 */
export function webSocketConnector(
  WebSocketImpl: WebSocketClass = globalThis.WebSocket as unknown as WebSocketClass,
): Connector {
  return (url) => {
    const socket = new WebSocketImpl(url);
    socket.binaryType = "arraybuffer";
    const transport = new (class extends Handlers implements Transport {
      send(data: Uint8Array): void {
        socket.send(data);
      }

      close(code?: number, reason?: string): void {
        socket.close(code, reason);
      }
    })();
    socket.addEventListener("open", () => transport.onopen?.());
    socket.addEventListener("message", (event: { data: unknown }) => {
      const { data } = event;
      transport.onmessage?.(typeof data === "string" ? data : new Uint8Array(data as ArrayBuffer));
    });
    socket.addEventListener("close", (event: { code: number; reason: string }) => {
      transport.closed(event.code, event.reason);
    });
    socket.addEventListener("error", () => transport.closed(1006, "error"));
    return transport;
  };
}

/** What this SDK uses of a WeChat mini-program's `wx` (its `SocketTask`). */
export interface Wx {
  connectSocket(options: { url: string }): WxSocketTask;
}

export interface WxSocketTask {
  send(options: { data: ArrayBuffer; fail?: (result: { errMsg: string }) => void }): void;
  close(options: { code?: number; reason?: string }): void;
  onOpen(callback: () => void): void;
  onMessage(callback: (result: { data: ArrayBuffer | string }) => void): void;
  onClose(callback: (result: { code: number; reason: string }) => void): void;
  onError(callback: (result: { errMsg: string }) => void): void;
}

/** A Connector over `wx.connectSocket` (WeChat mini-programs), whose messages are ArrayBuffers. */
export function wxConnector(wx: Wx): Connector {
  return (url) => {
    const task = wx.connectSocket({ url });
    const transport = new (class extends Handlers implements Transport {
      send(data: Uint8Array): void {
        const buffer = data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength) as ArrayBuffer;
        task.send({ data: buffer, fail: (result) => this.failed(result) });
      }

      close(code?: number, reason?: string): void {
        task.close({ code: code ?? 1000, ...(reason === undefined ? {} : { reason }) });
      }

      /** A message that could not be sent: the connection is broken, as the browser would say. */
      failed(result: { errMsg: string }): void {
        this.closed(1006, result.errMsg);
        task.close({});
      }
    })();
    task.onOpen(() => transport.onopen?.());
    task.onMessage(({ data }) => transport.onmessage?.(typeof data === "string" ? data : new Uint8Array(data)));
    task.onClose(({ code, reason }) => transport.closed(code, reason));
    task.onError((result) => transport.failed(result));
    return transport;
  };
}

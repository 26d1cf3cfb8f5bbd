/** The adapters turn a WHATWG WebSocket and a WeChat SocketTask into the Transport the client uses. */

import assert from "node:assert/strict";
import { once } from "node:events";
import { it } from "node:test";
import { WebSocket, WebSocketServer } from "ws";
import { type Transport, webSocketConnector, type WebSocketClass, type Wx, type WxSocketTask, wxConnector } from "../src/transport.js";

/** What a transport reported, in order. */
function record(transport: Transport): string[] {
  const seen: string[] = [];
  transport.onopen = () => seen.push("open");
  transport.onmessage = (data) => seen.push(typeof data === "string" ? `text ${data}` : `bytes ${[...data].join(",")}`);
  transport.onclose = (code, reason) => seen.push(`close ${code} ${reason}`);
  return seen;
}

it("webSocketConnector: binary messages both ways as bytes, text as a string, the close once", async () => {
  const server = new WebSocketServer({ host: "127.0.0.1", port: 0 });
  await once(server, "listening");
  const { port } = server.address() as { port: number };
  const accepted = once(server, "connection");
  const transport = webSocketConnector(WebSocket as unknown as WebSocketClass)(`ws://127.0.0.1:${port}/`);
  const seen = record(transport);
  const opened = new Promise<void>((resolve) => (transport.onopen = () => (seen.push("open"), resolve())));
  const [peer] = (await accepted) as [WebSocket];
  await opened;
  const got = once(peer, "message");
  transport.send(Uint8Array.of(1, 2, 3));
  assert.deepEqual([...((await got)[0] as Buffer)], [1, 2, 3]);
  peer.send(Uint8Array.of(0x80, 0));
  peer.send("hi");
  peer.close(4000, "slow_consumer");
  await new Promise<void>((resolve) => (transport.onclose = (code, reason) => (seen.push(`close ${code} ${reason}`), resolve())));
  assert.deepEqual(seen, ["open", "bytes 128,0", "text hi", "close 4000 slow_consumer"]);
  server.close();
});

it("wxConnector: a SocketTask's events and data, and a failed send reported as a lost connection", () => {
  const calls: string[] = [];
  const handlers: Partial<Record<"open" | "message" | "close" | "error", (result: never) => void>> = {};
  const task: WxSocketTask = {
    send: ({ data, fail }) => {
      calls.push(`send ${[...new Uint8Array(data)].join(",")}`);
      if (data.byteLength === 1) fail?.({ errMsg: "sendSocketMessage:fail" });
    },
    close: ({ code }) => void calls.push(`close ${code ?? ""}`),
    onOpen: (callback) => (handlers.open = callback),
    onMessage: (callback) => (handlers.message = callback),
    onClose: (callback) => (handlers.close = callback),
    onError: (callback) => (handlers.error = callback),
  };
  const wx: Wx = { connectSocket: ({ url }) => (calls.push(`connect ${url}`), task) };
  const transport = wxConnector(wx)("wss://chat.test/");
  const seen = record(transport);
  (handlers.open as () => void)();
  (handlers.message as (r: { data: ArrayBuffer }) => void)({ data: Uint8Array.of(9, 8).buffer });
  transport.send(new Uint8Array([0, 1, 2, 3]).subarray(1, 3));
  transport.send(Uint8Array.of(7));
  (handlers.close as (r: { code: number; reason: string }) => void)({ code: 1000, reason: "" });
  assert.deepEqual(calls, ["connect wss://chat.test/", "send 1,2", "send 7", "close "]);
  assert.deepEqual(seen, ["open", "bytes 9,8", "close 1006 sendSocketMessage:fail"]);
});

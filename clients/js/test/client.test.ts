/**
 * The client's own logic against a server played frame by frame and a clock the test moves: pairing by rid,
 * timeouts, retries, login and token reuse, reconnecting, keep-alive, exactly-once delivery with hidden seqs,
 * and the outbox (SPEC.md §3, §4, §5.1, §5.2.1, §7). The same behaviour against the real server:
 * integration.test.ts.
 */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Client, type ClientOptions } from "../src/client.js";
import { ClientStopped, ConnectionLost, RequestTimeout, ServerError } from "../src/errors.js";
import type { Message } from "../src/generated/protocol.js";
import { MemoryTokenStore } from "../src/storage.js";
import { FakeServer, ManualClock, message, settle } from "./fakes.js";

function setUp(options: Partial<ClientOptions> = {}) {
  const server = new FakeServer();
  const clock = new ManualClock();
  let cids = 0;
  const client = new Client({
    url: "ws://chat.test/",
    connect: server.connect,
    username: "chen_hong",
    password: "secret",
    clock,
    random: () => 0.5,
    newCid: () => `cid-${++cids}`,
    ...options,
  });
  const messages: Message[] = [];
  client.on("message", (m) => messages.push(m));
  return { server, clock, client, messages, seqs: () => messages.map((m) => `${m.conv}#${m.seq}`) };
}

function entry(conv: string, fields: object = {}): object {
  return {
    conv, kind: "group", name: "移植群", role: "member", last_seq: 0, read_seq: 0, unread: 0,
    messages: [], hidden: [], more: false, ...fields,
  };
}

describe("requests", () => {
  it("answers are paired with their requests by rid, in whatever order they come (SPEC.md §3.2)", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const ping = client.request("ping", {});
    const convs = client.request("convs", {});
    await settle();
    socket.answer("convs", { convs: [] });
    socket.answer("ping", { server_time: 5 });
    assert.deepEqual((await ping).server_time, 5);
    assert.deepEqual((await convs).convs, []);
    assert.notEqual(socket.last("ping").rid, socket.last("convs").rid);
  });

  it("a request without an answer in its time fails with RequestTimeout; the late answer is dropped (§3.4)", async () => {
    const { server, clock, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const unpaired: unknown[] = [];
    client.on("unpaired", (frame) => unpaired.push(frame));
    const ping = client.request("ping", {}, { timeoutMs: 1000 });
    const failed = assert.rejects(ping, RequestTimeout);
    await clock.advance(1000);
    await failed;
    socket.answer("ping", { server_time: 5 });
    await settle();
    assert.deepEqual(unpaired, []);
    assert.equal(client.state, "open");
  });

  it("a refusal carries its code, field and retry_after_ms (SPEC.md §3.3)", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const history = client.request("history", { conv: "g:1", limit: 201 });
    await settle();
    socket.refuse("history", "bad_request", { field: "limit", detail: "too many" });
    await assert.rejects(history, (error: ServerError) =>
      error.code === "bad_request" && error.field === "limit" && error.message === "不行" && !error.retryable);
  });

  it("rate_limited is waited out for retry_after_ms, then the same request goes again (SPEC.md §7.5)", async () => {
    const { server, clock, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const convs = client.request("convs", {});
    await settle();
    socket.refuse("convs", "rate_limited", { retry_after_ms: 250 });
    await clock.advance(249);
    assert.equal(socket.received.filter((f) => f.op === "convs").length, 1);
    await clock.advance(1);
    assert.equal(socket.received.filter((f) => f.op === "convs").length, 2);
    socket.answer("convs", { convs: [] });
    assert.deepEqual((await convs).convs, []);
  });

  it("a request made while offline goes out once the client is logged in", async () => {
    const { server, client } = setUp();
    void client.start();
    const ping = client.request("ping", {});
    const socket = await server.accept();
    await settle();
    socket.answer("ping", { server_time: 7 });
    assert.equal((await ping).server_time, 7);
  });
});

describe("login and reconnecting", () => {
  it("a password login keeps the token, and the next run says hello with the token only (SPEC.md §4.3)", async () => {
    const tokens = new MemoryTokenStore();
    const first = setUp({ tokens });
    void first.client.start();
    await first.server.accept({ token: "v1.token" });
    assert.equal(first.server.socket.last("hello").password, "secret");
    await settle();
    assert.equal(tokens.load(), "v1.token");
    first.client.stop();

    const second = setUp({ tokens });
    void second.client.start();
    await second.server.accept();
    const hello = second.server.socket.last("hello");
    assert.equal(hello.token, "v1.token");
    assert.equal(hello.password, undefined);
    assert.deepEqual(hello.versions, [1]);
  });

  it("a refused token is forgotten and the password used at once (SPEC.md §4.3)", async () => {
    const tokens = new MemoryTokenStore("v1.revoked");
    const { server, client } = setUp({ tokens });
    void client.start();
    server.socket.onopen?.();
    await settle();
    server.socket.refuse("hello", "token_invalid");
    await settle();
    assert.equal(server.sockets.length, 2);
    assert.equal(tokens.load(), undefined);
    await server.accept();
    assert.equal(server.socket.last("hello").username, "chen_hong");
    assert.equal(client.state, "open");
  });

  it("a wrong password stops the client: no reconnecting (SPEC.md §7.2)", async () => {
    const { server, clock, client } = setUp();
    const started = client.start();
    server.socket.onopen?.();
    await settle();
    server.socket.refuse("hello", "auth_failed");
    await assert.rejects(started, (error: ClientStopped) => error.cause?.code === "auth_failed");
    await clock.advance(600_000);
    assert.equal(server.sockets.length, 1);
    assert.equal(client.state, "stopped");
  });

  it("after a lost connection the client comes back after a jittered delay and syncs from where it was", async () => {
    const { server, clock, client, seqs } = setUp({ backoff: { baseMs: 1000 }, keepAliveMs: 3_600_000 });
    void client.start();
    await server.accept({}, [entry("g:1", { messages: [message("g:1", 1)], last_seq: 1 })]);
    await clock.advance(60_000);
    server.socket.drop();
    await settle();
    assert.equal(client.state, "offline");
    assert.deepEqual(clock.pending(), [750]); // between half the ceiling and the ceiling: 500 + 0.5 × 500
    await clock.advance(750);
    assert.equal(server.sockets.length, 2);
    await server.accept();
    assert.deepEqual(server.socket.last("sync").after, { "g:1": 1 });
    assert.deepEqual(seqs(), ["g:1#1"]);

    server.socket.drop(); // at once: a server that takes the client and drops it is tried less and less often
    await settle();
    assert.deepEqual(clock.pending(), [1500]);
  });

  it("a quiet connection is pinged; one whose ping gets no answer is closed and opened again (SPEC.md §2.4)", async () => {
    const { server, clock, client } = setUp({ keepAliveMs: 25_000, requestTimeoutMs: 10_000 });
    void client.start();
    const socket = await server.accept();
    await clock.advance(24_999);
    assert.equal(socket.received.filter((f) => f.op === "ping").length, 0);
    await clock.advance(1);
    socket.answer("ping", { server_time: 1 });
    await clock.advance(25_000);
    assert.equal(socket.received.filter((f) => f.op === "ping").length, 2);
    await clock.advance(10_000);
    assert.ok(socket.closed);
    assert.equal(client.state, "offline");
    await clock.advance(1_000);
    assert.equal(server.sockets.length, 2);
  });

  it("stop while connecting closes the connection being opened and leaves no timer behind", async () => {
    const { server, clock, client } = setUp();
    const started = client.start();
    await settle();
    client.stop();
    await assert.rejects(started, ClientStopped);
    assert.ok(server.socket.closed);
    assert.deepEqual(clock.pending(), []);
  });

  it("logout forgets the token and does not come back when the server closes (SPEC.md §5.8)", async () => {
    const tokens = new MemoryTokenStore();
    const { server, clock, client } = setUp({ tokens });
    void client.start();
    const socket = await server.accept({ token: "v1.t" });
    const out = client.logout();
    await settle();
    socket.answer("logout");
    socket.drop(1000, "session_ended");
    await out;
    await clock.advance(60_000);
    assert.deepEqual([client.state, tokens.load(), server.sockets.length], ["stopped", undefined, 1]);
  });

  it("bye account_banned: the token is forgotten and the client does not come back (SPEC.md §7.4)", async () => {
    const tokens = new MemoryTokenStore();
    const { server, clock, client } = setUp({ tokens });
    void client.start();
    const socket = await server.accept({ token: "v1.t" });
    socket.deliver({ op: "bye", code: "account_banned", message: "账号已被封禁" });
    socket.drop(4003, "account_banned");
    await clock.advance(60_000);
    assert.equal(client.state, "stopped");
    assert.equal(tokens.load(), undefined);
    assert.equal(server.sockets.length, 1);
  });
});

describe("every message exactly once, in order (SPEC.md §5.2.1)", () => {
  it("hidden seqs are accounted for, never taken for gaps (§11.3)", async () => {
    const { server, client, seqs } = setUp();
    void client.start();
    const socket = await server.accept({}, [
      entry("g:1", { messages: [message("g:1", 1)], hidden: [[2, 3]], last_seq: 3 }),
    ]);
    socket.deliver({ op: "msg", msg: message("g:1", 4) });
    socket.deliver({ op: "hidden", conv: "g:1", ranges: [[5, 5]] });
    socket.deliver({ op: "msg", msg: message("g:1", 6) });
    await settle();
    assert.deepEqual(seqs(), ["g:1#1", "g:1#4", "g:1#6"]);
    assert.equal(socket.received.filter((f) => f.op === "history").length, 0);
  });

  it("a gap is filled from history before the message after it; what came twice is dropped", async () => {
    const { server, client, seqs } = setUp();
    void client.start();
    const socket = await server.accept({}, [entry("g:1", { messages: [message("g:1", 1)], last_seq: 1 })]);
    socket.deliver({ op: "msg", msg: message("g:1", 4) });
    await settle();
    assert.equal(socket.last("history").after, 1);
    socket.answer("history", { conv: "g:1", messages: [message("g:1", 2)], hidden: [[3, 3]], more: false });
    await settle();
    socket.deliver({ op: "msg", msg: message("g:1", 2) });
    await settle();
    assert.deepEqual(seqs(), ["g:1#1", "g:1#2", "g:1#4"]);
  });

  it("the catch-up follows cursor to the end of the pass, and passes again while a page had more", async () => {
    const { server, client, seqs } = setUp({ positions: [["g:1", 0]] });
    void client.start();
    const socket = server.socket;
    socket.onopen?.();
    await settle();
    socket.answer("hello", {
      version: 1, session: "s", user: { id: "u1", username: "chen_hong", name: "陈红", role: "patient" },
      readonly: false, limits: { max_frame: 65536, max_text: 4000, rate: 20, burst: 50, files: {} }, server_time: 1,
    });
    await settle();
    socket.answer("sync", { convs: [entry("g:1", { messages: [message("g:1", 1)], more: true })], cursor: "p2" });
    await settle();
    assert.equal(socket.last("sync").cursor, "p2");
    socket.answer("sync", { convs: [entry("d:2", { kind: "direct", messages: [message("d:2", 1)] })] });
    await settle();
    assert.deepEqual(socket.last("sync").after, { "g:1": 1, "d:2": 1 });
    assert.equal(socket.last("sync").cursor, undefined);
    socket.answer("sync", { convs: [entry("g:1", { hidden: [[2, 2]] }), entry("d:2")] });
    await settle();
    assert.deepEqual(seqs(), ["g:1#1", "d:2#1"]);
    assert.deepEqual(client.positionsNow(), [["g:1", 2], ["d:2", 1]]);
  });

  it("a retraction is reported and moves no position (§11.3)", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept({}, [entry("g:1", { messages: [message("g:1", 1)], last_seq: 1 })]);
    const retracted: unknown[] = [];
    client.on("retract", (push) => retracted.push(push.ranges));
    socket.deliver({ op: "hidden", conv: "g:1", ranges: [[1, 1]], retract: true });
    await settle();
    assert.deepEqual(retracted, [[[1, 1]]]);
    assert.deepEqual(client.positionsNow(), [["g:1", 1]]);
  });

  it("pushes of an op this version does not know are ignored (SPEC.md §9)", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const pushes: unknown[] = [];
    client.on("push", (push) => pushes.push(push));
    socket.deliver({ op: "typing", conv: "g:1" });
    socket.deliver({ op: "read", conv: "g:1", read_seq: 3, unread: 0 });
    await settle();
    assert.deepEqual(pushes, [{ op: "read", conv: "g:1", read_seq: 3, unread: 0 }]);
  });
});

describe("the outbox (SPEC.md §5.1)", () => {
  it("a message typed offline goes out when the client is logged in; a lost answer is resent with the same cid", async () => {
    const { server, clock, client, seqs } = setUp();
    void client.start();
    const sent = client.send("g:1", { text: "明天几点？" });
    await settle();
    let socket = await server.accept();
    const first = socket.last("send");
    assert.deepEqual({ ...first, rid: 0 }, { op: "send", rid: 0, cid: "cid-1", conv: "g:1", kind: "text", text: "明天几点？" });
    socket.drop();
    await clock.advance(1_000);
    socket = await server.accept();
    assert.equal(socket.last("send").cid, "cid-1");
    socket.answer("send", { conv: "g:1", seq: 1, id: 1001, ts: 1, dup: true });
    assert.equal((await sent).seq, 1);
    assert.deepEqual(await client.outboxEntries(), []);
    await settle();
    assert.equal(socket.last("history").after, 0); // its own message, fetched as the server stored it
    socket.answer("history", { conv: "g:1", messages: [{ ...message("g:1", 1), cid: "cid-1" }], hidden: [], more: false });
    await settle();
    assert.deepEqual(seqs(), ["g:1#1"]);
  });

  it("unavailable is waited out (retry_after_ms) and the same cid sent again; cid_reused gets a new cid", async () => {
    const { server, clock, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const sent = client.send("g:1", { text: "hi" });
    await settle();
    socket.refuse("send", "unavailable", { retry_after_ms: 2_000 });
    await clock.advance(2_000);
    assert.equal(socket.last("send").cid, "cid-1");
    socket.refuse("send", "cid_reused", { field: "cid" });
    await settle();
    assert.equal(socket.last("send").cid, "cid-2");
    socket.answer("send", { conv: "g:1", seq: 1, id: 1, ts: 1, dup: false });
    assert.equal((await sent).dup, false);
  });

  it("a message refused for good stays in the outbox with its error; the next one goes on", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const refused = client.send("g:1", { text: "加我微信" });
    const next = client.send("g:1", { text: "谢谢" });
    await settle();
    socket.refuse("send", "sensitive_words");
    await assert.rejects(refused, (error: ServerError) => error.code === "sensitive_words");
    await settle();
    assert.equal(socket.last("send").text, "谢谢");
    socket.answer("send", { conv: "g:1", seq: 2, id: 2, ts: 1, dup: false });
    await next;
    const [kept, ...rest] = await client.outboxEntries();
    assert.deepEqual([kept?.text, kept?.error?.code, rest], ["加我微信", "sensitive_words", []]);
  });

  it("stopping the client leaves its outbox for the next one", async () => {
    const { client } = setUp();
    const started = client.start();
    const sent = client.send("g:1", { text: "hi" });
    await settle();
    client.stop();
    await assert.rejects(started, ClientStopped);
    await assert.rejects(sent, ClientStopped);
    assert.equal((await client.outboxEntries()).length, 1);
    await assert.rejects(client.request("ping", {}), ClientStopped);
  });

  it("a request in flight when the connection drops fails with ConnectionLost", async () => {
    const { server, client } = setUp();
    void client.start();
    const socket = await server.accept();
    const ping = client.request("ping", {});
    await settle();
    socket.drop(1001, "shutdown");
    await assert.rejects(ping, (error: ConnectionLost) => error.code === 1001);
  });
});

/**
 * The SDK against the real server, Postgres and sockets: tests/clients/test_js_sdk.py starts a server with a
 * database of its own, makes the accounts (a doctor and two patients, password IMSERVER_PASSWORD) and runs
 * `npm test` with IMSERVER_URL. Without IMSERVER_URL these tests are skipped.
 *
 * The network is broken through a proxy (test/proxy.ts): connections cut without a close frame, new ones
 * refused, answers lost on the way back. What a user would notice is checked: every message arrives once and
 * in order after a reconnect, a message typed offline is stored once, and a resend after a lost answer is the
 * same message (IM-19, SPEC.md §5.1, §5.2.1, DESIGN rule 2).
 */

import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { WebSocket } from "ws";
import { Client, type ClientEvents, type ClientOptions } from "../src/client.js";
import { ServerError } from "../src/errors.js";
import type { Message } from "../src/generated/protocol.js";
import { MemoryTokenStore } from "../src/storage.js";
import { type Connector, webSocketConnector, type WebSocketClass } from "../src/transport.js";
import { decodeFrame } from "../src/codec.js";
import { Proxy } from "./proxy.js";

const URL = process.env.IMSERVER_URL;
const PASSWORD = process.env.IMSERVER_PASSWORD ?? "";
const connectWs = webSocketConnector(WebSocket as unknown as WebSocketClass);

/** The `op` of every request a client sends, in order: to see what it asked the server (no gap fill, say). */
function spying(connect: Connector, ops: string[]): Connector {
  return (url) => {
    const transport = connect(url);
    const send = transport.send.bind(transport);
    transport.send = (data) => {
      ops.push(decodeFrame(data).op as string);
      send(data);
    };
    return transport;
  };
}

interface User {
  client: Client;
  /** Every `message` event, in order. */
  messages: Message[];
  /** The ops it sent. */
  ops: string[];
}

const users: Client[] = [];

async function login(username: string, options: Partial<ClientOptions> = {}): Promise<User> {
  const messages: Message[] = [];
  const ops: string[] = [];
  const client = new Client({
    url: URL ?? "", connect: spying(connectWs, ops), username, password: PASSWORD, device: "node",
    backoff: { baseMs: 20, capMs: 200 }, ...options,
  });
  users.push(client);
  client.on("message", (message) => messages.push(message));
  const synced = next(client, "synced");
  await client.start();
  await synced;
  return { client, messages, ops };
}

/** The first event `name` that `match` accepts, from now on. */
function next<K extends keyof ClientEvents>(
  client: Client, name: K, match: (value: ClientEvents[K]) => boolean = () => true,
): Promise<ClientEvents[K]> {
  return new Promise((resolve) => {
    const off = client.on(name, (value) => {
      if (!match(value)) return;
      off();
      resolve(value);
    });
  });
}

/** Until `user` has a message of `conv` that `match` accepts. */
async function until(user: User, conv: string, match: (message: Message) => boolean): Promise<Message> {
  const had = user.messages.find((m) => m.conv === conv && match(m));
  return had ?? next(user.client, "message", (m) => m.conv === conv && match(m));
}

const texts = (user: User, conv: string): string[] => user.messages.filter((m) => m.conv === conv).map((m) => m.text);
const seqs = (user: User, conv: string): number[] =>
  user.messages.filter((m) => m.conv === conv).map((m) => Number(m.seq));

/** Seqs strictly increasing: each message once, in order. */
function inOrderOnce(list: number[]): void {
  assert.deepEqual(list, [...new Set(list)].sort((a, b) => a - b), `not once and in order: ${list}`);
}

describe("against a real server", { skip: URL ? false : "IMSERVER_URL is not set", timeout: 120_000 }, () => {
  let doctor: User;
  let group: string;
  let proxy: Proxy;

  before(async () => {
    proxy = await Proxy.open(URL ?? "");
    doctor = await login("dr_wang");
    group = (await doctor.client.request("group_create", { name: "移植群", members: ["chen_hong", "li_mei"] })).conv;
  });

  after(async () => {
    for (const client of users) client.stop();
    await proxy.close();
  });

  it("logs in, and a message goes from the doctor to a patient and back, once each", async () => {
    const tokens = new MemoryTokenStore();
    const patient = await login("chen_hong", { tokens });
    assert.equal(patient.client.welcome?.user.role, "patient");
    const sent = await doctor.client.send(group, { text: "明天上午九点移植" });
    const got = await until(patient, group, (m) => m.seq === sent.seq);
    assert.equal(got.text, "明天上午九点移植");
    assert.deepEqual([got.sender.name, got.sender.role], ["王医生", "staff"]);

    const reply = await patient.client.send(group, { text: "好的，谢谢医生" });
    const mine = await until(patient, group, (m) => m.seq === reply.seq);
    assert.equal(typeof mine.cid, "string"); // her own, as the server stored it: her devices see its cid
    await until(doctor, group, (m) => m.seq === reply.seq);
    assert.deepEqual(texts(doctor, group), ["明天上午九点移植", "好的，谢谢医生"]);
    assert.deepEqual(texts(patient, group), ["明天上午九点移植", "好的，谢谢医生"]);

    // The token of that login, and no password: the next run of the app (SPEC.md §4.3).
    assert.ok(tokens.load());
    const again = await login("chen_hong", { tokens, password: undefined });
    assert.equal(again.client.welcome?.user.username, "chen_hong");
    assert.equal(again.client.welcome?.token, undefined);
  });

  it("after the network comes back, what was missed arrives once and what was typed offline is stored once", async () => {
    const patient = await login("li_mei", { url: proxy.url });
    await until(patient, group, (m) => m.text === "好的，谢谢医生");
    const gone = next(patient.client, "state", (state) => state === "offline");
    proxy.offline = true;
    proxy.cut();
    await gone;

    for (const text of ["第一条", "第二条", "第三条"]) await doctor.client.send(group, { text });
    const typed = await patient.client.enqueue(group, { text: "我在路上，晚十分钟" });
    const stored = next(patient.client, "sent", ({ entry }) => entry.cid === typed.cid);
    proxy.offline = false;
    const { answer } = await stored;
    await until(patient, group, (m) => m.seq === answer.seq);
    await until(doctor, group, (m) => m.seq === answer.seq);

    assert.deepEqual(texts(patient, group).slice(-4), ["第一条", "第二条", "第三条", "我在路上，晚十分钟"]);
    inOrderOnce(seqs(patient, group));
    assert.equal(texts(doctor, group).filter((t) => t === "我在路上，晚十分钟").length, 1);
    const history = await doctor.client.history(group, { after: 0, limit: 200 });
    assert.equal(history.messages.filter((m) => m.text === "我在路上，晚十分钟").length, 1);
    assert.deepEqual(await patient.client.outboxEntries(), []);
  });

  it("a send whose answer is lost with the connection is resent with its cid and stored once (dup)", async () => {
    const patient = await login("li_mei", { url: proxy.url, device: "phone-2" });
    const arrived = until(doctor, group, (m) => m.text === "收到");
    const sent = next(patient.client, "sent", ({ entry }) => entry.text === "收到");
    proxy.deaf = true;
    await patient.client.enqueue(group, { text: "收到" });
    await arrived; // stored and delivered; her answer went nowhere
    proxy.cut();
    proxy.deaf = false;
    const { answer } = await sent;
    assert.equal(answer.dup, true);
    await until(patient, group, (m) => m.seq === answer.seq);
    const history = await doctor.client.history(group, { after: 0, limit: 200 });
    assert.equal(history.messages.filter((m) => m.text === "收到").length, 1);
    assert.equal(texts(patient, group).filter((t) => t === "收到").length, 1);
    inOrderOnce(seqs(patient, group));
  });

  it("a seq hidden from a patient is never a gap: no history is asked for it (SPEC.md §11.3)", async () => {
    const patient = await login("li_mei", { device: "tablet" });
    const members = await doctor.client.whole("members", { conv: group });
    const chen = members.members.find((m) => m.username === "chen_hong");
    assert.ok(chen);
    const hidden = next(patient.client, "push", (push) => push.op === "hidden");
    await doctor.client.send(group, { text: "仅陈红可见" }, { only: chen.id });
    await hidden;
    const after = await doctor.client.send(group, { text: "大家好" });
    await until(patient, group, (m) => m.seq === after.seq);
    assert.deepEqual(texts(patient, group).slice(-1), ["大家好"]);
    assert.ok(!texts(patient, group).includes("仅陈红可见"));
    assert.ok(!patient.ops.includes("history"), `she asked: ${patient.ops}`);
  });

  it("a file goes up in parts and comes back whole to whoever may see its message (SPEC.md §5.18)", async () => {
    const patient = await login("chen_hong", { device: "files" });
    const other = await login("li_mei", { device: "files" });
    const png = new Uint8Array(150_000).map((_, i) => (i * 7) % 251);
    png.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    const attachment = await patient.client.upload(png, "image/png", "B超.png");
    assert.deepEqual([attachment.mime, attachment.size, attachment.name], ["image/png", png.byteLength, "B超.png"]);
    assert.ok(patient.ops.filter((op) => op === "upload_part").length >= 3);
    const sent = await patient.client.send(group, { kind: "image_group", body: { images: [attachment] } });
    const got = await until(other, group, (m) => m.seq === sent.seq);
    const [image] = (got.body as { images: { id: string }[] }).images;
    assert.deepEqual(await other.client.download(image?.id ?? ""), png);
    await assert.rejects(other.client.download("att_doesnotexist"), (e: ServerError) => e.code === "not_found");
  });

  it("quick replies: the doctor's `/` finds one, fills it in for a patient and sends it (SPEC.md §5.19)", async () => {
    const patient = await login("chen_hong", { device: "quick" });
    const saved = await doctor.client.request("qr_save", {
      shortcut: "yz", title: "移植时间", text: "{{patient}}您好，请{{?时间}}来移植。",
    });
    const [found] = await doctor.client.quickReplies("y");
    assert.equal(found?.id, saved.id);
    assert.deepEqual(found?.prompts, ["时间"]);
    const members = await doctor.client.whole("members", { conv: group });
    const chen = members.members.find((m) => m.username === "chen_hong");
    const [answer] = await doctor.client.sendQuickReplies(group, [saved.id], {
      member: chen?.id ?? "", fill: { 时间: "明天上午九点" },
    });
    const got = await until(patient, group, (m) => m.seq === answer?.seq);
    assert.match(got.text, /您好，请明天上午九点来移植。$/);
  });

  it("a read-only session reads everything and sends nothing; the refused message stays in its outbox (IM-17)", async () => {
    const viewer = await login("chen_hong", { readonly: true, device: "mini-program" });
    assert.equal(viewer.client.welcome?.readonly, true);
    assert.ok(texts(viewer, group).includes("明天上午九点移植"));
    await assert.rejects(viewer.client.send(group, { text: "想发也发不了" }), (e: ServerError) => e.code === "read_only");
    const [kept] = await viewer.client.outboxEntries();
    assert.deepEqual([kept?.text, kept?.error?.code], ["想发也发不了", "read_only"]);
  });

  it("reading on one device moves the marker on the other (SPEC.md §5.4)", async () => {
    const phone = await login("chen_hong", { device: "phone" });
    const tablet = await login("chen_hong", { device: "tablet" });
    const pushed = next(tablet.client, "push", (push) => push.op === "read" && push.conv === group);
    const read = await phone.client.read(group);
    assert.deepEqual(read.unread, 0);
    const push = await pushed;
    assert.equal(push.op === "read" && push.read_seq, read.read_seq);
  });
});

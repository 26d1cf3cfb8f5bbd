/**
 * The outbox in IndexedDB survives a reload of the page (fake-indexeddb stands in for the browser's): a message
 * typed offline is sent after the reload with the cid it got when it was typed, and once (SPEC.md §5.1).
 */

import assert from "node:assert/strict";
import { it } from "node:test";
import { IDBFactory } from "fake-indexeddb";
import { Client } from "../src/client.js";
import { IndexedDbOutboxStore, type OutboxEntry } from "../src/storage.js";
import { FakeServer, ManualClock } from "./fakes.js";

/** One load of the page: a client over the browser's IndexedDB, its own server connection, its own cids. */
function page(indexedDB: IDBFactory, server: FakeServer, prefix: string) {
  const store = new IndexedDbOutboxStore("ivf-im-outbox:chen_hong", indexedDB);
  let cids = 0;
  const client = new Client({
    url: "ws://chat.test/", connect: server.connect, username: "chen_hong", password: "secret", outbox: store,
    clock: new ManualClock(), random: () => 0.5, newCid: () => `${prefix}-${++cids}`,
  });
  return { client, store };
}

it("a message typed offline is sent after a reload, with its cid, exactly once", async () => {
  const indexedDB = new IDBFactory();
  const offline = new FakeServer(); // never answers: the phone has no network
  const before = page(indexedDB, offline, "first");
  before.client.start().catch(() => undefined);
  await before.client.enqueue("g:12", { text: "医生，明天几点到？" });
  await before.client.enqueue("g:12", { kind: "location", body: { name: "生殖中心", lat: 31.2, lon: 121.4 } });
  before.client.stop();
  await before.store.close();

  const server = new FakeServer();
  const after = page(indexedDB, server, "second");
  void after.client.start();
  const socket = await server.accept();
  assert.deepEqual((await socket.sent("send", 1)).map((f) => [f.cid, f.text]), [["first-1", "医生，明天几点到？"]]);
  socket.answer("send", { conv: "g:12", seq: 41, id: 9001, ts: 1, dup: false });
  assert.deepEqual((await socket.sent("send", 2)).map((f) => [f.cid, f.kind]), [
    ["first-1", "text"], ["first-2", "location"],
  ]);
  const done = new Promise((resolve) => after.client.on("sent", ({ answer }) => answer.seq === 42 && resolve(answer)));
  socket.answer("send", { conv: "g:12", seq: 42, id: 9002, ts: 2, dup: false });
  await done;
  after.client.stop();
  await after.store.close();

  const again = page(indexedDB, new FakeServer(), "third");
  assert.deepEqual(await again.client.outboxEntries(), []);
});

it("entries keep their order, fields and refusal across a reload", async () => {
  const indexedDB = new IDBFactory();
  const entries: OutboxEntry[] = [
    { cid: "b", conv: "g:1", kind: "text", text: "二", order: 2, at: 2, error: { code: "muted", message: "禁言中" } },
    { cid: "a", conv: "u:dr.li", kind: "image_group", body: { images: [{ id: "att_12345678", mime: "image/png", size: 3 }] },
      order: 1, at: 1 },
  ];
  const first = new IndexedDbOutboxStore("box", indexedDB);
  for (const entry of entries) await first.put(entry);
  await first.close();
  const second = new IndexedDbOutboxStore("box", indexedDB);
  assert.deepEqual(await second.all(), [entries[1], entries[0]]);
  await second.delete("a");
  assert.deepEqual((await second.all()).map((e) => e.cid), ["b"]);
});

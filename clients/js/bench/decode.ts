/**
 * How many `msg` pushes a second the SDK takes in, in Node (issue 15: at least 50,000), on one core:
 * - codec: `decodeFrame` alone, over a thousand different pushes of a group;
 * - client: each push as bytes handed to a logged-in Client, through decoding, the exactly-once order
 *   (SPEC.md §5.2.1) and the `message` event, until the app has been given the last one.
 * `npm run bench` prints one JSON line; load/RESULTS.md keeps the figures with the machine.
 */

import { cpus } from "node:os";
import { performance } from "node:perf_hooks";
import { Client } from "../src/client.js";
import { decodeFrame, encodeFrame } from "../src/codec.js";
import type { Transport } from "../src/transport.js";

const SECONDS = Number(process.env.BENCH_SECONDS ?? 3);
const PUSHES = 200_000;

/** The `msg` push of seq `seq`: a patient's message in a group, as the server sends it to another patient. */
function push(seq: number): Uint8Array {
  return encodeFrame({
    op: "msg",
    msg: {
      id: 90_000 + seq, conv: "g:12", seq, sender: { id: "a3", name: "紫藤03", role: "patient" }, kind: "text",
      text: `明天上午九点移植，请提前半小时到生殖中心二楼（第${seq}条）`, ts: 1_764_219_600_000 + seq,
    },
  });
}

function codec(): number {
  const frames = Array.from({ length: 1000 }, (_, i) => push(i + 1));
  let decoded = 0;
  const start = performance.now();
  while (performance.now() - start < SECONDS * 1000) {
    for (const frame of frames) decodeFrame(frame);
    decoded += frames.length;
  }
  return decoded / ((performance.now() - start) / 1000);
}

/** A connection that welcomes the client and has nothing to catch up on, then lets the bench hand it pushes. */
class Loopback implements Transport {
  onopen: (() => void) | null = null;
  onmessage: ((data: Uint8Array | string) => void) | null = null;
  onclose: ((code: number, reason: string) => void) | null = null;

  send(data: Uint8Array): void {
    const { op, rid } = decodeFrame(data);
    const answer = op === "hello"
      ? {
        version: 1, session: "s-bench", user: { id: "u1", username: "chen_hong", name: "陈红", role: "patient" },
        readonly: false, limits: { max_frame: 65536, max_text: 4000, rate: 20, burst: 50, files: {} }, server_time: 0,
      }
      : { convs: [{ conv: "g:12", kind: "group", name: "移植群", role: "member", last_seq: 0, read_seq: 0,
        unread: 0, messages: [], hidden: [], more: false }] };
    setImmediate(() => this.onmessage?.(encodeFrame({ op: "ok", rid, ...answer })));
  }

  close(): void {}
}

async function client(): Promise<number> {
  const frames = Array.from({ length: PUSHES }, (_, i) => push(i + 1));
  const socket = new Loopback();
  const app = new Client({ url: "ws://bench/", connect: () => socket, username: "chen_hong", password: "-", keepAliveMs: 3_600_000 });
  const synced = new Promise((resolve) => app.on("synced", resolve));
  setImmediate(() => socket.onopen?.());
  await app.start();
  await synced;
  let given = 0;
  const done = new Promise<void>((resolve) => app.on("message", () => ++given === PUSHES && resolve()));
  const start = performance.now();
  for (const frame of frames) socket.onmessage?.(frame);
  await done;
  const rate = PUSHES / ((performance.now() - start) / 1000);
  app.stop();
  return rate;
}

const result = {
  bench: "clients/js decode",
  node: process.version,
  cpu: cpus()[0]?.model,
  codec_pushes_per_s: Math.round(codec()),
  client_pushes_per_s: Math.round(await client()),
};
console.log(JSON.stringify(result));

/**
 * The queue of messages typed but not yet acknowledged, kept in an OutboxStore before anything is sent, so a
 * message survives a lost connection and a reload of the page and is sent again with its own `cid` until the
 * server answers (SPEC.md §5.1: a resend can never make a duplicate).
 */

import type { OutboxEntry, OutboxStore } from "./storage.js";

export class Outbox {
  private queue: OutboxEntry[] | undefined;
  private loading: Promise<OutboxEntry[]> | undefined;

  constructor(private readonly store: OutboxStore) {}

  /** Every entry, in the order they were added: those waiting and those refused for good (with `error`). */
  async entries(): Promise<OutboxEntry[]> {
    return [...(await this.load())];
  }

  /** The first entry still to send. */
  async next(): Promise<OutboxEntry | undefined> {
    return (await this.load()).find((entry) => entry.error === undefined);
  }

  /** Store a new entry at the end of the queue; resolves when it is durable. */
  async add(entry: Omit<OutboxEntry, "order">): Promise<OutboxEntry> {
    const queue = await this.load();
    const added = { ...entry, order: (queue.at(-1)?.order ?? 0) + 1 };
    await this.store.put(added);
    queue.push(added);
    return added;
  }

  /** Replace the entry of the same `cid`, or of `previousCid` when its cid changed. */
  async update(entry: OutboxEntry, previousCid = entry.cid): Promise<void> {
    const queue = await this.load();
    await this.store.put(entry);
    if (previousCid !== entry.cid) await this.store.delete(previousCid);
    const at = queue.findIndex((queued) => queued.cid === previousCid);
    if (at >= 0) queue[at] = entry;
  }

  async remove(cid: string): Promise<void> {
    const queue = await this.load();
    await this.store.delete(cid);
    const at = queue.findIndex((entry) => entry.cid === cid);
    if (at >= 0) queue.splice(at, 1);
  }

  private async load(): Promise<OutboxEntry[]> {
    if (this.queue) return this.queue;
    this.loading ??= this.store.all();
    this.queue = await this.loading;
    return this.queue;
  }
}

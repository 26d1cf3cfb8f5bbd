/**
 * One conversation's messages as the chat view shows them: the pages loaded so far, kept sorted by seq and
 * unique, and the rows the virtual list draws (date separators by Shanghai day, the unread divider, messages,
 * then this device's messages still in the outbox).
 *
 * The timeline is a plain object (not deeply reactive: 10,000 messages must not become 10,000 proxies); each
 * change bumps `version`, which the views watch. Hidden seqs (SPEC.md §11.3) are accounted for in `lowest`,
 * where paging back goes on from, and are never rows: nothing is drawn for them, not even a gap.
 */

import { type Int, type Message, type OutboxEntry } from "@ivf-im/sdk";
import { markRaw, shallowRef, type ShallowRef } from "vue";

import { dayKey, dayLabel } from "./time";

export type Row =
  | { type: "day"; key: string; label: string }
  | { type: "unread"; key: string }
  | { type: "msg"; key: string; message: Message }
  | { type: "pending"; key: string; entry: OutboxEntry };

export class Timeline {
  /** Sorted by seq, one per seq. */
  messages: Message[] = [];
  /** The lowest seq any loaded page covered (a message or a hidden seq); paging back asks `before` it. */
  lowest: Int | undefined;
  /** Whether older messages exist than those loaded. */
  moreBefore = true;
  /** The latest page was loaded: the timeline reaches the conversation's end (live messages go on from it). */
  loaded = false;
  readonly version: ShallowRef<number>;

  constructor(readonly conv: string) {
    this.version = shallowRef(0);
    markRaw(this);
  }

  private changed(): void {
    this.version.value++;
  }

  /** A page from `history` (oldest first) with its hidden ranges; `older` when it was asked `before`. */
  addPage(messages: readonly Message[], hidden: readonly (readonly [Int, Int])[], more: boolean, older: boolean): void {
    let low: Int | undefined;
    for (const message of messages) low = low === undefined || message.seq < low ? message.seq : low;
    for (const [first] of hidden) low = low === undefined || first < low ? first : low;
    if (low !== undefined && (this.lowest === undefined || low < this.lowest)) this.lowest = low;
    if (older || !this.loaded) this.moreBefore = more;
    if (!older) this.loaded = true;
    this.merge(messages);
  }

  /** A live message (the SDK delivers each once, in order); ignored until the latest page is loaded. */
  add(message: Message): void {
    if (!this.loaded) return;
    this.merge([message]);
  }

  /** Messages shown before that are to go (SPEC.md §11.3 retraction). */
  remove(ranges: readonly (readonly [Int, Int])[]): void {
    const before = this.messages.length;
    this.messages = this.messages.filter((m) => !ranges.some(([a, b]) => m.seq >= a && m.seq <= b));
    if (this.messages.length !== before) this.changed();
  }

  /** Forget everything (a banned group drops its content from the screen, SPEC.md §11.8). */
  clear(): void {
    this.messages = [];
    this.lowest = undefined;
    this.moreBefore = true;
    this.loaded = false;
    this.changed();
  }

  get last(): Message | undefined {
    return this.messages[this.messages.length - 1];
  }

  has(seq: Int): boolean {
    return this.index(seq) >= 0;
  }

  /** The message with `seq`, if loaded. */
  get(seq: Int): Message | undefined {
    const at = this.index(seq);
    return at >= 0 ? this.messages[at] : undefined;
  }

  private index(seq: Int): number {
    let lo = 0;
    let hi = this.messages.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const at = this.messages[mid]!.seq;
      if (at === seq) return mid;
      if (at < seq) lo = mid + 1;
      else hi = mid - 1;
    }
    return -1;
  }

  private merge(incoming: readonly Message[]): void {
    if (incoming.length === 0) return;
    const fresh = incoming.filter((m) => !this.has(m.seq)).map((m) => markRaw(m));
    if (fresh.length === 0) return;
    const last = this.last;
    const head = this.messages[0];
    if (!last || fresh[0]!.seq > last.seq) this.messages = [...this.messages, ...fresh];
    else if (head && fresh[fresh.length - 1]!.seq < head.seq) this.messages = [...fresh, ...this.messages];
    else this.messages = mergeSorted(this.messages, fresh);
    this.changed();
  }
}

function mergeSorted(a: readonly Message[], b: readonly Message[]): Message[] {
  return [...a, ...b].sort((x, y) => (x.seq < y.seq ? -1 : x.seq > y.seq ? 1 : 0));
}

/**
 * The rows of a timeline: a date separator before the first message of each Shanghai day, the unread divider
 * before the first message after `readSeq` that is not the user's own, and the outbox entries at the end.
 */
export function buildRows(
  messages: readonly Message[], pending: readonly OutboxEntry[], options: { now: number; me: string; readSeq?: Int },
): Row[] {
  const rows: Row[] = [];
  let day = "";
  let unreadPlaced = options.readSeq === undefined;
  for (const message of messages) {
    const key = dayKey(message.ts);
    if (key !== day) {
      day = key;
      rows.push({ type: "day", key: `day:${key}`, label: dayLabel(key, options.now) });
    }
    if (!unreadPlaced && message.seq > options.readSeq! && message.sender.id !== options.me) {
      unreadPlaced = true;
      rows.push({ type: "unread", key: "unread" });
    }
    rows.push({ type: "msg", key: `m:${message.seq}`, message });
  }
  if (pending.length > 0) {
    const key = dayKey(pending[0]!.at);
    if (key !== day) rows.push({ type: "day", key: `day:${key}`, label: dayLabel(key, options.now) });
  }
  for (const entry of pending) rows.push({ type: "pending", key: `p:${entry.cid}`, entry });
  return rows;
}

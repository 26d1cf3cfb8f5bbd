/**
 * Every message exactly once, in order (SPEC.md §5.2.1), as a pure object: per conversation, `seen` is the
 * highest seq accounted for, as a message delivered to the app or as a hidden seq (SPEC.md §11.3). The client
 * feeds it pages (sync, history) and pushes and asks it what to do; it does no I/O.
 *
 * A hidden seq is accounted for like a message, so it is never taken for a gap: a page's `hidden` ranges raise
 * `seen` as its messages do, and a `hidden` push moves `seen` over its ranges (rule 6).
 */

import { add, type Int, max } from "./int.js";
import type { Message } from "./generated/protocol.js";

/** What a `msg` push is, given what was seen (rules 2–4). */
export type Arrival = "duplicate" | "next" | "gap";

export class Positions {
  private readonly seen: Map<string, Int>;

  constructor(initial: Iterable<readonly [string, Int]> = []) {
    this.seen = new Map(initial);
  }

  /** The highest seq accounted for in `conv`; undefined for a conversation this client never saw. */
  get(conv: string): Int | undefined {
    return this.seen.get(conv);
  }

  /** Every conversation's position, for the app to keep (and give back to the next client it makes). */
  entries(): [string, Int][] {
    return [...this.seen];
  }

  /** Start following `conv` after `seq`, without what came before (a conversation met at its end). */
  startAfter(conv: string, seq: Int): void {
    if (!this.seen.has(conv)) this.seen.set(conv, seq);
  }

  /**
   * A page of `conv` that starts right after its position (a sync entry, a history page asked with `after`):
   * the messages not accounted for yet, in order, and its position raised to the highest seq the page covers.
   */
  page(conv: string, messages: readonly Message[], hidden: readonly (readonly [Int, Int])[]): Message[] {
    const seen = this.seen.get(conv) ?? 0;
    const fresh = messages.filter((message) => message.seq > seen);
    let top = seen;
    for (const message of messages) top = max(top, message.seq);
    for (const [, last] of hidden) top = max(top, last);
    this.seen.set(conv, top);
    return fresh;
  }

  /** Where a `msg` push with `seq` stands (rules 2–4): already had, the next one, or after a gap to fill first. */
  arrival(conv: string, seq: Int): Arrival {
    const next = add(this.seen.get(conv) ?? 0, 1);
    return seq < next ? "duplicate" : seq === next ? "next" : "gap";
  }

  /** The message `seq` of `conv` was delivered (rule 3). */
  accept(conv: string, seq: Int): void {
    this.seen.set(conv, max(this.seen.get(conv) ?? 0, seq));
  }

  /**
   * A `hidden` push's range `[first, last]` of `conv` (rule 6): true when it is accounted for now; false when
   * seqs before `first` are missing: fill them, then call again.
   */
  hide(conv: string, first: Int, last: Int): boolean {
    const seen = this.seen.get(conv) ?? 0;
    if (first > add(seen, 1)) return false;
    this.seen.set(conv, max(seen, last));
    return true;
  }
}

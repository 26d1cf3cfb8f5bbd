/** The rules of SPEC.md §5.2.1 as a table: what each push or page does to a conversation's position. */

import assert from "node:assert/strict";
import { it } from "node:test";
import type { Message } from "../src/generated/protocol.js";
import { Positions } from "../src/positions.js";
import { message } from "./fakes.js";

const page = (positions: Positions, conv: string, seqs: number[], hidden: [number, number][]): number[] =>
  positions.page(conv, seqs.map((seq) => message(conv, seq) as Message), hidden).map((m) => m.seq as number);

it("a msg push is a duplicate, the next one or after a gap (rules 2–4)", () => {
  const positions = new Positions([["g:1", 5]]);
  assert.deepEqual([4, 5, 6, 7].map((seq) => positions.arrival("g:1", seq)), ["duplicate", "duplicate", "next", "gap"]);
  assert.equal(positions.arrival("g:2", 1), "next");
  assert.equal(positions.arrival("g:2", 2), "gap");
});

it("a page raises the position over its hidden ranges too, and gives only what was not had (rule 1)", () => {
  const positions = new Positions([["g:1", 2]]);
  assert.deepEqual(page(positions, "g:1", [2, 3, 6], [[4, 5], [7, 9]]), [3, 6]);
  assert.equal(positions.get("g:1"), 9);
  assert.deepEqual(page(positions, "g:1", [], []), []);
  assert.equal(positions.get("g:1"), 9);
});

it("a hidden push is never a gap when it follows what was seen (rule 6)", () => {
  const table: [seen: number, range: [number, number], accounted: boolean, after: number][] = [
    [5, [3, 4], true, 5], // already behind
    [5, [6, 6], true, 6], // the next seq
    [5, [4, 8], true, 8], // overlapping
    [5, [7, 8], false, 5], // seq 6 is missing: fill it first
  ];
  for (const [seen, [first, last], accounted, after] of table) {
    const positions = new Positions([["g:1", seen]]);
    assert.equal(positions.hide("g:1", first, last), accounted, `${seen} [${first}, ${last}]`);
    assert.equal(positions.get("g:1"), after);
  }
});

it("positions hold seqs beyond 2^53 exactly (SPEC.md §1.3)", () => {
  const big = 2n ** 60n;
  const positions = new Positions([["g:1", big]]);
  assert.equal(positions.arrival("g:1", big + 1n), "next");
  assert.equal(positions.hide("g:1", big + 1n, big + 3n), true);
  assert.equal(positions.get("g:1"), big + 3n);
});

it("a conversation met at its end starts there, once", () => {
  const positions = new Positions();
  positions.startAfter("g:1", 40);
  positions.startAfter("g:1", 50);
  assert.equal(positions.arrival("g:1", 41), "next");
});

/** Reconnect delays grow, stay within their bounds and are spread by jitter (SPEC.md §4.6, §7.4). */

import assert from "node:assert/strict";
import { it } from "node:test";
import { Backoff } from "../src/backoff.js";

const lowest = new Backoff({ baseMs: 500, capMs: 30_000 }, () => 0);
const highest = new Backoff({ baseMs: 500, capMs: 30_000 }, () => 1 - Number.EPSILON);

it("each failure doubles the ceiling up to the cap; a delay lies in the upper half of its ceiling", () => {
  const ceilings = [500, 1000, 2000, 4000, 8000, 16_000, 30_000, 30_000];
  assert.deepEqual(ceilings.map((_, failures) => lowest.delay(failures)), ceilings.map((c) => c / 2));
  ceilings.forEach((ceiling, failures) => {
    const delay = highest.delay(failures);
    assert.ok(delay < ceiling && delay > ceiling * 0.99, `${failures}: ${delay} against ${ceiling}`);
  });
});

it("stays at the cap however long the failures go on", () => {
  assert.equal(highest.delay(10_000) <= 30_000, true);
  assert.equal(lowest.delay(10_000), 15_000);
});

it("clients that failed together spread out: the delay follows the random draw", () => {
  const draws = [0, 0.25, 0.5, 0.75];
  const delays = draws.map((draw) => new Backoff({ baseMs: 1000 }, () => draw).delay(3));
  assert.deepEqual(delays, [4000, 5000, 6000, 7000]);
});

it("a server restart is waited out 1–5 s", () => {
  assert.equal(lowest.between(1000, 5000), 1000);
  assert.ok(highest.between(1000, 5000) < 5000);
});

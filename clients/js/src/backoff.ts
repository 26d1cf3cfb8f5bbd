/**
 * How long to wait before trying again after failures (SPEC.md §4.6, §7.4: "growing, jittered delays"), so that
 * thousands of phones that lost the server at once do not all come back in the same instant.
 */

export interface BackoffOptions {
  /** The delay after the first failure, at most (ms). */
  baseMs?: number;
  /** The longest delay (ms). */
  capMs?: number;
}

export class Backoff {
  readonly baseMs: number;
  readonly capMs: number;

  constructor(options: BackoffOptions = {}, private readonly random: () => number = Math.random) {
    this.baseMs = options.baseMs ?? 500;
    this.capMs = options.capMs ?? 30_000;
  }

  /**
   * The delay before try `failures + 1`: the ceiling doubles with each failure up to `capMs`, and the delay is
   * drawn from its upper half ("equal jitter"): never less than half the ceiling, so failing clients do slow
   * down, and spread over the other half.
   */
  delay(failures: number): number {
    const ceiling = Math.min(this.capMs, this.baseMs * 2 ** Math.min(failures, 52));
    return ceiling / 2 + this.random() * (ceiling / 2);
  }

  /** A delay within `[lowMs, highMs)`: a server restart asks for 1–5 s (SPEC.md §7.4). */
  between(lowMs: number, highMs: number): number {
    return lowMs + this.random() * (highMs - lowMs);
  }
}

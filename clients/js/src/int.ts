/**
 * Integers that may not fit a double (SPEC.md §1.3): message `id` and `seq` are below 2^63, and JavaScript's
 * `number` holds integers exactly only up to 2^53 − 1. The codec decodes an integer as a `number` when it is
 * safe and as a `bigint` only beyond, so each value has one form (`int`) and `===` compares them as values.
 * Arithmetic on such values goes through these helpers.
 */

export type Int = number | bigint;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The one form of an integer: a `number` when it is safe, else a `bigint`. */
export function int(value: Int): Int {
  if (typeof value === "number") {
    if (!Number.isInteger(value)) throw new RangeError(`${value} is not an integer`);
    return Number.isSafeInteger(value) ? value : BigInt(value);
  }
  return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : value;
}

/** `a + b`, exactly. */
export function add(a: Int, b: Int): Int {
  return typeof a === "number" && typeof b === "number" && Number.isSafeInteger(a + b)
    ? a + b
    : int(BigInt(a) + BigInt(b));
}

/** The larger of `a` and `b` (JavaScript compares a `number` with a `bigint` exactly). */
export function max(a: Int, b: Int): Int {
  return a >= b ? a : b;
}

/** `value` as a `number`. Error handling: RangeError when it is not safe (a count or size no server sends). */
export function toNumber(value: Int): number {
  if (typeof value === "number") return value;
  if (value < -MAX_SAFE || value > MAX_SAFE) throw new RangeError(`${value} does not fit in a number`);
  return Number(value);
}

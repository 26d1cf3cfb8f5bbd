/**
 * Frames on the wire (SPEC.md §2.2): one msgpack map with string keys per binary WebSocket message.
 *
 * Integers (SPEC.md §1.3): a decoded integer is a `number` when it is safe and a `bigint` beyond 2^53 − 1 (see
 * src/int.ts). @msgpack/msgpack either loses the low bits of a 64-bit integer or, with `useBigInt64`, makes every
 * 64-bit one a `bigint`, so every timestamp would be one; so frames are decoded with `useBigInt64` and safe
 * values turned back into numbers. Encoding writes each integer in its smallest form, as the reference
 * implementation does (the test vectors come out byte for byte): without that step @msgpack/msgpack writes a
 * `number` of 2^32 or more as a float when `useBigInt64` is on, and the server refuses a float where it
 * wants an integer.
 *
 * A JavaScript `number` cannot say whether it is an integer or a float: an integral value goes out as an
 * integer. Wherever the protocol takes a `float` it also takes an integer (`lat`, `lon`, form values).
 */

import { Decoder, Encoder } from "@msgpack/msgpack";

/** The bytes are not one frame: not msgpack, not a map, a key that is not a string, or bytes left over. */
export class FrameError extends Error {
  override name = "FrameError";
}

/** A frame as decoded: a map with string keys. */
export type RawFrame = { [key: string]: unknown };

const encoder = new Encoder({ useBigInt64: true });
const decoder = new Decoder({
  useBigInt64: true,
  mapKeyConverter: (key: unknown): string => {
    if (typeof key !== "string") throw new FrameError(`a map key is not a string: ${String(key)}`);
    return key;
  },
});

const INT32_MIN = -0x80000000;
const UINT32_END = 0x100000000;
const SAFE_MAX = BigInt(Number.MAX_SAFE_INTEGER);

/** The bytes of one frame. `undefined` fields are left out (SPEC.md §1.3: leave optional fields out). */
export function encodeFrame(frame: object): Uint8Array {
  return encoder.encode(forWire(frame));
}

/**
 * The frame in `data`.
 *
 * Error handling: FrameError when `data` is not exactly one msgpack map with string keys (SPEC.md §2.2).
 */
export function decodeFrame(data: Uint8Array): RawFrame {
  let value: unknown;
  try {
    value = decoder.decode(data);
  } catch (error) {
    if (error instanceof FrameError) throw error;
    throw new FrameError(error instanceof Error ? error.message : String(error));
  }
  if (typeof value !== "object" || value === null || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new FrameError("the frame is not a map");
  }
  return safeIntegers(value) as RawFrame;
}

/** A copy of `value` in which every integer has the form msgpack writes smallest with `useBigInt64`. */
function forWire(value: unknown): unknown {
  switch (typeof value) {
    case "number":
      if (!Number.isInteger(value) || (value >= INT32_MIN && value < UINT32_END)) return value;
      return BigInt(value);
    case "bigint":
      return value >= INT32_MIN && value < UINT32_END ? Number(value) : value;
    case "object":
      if (value === null || ArrayBuffer.isView(value) || value instanceof ArrayBuffer) return value;
      if (Array.isArray(value)) return value.map(forWire);
      {
        const copy: RawFrame = {};
        for (const [key, inner] of Object.entries(value)) {
          if (inner !== undefined) copy[key] = forWire(inner);
        }
        return copy;
      }
    default:
      return value;
  }
}

/** `value` with each `bigint` that is a safe integer turned into a `number`, in place. */
function safeIntegers(value: unknown): unknown {
  if (typeof value === "bigint") return value >= -SAFE_MAX && value <= SAFE_MAX ? Number(value) : value;
  if (typeof value !== "object" || value === null || ArrayBuffer.isView(value)) return value;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) value[i] = safeIntegers(value[i]);
  } else {
    const map = value as RawFrame;
    for (const key in map) map[key] = safeIntegers(map[key]);
  }
  return value;
}

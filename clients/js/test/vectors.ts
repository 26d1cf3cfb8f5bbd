/**
 * protocol/vectors/v1.json read exactly (SPEC.md §10): `JSON.parse` turns `1.0` into `1` and rounds integers
 * beyond 2^53, and the vectors tell floats from integers by the decimal point. So this reader keeps each
 * integer exact (in the codec's form, src/int.ts) and marks each float, and reads `{"$bin": hex}` as bytes.
 */

import { readFileSync } from "node:fs";
import { int } from "../src/int.js";

/** A number written with a decimal point or an exponent: a msgpack float. */
export class Float {
  constructor(readonly value: number) {}
}

export type Value = null | boolean | number | bigint | string | Float | Uint8Array | Value[] | { [key: string]: Value };

export interface Vector {
  name: string;
  direction: "client" | "server";
  hex: string;
  frame?: Value;
  expect?: unknown;
  answers?: string;
}

export const VECTORS: Vector[] = (parse(
  readFileSync(new URL("../../../protocol/vectors/v1.json", import.meta.url), "utf8"),
) as unknown as { vectors: Vector[] }).vectors;

export function fromHex(hex: string): Uint8Array {
  return Uint8Array.from(hex.match(/../g) ?? [], (byte) => parseInt(byte, 16));
}

export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

/** `value` as a program would build it: floats as plain numbers. */
export function plain(value: Value): unknown {
  if (value instanceof Float) return value.value;
  if (value instanceof Uint8Array || typeof value !== "object" || value === null) return value;
  if (Array.isArray(value)) return value.map(plain);
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [key, plain(inner)]));
}

/** Whether `value` holds a float with an integral value, which a JavaScript number cannot send as a float. */
export function hasIntegralFloat(value: Value): boolean {
  if (value instanceof Float) return Number.isInteger(value.value);
  if (value instanceof Uint8Array || typeof value !== "object" || value === null) return false;
  return Object.values(value).some(hasIntegralFloat);
}

/** Whether a decoded frame equals a vector's `frame`: the same map (in any order), exact integers, floats as numbers. */
export function same(decoded: unknown, expected: Value): boolean {
  if (expected instanceof Float) return typeof decoded === "number" && Object.is(decoded, expected.value);
  if (expected instanceof Uint8Array) {
    return decoded instanceof Uint8Array && toHex(decoded) === toHex(expected);
  }
  if (typeof expected !== "object" || expected === null) return decoded === expected;
  if (typeof decoded !== "object" || decoded === null || Array.isArray(decoded) !== Array.isArray(expected)) {
    return false;
  }
  const keys = Object.keys(expected);
  const got = decoded as Record<string, unknown>;
  return Object.keys(got).length === keys.length
    && keys.every((key) => key in got && same(got[key], (expected as Record<string, Value>)[key] as Value));
}

function parse(text: string): Value {
  let at = 0;
  const space = (): void => {
    while (/\s/.test(text[at] ?? "")) at++;
  };
  const value = (): Value => {
    space();
    const char = text[at];
    if (char === "{") {
      at++;
      const map: { [key: string]: Value } = {};
      space();
      if (text[at] === "}") return at++, map;
      for (;;) {
        space();
        const key = value() as string;
        space();
        at++; // the colon
        map[key] = value();
        space();
        if (text[at++] === "}") break;
      }
      const hex = map.$bin;
      return Object.keys(map).length === 1 && typeof hex === "string" ? fromHex(hex) : map;
    }
    if (char === "[") {
      at++;
      const list: Value[] = [];
      space();
      if (text[at] === "]") return at++, list;
      for (;;) {
        list.push(value());
        space();
        if (text[at++] === "]") break;
      }
      return list;
    }
    if (char === '"') {
      const end = /"(?:[^"\\]|\\.)*"/y;
      end.lastIndex = at;
      const token = end.exec(text)?.[0] ?? "";
      at += token.length;
      return JSON.parse(token) as string;
    }
    const literal = /-?\d+(\.\d+)?([eE][-+]?\d+)?|true|false|null/y;
    literal.lastIndex = at;
    const match = literal.exec(text);
    if (!match) throw new SyntaxError(`unexpected ${char} at ${at}`);
    at += match[0].length;
    if (match[0] === "true" || match[0] === "false" || match[0] === "null") return JSON.parse(match[0]) as Value;
    return match[1] !== undefined || match[2] !== undefined ? new Float(Number(match[0])) : int(BigInt(match[0]));
  };
  return value();
}

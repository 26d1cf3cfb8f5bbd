/** The codec against protocol/vectors/v1.json, byte for byte (SPEC.md §10), and 64-bit integers (SPEC.md §1.3). */

import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { decodeFrame, encodeFrame, FrameError } from "../src/codec.js";
import { fromHex, hasIntegralFloat, plain, same, toHex, VECTORS } from "./vectors.js";

const maps = VECTORS.filter((v) => typeof v.frame === "object" && v.frame !== null && !Array.isArray(v.frame));

describe("test vectors", () => {
  it("are all read", () => {
    assert.ok(VECTORS.length > 200);
    assert.ok(VECTORS.some((v) => v.name === "msg_push_unknown_kind"));
  });

  it("every map decodes to its frame, server and client vectors alike", () => {
    const wrong = maps.filter((v) => !same(decodeFrame(fromHex(v.hex)), v.frame!)).map((v) => v.name);
    assert.deepEqual(wrong, []);
  });

  it("every map a program can build encodes to the vector's bytes exactly", () => {
    const buildable = maps.filter((v) => !hasIntegralFloat(v.frame!));
    // 1.0 is the integer 1 to JavaScript: no program here can send a float with an integral value
    assert.deepEqual(maps.filter((v) => hasIntegralFloat(v.frame!)).map((v) => v.name), ["rid_float"]);
    const wrong = buildable.filter((v) => toHex(encodeFrame(plain(v.frame!) as object)) !== v.hex);
    assert.deepEqual(wrong.map((v) => v.name), []);
  });

  it("bytes that are not one map with string keys are refused", () => {
    const refused = VECTORS.filter((v) => !maps.includes(v)).filter((v) => {
      try {
        decodeFrame(fromHex(v.hex));
        return false;
      } catch (error) {
        return error instanceof FrameError;
      }
    });
    // a NaN is a map with no JSON form; the server, not this decoder, checks that strings are valid UTF-8
    const accepted = ["invalid_utf8", "send_body_value_nan"];
    assert.deepEqual(
      VECTORS.filter((v) => !maps.includes(v) && !refused.includes(v)).map((v) => v.name),
      accepted,
    );
  });
});

describe("64-bit integers", () => {
  it("a seq beyond 2^53 decodes as the exact bigint; one within as a number", () => {
    const big = { op: "read", conv: "g:1", read_seq: 2n ** 62n + 1n, unread: 0, ts: 1764219600012 };
    const decoded = decodeFrame(encodeFrame(big));
    assert.equal(decoded.read_seq, 2n ** 62n + 1n);
    assert.equal(decoded.ts, 1764219600012);
    assert.equal(typeof decoded.ts, "number");
  });

  it("an integer is written in its smallest form, never as a float", () => {
    assert.equal(toHex(encodeFrame({ n: 2 ** 40 })), "81a16ecf0000010000000000");
    assert.equal(toHex(encodeFrame({ n: 5n })), "81a16e05");
    assert.equal(toHex(encodeFrame({ n: -(2 ** 40) })), "81a16ed3ffffff0000000000");
    assert.equal(toHex(encodeFrame({ n: 2n ** 63n - 1n })), "81a16ecf7fffffffffffffff");
  });

  it("a key that is not a string is refused", () => {
    assert.throws(() => decodeFrame(fromHex("81" + "01" + "02")), FrameError);
  });
});

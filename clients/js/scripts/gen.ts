/**
 * Generates src/generated/protocol.ts from protocol/schema.json (SPEC.md §10.1): every frame's type, and the
 * tables of ops, pushes and kinds. `npm run gen` writes it; test/generated.test.ts fails when it is stale.
 *
 * json-schema-to-typescript reads draft-07, the schema is draft 2020-12, and JSON Schema has no bytes and one
 * integer type, so the schema is adjusted first (`adjust`):
 * - an integer bounded to ±(2^53 − 1) is a `number`; any other may exceed what a double holds exactly (message
 *   `id` and `seq` are below 2^63, SPEC.md §1.3) and is an `Int` (`number | bigint`, see src/int.ts);
 * - a string with `"contentEncoding": "base64"` is msgpack bin on the wire: a `Uint8Array`;
 * - `prefixItems` (a `[first, last]` seq range) becomes the draft-07 tuple `items`;
 * - a map without properties (a message body) gets an index signature of `unknown`;
 * - the root is every type of `$defs`, so that those no frame refers to (the kinds' bodies) are generated too;
 *   `Frame`, the union of the frames, is written with the tables.
 * Other maps get no index signature: a property this SDK does not know is still decoded and ignored (SPEC.md §9),
 * and a misspelt request field is a compile error instead of a frame the server refuses.
 */

import { readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { compile, type JSONSchema } from "json-schema-to-typescript";

const ROOT = new URL("../../../", import.meta.url);
export const SCHEMA = new URL("protocol/schema.json", ROOT);
export const OUTPUT = new URL("clients/js/src/generated/protocol.ts", ROOT);

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Node = { [key: string]: Json };

interface Schema {
  description: string;
  ops: Record<string, { request: { $ref: string }; answer: { $ref: string }; pushes: string[]; writes: boolean }>;
  pushes: Record<string, { $ref: string }>;
  kinds: Record<string, { $ref: string }>;
  anyOf: Json[];
  $defs: Record<string, Node>;
}

const SAFE = Number.MAX_SAFE_INTEGER;

function isNode(value: Json): value is Node {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function adjust(value: Json): Json {
  if (Array.isArray(value)) return value.map(adjust);
  if (!isNode(value)) return value;
  const node: Node = {};
  for (const [key, inner] of Object.entries(value)) node[key] = adjust(inner);
  if (node.type === "integer") {
    const { minimum, maximum } = node;
    const bounded = typeof maximum === "number" && maximum <= SAFE && typeof minimum === "number" && minimum >= -SAFE;
    node.tsType = bounded ? "number" : "Int";
  }
  if (node.type === "string" && node.contentEncoding === "base64") node.tsType = "Uint8Array";
  if (Array.isArray(node.prefixItems)) {
    node.items = node.prefixItems;
    node.additionalItems = false;
    delete node.prefixItems;
  }
  if (node.type === "object" && node.properties === undefined && node.additionalProperties === undefined) {
    node.additionalProperties = true;
  }
  return node;
}

const name = (ref: { $ref: string }): string => ref.$ref.split("/").pop() ?? "";

function tables(schema: Schema): string {
  const ops = Object.entries(schema.ops);
  const listed = ops.flatMap(([op, { request, answer }]) => {
    const fields = (ref: { $ref: string }): Node => (schema.$defs[name(ref)]?.properties ?? {}) as Node;
    if (!("cursor" in fields(request))) return [];
    const arrays = Object.entries(fields(answer)).filter(([, p]) => isNode(p) && p.type === "array");
    if (arrays.length !== 1) throw new Error(`${op}: a paged answer must list exactly one array`);
    return [`  ${op}: "${arrays[0]?.[0]}",`];
  });
  return [
    `/**\n * ${schema.description.replace(/\. /g, ".\n * ")}\n */`,
    "export type Frame =",
    ...schema.anyOf.map((ref) => `  | ${name(ref as { $ref: string })}`),
    ";",
    "",
    "/** Each op: the request a client sends and the answer (`ok`) it gets (SPEC.md §4, §5; schema.json `ops`). */",
    "export interface Ops {",
    ...ops.map(([op, { request, answer }]) => `  ${op}: { request: ${name(request)}; answer: ${name(answer)} };`),
    "}",
    "",
    "export type Op = keyof Ops;",
    "",
    "/** The pushes of SPEC.md §3.5, by `op`. */",
    "export interface Pushes {",
    ...Object.entries(schema.pushes).map(([op, ref]) => `  ${op}: ${name(ref)};`),
    "}",
    "",
    "export type Push = Pushes[keyof Pushes];",
    "",
    "/** The `body` of each built-in message kind (SPEC.md §6.1). */",
    "export interface KindBodies {",
    ...Object.entries(schema.kinds).map(([kind, ref]) => `  ${kind}: ${name(ref)};`),
    "}",
    "",
    "/** The ops whose answers come a page at a time (SPEC.md §3.7), each with the answer's field that lists the items. */",
    "export const LISTED = {",
    ...listed,
    "} as const;",
    "",
    "export type Listed = typeof LISTED;",
    "",
    "/** The ops a read-only session may not use (SPEC.md §4.4). */",
    "export const WRITING_OPS: ReadonlySet<Op> = new Set<Op>([",
    ...ops.filter(([, op]) => op.writes).map(([op]) => `  "${op}",`),
    "]);",
    "",
    "/** The `op` of every push this version knows; a client ignores any other (SPEC.md §9). */",
    "export const PUSH_OPS: ReadonlySet<string> = new Set<string>([",
    ...Object.keys(schema.pushes).map((op) => `  "${op}",`),
    "]);",
    "",
  ].join("\n");
}

/** The text of src/generated/protocol.ts for the schema at `SCHEMA`. */
export async function generate(): Promise<string> {
  const schema = JSON.parse(readFileSync(SCHEMA, "utf8")) as Schema;
  const root = adjust({
    title: "ProtocolType",
    description: "Any type protocol/schema.json defines.",
    anyOf: Object.keys(schema.$defs).map((type) => ({ $ref: `#/$defs/${type}` })),
    $defs: schema.$defs,
  });
  const banner = [
    "/* Generated by `npm run gen` (scripts/gen.ts) from protocol/schema.json: do not edit. */",
    "",
    'import type { Int } from "../int.js";',
    "",
  ].join("\n");
  const types = await compile(root as JSONSchema, "ProtocolType", {
    additionalProperties: false,
    bannerComment: banner,
    ignoreMinAndMaxItems: true,
    strictIndexSignatures: false,
    unknownAny: true,
  });
  return `${types}\n${tables(schema)}`;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(OUTPUT, await generate());
}

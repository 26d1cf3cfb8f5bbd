/** src/generated/protocol.ts is what `npm run gen` makes of protocol/schema.json now (SPEC.md §10.1). */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { it } from "node:test";
import { generate, OUTPUT } from "../scripts/gen.js";

it("the generated types are those of the current schema (run `npm run gen` after changing it)", async () => {
  assert.equal(readFileSync(OUTPUT, "utf8"), await generate());
});

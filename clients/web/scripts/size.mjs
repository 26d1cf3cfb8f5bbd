// The JavaScript shipped to the phone, gzipped (issue 15 budget: at most 250 KB for the chat app).
// `npm run size` builds first; this prints each file of dist/assets and the total, and fails above the budget.
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";

const BUDGET = 250 * 1024;
const assets = new URL("../dist/assets/", import.meta.url).pathname;
let total = 0;
for (const name of readdirSync(assets).filter((n) => n.endsWith(".js")).sort()) {
  const size = gzipSync(readFileSync(join(assets, name)), { level: 9 }).length;
  total += size;
  console.log(`${name}\t${(size / 1024).toFixed(1)} KB gzip`);
}
console.log(`total JavaScript\t${(total / 1024).toFixed(1)} KB gzip (budget ${BUDGET / 1024} KB)`);
if (total > BUDGET) {
  console.error("over the budget");
  process.exit(1);
}

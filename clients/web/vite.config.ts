/**
 * The build of the chat app. The SDK is compiled from its TypeScript source (clients/js/src) through an alias,
 * not from a built package: one build step, the app's strict type check covers it, and only what the app
 * uses is shipped. The front door (webadmin) serves `/`, `/view`, `/config.json` and `/assets/*` only, so
 * every file the page loads is a hashed asset.
 */
import { fileURLToPath } from "node:url";

import vue from "@vitejs/plugin-vue";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [vue()],
  resolve: {
    alias: { "@ivf-im/sdk": fileURLToPath(new URL("../js/src/index.ts", import.meta.url)) },
  },
  build: {
    target: "es2022",
    assetsInlineLimit: 0,
    chunkSizeWarningLimit: 600,
  },
  server: { port: 5173 },
});

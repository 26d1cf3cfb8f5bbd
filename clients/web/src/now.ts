/**
 * The app's clock: the current time as a ref that ticks each minute, so that "今天" and "昨天" turn over at
 * midnight in Shanghai without a reload. Views read it; pure functions take it as an argument (time.ts).
 */

import { ref } from "vue";

export const now = ref(Date.now());

setInterval(() => {
  now.value = Date.now();
}, 60_000);

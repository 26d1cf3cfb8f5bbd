/**
 * The reader's own settings, kept in this browser: the font size (many patients are older; husbands read
 * along). The whole app is sized in rem, so one root size scales text, bubbles and touch targets together.
 */

import { ref, watch } from "vue";

export type FontSize = "standard" | "large" | "xlarge";

export const FONT_SIZES: Record<FontSize, number> = { standard: 17, large: 19, xlarge: 22 };
const KEY = "ivf-web-font";

function stored(): FontSize {
  const value = localStorage.getItem(KEY);
  return value === "large" || value === "xlarge" ? value : "standard";
}

export const fontSize = ref<FontSize>(stored());

/** Apply the font size to the page now and whenever it changes. */
export function applyFontSize(): void {
  watch(fontSize, (size) => {
    localStorage.setItem(KEY, size);
    document.documentElement.style.fontSize = `${FONT_SIZES[size]}px`;
  }, { immediate: true });
}

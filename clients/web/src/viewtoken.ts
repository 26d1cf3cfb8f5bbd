/**
 * The view token of the mini-program's `web-view` (docs/web.md, IM-17): it arrives in the URL's fragment
 * (`/view#token=…`), which browsers never send to a server. It is kept for this tab only (sessionStorage) and
 * taken out of the address bar at once, so that it is neither bookmarked nor shared with a copied link.
 */

import { VIEW_TOKEN } from "./session";

export function isViewPath(): boolean {
  return location.pathname.replace(/\/+$/, "") === "/view";
}

/** Move a token from the fragment into sessionStorage; whether this tab has one now. */
export function takeViewToken(): boolean {
  const token = new URLSearchParams(location.hash.slice(1)).get("token");
  if (token) {
    sessionStorage.setItem(VIEW_TOKEN, token);
    history.replaceState(null, "", location.pathname + location.search);
  }
  return !!sessionStorage.getItem(VIEW_TOKEN);
}

/**
 * Taken when this module is first evaluated: main.ts imports it before the router, whose hash history would
 * otherwise read the fragment as a screen's address and replace it.
 */
export const viewing = isViewPath();
export const viewToken = viewing && takeViewToken();

/** The chat app (issue 15): starts the session (a kept token, a view token at /view, or the login page). */

import { viewing, viewToken } from "./viewtoken"; // first: before the router reads the fragment
import "./vant";
import "./styles.css";

import { createApp } from "vue";

import App from "./App.vue";
import { router } from "./router";
import { resume, session, view } from "./session";
import { applyFontSize } from "./settings";
import { T } from "./texts";

/** View mode with the tab's view token, or a kept login, or the login page. */
async function boot(viewing: boolean, viewToken: boolean): Promise<void> {
  if (viewing) {
    session.viewMode = true;
    if (!viewToken) {
      Object.assign(session, { phase: "login", notice: T.viewTokenMissing });
      return;
    }
    await view().catch(() => undefined);
    return;
  }
  if (!(await resume())) session.phase = "login";
}

applyFontSize();
createApp(App).use(router).mount("#app");
void boot(viewing, viewToken);

/**
 * Screens. Hash history: the front door serves the page at `/` and `/view` only (docs/web.md), so a screen's
 * address lives after `#` and a reload lands on the same screen.
 */

import { createRouter, createWebHashHistory } from "vue-router";

import ChatView from "./views/ChatView.vue";
import ConvListView from "./views/ConvListView.vue";
import LoginView from "./views/LoginView.vue";
import SettingsView from "./views/SettingsView.vue";

export const router = createRouter({
  history: createWebHashHistory(),
  routes: [
    { path: "/", name: "list", component: ConvListView },
    { path: "/login", name: "login", component: LoginView },
    { path: "/chat/:conv", name: "chat", component: ChatView, props: true },
    { path: "/settings", name: "settings", component: SettingsView },
    { path: "/:rest(.*)", redirect: "/" },
  ],
});

/**
 * Opening what a card points to (SPEC.md §6.1: `http(s)://` a web page, `app://` a page of the hospital's app,
 * `mp://` a page of the WeChat mini-program). Inside the mini-program's web-view its pages open through
 * `wx.miniProgram` when the page has it; elsewhere the reader is told where the page opens.
 */

import { showToast } from "vant";

import { T } from "./texts";

interface MiniProgram {
  navigateTo(options: { url: string }): void;
}

export function openTarget(target: string): void {
  if (target.startsWith("http://") || target.startsWith("https://")) {
    window.open(target, "_blank", "noopener");
    return;
  }
  if (target.startsWith("mp://")) {
    const mini = (window as { wx?: { miniProgram?: MiniProgram } }).wx?.miniProgram;
    if (mini) mini.navigateTo({ url: `/${target.slice("mp://".length)}` });
    else showToast(T.openInMiniProgram);
    return;
  }
  showToast(T.openInApp);
}

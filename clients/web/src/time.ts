/**
 * Days and times as the center lives them: Asia/Shanghai, whatever zone the phone is set to (a husband abroad
 * reads the same days as his wife). Pure functions of a time and `now`, which the caller passes in (the app's
 * ticking clock, `useNow`), so that "今天" and "昨天" are decided by an injected clock.
 */

import { type Int, toNumber } from "@ivf-im/sdk";

import { T } from "./texts";

export const ZONE = "Asia/Shanghai";

const dayParts = new Intl.DateTimeFormat("en-CA", { timeZone: ZONE, year: "numeric", month: "2-digit", day: "2-digit" });
const clockParts = new Intl.DateTimeFormat("en-GB", { timeZone: ZONE, hour: "2-digit", minute: "2-digit", hourCycle: "h23" });
const weekday = new Intl.DateTimeFormat("zh-CN", { timeZone: ZONE, weekday: "short" });

/** The Shanghai day of `ms` as `YYYY-MM-DD`. */
export function dayKey(ms: Int): string {
  return dayParts.format(new Date(toNumber(ms)));
}

/** `HH:MM` in Shanghai. */
export function clock(ms: Int): string {
  return clockParts.format(new Date(toNumber(ms)));
}

/** The number of days from day `a` to day `b` (both `YYYY-MM-DD`). */
function daysBetween(a: string, b: string): number {
  return Math.round((Date.parse(`${b}T00:00:00Z`) - Date.parse(`${a}T00:00:00Z`)) / 86_400_000);
}

/** A date separator: 今天, 昨天, 11月27日 周四, or 2025年11月27日 周四 for another year. */
export function dayLabel(day: string, now: number): string {
  const today = dayKey(now);
  const ago = daysBetween(day, today);
  if (ago === 0) return T.today;
  if (ago === 1) return T.yesterday;
  const [year, month, date] = day.split("-").map(Number) as [number, number, number];
  const week = weekday.format(new Date(Date.UTC(year, month - 1, date, 4)));
  const md = `${month}月${date}日 ${week}`;
  return day.slice(0, 4) === today.slice(0, 4) ? md : `${year}年${md}`;
}

/** The time beside a conversation in the list: HH:MM today, 昨天, M月D日, or YYYY/M/D. */
export function listTime(ms: Int, now: number): string {
  const day = dayKey(ms);
  const today = dayKey(now);
  const ago = daysBetween(day, today);
  if (ago === 0) return clock(ms);
  if (ago === 1) return T.yesterday;
  const [year, month, date] = day.split("-").map(Number) as [number, number, number];
  return day.slice(0, 4) === today.slice(0, 4) ? `${month}月${date}日` : `${year}/${month}/${date}`;
}

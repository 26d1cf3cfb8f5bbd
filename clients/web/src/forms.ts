/**
 * Checking a pathway form before it is sent (EDU-2): each field's value against its definition (SPEC.md §6.1,
 * §6.2), with a message per field that says what is wrong in words a patient understands. The bot checks the
 * values again (`check_form_reply`) and answers a mistake in the conversation; this only spares the round trip.
 */

import type { FieldDef } from "@ivf-im/sdk";

import { T } from "./texts";

/** What the inputs hold: text as typed, a choice, a yes/no, or nothing yet. */
export type Raw = Record<string, string | boolean | undefined>;
export type Value = string | number | boolean;

const LIMITS: Partial<Record<FieldDef["type"], number>> = { text: 200, long_text: 4000 };
const MAX_INT = 2 ** 53;

/** The values to send (fields left empty are left out) and the errors by field name; send only when none. */
export function checkForm(fields: readonly FieldDef[], raw: Raw): { values: Record<string, Value>; errors: Record<string, string> } {
  const values: Record<string, Value> = {};
  const errors: Record<string, string> = {};
  for (const field of fields) {
    const input = raw[field.name];
    const text = typeof input === "string" ? input.trim() : input;
    const required = field.required ?? true;
    if (text === undefined || text === "") {
      if (required) errors[field.name] = emptyMessage(field);
      continue;
    }
    const checked = checkValue(field, text);
    if (typeof checked === "object") errors[field.name] = checked.error;
    else values[field.name] = checked;
  }
  return { values, errors };
}

function emptyMessage(field: FieldDef): string {
  switch (field.type) {
    case "choice":
    case "bool":
      return T.fieldChoice(field.label);
    default:
      return T.fieldRequired(field.label);
  }
}

function checkValue(field: FieldDef, value: string | boolean): Value | { error: string } {
  if (field.type === "bool") return typeof value === "boolean" ? value : value === "true";
  const text = String(value);
  switch (field.type) {
    case "int": {
      const n = Number(text);
      return /^-?\d+$/.test(text) && Math.abs(n) <= MAX_INT ? n : { error: T.fieldInt(field.label) };
    }
    case "number": {
      const n = Number(text);
      return /^-?\d+(\.\d+)?$/.test(text) && Math.abs(n) <= 1e15 ? n : { error: T.fieldNumber(field.label) };
    }
    case "date":
      return isDay(text) ? text : { error: T.fieldDate(field.label) };
    case "time":
      return /^([01]\d|2[0-3]):[0-5]\d$/.test(text) ? text : { error: T.fieldTime(field.label) };
    case "url":
      return /^(https?|app|mp):\/\//.test(text) ? text : { error: T.fieldUrl(field.label) };
    case "choice":
      return field.choices?.includes(text) ? text : { error: T.fieldChoice(field.label) };
    case "attachment":
      return { error: T.fieldRequired(field.label) };
    default: {
      const limit = LIMITS[field.type] ?? 200;
      return [...text].length <= limit ? text : { error: T.fieldTooLong(field.label, limit) };
    }
  }
}

/**
 * A day as typed: the digits only (full-width ones too), with the dashes put in as they come, so that
 * 20261120, 2026/11/20 and 2026-11-20 all read 2026-11-20 (the shape SPEC.md §6.1 gives a day). The browser's
 * own date input is not used: it shows the day in the browser's format, 11/20/2026 in many phones' Chinese.
 */
export function shapeDay(typed: string): string {
  const d = digits(typed).slice(0, 8);
  return [d.slice(0, 4), d.slice(4, 6), d.slice(6)].filter(Boolean).join("-");
}

/** A time of day as typed, shaped like a day (`shapeDay`): 0830 reads 08:30. */
export function shapeClock(typed: string): string {
  const d = digits(typed).slice(0, 4);
  return [d.slice(0, 2), d.slice(2)].filter(Boolean).join(":");
}

function digits(typed: string): string {
  return typed.normalize("NFKC").replace(/\D/g, "");
}

/** `YYYY-MM-DD` naming a day the calendar has (2026-02-30 does not). */
function isDay(text: string): boolean {
  const match = /^(\d{4})-(\d{2})-(\d{2})$/.exec(text);
  if (!match) return false;
  const [year, month, day] = [Number(match[1]), Number(match[2]), Number(match[3])];
  const date = new Date(0);
  date.setUTCFullYear(year, month - 1, day);
  return year >= 1 && date.getUTCFullYear() === year && date.getUTCMonth() === month - 1 && date.getUTCDate() === day;
}

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
    case "date":
      return T.fieldDate(field.label);
    case "time":
      return T.fieldTime(field.label);
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
      return /^\d{4}-\d{2}-\d{2}$/.test(text) ? text : { error: T.fieldDate(field.label) };
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

/**
 * What the cards of one chat share, provided by the chat view: which forms and consents this user has
 * answered (EDU-2: each answer shown as done), whether actions are possible (not in view mode, IM-17), and
 * opening a person (a member's sheet).
 */

import type { Message, Sender } from "@ivf-im/sdk";
import { type ComputedRef, inject, type InjectionKey, type Ref } from "vue";

export interface ChatContext {
  conv: string;
  /** Seqs (as strings) of the forms this user answered: a `form_reply` of hers names them. */
  answeredForms: ComputedRef<Set<string>>;
  /** Seqs (as strings) of the signature requests this user signed. */
  signed: ComputedRef<Set<string>>;
  /** False in view mode and wherever this user cannot send: cards show no buttons then. */
  interactive: ComputedRef<boolean>;
  openSender(sender: Sender): void;
  /** Text the composer is to insert at its cursor (an @mention picked from a member). */
  insert: Ref<string>;
  /** The member a mention-only message goes to (SPEC.md §5.1 `only`), as shown in this conversation. */
  only: Ref<Sender | undefined>;
  /** The message with this seq, if loaded (a reply names its form by seq). */
  find(seq: number | bigint): Message | undefined;
}

export const CHAT: InjectionKey<ChatContext> = Symbol("chat");

export function useChat(): ChatContext {
  const chat = inject(CHAT);
  if (!chat) throw new Error("a card outside a chat");
  return chat;
}

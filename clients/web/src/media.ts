/**
 * Files of messages (SPEC.md §5.18) as object URLs for <img>, <audio> and <video>: fetched through the SDK
 * (in ranges, checked against their digest) only when a card that shows one is on screen, and kept for the
 * most recent ones only, so that scrolling through a long history holds bounded memory.
 */

import type { Attachment } from "@ivf-im/sdk";

import { sdk } from "./session";

const KEEP = 60;
const urls = new Map<string, Promise<string>>();

/** An object URL of the attachment's bytes. Error handling: rejects when it cannot be fetched; the next call tries again. */
export function attachmentUrl(attachment: Attachment): Promise<string> {
  const known = urls.get(attachment.id);
  if (known) {
    urls.delete(attachment.id); // most recently used last
    urls.set(attachment.id, known);
    return known;
  }
  const loading = sdk()
    .download(attachment.id)
    .then((bytes) => URL.createObjectURL(new Blob([bytes as Uint8Array<ArrayBuffer>], { type: attachment.mime })))
    .catch((error: unknown) => {
      urls.delete(attachment.id);
      throw error;
    });
  urls.set(attachment.id, loading);
  while (urls.size > KEEP) {
    const [oldest, url] = urls.entries().next().value as [string, Promise<string>];
    urls.delete(oldest);
    void url.then((u) => setTimeout(() => URL.revokeObjectURL(u), 30_000), () => undefined);
  }
  return loading;
}

/** A file's size for people: 1.2 MB, 350 KB. */
export function fileSize(bytes: number): string {
  return bytes >= 1024 * 1024 ? `${(bytes / 1024 / 1024).toFixed(1)} MB` : `${Math.max(1, Math.round(bytes / 1024))} KB`;
}

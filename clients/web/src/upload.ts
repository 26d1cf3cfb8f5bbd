/**
 * Files from the phone into messages (MSG-4, SPEC.md §5.18): photos shrunk in the browser first (a canvas, at
 * most 1600 px on the long side, JPEG), checked against the server's announced types and sizes, then stored
 * through the SDK in parts.
 */

import type { Attachment } from "@ivf-im/sdk";

import { sdk, session } from "./session";
import { T } from "./texts";

const LONG_SIDE = 1600;
const QUALITY = 0.82;

/** A photo as JPEG bytes no larger than LONG_SIDE; a GIF is kept as it is (a canvas would stop it moving). */
export async function compressImage(file: File): Promise<{ bytes: Uint8Array; mime: string; name: string }> {
  if (file.type === "image/gif") return { bytes: new Uint8Array(await file.arrayBuffer()), mime: file.type, name: file.name };
  const bitmap = await createImageBitmap(file);
  const scale = Math.min(1, LONG_SIDE / Math.max(bitmap.width, bitmap.height));
  const canvas = document.createElement("canvas");
  canvas.width = Math.round(bitmap.width * scale);
  canvas.height = Math.round(bitmap.height * scale);
  const context = canvas.getContext("2d");
  if (!context) throw new Error(T.uploadFailed);
  context.fillStyle = "#fff";
  context.fillRect(0, 0, canvas.width, canvas.height);
  context.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
  bitmap.close();
  const blob = await new Promise<Blob | null>((resolve) => canvas.toBlob(resolve, "image/jpeg", QUALITY));
  if (!blob) throw new Error(T.uploadFailed);
  return { bytes: new Uint8Array(await blob.arrayBuffer()), mime: "image/jpeg", name: file.name.replace(/\.\w+$/, ".jpg") };
}

/** Store bytes as an attachment. Error handling: Error with a message for people (type or size refused). */
export async function uploadBytes(bytes: Uint8Array, mime: string, name: string): Promise<Attachment> {
  const largest = session.files[mime];
  if (largest === undefined) throw new Error(T.fileTypeUnsupported);
  if (bytes.byteLength > largest) throw new Error(T.fileTooLarge(Math.floor(largest / 1024 / 1024)));
  return sdk().upload(bytes, mime, name);
}

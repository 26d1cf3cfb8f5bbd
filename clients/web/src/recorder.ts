/**
 * Voice recorded in the browser (MediaRecorder) in a type the server takes (SPEC.md §5.18: M4A, Ogg, AAC, MP3,
 * AMR): whichever of them this browser can record; none (older browsers) is said plainly.
 */

const TYPES = [
  { record: "audio/mp4", mime: "audio/mp4" },
  { record: "audio/ogg;codecs=opus", mime: "audio/ogg" },
  { record: "audio/ogg", mime: "audio/ogg" },
];

export interface Recording {
  stop(): Promise<{ bytes: Uint8Array; mime: string; seconds: number }>;
  cancel(): void;
}

/** The type to record, or undefined when this browser can record none the server takes. */
export function recordable(): { record: string; mime: string } | undefined {
  if (typeof MediaRecorder === "undefined") return undefined;
  return TYPES.find((t) => MediaRecorder.isTypeSupported(t.record));
}

/** Start recording. Error handling: rejects when there is no microphone or the user refused it. */
export async function record(): Promise<Recording> {
  const type = recordable();
  if (!type) throw new Error("unsupported");
  const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  const recorder = new MediaRecorder(stream, { mimeType: type.record });
  const chunks: Blob[] = [];
  const started = Date.now();
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.start();
  const release = (): void => stream.getTracks().forEach((track) => track.stop());
  return {
    stop: () =>
      new Promise((resolve) => {
        recorder.onstop = async () => {
          release();
          const blob = new Blob(chunks, { type: type.mime });
          const seconds = Math.max(1, Math.min(600, Math.round((Date.now() - started) / 1000)));
          resolve({ bytes: new Uint8Array(await blob.arrayBuffer()), mime: type.mime, seconds });
        };
        recorder.stop();
      }),
    cancel: () => {
      recorder.onstop = release;
      recorder.stop();
    },
  };
}

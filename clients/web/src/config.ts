/**
 * What the app learns at run time from the front door (docs/web.md): the WebSocket URL of the chat server.
 * Nothing is built in, so one build serves every install.
 */

export interface RuntimeConfig {
  ws_url: string;
}

let loaded: Promise<RuntimeConfig> | undefined;

/** `/config.json`, read once. Error handling: rejects when it cannot be read; the next call tries again. */
export function loadConfig(): Promise<RuntimeConfig> {
  loaded ??= fetch("/config.json", { cache: "no-store" })
    .then(async (response) => {
      if (!response.ok) throw new Error(`/config.json: ${response.status}`);
      const config = (await response.json()) as Partial<RuntimeConfig>;
      if (typeof config.ws_url !== "string" || !config.ws_url) throw new Error("/config.json has no ws_url");
      return { ws_url: config.ws_url };
    })
    .catch((error: unknown) => {
      loaded = undefined;
      throw error;
    });
  return loaded;
}

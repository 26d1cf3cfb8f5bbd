/**
 * A TCP proxy between a client and the real server, to break the network the way phones lose it: `cut` ends
 * every connection at once (no close frame), `offline` refuses new ones, and `deaf` drops what the server
 * sends (a request arrives and is carried out, its answer never comes back).
 */

import { createConnection, createServer, type Server, type Socket } from "node:net";

export class Proxy {
  offline = false;
  deaf = false;
  private readonly server: Server;
  private readonly pairs = new Set<[Socket, Socket]>();

  private constructor(private readonly upstream: URL) {
    this.server = createServer((client) => this.accept(client));
  }

  /** A proxy on a port of its own, to the WebSocket server at `url`. */
  static async open(url: string): Promise<Proxy> {
    const proxy = new Proxy(new URL(url));
    await new Promise<void>((resolve) => proxy.server.listen(0, "127.0.0.1", resolve));
    return proxy;
  }

  get url(): string {
    const { port } = this.server.address() as { port: number };
    return `ws://127.0.0.1:${port}/`;
  }

  /** End every connection now, as a network that fails does: no close frame reaches either side. */
  cut(): void {
    for (const [client, server] of this.pairs) {
      client.destroy();
      server.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private accept(client: Socket): void {
    if (this.offline) {
      client.destroy();
      return;
    }
    const server = createConnection({ host: this.upstream.hostname, port: Number(this.upstream.port) });
    const pair: [Socket, Socket] = [client, server];
    this.pairs.add(pair);
    client.on("data", (data) => server.write(data));
    server.on("data", (data) => this.deaf || client.write(data));
    const end = (): void => {
      this.pairs.delete(pair);
      client.destroy();
      server.destroy();
    };
    client.on("close", end).on("error", end);
    server.on("close", end).on("error", end);
  }
}

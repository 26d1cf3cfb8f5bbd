/**
 * What the client keeps between runs, behind interfaces the app injects: the session token (SPEC.md §4.3) and
 * the outbox of messages not yet acknowledged (SPEC.md §5.1). In memory for Node and tests; in a browser the
 * token in Web Storage and the outbox in IndexedDB, so a message typed offline survives a reload of the page.
 */

/** Where the session token is kept: a credential, so keep it where only this app reads it (SPEC.md §4.3). */
export interface TokenStore {
  load(): Promise<string | undefined> | string | undefined;
  save(token: string): Promise<void> | void;
  /** Forget the token: it was refused, revoked or logged out. */
  clear(): Promise<void> | void;
}

export class MemoryTokenStore implements TokenStore {
  constructor(private token?: string) {}

  load(): string | undefined {
    return this.token;
  }

  save(token: string): void {
    this.token = token;
  }

  clear(): void {
    this.token = undefined;
  }
}

/** The token under `key` in Web Storage (`localStorage`) or anything with its three methods. */
export class WebStorageTokenStore implements TokenStore {
  constructor(
    private readonly storage: Pick<Storage, "getItem" | "setItem" | "removeItem">,
    private readonly key = "ivf-im-token",
  ) {}

  load(): string | undefined {
    return this.storage.getItem(this.key) ?? undefined;
  }

  save(token: string): void {
    this.storage.setItem(this.key, token);
  }

  clear(): void {
    this.storage.removeItem(this.key);
  }
}

/** A message waiting in the outbox: everything needed to send it again with the same `cid` (SPEC.md §5.1). */
export interface OutboxEntry {
  cid: string;
  /** Where it goes, as the app named it (`u:` addresses too). */
  conv: string;
  kind: string;
  text?: string;
  body?: object;
  only?: string;
  /** Its place in the queue: entries are sent in this order. */
  order: number;
  /** When it was typed (ms since the epoch, by the client's clock). */
  at: number;
  /** Set when the server refused it for good (e.g. `sensitive_words`, `muted`): kept for the user to edit or discard. */
  error?: { code: string; message: string };
}

/** Where outbox entries are kept. Each write is durable when its promise resolves. */
export interface OutboxStore {
  /** Every entry, in `order`. */
  all(): Promise<OutboxEntry[]>;
  put(entry: OutboxEntry): Promise<void>;
  delete(cid: string): Promise<void>;
}

export class MemoryOutboxStore implements OutboxStore {
  private readonly entries = new Map<string, OutboxEntry>();

  async all(): Promise<OutboxEntry[]> {
    return [...this.entries.values()].sort((a, b) => a.order - b.order).map((entry) => structuredClone(entry));
  }

  async put(entry: OutboxEntry): Promise<void> {
    this.entries.set(entry.cid, structuredClone(entry));
  }

  async delete(cid: string): Promise<void> {
    this.entries.delete(cid);
  }
}

/**
 * The outbox in IndexedDB (browsers): database `name`, one object store keyed by `cid`. Give each account its
 * own name (e.g. `ivf-im-outbox:zhang.wei`), so that a message is never sent as somebody else.
 */
export class IndexedDbOutboxStore implements OutboxStore {
  private database: Promise<IDBDatabase> | undefined;

  constructor(
    private readonly name = "ivf-im-outbox",
    private readonly factory: IDBFactory = globalThis.indexedDB,
  ) {}

  async all(): Promise<OutboxEntry[]> {
    const entries = await this.run("readonly", (store) => store.getAll() as IDBRequest<OutboxEntry[]>);
    return entries.sort((a, b) => a.order - b.order);
  }

  async put(entry: OutboxEntry): Promise<void> {
    await this.run("readwrite", (store) => store.put(entry));
  }

  async delete(cid: string): Promise<void> {
    await this.run("readwrite", (store) => store.delete(cid));
  }

  /** Close the database (a page that goes away need not). */
  async close(): Promise<void> {
    if (this.database) (await this.database).close();
    this.database = undefined;
  }

  /** `action`'s result once its transaction has committed. */
  private async run<T>(mode: IDBTransactionMode, action: (store: IDBObjectStore) => IDBRequest<T>): Promise<T> {
    const database = await this.open();
    return new Promise<T>((resolve, reject) => {
      const transaction = database.transaction(STORE, mode);
      const request = action(transaction.objectStore(STORE));
      transaction.oncomplete = () => resolve(request.result);
      transaction.onerror = () => reject(transaction.error);
      transaction.onabort = () => reject(transaction.error);
    });
  }

  private open(): Promise<IDBDatabase> {
    this.database ??= new Promise((resolve, reject) => {
      const request = this.factory.open(this.name, 1);
      request.onupgradeneeded = () => request.result.createObjectStore(STORE, { keyPath: "cid" });
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    return this.database;
  }
}

const STORE = "outbox";

/**
 * The client: one user logged in on one device, kept connected (protocol/SPEC.md).
 *
 * Theory of operation. `start` opens a connection through the injected Connector and says `hello` with the
 * stored token, else the username and password (SPEC.md §4); the token of a password login is stored for the
 * next run. While the client runs, a lost connection is opened again after a growing, jittered delay
 * (SPEC.md §4.6, §7.4), unless the session ended for good (logged out, account banned, password refused).
 * A connection that has been quiet for `keepAliveMs` is asked `ping`, and closed when no answer comes (SPEC.md
 * §2.4: browsers cannot see WebSocket pings).
 *
 * Messages. Everything that changes what the app has seen runs one step at a time, in order, on one queue:
 * after every welcome a `sync` pass (SPEC.md §5.2.1 rule 1), each `msg` and `hidden` push, and the fetch of a
 * message this client sent. `Positions` decides what each is; gaps are filled with `history` before a later
 * message is delivered, so the `message` event gives every message the user may see exactly once, in seq order
 * per conversation, her own included (a message sent from this connection is fetched after its answer, as the
 * server stored it: masked words, fallback text). Hidden seqs are accounted for and never fetched (§11.3).
 *
 * Sending. `send` puts the message in the outbox (an OutboxStore: IndexedDB in a browser) before anything
 * else, then the outbox is sent in order whenever a connection is open, each entry with its own `cid` until the
 * server answers: `ok` (also `dup: true`, the message was stored before) removes it; `rate_limited` and
 * `unavailable` wait (`retry_after_ms`) and resend; a refusal for good (`muted`, `sensitive_words`, …) keeps it
 * with its error for the user to edit or discard; `cid_reused` gets it a new cid.
 */

import { Backoff, type BackoffOptions } from "./backoff.js";
import { type Clock, systemClock, type Timer } from "./clock.js";
import { ClientStopped, ConnectionLost, FrameTooLarge, RequestTimeout, ServerError } from "./errors.js";
import type {
  Attachment,
  ErrorFrame,
  HiddenPush,
  Listed,
  Message,
  Op,
  Ops,
  Push,
  QuickReply,
  ReadAnswer,
  ReadyMessage,
  SendAnswer,
  SyncEntry,
  Welcome,
} from "./generated/protocol.js";
import { LISTED, PUSH_OPS } from "./generated/protocol.js";
import { add, type Int, toNumber } from "./int.js";
import { Link } from "./link.js";
import { Outbox } from "./outbox.js";
import { Positions } from "./positions.js";
import { MemoryOutboxStore, MemoryTokenStore, type OutboxEntry, type OutboxStore, type TokenStore } from "./storage.js";
import { type Connector, webSocketConnector } from "./transport.js";

/** The protocol versions this SDK speaks (SPEC.md §4.1). */
export const VERSIONS = [1];

/** Bytes of an `upload_part` frame besides its data (SPEC.md §5.18: less than 256). */
const PART_OVERHEAD = 256;

/** A connection that ends sooner than this after its welcome counts as a failure for the backoff. */
const STABLE_MS = 60_000;

/** `history` pages asked for to fill a gap: the largest the server gives (SPEC.md §5.3). */
const FILL_LIMIT = 200;

export type ConnectionState =
  /** not started */
  | "idle"
  /** opening a connection or saying hello */
  | "connecting"
  /** logged in: requests go out */
  | "open"
  /** the connection was lost; another is opened after a delay */
  | "offline"
  /** for good: `stop`, `logout`, or the server ended the session */
  | "stopped";

/** The fields of a request, without `op` and `rid`, which the client sets. */
export type Fields<K extends Op> = Omit<Ops[K]["request"], "op" | "rid">;
export type Answer<K extends Op> = Ops[K]["answer"];

/** What `send` takes: a text, or another kind with its body (SPEC.md §6.1; `KindBodies` types the built-in ones). */
export type SendContent = { text: string } | { kind: string; body: object };

/** A conversation as a `sync` entry describes it, without its page of messages (SPEC.md §5.2). */
export type Conversation = Omit<SyncEntry, "messages" | "hidden" | "more">;

export interface ClientOptions {
  /** `wss://host:port/` (SPEC.md §2.1). */
  url: string;
  /** Opens connections; the browser's WebSocket by default (see transport.ts for Node and WeChat). */
  connect?: Connector;
  /** For a password login; without a stored token they are required. */
  username?: string;
  password?: string;
  /** Where the token is kept between runs (SPEC.md §4.3); in memory by default. */
  tokens?: TokenStore;
  /** The device's name, the same on every run (SPEC.md §4.1). */
  device?: string;
  /** Ask for a read-only session (SPEC.md §4.4); the welcome says what was granted. */
  readonly?: boolean;
  /** The app's name and version, for the server's logs, e.g. `ivf-app/2.3.1`. */
  client?: string;
  /** Where messages wait until acknowledged; in memory by default (IndexedDbOutboxStore in browsers). */
  outbox?: OutboxStore;
  /** Where each conversation was left: the app's saved `positions()` of an earlier run. */
  positions?: Iterable<readonly [string, Int]>;
  /**
   * A conversation this client has no position for: `"all"` delivers its whole history, oldest first
   * (SPEC.md §5.2.1); `"latest"` starts after its newest message (the app pages back with `history`).
   */
  newConversations?: "all" | "latest";
  /** How long a request waits for its answer, and for a connection (SPEC.md §3.4: 30 s). */
  requestTimeoutMs?: number;
  /** How long opening a connection and the hello may take. */
  helloTimeoutMs?: number;
  /** Ask `ping` after this long without a frame from the server (well below the server's 120 s, SPEC.md §2.4). */
  keepAliveMs?: number;
  /** How often a request refused with `rate_limited` or `unavailable` is sent again before failing. */
  retries?: number;
  /** `limit` of each `sync` (SPEC.md §5.2). */
  syncLimit?: number;
  backoff?: BackoffOptions;
  clock?: Clock;
  /** Random numbers in [0, 1), for jitter. */
  random?: () => number;
  /** A new client message id: a random UUID (SPEC.md §5.1). */
  newCid?: () => string;
  /** The SHA-256 of a file as lowercase hex; WebCrypto's by default (WeChat has none: give one). */
  sha256?: (data: Uint8Array) => Promise<string>;
}

export interface ClientEvents {
  state: ConnectionState;
  welcome: Welcome;
  /** Each message the user may see, once, in seq order per conversation (SPEC.md §5.2.1). */
  message: Message;
  /** Messages shown before are to be removed from the screen and from storage (SPEC.md §11.3). */
  retract: HiddenPush;
  /** Every push of an op this version knows, as it came (SPEC.md §3.5). */
  push: Push;
  /** The user's conversations, after each catch-up (SPEC.md §5.2). */
  synced: Conversation[];
  /** An outbox entry was acknowledged: the message is stored (SPEC.md §5.1). */
  sent: { entry: OutboxEntry; answer: SendAnswer };
  /** An outbox entry was refused for good; it stays in the outbox, with its error, until discarded. */
  failed: { entry: OutboxEntry; error: ServerError | FrameTooLarge };
  /** An error the server could not pair with a request (SPEC.md §3.4): a bug in this client. */
  unpaired: ErrorFrame;
  /** Something the client got past: a frame it could not read, a gap it could not fill yet (it tries again). */
  problem: Error;
  /** The client stopped for good; `cause` says why when the server ended it. */
  stopped: ClientStopped;
}

type Listener<T> = (value: T) => void;

interface Waiter {
  resolve(link: Link): void;
  reject(error: Error): void;
  timer: Timer;
}

export class Client {
  readonly url: string;
  private readonly connector: Connector;
  private readonly tokens: TokenStore;
  private readonly outbox: Outbox;
  private readonly positions: Positions;
  private readonly clock: Clock;
  private readonly backoff: Backoff;
  private readonly newCid: () => string;
  private readonly sha256: (data: Uint8Array) => Promise<string>;
  private readonly options: Required<Pick<ClientOptions,
    "device" | "readonly" | "newConversations" | "requestTimeoutMs" | "helloTimeoutMs" | "keepAliveMs" | "retries"
    | "syncLimit">>;

  private stateNow: ConnectionState = "idle";
  private link: Link | undefined;
  private lastWelcome: Welcome | undefined;
  private started: Promise<Welcome> | undefined;
  private firstWelcome: { resolve(welcome: Welcome): void; reject(error: Error): void } | undefined;
  private stoppedBy: ClientStopped | undefined;
  private readonly waiters = new Set<Waiter>();
  private readonly sleepers = new Set<{ timer: Timer; reject(error: Error): void }>();
  private keepAliveTimer: Timer | undefined;
  /** Ends the connection being opened, if one is. */
  private opening: ((stopped: ClientStopped) => void) | undefined;
  private steps: Promise<void> = Promise.resolve();
  private flushing = false;
  private flushWanted = false;
  private readonly sending = new Map<string, { resolve(answer: SendAnswer): void; reject(error: Error): void }>();
  private readonly listeners = new Map<keyof ClientEvents, Set<Listener<never>>>();

  constructor(private readonly credentials: ClientOptions) {
    const options = credentials;
    this.url = options.url;
    this.connector = options.connect ?? webSocketConnector();
    this.tokens = options.tokens ?? new MemoryTokenStore();
    this.outbox = new Outbox(options.outbox ?? new MemoryOutboxStore());
    this.positions = new Positions(options.positions);
    this.clock = options.clock ?? systemClock;
    this.backoff = new Backoff(options.backoff, options.random);
    this.newCid = options.newCid ?? (() => globalThis.crypto.randomUUID());
    this.sha256 = options.sha256 ?? webCryptoSha256;
    this.options = {
      device: options.device ?? "default",
      readonly: options.readonly ?? false,
      newConversations: options.newConversations ?? "all",
      requestTimeoutMs: options.requestTimeoutMs ?? 30_000,
      helloTimeoutMs: options.helloTimeoutMs ?? 10_000,
      keepAliveMs: options.keepAliveMs ?? 25_000,
      retries: options.retries ?? 5,
      syncLimit: options.syncLimit ?? 100,
    };
  }

  // -- events ---------------------------------------------------------------------------------------------

  /** Call `listener` on each event `name`; returns a function that removes it. */
  on<K extends keyof ClientEvents>(name: K, listener: Listener<ClientEvents[K]>): () => void {
    const set = this.listeners.get(name) ?? new Set();
    this.listeners.set(name, set);
    set.add(listener as Listener<never>);
    return () => set.delete(listener as Listener<never>);
  }

  private emit<K extends keyof ClientEvents>(name: K, value: ClientEvents[K]): void {
    for (const listener of this.listeners.get(name) ?? []) {
      try {
        (listener as Listener<ClientEvents[K]>)(value);
      } catch (error) {
        queueMicrotask(() => {
          throw error; // the app's bug: reported by the runtime, without stopping the client
        });
      }
    }
  }

  // -- the connection -------------------------------------------------------------------------------------

  get state(): ConnectionState {
    return this.stateNow;
  }

  /** The answer to the last successful hello (SPEC.md §4.2): the user, whether read-only, the limits. */
  get welcome(): Welcome | undefined {
    return this.lastWelcome;
  }

  /**
   * Connect and keep connected until `stop` or `logout`; resolves with the first welcome. Messages may be sent
   * before (they wait in the outbox).
   *
   * Error handling: rejects with ClientStopped when the first login is refused for good (its `cause`:
   * `auth_failed`, `account_banned`, `token_invalid` without a password, `unsupported_version`).
   */
  start(): Promise<Welcome> {
    this.started ??= new Promise<Welcome>((resolve, reject) => {
      this.firstWelcome = { resolve, reject };
      void this.run();
    });
    return this.started;
  }

  /** Close the connection and stop reconnecting. The token and the outbox are kept for the next run. */
  stop(): void {
    this.halt(new ClientStopped());
  }

  /** End the session: the server revokes the token (SPEC.md §5.8), and the client stops. */
  async logout(): Promise<void> {
    try {
      await this.request("logout", {});
    } finally {
      this.halt(new ClientStopped()); // before the server's close comes in: no reconnecting
      await this.tokens.clear();
    }
  }

  private setState(state: ConnectionState): void {
    if (this.stateNow === state || this.stateNow === "stopped") return;
    this.stateNow = state;
    this.emit("state", state);
  }

  /**
   * Connect, log in, wait for the connection to end, and again after a delay. The delays grow with each
   * failed try and each connection that ended within STABLE_MS of its welcome (a server that takes clients and
   * drops them must not be hammered), and start again from the shortest after a connection that lasted.
   */
  private async run(): Promise<void> {
    let failures = 0;
    while (!this.stoppedBy) {
      this.setState("connecting");
      let delay: number | undefined;
      try {
        const link = await this.connectOnce();
        const opened = this.clock.now();
        const lost = await link.closed;
        this.clock.clearTimeout(this.keepAliveTimer);
        this.link = undefined;
        if (this.stoppedBy) return;
        const ended = sessionEnd(link, lost);
        if (ended) {
          this.halt(new ClientStopped(ended));
          await this.tokens.clear();
          return;
        }
        failures = this.clock.now() - opened < STABLE_MS ? failures + 1 : 0;
        delay = lost.code === 1001 ? this.backoff.between(1000, 5000) : this.backoff.delay(failures);
      } catch (error) {
        delay = await this.afterRefusal(error, failures++);
        if (delay === undefined) return;
      }
      this.setState("offline");
      if (delay > 0 && !(await this.pause(delay))) return;
    }
  }

  /** Open a connection and log in; the client is `open` when it returns. `halt` ends it before that. */
  private async connectOnce(): Promise<Link> {
    const transport = this.connector(this.url);
    await new Promise<void>((resolve, reject) => {
      const fail = (error: Error): void => {
        this.clock.clearTimeout(timer);
        this.opening = undefined;
        reject(error);
      };
      const timer = this.clock.setTimeout(() => {
        transport.close();
        fail(new RequestTimeout("the connection did not open"));
      }, this.options.helloTimeoutMs);
      this.opening = (stopped) => {
        transport.close();
        fail(stopped);
      };
      transport.onopen = () => {
        this.clock.clearTimeout(timer);
        resolve();
      };
      transport.onclose = (code, reason) => fail(new ConnectionLost(code, reason));
    });
    const link = new Link(transport, this.clock, {
      push: (frame) => this.onPush(frame as unknown as Push),
      unpaired: (frame) => this.emit("unpaired", frame),
      malformed: (error) => this.emit("problem", new Error(`a frame from the server: ${String(error)}`)),
    });
    this.opening = () => link.close();
    try {
      const welcome = await this.hello(link);
      // Open before anything else can happen: the pushes that follow the welcome queue behind the catch-up.
      link.maxFrame = toNumber(welcome.limits.max_frame);
      this.link = link;
      this.lastWelcome = welcome;
      this.setState("open");
      this.inTurn(() => this.catchUp());
      for (const waiter of this.waiters) {
        this.clock.clearTimeout(waiter.timer);
        waiter.resolve(link);
      }
      this.waiters.clear();
      this.keepAlive(link);
      this.flush();
      this.emit("welcome", welcome);
      this.firstWelcome?.resolve(welcome);
      this.firstWelcome = undefined;
      if (welcome.token) await this.tokens.save(welcome.token);
      return link;
    } catch (error) {
      link.close();
      throw error;
    } finally {
      this.opening = undefined;
    }
  }

  /** Say hello with the stored token, else the password (SPEC.md §4.1); the welcome. */
  private async hello(link: Link): Promise<Welcome> {
    const token = await this.tokens.load();
    const { username, password, client } = this.credentials;
    if (this.stoppedBy) throw this.stoppedBy;
    if (!token && !(username && password)) {
      throw new ServerError({ code: "auth_required", message: "", detail: "no token and no password" });
    }
    const credentials = token ? { token } : { username, password };
    const hello = { op: "hello", versions: VERSIONS, device: this.options.device, readonly: this.options.readonly };
    const welcome = await link.request({ ...hello, client, ...credentials }, this.options.helloTimeoutMs);
    return welcome as unknown as Welcome;
  }

  /**
   * After a failed connection or hello: how long to wait before the next try, or undefined when the client
   * stopped because the refusal is for good (SPEC.md §4.5, §7.2).
   */
  private async afterRefusal(error: unknown, failures: number): Promise<number | undefined> {
    if (!(error instanceof ServerError)) return this.backoff.delay(failures);
    switch (error.code) {
      case "token_invalid":
        await this.tokens.clear();
        if (this.credentials.username && this.credentials.password) return 0;
        break;
      case "account_banned":
        await this.tokens.clear();
        break;
      case "auth_failed":
      case "auth_required":
      case "unsupported_version":
      case "bad_request":
        break;
      default: // rate_limited (too many password checks at once), unavailable: later, and not all at once
        return (error.retryAfterMs ?? 0) + this.backoff.delay(failures);
    }
    this.halt(new ClientStopped(error));
    return undefined;
  }

  private halt(reason: ClientStopped): void {
    if (this.stoppedBy) return;
    this.stoppedBy = reason;
    this.opening?.(reason);
    this.link?.close();
    this.clock.clearTimeout(this.keepAliveTimer);
    for (const waiter of this.waiters) {
      this.clock.clearTimeout(waiter.timer);
      waiter.reject(reason);
    }
    this.waiters.clear();
    for (const sleeper of this.sleepers) {
      this.clock.clearTimeout(sleeper.timer);
      sleeper.reject(reason);
    }
    this.sleepers.clear();
    for (const sending of this.sending.values()) sending.reject(reason);
    this.sending.clear();
    this.firstWelcome?.reject(reason);
    this.firstWelcome = undefined;
    this.setState("stopped");
    this.emit("stopped", reason);
  }

  /** Wait `ms`; false if the client stopped meanwhile. */
  private async pause(ms: number): Promise<boolean> {
    try {
      await this.sleep(ms);
      return true;
    } catch {
      return false;
    }
  }

  /** Wait `ms`. Error handling: rejects with ClientStopped when the client stops meanwhile. */
  private sleep(ms: number): Promise<void> {
    if (this.stoppedBy) return Promise.reject(this.stoppedBy);
    return new Promise((resolve, reject) => {
      const sleeper = {
        reject,
        timer: this.clock.setTimeout(() => {
          this.sleepers.delete(sleeper);
          resolve();
        }, ms),
      };
      this.sleepers.add(sleeper);
    });
  }

  /** Ask `ping` when the server has been quiet for `keepAliveMs`; close the connection if no answer comes. */
  private keepAlive(link: Link): void {
    const every = this.options.keepAliveMs;
    const check = (): void => {
      if (!link.open) return;
      const quiet = this.clock.now() - link.lastHeard;
      if (quiet < every) {
        this.keepAliveTimer = this.clock.setTimeout(check, every - quiet);
        return;
      }
      link.request({ op: "ping" }, this.options.requestTimeoutMs).then(
        () => {
          if (link.open) this.keepAliveTimer = this.clock.setTimeout(check, every);
        },
        () => link.close(1000, "no answer to ping"),
      );
    };
    this.keepAliveTimer = this.clock.setTimeout(check, every);
  }

  /** The open connection, waiting up to `timeoutMs` for one. */
  private connection(timeoutMs: number): Promise<Link> {
    if (this.stoppedBy) return Promise.reject(this.stoppedBy);
    if (this.link?.open && this.stateNow === "open") return Promise.resolve(this.link);
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: this.clock.setTimeout(() => {
          this.waiters.delete(waiter);
          reject(new RequestTimeout(`not connected within ${timeoutMs} ms`));
        }, timeoutMs),
      };
      this.waiters.add(waiter);
    });
  }

  // -- requests -------------------------------------------------------------------------------------------

  /**
   * Send one request and wait for its answer (SPEC.md §3), on the open connection (waiting for one first).
   * `rate_limited` and `unavailable` are waited out and sent again, up to `retries` times (SPEC.md §7.1: an
   * error changed nothing, so the same request is safe to send again).
   *
   * Error handling: ServerError for the server's refusal; ConnectionLost or RequestTimeout when no answer came
   * (the request may or may not have taken effect, SPEC.md §7.4); FrameTooLarge (not sent); ClientStopped.
   */
  async request<K extends Exclude<Op, "hello">>(
    op: K, fields: Fields<K>, options: { timeoutMs?: number } = {},
  ): Promise<Answer<K>> {
    const timeoutMs = options.timeoutMs ?? this.options.requestTimeoutMs;
    for (let failures = 0; ; failures++) {
      const link = await this.connection(timeoutMs);
      try {
        return (await link.request({ op, ...fields }, timeoutMs)) as unknown as Answer<K>;
      } catch (error) {
        const waitOut = error instanceof ServerError && (error.code === "rate_limited" || error.code === "unavailable");
        if (!waitOut || failures >= this.options.retries) throw error;
        await this.sleep(error.retryAfterMs ?? this.backoff.delay(failures));
      }
    }
  }

  /**
   * The answer to a request whose answer is a list that comes a page at a time (SPEC.md §3.7), with the items
   * of every page: `await client.whole("members", { conv: "g:12" })` has every member.
   */
  async whole<K extends Exclude<keyof Listed, "sync">>(op: K, fields: Fields<K>): Promise<Answer<K>> {
    const answer = await this.request(op, fields);
    const list = (page: Answer<K>): unknown[] => (page as unknown as Record<string, unknown[]>)[LISTED[op]] ?? [];
    const items = list(answer);
    for (let cursor = answer.cursor; cursor; ) {
      const page = await this.request(op, { ...fields, cursor });
      items.push(...list(page));
      cursor = page.cursor;
    }
    return { ...answer, cursor: null };
  }

  /**
   * A page of `conv` (SPEC.md §5.3): the messages among `limit` seqs, oldest first, with the hidden ranges,
   * and whether there is more in that direction. Where one answer could not hold the whole page (§3.7) the
   * rest is asked for, on from the seqs it covered. This is for the app's scrolling; it does not move the
   * client's positions.
   */
  async history(
    conv: string, page: { before?: Int; after?: Int; limit?: number } = {},
  ): Promise<{ messages: Message[]; hidden: [Int, Int][]; more: boolean }> {
    let { before, after } = page;
    let left = page.limit ?? 50;
    const messages: Message[] = [];
    const hidden: [Int, Int][] = [];
    for (;;) {
      const answer = await this.request("history", {
        conv, limit: left, ...(before === undefined ? {} : { before }), ...(after === undefined ? {} : { after }),
      });
      const seqs = [...answer.messages.map((m) => m.seq), ...answer.hidden.flat()];
      left -= answer.messages.length + answer.hidden.reduce((n, [a, b]) => n + toNumber(b) - toNumber(a) + 1, 0);
      if (after === undefined) {
        messages.unshift(...answer.messages);
        hidden.unshift(...answer.hidden);
        before = seqs.reduce((low, seq) => (seq < low ? seq : low), before ?? seqs[0] ?? 0);
      } else {
        messages.push(...answer.messages);
        hidden.push(...answer.hidden);
        after = seqs.reduce((high, seq) => (seq > high ? seq : high), after);
      }
      if (!answer.more || left <= 0 || seqs.length === 0) return { messages, hidden, more: answer.more };
    }
  }

  /** Move the read marker of `conv` to `seq`, by default to all that this client has seen (SPEC.md §5.4). */
  read(conv: string, seq: Int = this.positions.get(conv) ?? 0): Promise<ReadAnswer> {
    return this.request("read", { conv, seq });
  }

  /** Where each conversation stands: keep it to give back as `positions` to the next client. */
  positionsNow(): [string, Int][] {
    return this.positions.entries();
  }

  // -- messages in, exactly once --------------------------------------------------------------------------

  /** Run `step` after the steps before it (see the theory of operation). */
  private inTurn(step: () => Promise<void>): void {
    this.steps = this.steps.then(step).catch((error: unknown) => {
      if (!(error instanceof ClientStopped || error instanceof ConnectionLost)) this.emit("problem", error as Error);
    });
  }

  private onPush(push: Push): void {
    if (!PUSH_OPS.has(push.op)) return; // a newer server's push (SPEC.md §9)
    this.emit("push", push);
    switch (push.op) {
      case "msg":
        this.inTurn(() => this.deliver(push.msg));
        break;
      case "hidden":
        this.inTurn(() => this.hide(push));
        break;
      case "conv":
        if (push.event === "joined") this.inTurn(() => this.catchUp());
        break;
    }
  }

  /** A conversation met for the first time, at `seq`, when it is to be followed from its end. */
  private meet(conv: string, seq: Int): void {
    if (this.options.newConversations === "latest") this.positions.startAfter(conv, seq);
  }

  /** A `msg` push (SPEC.md §5.2.1 rules 2–4). */
  private async deliver(message: Message): Promise<void> {
    const { conv, seq } = message;
    this.meet(conv, add(seq, -1));
    if (this.positions.arrival(conv, seq) === "gap") await this.fill(conv, add(seq, -1));
    if (this.positions.arrival(conv, seq) !== "next") return; // had it already (the fill brought it)
    this.positions.accept(conv, seq);
    this.emit("message", message);
  }

  /** A `hidden` push (SPEC.md §5.2.1 rules 6 and 7, §11.3). */
  private async hide(push: HiddenPush): Promise<void> {
    if (push.retract) {
      this.emit("retract", push);
      return;
    }
    for (const [first, last] of push.ranges) {
      this.meet(push.conv, add(first, -1));
      if (this.positions.hide(push.conv, first, last)) continue;
      await this.fill(push.conv, add(first, -1));
      this.positions.hide(push.conv, first, last);
    }
  }

  /** The answer to this client's own `send` (SPEC.md §5.2.1 rule 5): fetch the message as it was stored. */
  private async fetchOwn(answer: SendAnswer): Promise<void> {
    this.meet(answer.conv, add(answer.seq, -1));
    if (this.positions.arrival(answer.conv, answer.seq) !== "duplicate") await this.fill(answer.conv, answer.seq);
  }

  /** Deliver what comes after the position of `conv`, up to `through` at least. */
  private async fill(conv: string, through: Int): Promise<void> {
    for (;;) {
      const after = this.positions.get(conv) ?? 0;
      const page = await this.request("history", { conv, after, limit: FILL_LIMIT });
      for (const message of this.positions.page(conv, page.messages, page.hidden)) this.emit("message", message);
      const now = this.positions.get(conv) ?? 0;
      if (!page.more || now === after || now >= through) return;
    }
  }

  /** A `sync` pass and the passes after it while some conversation has more (SPEC.md §5.2.1 rule 1). */
  private async catchUp(): Promise<void> {
    const conversations = new Map<string, Conversation>();
    for (let again = true; again; ) {
      again = false;
      let cursor: string | null | undefined;
      do {
        const answer = await this.request("sync", {
          after: Object.fromEntries(this.positions.entries()),
          limit: this.options.syncLimit,
          ...(cursor ? { cursor } : {}),
        });
        for (const { messages, hidden, more, ...conversation } of answer.convs) {
          conversations.set(conversation.conv, conversation);
          if (this.positions.get(conversation.conv) === undefined && this.options.newConversations === "latest") {
            this.positions.startAfter(conversation.conv, conversation.last_seq);
            continue;
          }
          for (const message of this.positions.page(conversation.conv, messages, hidden)) {
            this.emit("message", message);
          }
          again ||= more;
        }
        cursor = answer.cursor;
      } while (cursor);
    }
    this.emit("synced", [...conversations.values()]);
  }

  // -- messages out, exactly once -------------------------------------------------------------------------

  /**
   * Put a message for `conv` in the outbox (SPEC.md §5.1); resolves with its entry, `cid` included, once it is
   * stored. It goes out whenever a connection is open; the `sent` and `failed` events tell what became of it,
   * also in a later run of the app. `only` makes it mention-only (the member id as shown, §11.2).
   */
  async enqueue(conv: string, content: SendContent, options: { only?: string } = {}): Promise<OutboxEntry> {
    const entry = await this.outbox.add({
      cid: this.newCid(),
      conv,
      ...("text" in content ? { kind: "text", text: content.text } : { kind: content.kind, body: content.body }),
      ...(options.only === undefined ? {} : { only: options.only }),
      at: this.clock.now(),
    });
    this.flush();
    return entry;
  }

  /**
   * `enqueue` a message and wait for the server's answer.
   *
   * Error handling: rejects with ServerError when the server refuses it for good (the entry stays in the
   * outbox with its error until `discard`), FrameTooLarge, or ClientStopped when the client stops first (the
   * entry stays, and the next client sends it).
   */
  async send(conv: string, content: SendContent, options: { only?: string } = {}): Promise<SendAnswer> {
    const entry = await this.enqueue(conv, content, options);
    return new Promise<SendAnswer>((resolve, reject) => this.sending.set(entry.cid, { resolve, reject }));
  }

  /** The outbox: messages waiting to be sent, and those refused for good (with `error`). */
  outboxEntries(): Promise<OutboxEntry[]> {
    return this.outbox.entries();
  }

  /** Drop an entry from the outbox (one refused for good, or one the user takes back before it is sent). */
  discard(cid: string): Promise<void> {
    return this.outbox.remove(cid);
  }

  /** Send the outbox, in order, while a connection is open; called again on every welcome and every `send`. */
  private flush(): void {
    this.flushWanted = true;
    if (this.flushing) return;
    this.flushing = true;
    void (async () => {
      try {
        while (this.flushWanted) {
          this.flushWanted = false;
          for (let entry = await this.outbox.next(); entry; entry = await this.outbox.next()) {
            if (!(await this.sendEntry(entry))) break;
          }
        }
      } catch (error) {
        this.emit("problem", error as Error);
      } finally {
        this.flushing = false;
      }
    })();
  }

  /** Send one entry until the server answers; false if the connection went first (the next welcome goes on). */
  private async sendEntry(queued: OutboxEntry): Promise<boolean> {
    let entry = queued;
    let internal = false;
    for (let failures = 0; ; failures++) {
      const link = this.link;
      if (!link?.open || this.stoppedBy) return false;
      try {
        const { cid, conv, kind, text, body, only } = entry;
        const answer = (await link.request(
          { op: "send", cid, conv, kind, text, body, only }, this.options.requestTimeoutMs,
        )) as unknown as SendAnswer;
        await this.outbox.remove(entry.cid);
        this.sending.get(entry.cid)?.resolve(answer);
        this.sending.delete(entry.cid);
        this.emit("sent", { entry, answer });
        this.inTurn(() => this.fetchOwn(answer));
        return true;
      } catch (error) {
        if (error instanceof ConnectionLost || error instanceof ClientStopped) return false;
        if (error instanceof RequestTimeout) {
          await this.pause(this.backoff.delay(failures)); // lost (SPEC.md §3.4): the same cid again
          continue;
        }
        if (error instanceof ServerError && error.code === "cid_reused") {
          const previous = entry.cid;
          entry = { ...entry, cid: this.newCid() };
          await this.outbox.update(entry, previous);
          const sending = this.sending.get(previous);
          this.sending.delete(previous);
          if (sending) this.sending.set(entry.cid, sending);
          continue;
        }
        if (error instanceof ServerError && error.retryable && !(error.code === "internal" && internal)) {
          internal ||= error.code === "internal";
          await this.pause(error.retryAfterMs ?? this.backoff.delay(failures));
          continue;
        }
        if (!(error instanceof ServerError || error instanceof FrameTooLarge)) throw error;
        const code = error instanceof ServerError ? error.code : "frame_too_large";
        entry = { ...entry, error: { code, message: error.message } };
        await this.outbox.update(entry);
        this.sending.get(entry.cid)?.reject(error);
        this.sending.delete(entry.cid);
        this.emit("failed", { entry, error });
        return true;
      }
    }
  }

  // -- files (SPEC.md §5.18) ------------------------------------------------------------------------------

  /**
   * Store a file on the server in parts; returns the attachment to put in a message body. After a lost
   * connection it begins the same file again, which tells how much the server has, and goes on from there.
   *
   * Error handling: ServerError, e.g. `file_too_large`, or `bad_request` naming `mime` for a type the server
   * does not take or content that is not of that type.
   */
  async upload(data: Uint8Array, mime: string, name = ""): Promise<Attachment> {
    const sha256 = await this.sha256(data);
    return this.resumable(async () => {
      const begun = await this.request("upload_begin", { mime, size: data.byteLength, sha256, name });
      const part = toNumber(this.welcome?.limits.max_frame ?? 0) - PART_OVERHEAD;
      for (let received = toNumber(begun.received); received < data.byteLength; ) {
        const answer = await this.request("upload_part", {
          id: begun.id, offset: received, data: data.subarray(received, received + part),
        });
        received = toNumber(answer.received);
      }
      const stored = await this.request("upload_end", { id: begun.id });
      return { id: stored.id, mime: stored.mime, size: toNumber(stored.size), ...(stored.name ? { name: stored.name } : {}) };
    });
  }

  /**
   * The bytes of a stored file (SPEC.md §5.18: only a file the user may see), fetched a range at a time, going
   * on where it stopped after a lost connection.
   *
   * Error handling: ServerError `not_found` for a file this user may not see (or that does not exist); Error
   * when the bytes do not match the file's digest.
   */
  async download(id: string): Promise<Uint8Array> {
    const chunks: Uint8Array[] = [];
    let received = 0;
    return this.resumable(async () => {
      for (;;) {
        const answer = await this.request("fetch", { id, offset: received });
        chunks.push(answer.data);
        received += answer.data.byteLength;
        if (received < toNumber(answer.size)) continue;
        const data = new Uint8Array(received);
        chunks.reduce((at, chunk) => (data.set(chunk, at), at + chunk.byteLength), 0);
        if ((await this.sha256(data)) !== answer.sha256) throw new Error(`${id}: the bytes do not match its sha256`);
        return data;
      }
    });
  }

  /** Run `attempt` again after a lost connection, up to `retries` times: it must be safe to repeat. */
  private async resumable<T>(attempt: () => Promise<T>): Promise<T> {
    for (let failures = 0; ; failures++) {
      try {
        return await attempt();
      } catch (error) {
        const lost = error instanceof ConnectionLost || error instanceof RequestTimeout;
        if (!lost || failures >= this.options.retries) throw error;
        await this.sleep(this.backoff.delay(failures));
      }
    }
  }

  // -- quick replies (SPEC.md §5.19) ----------------------------------------------------------------------

  /** What `/typed` offers, best first, each with the `prompts` to ask the sender for. */
  async quickReplies(typed = "", limit = 10): Promise<QuickReply[]> {
    return (await this.request("qr_search", { q: typed, limit })).replies;
  }

  /** Fill quick replies in for `conv`: the messages they make, ready to send (`member`: the patient they are for). */
  async renderQuickReplies(
    conv: string, ids: Int[], options: { member?: string; fill?: Record<string, string> } = {},
  ): Promise<ReadyMessage[]> {
    return (await this.request("qr_render", { conv, ids, ...options })).messages;
  }

  /**
   * Fill quick replies in for `conv` and send the messages they make, in order, through the outbox.
   *
   * Error handling: ServerError `bad_request` with `field` `fill` names the prompts still to fill in.
   */
  async sendQuickReplies(
    conv: string, ids: Int[], options: { member?: string; fill?: Record<string, string> } = {},
  ): Promise<SendAnswer[]> {
    const ready = await this.renderQuickReplies(conv, ids, options);
    const sends = ready.map((message) =>
      this.send(conv, message.kind === "text" || !message.body
        ? { text: message.text ?? "" }
        : { kind: message.kind, body: message.body }));
    return Promise.all(sends);
  }
}

/** The reason a closed connection must not be opened again (SPEC.md §7.4): the session ended, or the account was banned. */
function sessionEnd(link: Link, lost: ConnectionLost): ServerError | undefined {
  if (link.bye && (link.bye.code === "session_ended" || link.bye.code === "account_banned")) {
    return new ServerError(link.bye);
  }
  if (lost.code === 4003) return new ServerError({ code: lost.reason || "session_ended", message: lost.reason ?? "" });
  return undefined;
}

async function webCryptoSha256(data: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, "0")).join("");
}

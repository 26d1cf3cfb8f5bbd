/**
 * The app's one store, fed by the SDK's events (STYLE: a client-side store fed by server events; the SDK owns
 * sync, retries and the outbox, the UI only renders state).
 *
 * Theory of operation. `login`, `resume` (a stored token) and `view` (a view token from the mini-program, IM-17)
 * each make one `Client` and start it. Its `synced` event replaces the conversation list after every catch-up
 * (names, unread counts and group switches exactly as the server gives them); `message` events (each message
 * once, in order) go into the conversation's Timeline and move its preview and unread count; pushes move the
 * switches (`group`), the read marker (`read`), membership (`conv`) and friend requests. Messages this device
 * typed are shown from the outbox (pending, or failed with the server's reason) until the server's copy, with
 * the same `cid`, arrives. Nothing here guesses a rule of the server: the composer goes by the switches the
 * server sent (SPEC.md §11.4), and the server decides in any case.
 */

import {
  type Client as ClientType,
  Client,
  ClientStopped,
  type Conversation,
  type FriendRequestEntry,
  IndexedDbOutboxStore,
  type Int,
  type Member,
  MemoryOutboxStore,
  type Message,
  type OutboxEntry,
  type Person,
  type SendContent,
  ServerError,
  toNumber,
  WebStorageTokenStore,
} from "@ivf-im/sdk";
import { reactive, shallowReactive } from "vue";

import { loadConfig } from "./config";
import { T } from "./texts";
import { Timeline } from "./timeline";

export interface Preview {
  text: string;
  ts: Int;
  sender: string;
}

/** A conversation in the list: a `sync` entry's fields (SPEC.md §5.2) and what live events changed since. */
export interface Conv {
  conv: string;
  kind: "group" | "direct";
  name: string;
  role: string;
  lastSeq: Int;
  readSeq: Int;
  unread: number;
  muted: boolean;
  allowFriends: boolean;
  familyCanSpeak: boolean;
  banned: boolean;
  service: boolean;
  preview: Preview | undefined;
}

export type Phase = "boot" | "login" | "starting" | "ready";

export const session = reactive({
  phase: "boot" as Phase,
  /** The SDK's connection state; the offline banner shows while it is not `open` once the app was ready. */
  state: "idle" as ClientType["state"],
  me: undefined as Person | undefined,
  readonly: false,
  /** The server's limits for this session (SPEC.md §4.2): the longest text, the largest file of each type. */
  maxText: 4000,
  files: {} as Record<string, number>,
  /** The app runs at /view for the mini-program (IM-17): no input bar, no actions. */
  viewMode: false,
  /** The first catch-up is done: the list is what the server says, not empty for want of data. */
  synced: false,
  /** Why the user is back at the login page (the server's own words when it said why). */
  notice: "",
  convs: {} as Record<string, Conv>,
  /** This device's messages not yet stored by the server, by conversation (SPEC.md §5.1). */
  pending: {} as Record<string, OutboxEntry[]>,
  friendRequests: [] as FriendRequestEntry[],
  /** What the browser says of the network: a phone without one shows the banner at once, before the socket notices. */
  online: navigator.onLine,
  /** The conversation on screen, scrolled to its end: its new messages are read, not counted as unread. */
  reading: undefined as string | undefined,
});

addEventListener("online", () => (session.online = true));
addEventListener("offline", () => (session.online = false));

const timelines = new Map<string, Timeline>();
const memberLists = shallowReactive(new Map<string, Member[]>());
let client: Client | undefined;

export const LAST_USER = "ivf-web-user";
export const VIEW_TOKEN = "ivf-web-view-token";
const DEVICE = "ivf-web-device";
const APP = "ivf-web/0.1.0";

function tokenKey(username: string): string {
  return `ivf-im-token:${username}`;
}

/** This browser's device name, the same on every visit (SPEC.md §4.1). */
function deviceName(): string {
  let name = localStorage.getItem(DEVICE);
  if (!name) {
    name = `web-${crypto.randomUUID().slice(0, 8)}`;
    localStorage.setItem(DEVICE, name);
  }
  return name;
}

/** The running client. Error handling: throws when there is none (a view used before login: a bug). */
export function sdk(): Client {
  if (!client) throw new Error("no client");
  return client;
}

export function timeline(conv: string): Timeline {
  let found = timelines.get(conv);
  if (!found) {
    found = new Timeline(conv);
    timelines.set(conv, found);
  }
  return found;
}

export function isStaff(role = session.me?.role): boolean {
  return role === "staff" || role === "admin";
}

// -- starting and stopping ---------------------------------------------------------------------------------

/** Log in with a password; the token is kept for the next visit. Error handling: rejects with ServerError's message. */
export async function login(username: string, password: string): Promise<void> {
  await begin({ username, password });
}

/** At start-up: the token kept from an earlier login, if any. Returns false when there is none. */
export async function resume(): Promise<boolean> {
  const username = localStorage.getItem(LAST_USER);
  if (!username || !localStorage.getItem(tokenKey(username))) return false;
  try {
    await begin({ username });
    return true;
  } catch {
    return false;
  }
}

/** View mode (IM-17): a read-only session with the view token kept for this tab (sessionStorage). */
export async function view(): Promise<void> {
  session.viewMode = true;
  await begin({});
}

export async function logout(): Promise<void> {
  const running = client;
  const username = session.me?.username;
  if (username) localStorage.removeItem(LAST_USER);
  try {
    await running?.logout();
  } catch {
    running?.stop(); // offline: the token is forgotten here all the same
  }
  if (username) localStorage.removeItem(tokenKey(username));
  reset("");
}

function reset(notice: string): void {
  client = undefined;
  timelines.clear();
  memberLists.clear();
  Object.assign(session, {
    phase: "login", state: "idle", me: undefined, readonly: false, synced: false, notice,
    convs: {}, pending: {}, friendRequests: [], reading: undefined,
  });
}

async function begin(credentials: { username?: string; password?: string }): Promise<void> {
  const config = await loadConfig();
  const viewing = session.viewMode;
  const started = new Client({
    url: config.ws_url,
    username: credentials.username,
    password: credentials.password,
    tokens: viewing
      ? new WebStorageTokenStore(sessionStorage, VIEW_TOKEN)
      : new WebStorageTokenStore(localStorage, tokenKey(credentials.username ?? "")),
    outbox: viewing ? new MemoryOutboxStore() : new IndexedDbOutboxStore(`ivf-im-outbox:${credentials.username}`),
    device: deviceName(),
    client: APP,
    readonly: viewing,
    newConversations: "latest",
  });
  client = started;
  wire(started);
  session.phase = "starting";
  session.notice = "";
  try {
    const welcome = await started.start();
    session.me = welcome.user;
    session.readonly = welcome.readonly;
    session.maxText = toNumber(welcome.limits.max_text);
    session.files = Object.fromEntries(Object.entries(welcome.limits.files).map(([mime, size]) => [mime, toNumber(size)]));
    if (!viewing && credentials.username) localStorage.setItem(LAST_USER, credentials.username);
    session.phase = "ready";
    for (const entry of await started.outboxEntries()) addPending(entry);
    if (!welcome.readonly) void loadFriendRequests();
  } catch (error) {
    client = undefined;
    session.phase = "login";
    const cause = error instanceof ClientStopped ? error.cause : error instanceof ServerError ? error : undefined;
    session.notice = cause?.message || T.loginFailed;
    throw error;
  }
}

// -- events -----------------------------------------------------------------------------------------------

function wire(c: Client): void {
  c.on("state", (state) => {
    if (client === c) session.state = state;
  });
  c.on("synced", (conversations) => {
    if (client === c) applySync(conversations);
  });
  c.on("message", (message) => {
    if (client === c) receive(message);
  });
  c.on("retract", (push) => {
    if (client !== c) return;
    timeline(push.conv).remove(push.ranges);
    refreshPreview(push.conv);
  });
  c.on("sent", ({ entry }) => {
    if (client === c) markPending(entry);
  });
  c.on("failed", ({ entry }) => {
    if (client === c) markPending(entry);
  });
  c.on("push", (push) => {
    if (client !== c) return;
    switch (push.op) {
      case "group": {
        const conv = session.convs[push.conv];
        if (!conv) return;
        const wasBanned = conv.banned;
        Object.assign(conv, {
          muted: !!push.muted, allowFriends: !!push.allow_friends, familyCanSpeak: !!push.family_can_speak,
          banned: !!push.banned,
        });
        if (push.banned) {
          timeline(push.conv).clear(); // SPEC.md §11.8: its content leaves the screen
          conv.unread = 0;
        } else if (wasBanned) {
          void loadLatest(push.conv);
        }
        break;
      }
      case "read": {
        const conv = session.convs[push.conv];
        if (conv) Object.assign(conv, { readSeq: push.read_seq, unread: toNumber(push.unread) });
        break;
      }
      case "conv":
        if (push.event === "left") {
          delete session.convs[push.conv];
          timelines.delete(push.conv);
        }
        memberLists.delete(push.conv);
        break;
      case "friend_request":
        if (!session.friendRequests.some((r) => r.request === push.request)) {
          session.friendRequests.push({ request: push.request, conv: push.conv, from: push.from });
        }
        break;
    }
  });
  c.on("stopped", (stopped) => {
    if (client !== c || !stopped.cause) return;
    reset(stopped.cause.message || T.sessionEnded);
  });
  c.on("problem", (error) => console.warn("chat client:", error));
}

function applySync(conversations: Conversation[]): void {
  const next: Record<string, Conv> = {};
  for (const c of conversations) {
    const known = session.convs[c.conv];
    next[c.conv] = {
      conv: c.conv, kind: c.kind, name: c.name, role: c.role, lastSeq: c.last_seq, readSeq: c.read_seq,
      unread: toNumber(c.unread), muted: !!c.muted, allowFriends: !!c.allow_friends,
      familyCanSpeak: !!c.family_can_speak, banned: !!c.banned, service: !!c.service,
      preview: known?.preview,
    };
    if (c.banned) timelines.get(c.conv)?.clear();
  }
  session.convs = next;
  session.synced = true;
  void loadPreviews(Object.values(next).filter((c) => !c.preview && !c.banned).map((c) => c.conv));
}

/** The latest page of each conversation not loaded yet: its last message for the list, ready to open. */
async function loadPreviews(convs: string[]): Promise<void> {
  const queue = [...convs];
  const worker = async (): Promise<void> => {
    for (let conv = queue.shift(); conv; conv = queue.shift()) {
      if (!timeline(conv).loaded) await loadLatest(conv).catch(() => undefined);
      else refreshPreview(conv);
    }
  };
  await Promise.all([worker(), worker(), worker()]);
}

/** The conversation's latest page (SPEC.md §5.3), after which live messages go on. */
export async function loadLatest(conv: string, limit = 30): Promise<void> {
  const page = await sdk().history(conv, { limit });
  timeline(conv).addPage(page.messages, page.hidden, page.more, false);
  dropDelivered(page.messages);
  refreshPreview(conv);
}

/** One page older than what is loaded (SPEC.md §5.3): `before` the lowest seq covered, hidden ones included. */
export async function loadOlder(conv: string, limit = 50): Promise<void> {
  const line = timeline(conv);
  if (!line.moreBefore || line.lowest === undefined) return;
  const page = await sdk().history(conv, { before: line.lowest, limit });
  line.addPage(page.messages, page.hidden, page.more, true);
}

function receive(message: Message): void {
  const line = timeline(message.conv);
  line.add(message);
  dropDelivered([message]);
  const conv = session.convs[message.conv];
  if (!conv) return;
  if (message.seq > conv.lastSeq) conv.lastSeq = message.seq;
  refreshPreview(message.conv);
  const mine = message.sender.id === session.me?.id;
  if (!mine && session.reading !== message.conv && message.seq > conv.readSeq) {
    conv.unread = Math.min(conv.unread + 1, 999);
  }
}

function refreshPreview(conv: string): void {
  const state = session.convs[conv];
  const last = timelines.get(conv)?.last;
  if (!state || !last) return;
  const mine = last.sender.id === session.me?.id;
  state.preview = { text: last.text, ts: last.ts, sender: state.kind === "group" && !mine ? last.sender.name : "" };
}

// -- sending ----------------------------------------------------------------------------------------------

function addPending(entry: OutboxEntry): void {
  const list = session.pending[entry.conv] ?? [];
  if (!list.some((e) => e.cid === entry.cid)) session.pending[entry.conv] = [...list, entry];
}

function markPending(entry: OutboxEntry): void {
  for (const [conv, list] of Object.entries(session.pending)) {
    const at = list.findIndex((e) => e.cid === entry.cid);
    if (at < 0) continue;
    const next = [...list];
    next[at] = entry;
    session.pending[conv] = next;
  }
}

/** Outbox entries whose message the server now holds (the message came back with their `cid`). */
function dropDelivered(messages: readonly Message[]): void {
  const cids = new Set(messages.map((m) => m.cid).filter((cid): cid is string => !!cid));
  if (cids.size === 0) return;
  for (const [conv, list] of Object.entries(session.pending)) {
    if (list.some((e) => cids.has(e.cid))) session.pending[conv] = list.filter((e) => !cids.has(e.cid));
  }
}

/** Put a message in the outbox; it shows at once as pending and goes out when it can (SPEC.md §5.1). */
export async function send(conv: string, content: SendContent, only?: string): Promise<void> {
  const entry = await sdk().enqueue(conv, content, only === undefined ? {} : { only });
  addPending(entry);
}

/** Drop a failed (or still pending) message from the outbox. */
export async function discard(entry: OutboxEntry): Promise<void> {
  await sdk().discard(entry.cid);
  const list = session.pending[entry.conv] ?? [];
  session.pending[entry.conv] = list.filter((e) => e.cid !== entry.cid);
}

/** Send a failed message again: a new message with a new `cid` (SPEC.md §5.1: the old one is used up). */
export async function retry(entry: OutboxEntry): Promise<void> {
  await discard(entry);
  const content: SendContent = entry.kind === "text" ? { text: entry.text ?? "" } : { kind: entry.kind, body: entry.body ?? {} };
  await send(entry.conv, content, entry.only);
}

/** Move the read marker to `seq` (SPEC.md §5.4); the answer says what is left unread. */
export async function markRead(conv: string, seq: Int): Promise<void> {
  const state = session.convs[conv];
  if (!state || seq <= state.readSeq) {
    if (state) state.unread = 0;
    return;
  }
  const answer = await sdk().read(conv, seq);
  Object.assign(state, { readSeq: answer.read_seq, unread: toNumber(answer.unread) });
}

// -- people -----------------------------------------------------------------------------------------------

/** The members of `conv`, each as this user may see them (SPEC.md §5.6, §11.1); asked once per conversation. */
export async function members(conv: string): Promise<Member[]> {
  const known = memberLists.get(conv);
  if (known) return known;
  const answer = await sdk().whole("members", { conv });
  memberLists.set(conv, answer.members);
  return answer.members;
}

/**
 * The direct chat with `username` (SPEC.md §1.4 `u:`): its canonical `d:` address, created on first use.
 * The list learns of a new chat from the `conv` push; until then it is added here with the name given.
 */
export async function directChat(username: string, name: string): Promise<string> {
  const answer = await sdk().request("history", { conv: `u:${username}`, limit: 1 });
  const conv = answer.conv;
  if (!session.convs[conv]) {
    session.convs[conv] = {
      conv, kind: "direct", name, role: "member", lastSeq: 0, readSeq: 0, unread: 0, muted: false,
      allowFriends: false, familyCanSpeak: false, banned: false, service: false, preview: undefined,
    };
  }
  return conv;
}

async function loadFriendRequests(): Promise<void> {
  try {
    session.friendRequests = (await sdk().whole("friend_requests", {})).requests;
  } catch (error) {
    console.warn("friend requests:", error);
  }
}

/** Answer a friend request (SPEC.md §5.14); accepted, the direct chat's address. */
export async function respondFriend(request: Int, accept: boolean): Promise<string | undefined> {
  const answer = await sdk().request("friend_respond", { request, accept });
  session.friendRequests = session.friendRequests.filter((r) => r.request !== request);
  return answer.conv ?? undefined;
}

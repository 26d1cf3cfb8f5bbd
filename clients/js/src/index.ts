/** The chat protocol v1 SDK (protocol/SPEC.md) for any JavaScript runtime. README.md shows how to use it. */

export { Backoff, type BackoffOptions } from "./backoff.js";
export {
  type Answer,
  Client,
  type ClientEvents,
  type ClientOptions,
  type ConnectionState,
  type Conversation,
  type Fields,
  type SendContent,
  VERSIONS,
} from "./client.js";
export { type Clock, systemClock, type Timer } from "./clock.js";
export { decodeFrame, encodeFrame, FrameError, type RawFrame } from "./codec.js";
export { ClientStopped, ConnectionLost, FrameTooLarge, RequestTimeout, ServerError } from "./errors.js";
export * from "./generated/protocol.js";
export { add, type Int, int, max, toNumber } from "./int.js";
export { Positions } from "./positions.js";
export {
  IndexedDbOutboxStore,
  MemoryOutboxStore,
  MemoryTokenStore,
  type OutboxEntry,
  type OutboxStore,
  type TokenStore,
  WebStorageTokenStore,
} from "./storage.js";
export {
  type Connector,
  type Transport,
  webSocketConnector,
  type WebSocketClass,
  type WebSocketLike,
  type Wx,
  wxConnector,
  type WxSocketTask,
} from "./transport.js";

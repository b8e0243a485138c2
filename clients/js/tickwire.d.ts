// Type declarations for tickwire.js, the Tickwire JavaScript SDK (hand-written; the
// module itself is plain JavaScript). Rules and API: docs/CLIENTS.md.

/** Timings and limits shared by every Tickwire SDK. */
export declare const RULES: Readonly<{
  pingIntervalMs: 30_000;
  silenceTimeoutMs: 45_000;
  backoffInitialMs: 1_000;
  backoffMaxMs: 30_000;
  stableAfterMs: 10_000;
  policyWaitMs: 60_000;
  maxTokenRefusals: 3;
  tokenRefreshLeadMs: 60_000;
  maxSymbolsPerFrame: 50;
  dedupeWindow: 1_000;
}>;

/** Why the SDK asks for a token: a (re)connect, a refresh before expiry, or a retry after a 4001. */
export type TokenReason = "connect" | "refresh" | "refused";

/** A token, or a function returning one (called on every connect and before `expires_at`). */
export type TokenSource = string | ((context: { reason: TokenReason }) => string | Promise<string>);

/** Where the notification id store keeps the last id seen, per gateway and user. Synchronous, like localStorage. */
export interface IdStore {
  get(key: string): string | null | undefined;
  set(key: string, value: string): void;
}

/** Timers and a monotonic "now", injectable so tests can move time by hand. */
export interface Clock {
  now(): number;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(id: unknown): void;
}

export interface TickwireOptions {
  /** `wss://host/ws`; in a browser also relative (`/ws`) or http(s), which become ws(s). */
  url: string | URL;
  token: TokenSource;
  /**
   * `"url"` (default): `?token=` on the WebSocket URL. `"message"`: the first frame is
   * `{"action":"auth","token":...}`, keeping the token out of URLs that proxies log.
   */
  tokenTransport?: "url" | "message";
  /** A WebSocket constructor; defaults to the global one (Node 20: `--experimental-websocket`). */
  WebSocket?: new (url: string) => WebSocket;
  /** Defaults to localStorage where it exists, else memory. */
  store?: IdStore;
  clock?: Clock;
  /** Uniform in [0, 1): the jitter of the backoff. */
  random?: () => number;
  /** Where `online` fires; defaults to the global `window`. */
  window?: EventTarget;
  /** Where `visibilitychange` fires, with `visibilityState`; defaults to the global `document`. */
  document?: EventTarget & { visibilityState?: string };
}

/** A price as the server sends it. Decimal values are strings: never parse them into floats for money. */
export interface Price {
  symbol: string;
  price_usd: string;
  price_change_24h: string;
  volume_24h: string;
  /** When the source priced it (RFC 3339). */
  timestamp: string;
  source: string;
  /** True when the source has not refreshed this price for longer than its staleness limit. */
  stale: boolean;
  [extra: string]: unknown;
}

/** A notification-channel event: `transaction_update`, `balance_update`, `notification`, or a newer kind. */
export interface NotificationEvent {
  event: string;
  /** Opaque, increasing per user; each id reaches the app once. */
  id: string;
  data: Record<string, unknown>;
  timestamp: string;
}

export type CloseCause = "close" | "network" | "heartbeat" | "token";

export type ConnectionState =
  | { readonly state: "connecting" }
  | { readonly state: "connected"; readonly userId: string; readonly connectionId: string | null }
  | {
      readonly state: "reconnecting";
      /** Milliseconds until the next attempt. */
      readonly delay: number;
      /** Attempts since the last stable connection. */
      readonly attempt: number;
      readonly cause: CloseCause;
      /** The close code, when the socket closed with one (1006 for network errors). */
      readonly code: number | null;
      readonly error: TickwireError | null;
    }
  | {
      readonly state: "closed";
      /** `client`: close() was called. `server`: the server closed with 1000. `unauthorized`: the token was refused three times in a row (or a fixed token once). */
      readonly reason: "client" | "server" | "unauthorized";
      readonly code: number;
      readonly error?: TickwireError | null;
    };

export interface Gap {
  userId: string;
  /** The id the catch-up started from: events after it may be missing. */
  since: string;
}

export interface TickwireEvents {
  state: ConnectionState;
  /** Every server `error` frame, and the SDK's own (`source: "client"`). */
  error: TickwireError;
  /** Notifications may have been missed: reload this user's state from the wallet API. */
  gap: Gap;
  /** A refreshed token was accepted. */
  authenticated: { user_id: string; expires_at?: string; request_id?: string | number };
  /** Every frame from the server, parsed, before the SDK handles it. */
  message: { event: string; id?: string; data?: Record<string, unknown>; timestamp?: string };
}

/** Ends a subscription. Resolves once the server no longer sends what no other caller needs. */
export interface Stop<Ready> {
  (): Promise<void>;
  /** Settles on the server's confirmation, or rejects with the server's error for this subscription. */
  readonly ready: Promise<Ready>;
}

export declare class TickwireError extends Error {
  readonly name: "TickwireError";
  /** The server's code (`UNKNOWN_SYMBOL`, `RATE_LIMITED`, `INVALID_TOKEN`...), or the SDK's (`CONNECTION_LOST`, `TOKEN_PROVIDER_FAILED`, `CONNECTION_FAILED`). */
  readonly code: string;
  readonly details: Record<string, unknown>;
  /** The `request_id` of the frame this error answers, or null. */
  readonly requestId: string | number | null;
  readonly source: "server" | "client";
  constructor(
    code: string,
    message: string,
    options?: { details?: Record<string, unknown>; requestId?: string | number | null; source?: "server" | "client"; cause?: unknown },
  );
}

export declare class Tickwire {
  constructor(options: TickwireOptions);
  readonly state: ConnectionState;
  on<K extends keyof TickwireEvents>(type: K, listener: (value: TickwireEvents[K]) => void): () => void;
  off<K extends keyof TickwireEvents>(type: K, listener: (value: TickwireEvents[K]) => void): void;
  /**
   * Calls `onPrice` for each price of `symbols` (snapshot and updates alike). Symbols are
   * upper-cased; several calls may share symbols. `ready` resolves with the symbols.
   */
  prices(symbols: string | Iterable<string>, onPrice: (price: Price) => void): Stop<string[]>;
  /** Calls `onEvent` for each notification-channel event of the signed-in user, each id once. */
  notifications(onEvent: (event: NotificationEvent) => void): Stop<{ recovered: boolean; since: string | null }>;
  /** Opens again after close() or after giving up. */
  connect(): void;
  /** Closes; no reconnect follows until connect(). */
  close(): void;
}

export declare class Backoff {
  constructor(random?: () => number);
  readonly attempt: number;
  readonly step: number;
  next(): number;
  reset(): void;
}

export interface Loss {
  cause: CloseCause;
  code: number | null;
  error?: TickwireError | null;
}

export type Step =
  | { close: { reason: "server" | "unauthorized"; code: number; error?: TickwireError | null } }
  | { delay: number; holdMs?: number; tokenReason: TokenReason };

/** The close-code rules as one pure decision (exported for tests and other SDKs' reference). */
export declare function nextStep(loss: Loss, context: { refusals: number; renewableToken: boolean; backoff: Backoff }): Step;

export declare function memoryStore(): IdStore;
export declare function webStorageStore(storage?: Pick<Storage, "getItem" | "setItem">): IdStore;

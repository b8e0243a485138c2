// Tickwire JavaScript SDK: one ES module, no dependencies, no build step.
//
// Works from <script type="module"> in browsers and in Node 20+ (global WebSocket;
// `node --experimental-websocket` on Node 20), or with any WebSocket constructor
// passed as `options.WebSocket`. The rules it follows are in docs/CLIENTS.md, the
// wire protocol in docs/PROTOCOL.md. Prices, amounts and balances stay decimal
// strings end to end: this module never turns them into numbers.

/** Timings and limits shared by every Tickwire SDK (docs/CLIENTS.md, "Rules"). */
export const RULES = Object.freeze({
  pingIntervalMs: 30_000,
  silenceTimeoutMs: 45_000,
  backoffInitialMs: 1_000,
  backoffMaxMs: 30_000,
  stableAfterMs: 10_000,
  policyWaitMs: 60_000,
  maxTokenRefusals: 3,
  tokenRefreshLeadMs: 60_000,
  maxSymbolsPerFrame: 50,
  dedupeWindow: 1_000,
});

const SYMBOL_PATTERN = /^[A-Za-z0-9]{1,15}$/;
const WEBSOCKET_OPEN = 1;

/** The only moves the connection state machine may make (docs/CLIENTS.md, "State machine"). */
const TRANSITIONS = Object.freeze({
  connecting: ["connected", "reconnecting", "closed"],
  connected: ["reconnecting", "closed"],
  reconnecting: ["connecting", "closed"],
  closed: ["connecting"],
});

// ---------------------------------------------------------------------------
// Errors

/**
 * An error from the server (`event: "error"`, `source: "server"`) or from the SDK
 * itself (`source: "client"`: CONNECTION_LOST, TOKEN_PROVIDER_FAILED).
 */
export class TickwireError extends Error {
  constructor(code, message, { details = {}, requestId = null, source = "server", cause } = {}) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = "TickwireError";
    this.code = code;
    this.details = details;
    this.requestId = requestId;
    this.source = source;
  }

  /** From the `data` of an `error` frame. */
  static fromServer(data) {
    return new TickwireError(String(data.code ?? "UNKNOWN"), String(data.message ?? ""), {
      details: isObject(data.details) ? data.details : {},
      requestId: data.request_id ?? null,
    });
  }

  static client(code, message, cause) {
    return new TickwireError(code, message, { source: "client", cause });
  }
}

// ---------------------------------------------------------------------------
// Small parts: backoff, clock, timers, events, stores

/**
 * Exponential backoff with full jitter: each delay is uniform in [0, step), the step
 * starting at 1 s and doubling to 30 s. Full jitter spreads a crowd of clients cut at
 * the same instant over the whole step instead of bunching them at its end.
 */
export class Backoff {
  #attempt = 0;
  #random;

  constructor(random = Math.random) {
    this.#random = random;
  }

  /** The number of delays handed out since the last reset. */
  get attempt() {
    return this.#attempt;
  }

  get step() {
    return Math.min(RULES.backoffMaxMs, RULES.backoffInitialMs * 2 ** Math.min(this.#attempt, 30));
  }

  next() {
    const delay = Math.floor(this.#random() * this.step);
    this.#attempt += 1;
    return delay;
  }

  reset() {
    this.#attempt = 0;
  }
}

/**
 * What to do after a connection ended: the close-code rules in one decision. `refusals`
 * counts the 4001 closes in a row, this one included; `renewableToken` is false for a
 * fixed token string, which no retry can improve.
 */
export function nextStep(loss, { refusals, renewableToken, backoff }) {
  if (loss.cause === "close" && loss.code === 1000) {
    return { close: { reason: "server", code: 1000 } };
  }
  if (loss.code === 4001) {
    if (!renewableToken || refusals >= RULES.maxTokenRefusals) {
      return { close: { reason: "unauthorized", code: 4001, error: loss.error ?? null } };
    }
    return { delay: backoff.next(), tokenReason: "refused" };
  }
  if (loss.code === 1008) {
    // Rate limits and the per-user connection limit: coming back sooner only repeats the refusal.
    return { delay: RULES.policyWaitMs + backoff.next(), holdMs: RULES.policyWaitMs, tokenReason: "connect" };
  }
  return { delay: backoff.next(), tokenReason: "connect" };
}

const systemClock = Object.freeze({
  // Monotonic where available: durations must not jump with the wall clock.
  now: () => globalThis.performance?.now?.() ?? Date.now(),
  setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
  clearTimeout: (id) => globalThis.clearTimeout(id),
});

/** Named one-shot timers: one slot per name, so arming a name again replaces its timer. */
class Timers {
  #clock;
  #ids = new Map();

  constructor(clock) {
    this.#clock = clock;
  }

  set(name, ms, fn) {
    this.clear(name);
    const id = this.#clock.setTimeout(() => {
      this.#ids.delete(name);
      fn();
    }, Math.max(0, ms));
    this.#ids.set(name, id);
  }

  clear(name) {
    if (!this.#ids.has(name)) return;
    this.#clock.clearTimeout(this.#ids.get(name));
    this.#ids.delete(name);
  }

  clearAll() {
    for (const name of [...this.#ids.keys()]) this.clear(name);
  }
}

/** Calls app code so that its exceptions surface (like an EventTarget's) without breaking the SDK's own state. */
function callApp(fn, ...args) {
  try {
    fn(...args);
  } catch (error) {
    queueMicrotask(() => {
      throw error;
    });
  }
}

class Emitter {
  #handlers = new Map();

  on(type, fn) {
    if (typeof fn !== "function") throw new TypeError(`Tickwire: on("${type}") needs a function`);
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(fn);
    return () => this.off(type, fn);
  }

  off(type, fn) {
    this.#handlers.get(type)?.delete(fn);
  }

  emit(type, value) {
    for (const fn of [...(this.#handlers.get(type) ?? [])]) callApp(fn, value);
  }
}

/** A promise with its settle functions, that never counts as an unhandled rejection (the SDK reports errors on "error"). */
function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((yes, no) => {
    resolve = yes;
    reject = no;
  });
  promise.catch(() => {});
  const self = {
    promise,
    settled: false,
    resolve(value) {
      if (self.settled) return;
      self.settled = true;
      resolve(value);
    },
    reject(error) {
      if (self.settled) return;
      self.settled = true;
      reject(error);
    },
  };
  return self;
}

/** A notification id store in memory: ids survive reconnects, not a page reload. */
export function memoryStore() {
  const values = new Map();
  return {
    get: (key) => values.get(key) ?? null,
    set: (key, value) => void values.set(key, value),
  };
}

/** A notification id store in Web Storage (localStorage by default): a reloaded page catches up too. */
export function webStorageStore(storage = globalThis.localStorage) {
  return {
    get(key) {
      try {
        return storage.getItem(key);
      } catch {
        return null; // storage disabled (private mode, quota): catching up from the live point is still correct
      }
    },
    set(key, value) {
      try {
        storage.setItem(key, value);
      } catch {
        // same as above
      }
    },
  };
}

function defaultStore() {
  try {
    if (globalThis.localStorage) return webStorageStore(globalThis.localStorage);
  } catch {
    // reading localStorage throws where it is blocked
  }
  return memoryStore();
}

function isObject(value) {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

// ---------------------------------------------------------------------------
// URLs and tokens

/** Resolves `url` against the page (so "/ws" works in a browser) and maps http(s) to ws(s). */
function resolveUrl(url) {
  const base = globalThis.location?.href;
  const resolved = base ? new URL(url, base) : new URL(url);
  if (resolved.protocol === "http:") resolved.protocol = "ws:";
  if (resolved.protocol === "https:") resolved.protocol = "wss:";
  return resolved;
}

function withToken(url, token) {
  const target = new URL(url);
  target.searchParams.set("token", token);
  return target.href;
}

function checkedToken(token) {
  if (typeof token !== "string" || token === "") {
    throw new TypeError("the token provider must return a non-empty string");
  }
  return token;
}

function normalizeSymbols(symbols) {
  const list = typeof symbols === "string" ? [symbols] : [...(symbols ?? [])];
  if (list.length === 0) throw new TypeError("Tickwire: prices() needs at least one symbol");
  for (const symbol of list) {
    // One bad symbol makes the server refuse the whole frame, and with it every other caller's resubscription.
    if (typeof symbol !== "string" || !SYMBOL_PATTERN.test(symbol)) {
      throw new TypeError(`Tickwire: invalid symbol ${JSON.stringify(symbol)}: 1 to 15 letters or digits`);
    }
  }
  return [...new Set(list.map((symbol) => symbol.toUpperCase()))];
}

// ---------------------------------------------------------------------------
// Link: one connection attempt

/**
 * One connection attempt, from asking for the token to the socket's end. It reports its
 * end exactly once, whichever comes first: `error` (all Node 20 fires when a connection
 * is refused), `close`, 45 s of silence, or a failing token provider. So one failure
 * schedules one reconnect, never two and never none.
 */
class Link {
  #ws = null;
  #ended = false;
  #timers;
  #WebSocket;
  #url;
  #transport;
  #onMessage;
  #onEnd;
  /** The last `error` frame, so a 4001 close can say why. */
  lastError = null;

  constructor({ WebSocket, url, transport, clock, token, onMessage, onEnd }) {
    this.#WebSocket = WebSocket;
    this.#url = url;
    this.#transport = transport;
    this.#timers = new Timers(clock);
    this.#onMessage = onMessage;
    this.#onEnd = onEnd;
    this.#armWatchdog(); // also bounds a token provider or a handshake that never answers
    token.then(
      (value) => this.#open(value),
      (error) => this.#end({ cause: "token", error: TickwireError.client("TOKEN_PROVIDER_FAILED", String(error?.message ?? error), error) }),
    );
  }

  #open(token) {
    if (this.#ended) return;
    const target = this.#transport === "url" ? withToken(this.#url, token) : this.#url.href;
    let ws;
    try {
      ws = new this.#WebSocket(target);
    } catch (error) {
      this.#end({ cause: "network", error: TickwireError.client("CONNECTION_FAILED", String(error?.message ?? error), error) });
      return;
    }
    this.#ws = ws;
    ws.addEventListener("open", () => {
      if (this.#ended) return;
      this.#armWatchdog();
      // First-message auth keeps the token out of URLs that proxies log.
      if (this.#transport === "message") this.send({ action: "auth", token });
    });
    ws.addEventListener("message", (event) => {
      if (this.#ended) return;
      this.#armWatchdog();
      if (typeof event.data === "string") this.#onMessage(event.data);
    });
    ws.addEventListener("error", () => this.#end({ cause: "network", code: 1006 }));
    ws.addEventListener("close", (event) =>
      this.#end({ cause: event.code === 1006 ? "network" : "close", code: event.code, reason: event.reason }),
    );
  }

  send(frame) {
    if (this.#ended || this.#ws?.readyState !== WEBSOCKET_OPEN) return false;
    this.#ws.send(JSON.stringify(frame));
    return true;
  }

  /** Pings keep the server's heartbeat satisfied and draw a `pong`, so a live link is never silent for long. */
  startPinging(intervalMs) {
    const tick = () => {
      this.send({ action: "ping" });
      this.#timers.set("ping", intervalMs, tick);
    };
    this.#timers.set("ping", intervalMs, tick);
  }

  /** Ends the attempt without reporting it: the caller already decided what comes next. */
  abandon(code, reason) {
    if (this.#ended) return;
    this.#ended = true;
    this.#timers.clearAll();
    this.#closeSocket(code, reason);
  }

  #armWatchdog() {
    this.#timers.set("silence", RULES.silenceTimeoutMs, () => this.#end({ cause: "heartbeat", code: null }));
  }

  #end(loss) {
    if (this.#ended) return;
    this.#ended = true;
    this.#timers.clearAll();
    // A silent socket may never finish a close handshake: drop it and move on rather than wait for its `close`.
    this.#closeSocket(4000, loss.cause === "heartbeat" ? "no frame for 45 s" : "");
    this.#onEnd({ code: null, ...loss, error: loss.error ?? this.lastError });
  }

  #closeSocket(code, reason) {
    try {
      this.#ws?.close(code, reason);
    } catch {
      // already closing, or still connecting on an implementation that refuses close() then
    }
  }
}

// ---------------------------------------------------------------------------
// Session: what one `connected` socket has on the server

/**
 * The server side of one connection as the client knows it: the confirmed symbol set and
 * notification subscription, and the requests awaiting their reply (matched by request_id).
 */
class Session {
  symbols = new Set();
  notifications = false;
  /** One subscription change in flight at a time keeps the confirmed state simple to reason about. */
  change = null;
  /** After RATE_LIMITED, no subscription change before this time. */
  holdUntil = -Infinity;
  /** Set when the server refused the notification subscription: not asked again on this connection. */
  notificationsRefused = false;
  /** Token expiry on the local clock (server time converted once, so clock skew does not matter). */
  expiresAt = null;
  #pending = new Map();
  #link;
  #nextRequestId;

  constructor(link, userId, nextRequestId) {
    this.userId = userId;
    this.#link = link;
    this.#nextRequestId = nextRequestId;
  }

  /**
   * Sends `frame` with a fresh request_id. Settles on the first reply with that id for
   * which `isDone` holds, or on an `error` with that id, or when the connection ends.
   */
  request(frame, isDone = () => true) {
    const requestId = this.#nextRequestId();
    return new Promise((resolve, reject) => {
      if (!this.#link.send({ ...frame, request_id: requestId })) {
        reject(TickwireError.client("CONNECTION_LOST", "not connected"));
        return;
      }
      this.#pending.set(requestId, { resolve, reject, isDone });
    });
  }

  /** Every server frame passes through here; `error` is the TickwireError of an `error` frame. */
  reply(message, error) {
    const requestId = message.data.request_id;
    const entry = this.#pending.get(requestId);
    if (!entry) return;
    if (error) {
      this.#pending.delete(requestId);
      entry.reject(error);
    } else if (entry.isDone(message)) {
      this.#pending.delete(requestId);
      entry.resolve(message);
    }
  }

  lose() {
    const lost = TickwireError.client("CONNECTION_LOST", "the connection ended before the reply");
    for (const entry of this.#pending.values()) entry.reject(lost);
    this.#pending.clear();
  }
}

// ---------------------------------------------------------------------------
// Prices: reference-counted subscriptions

/**
 * Who wants which symbols. Several prices() calls may share a symbol: it stays subscribed
 * while at least one of them holds it.
 */
class PriceRegistry {
  #counts = new Map();
  #subs = new Set();
  #releases = new Set();
  /** The last price seen per held symbol, so a late caller of a symbol already held gets it at once. */
  #latest = new Map();

  get wanted() {
    return new Set(this.#counts.keys());
  }

  add(symbols, onPrice) {
    const sub = { symbols: new Set(symbols), onPrice, ready: deferred() };
    const held = symbols.filter((symbol) => this.#counts.has(symbol));
    for (const symbol of symbols) this.#counts.set(symbol, (this.#counts.get(symbol) ?? 0) + 1);
    this.#subs.add(sub);
    // The server sends no snapshot for a symbol the connection already holds: replay ours.
    queueMicrotask(() => {
      for (const symbol of held) {
        const price = this.#latest.get(symbol);
        if (price && this.#subs.has(sub) && sub.symbols.has(symbol)) callApp(sub.onPrice, price);
      }
    });
    return sub;
  }

  /** Removes a subscription; returns a promise that settles when the server dropped what nobody else needs. */
  remove(sub) {
    if (!this.#subs.delete(sub)) return Promise.resolve();
    const released = [...sub.symbols].filter((symbol) => this.#release(symbol));
    const release = { symbols: new Set(released), done: deferred() };
    this.#releases.add(release);
    return release.done.promise;
  }

  #release(symbol) {
    const count = this.#counts.get(symbol) - 1;
    if (count > 0) {
      this.#counts.set(symbol, count);
      return false;
    }
    this.#counts.delete(symbol);
    this.#latest.delete(symbol);
    return true;
  }

  deliver(price) {
    if (!isObject(price) || typeof price.symbol !== "string" || !this.#counts.has(price.symbol)) return;
    this.#latest.set(price.symbol, price);
    for (const sub of [...this.#subs]) {
      if (sub.symbols.has(price.symbol)) callApp(sub.onPrice, price);
    }
  }

  /** The server refused these symbols for good: take them out of every caller, whose `ready` rejects. */
  refuse(symbols, error) {
    for (const sub of this.#subs) {
      const refused = symbols.filter((symbol) => sub.symbols.has(symbol));
      if (refused.length === 0) continue;
      for (const symbol of refused) {
        sub.symbols.delete(symbol);
        this.#release(symbol);
      }
      sub.ready.reject(error);
    }
  }

  /** An unsubscribe failed for good: the stop() promises waiting on these symbols reject. */
  failRelease(symbols, error) {
    for (const release of this.#releases) {
      if (symbols.some((symbol) => release.symbols.has(symbol))) {
        release.done.reject(error);
        this.#releases.delete(release);
      }
    }
  }

  /**
   * Settles what the server state now answers: `ready` of callers whose symbols are all
   * confirmed, and stop() promises none of whose symbols is still held or being added.
   */
  settle(confirmed, adding) {
    for (const sub of this.#subs) {
      if (!sub.ready.settled && [...sub.symbols].every((symbol) => confirmed.has(symbol))) {
        sub.ready.resolve([...sub.symbols]);
      }
    }
    for (const release of this.#releases) {
      const outstanding = [...release.symbols].some(
        (symbol) => (confirmed.has(symbol) || adding.has(symbol)) && !this.#counts.has(symbol),
      );
      if (!outstanding) {
        release.done.resolve();
        this.#releases.delete(release);
      }
    }
  }
}

// ---------------------------------------------------------------------------
// Notifications: at least once from the server, exactly once to the app

class NotificationFeed {
  #listeners = new Set();
  #recent = new Set();
  #releases = new Set();
  #store;
  #scope;

  constructor(store, scope) {
    this.#store = store;
    this.#scope = scope;
  }

  get wanted() {
    return this.#listeners.size > 0;
  }

  add(onEvent) {
    const listener = { onEvent, ready: deferred() };
    this.#listeners.add(listener);
    return listener;
  }

  /** Removes a listener; returns a promise that settles once the server no longer sends what nobody wants. */
  remove(listener) {
    if (!this.#listeners.delete(listener) || this.wanted) return Promise.resolve();
    const done = deferred();
    this.#releases.add(done);
    return done.promise;
  }

  /** Settles stop() promises when the server subscription is gone, or wanted again by a newer listener. */
  settle(subscribed) {
    if (subscribed && !this.wanted) return;
    for (const done of this.#releases) done.resolve();
    this.#releases.clear();
  }

  failRelease(error) {
    for (const done of this.#releases) done.reject(error);
    this.#releases.clear();
  }

  #key(userId) {
    return `tickwire:last-id:${this.#scope}:${userId}`;
  }

  lastId(userId) {
    const id = this.#store.get(this.#key(userId));
    return typeof id === "string" && id !== "" ? id : null;
  }

  forget(userId) {
    this.#store.set(this.#key(userId), "");
  }

  /** Delivers an event unless it was delivered already, then records its id (after delivery: at least once). */
  deliver(userId, message) {
    if (this.#recent.has(message.id)) return;
    this.#recent.add(message.id);
    if (this.#recent.size > RULES.dedupeWindow) this.#recent.delete(this.#recent.values().next().value);
    for (const listener of [...this.#listeners]) callApp(listener.onEvent, message);
    this.#store.set(this.#key(userId), message.id);
  }

  subscribed(result) {
    for (const listener of this.#listeners) listener.ready.resolve(result);
  }

  refuse(error) {
    for (const listener of this.#listeners) listener.ready.reject(error);
  }
}

// ---------------------------------------------------------------------------
// The client

/**
 * A Tickwire connection that stays up: it reconnects, resubscribes, catches up on missed
 * notifications and refreshes its token. See docs/CLIENTS.md.
 */
export class Tickwire {
  #url;
  #WebSocket;
  #tokenSource;
  #tokenTransport;
  #clock;
  #timers;
  #backoff;
  #events = new Emitter();
  #prices = new PriceRegistry();
  #feed;
  #window;
  #document;
  #state = Object.freeze({ state: "connecting" });
  #link = null;
  #session = null;
  #refusals = 0;
  #connectedAt = null;
  #holdUntil = -Infinity;
  #tokenReason = "connect";
  #requestIds = 0;
  #syncQueued = false;
  #listening = false;

  constructor(options = {}) {
    const {
      url,
      token,
      tokenTransport = "url",
      WebSocket = globalThis.WebSocket,
      clock = systemClock,
      random = Math.random,
      store = defaultStore(),
      window = globalThis.window,
      document = globalThis.document,
    } = options;
    if (!url) throw new TypeError("Tickwire: options.url is required");
    if (typeof token !== "string" && typeof token !== "function") {
      throw new TypeError("Tickwire: options.token must be a string or a function returning one");
    }
    if (typeof WebSocket !== "function") {
      throw new TypeError("Tickwire: no WebSocket: on Node 20 run node --experimental-websocket, or pass options.WebSocket");
    }
    if (tokenTransport !== "url" && tokenTransport !== "message") {
      throw new TypeError('Tickwire: options.tokenTransport is "url" or "message"');
    }
    this.#url = resolveUrl(url);
    this.#WebSocket = WebSocket;
    this.#tokenSource = token;
    this.#tokenTransport = tokenTransport;
    this.#clock = clock;
    this.#timers = new Timers(clock);
    this.#backoff = new Backoff(random);
    this.#feed = new NotificationFeed(store, this.#url.origin + this.#url.pathname);
    this.#window = window;
    this.#document = document;
    this.#listenForWakeUps(true);
    // Start on the next microtask, so listeners added right after `new` see "connecting".
    queueMicrotask(() => {
      if (this.#state.state !== "connecting" || this.#link) return;
      this.#startLink();
      this.#events.emit("state", this.#state);
    });
  }

  /** The current connection state (see the "state" event). */
  get state() {
    return this.#state;
  }

  /** Listens to "state", "error", "gap", "authenticated" or "message". Returns a function that stops listening. */
  on(type, fn) {
    return this.#events.on(type, fn);
  }

  off(type, fn) {
    this.#events.off(type, fn);
  }

  /**
   * Calls `onPrice(price)` for each price of these symbols, the snapshot's and the updates'.
   * Returns `stop()`, which ends this subscription (and resolves once the server dropped
   * the symbols no other caller holds); `stop.ready` settles when the server confirmed
   * every symbol, or rejects with the server's error for a symbol it refused.
   */
  prices(symbols, onPrice) {
    const list = normalizeSymbols(symbols);
    if (typeof onPrice !== "function") throw new TypeError("Tickwire: prices() needs a callback");
    const sub = this.#prices.add(list, onPrice);
    this.#scheduleSync();
    const stop = () => {
      const done = this.#prices.remove(sub);
      this.#scheduleSync();
      return done;
    };
    stop.ready = sub.ready.promise;
    return stop;
  }

  /**
   * Calls `onEvent({event, id, data, timestamp})` for each notification-channel event of
   * the signed-in user, each id once. Returns `stop()`; `stop.ready` resolves with
   * `{recovered, since}` on the server's `subscribed`.
   */
  notifications(onEvent) {
    if (typeof onEvent !== "function") throw new TypeError("Tickwire: notifications() needs a callback");
    const listener = this.#feed.add(onEvent);
    this.#scheduleSync();
    const stop = () => {
      const done = this.#feed.remove(listener);
      this.#scheduleSync();
      return done;
    };
    stop.ready = listener.ready.promise;
    return stop;
  }

  /** Opens the connection again after close() or after the SDK gave up. */
  connect() {
    if (this.#state.state !== "closed") return;
    this.#refusals = 0;
    this.#backoff.reset();
    this.#holdUntil = -Infinity;
    this.#listenForWakeUps(true);
    this.#open("connect");
  }

  /** Closes for good (until connect()): no reconnect follows. */
  close() {
    if (this.#state.state === "closed") return;
    this.#link?.abandon(1000, "client closed");
    this.#link = null;
    this.#endSession();
    this.#finish({ reason: "client", code: 1000 });
  }

  // --- state machine -------------------------------------------------------

  #transition(next) {
    if (!TRANSITIONS[this.#state.state].includes(next.state)) {
      throw new Error(`Tickwire: internal error: ${this.#state.state} -> ${next.state}`);
    }
    this.#state = Object.freeze(next);
    this.#events.emit("state", this.#state);
  }

  // Every method here acts first and announces the new state last: a state listener may
  // call close() or connect(), and must find the client consistent when it does.

  #open(tokenReason = this.#tokenReason) {
    this.#startLink(tokenReason);
    this.#transition({ state: "connecting" });
  }

  #startLink(tokenReason = "connect") {
    const link = new Link({
      WebSocket: this.#WebSocket,
      url: this.#url,
      transport: this.#tokenTransport,
      clock: this.#clock,
      token: this.#fetchToken(tokenReason),
      onMessage: (text) => link === this.#link && this.#receive(text),
      onEnd: (loss) => link === this.#link && this.#lost(loss),
    });
    this.#link = link;
  }

  #fetchToken(reason) {
    const source = this.#tokenSource;
    if (typeof source === "string") return Promise.resolve(source);
    return Promise.resolve()
      .then(() => source({ reason }))
      .then(checkedToken);
  }

  /** The connection ended on its own: decide between a reconnect and giving up. */
  #lost(loss) {
    this.#link = null;
    this.#endSession();
    // Server errors were reported as their frames arrived; the SDK's own are reported here.
    if (loss.error?.source === "client") this.#events.emit("error", loss.error);
    if (loss.code === 4001) this.#refusals += 1;
    const step = nextStep(loss, {
      refusals: this.#refusals,
      renewableToken: typeof this.#tokenSource === "function",
      backoff: this.#backoff,
    });
    if (step.close) {
      this.#finish(step.close);
      return;
    }
    this.#tokenReason = step.tokenReason;
    this.#holdUntil = this.#clock.now() + (step.holdMs ?? 0);
    this.#timers.set("retry", step.delay, () => this.#open());
    this.#transition({
      state: "reconnecting",
      delay: step.delay,
      attempt: this.#backoff.attempt,
      cause: loss.cause,
      code: loss.code ?? null,
      error: loss.error ?? null,
    });
  }

  #finish(reason) {
    this.#timers.clearAll();
    this.#listenForWakeUps(false);
    this.#transition({ state: "closed", ...reason });
  }

  /** Going online, or the page becoming visible, ends a backoff wait at once (but never a 1008 wait). */
  #wake = () => {
    if (this.#state.state !== "reconnecting" || this.#clock.now() < this.#holdUntil) return;
    this.#timers.clear("retry");
    this.#open();
  };

  #visibilityChanged = () => {
    if (this.#document?.visibilityState === "visible") this.#wake();
  };

  #listenForWakeUps(on) {
    if (on === this.#listening) return;
    this.#listening = on;
    const method = on ? "addEventListener" : "removeEventListener";
    this.#window?.[method]?.("online", this.#wake);
    this.#document?.[method]?.("visibilitychange", this.#visibilityChanged);
  }

  // --- inbound frames ----------------------------------------------------------

  #receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return; // the protocol is JSON only; nothing useful to do with anything else
    }
    if (!isObject(message) || typeof message.event !== "string") return;
    const data = isObject(message.data) ? message.data : {};
    this.#events.emit("message", message);
    let error = null;
    switch (message.event) {
      case "connected":
        this.#connected(message, data);
        return;
      case "price_update":
        this.#prices.deliver(data);
        return;
      case "price_batch":
        // A snapshot is just the latest price of each symbol: hand them over one by one.
        for (const price of Array.isArray(data.prices) ? data.prices : []) this.#prices.deliver(price);
        return;
      case "subscribed":
      case "unsubscribed":
        this.#subscriptionChanged(message.event, data);
        break;
      case "error":
        error = this.#serverError(data);
        break;
    }
    if (typeof message.id === "string" && this.#session) this.#feed.deliver(this.#session.userId, message);
    this.#session?.reply({ ...message, data }, error);
  }

  #connected(message, data) {
    if (this.#state.state !== "connecting") return; // a second `connected` would be a server bug
    const link = this.#link;
    this.#refusals = 0;
    this.#connectedAt = this.#clock.now();
    this.#session = new Session(link, String(data.user_id ?? ""), () => ++this.#requestIds);
    link.startPinging(RULES.pingIntervalMs);
    this.#scheduleRefresh(this.#session, data.expires_at, data.server_time ?? message.timestamp);
    this.#scheduleSync();
    this.#transition({
      state: "connected",
      userId: this.#session.userId,
      connectionId: data.connection_id ?? null,
    });
  }

  #subscriptionChanged(event, data) {
    const session = this.#session;
    if (!session) return;
    if (data.channel === "prices" && Array.isArray(data.symbols)) {
      // Both replies carry the connection's whole symbol set: take it as the truth.
      session.symbols = new Set(data.symbols);
    } else if (data.channel === "notifications") {
      session.notifications = event === "subscribed";
    }
  }

  #serverError(data) {
    const error = TickwireError.fromServer(data);
    // An error that answers no request is about the connection itself (a token refused or expired): it explains the close that follows.
    if (this.#link && error.requestId === null) this.#link.lastError = error;
    this.#events.emit("error", error);
    return error;
  }

  #endSession() {
    const session = this.#session;
    this.#session = null;
    this.#timers.clear("refresh");
    this.#timers.clear("sync");
    session?.lose();
    // A connection that stayed up long enough proves the path works: the next wait starts small again.
    if (this.#connectedAt !== null && this.#clock.now() - this.#connectedAt >= RULES.stableAfterMs) {
      this.#backoff.reset();
    }
    this.#connectedAt = null;
    this.#prices.settle(new Set(), new Set());
    this.#feed.settle(false);
  }

  // --- subscriptions: bring the server's state to what the callers want -------

  #scheduleSync() {
    if (this.#syncQueued) return;
    this.#syncQueued = true;
    queueMicrotask(() => {
      this.#syncQueued = false;
      this.#sync();
    });
  }

  /** Sends the next subscription change, one at a time; each reply triggers the next. */
  #sync() {
    const session = this.#session;
    if (!session) {
      // Nothing is subscribed on a server we are not connected to.
      this.#prices.settle(new Set(), new Set());
      this.#feed.settle(false);
      return;
    }
    if (session.change || this.#clock.now() < session.holdUntil) return;
    const change = this.#nextChange(session);
    this.#prices.settle(session.symbols, change?.adding ?? new Set());
    this.#feed.settle(session.notifications || change?.frame.channel === "notifications");
    if (!change) return;
    session.change = change;
    session.request(change.frame, change.isDone).then(
      (reply) => this.#changeDone(session, change, reply),
      (error) => this.#changeFailed(session, change, error),
    );
  }

  #nextChange(session) {
    const wantNotifications = this.#feed.wanted;
    if (wantNotifications && !session.notifications && !session.notificationsRefused) {
      return this.#subscribeNotifications(session);
    }
    if (!wantNotifications && session.notifications) {
      return { kind: "notifications", frame: { action: "unsubscribe", channel: "notifications", user_id: session.userId } };
    }
    const wanted = this.#prices.wanted;
    // Removals first, so swapping symbols near the 100-symbol limit does not overflow it.
    const removing = [...session.symbols].filter((symbol) => !wanted.has(symbol)).slice(0, RULES.maxSymbolsPerFrame);
    if (removing.length > 0) {
      return { kind: "unsubscribe-prices", symbols: removing, frame: { action: "unsubscribe", channel: "prices", symbols: removing } };
    }
    const adding = [...wanted].filter((symbol) => !session.symbols.has(symbol)).slice(0, RULES.maxSymbolsPerFrame);
    if (adding.length > 0) {
      return {
        kind: "subscribe-prices",
        symbols: adding,
        adding: new Set(adding),
        frame: { action: "subscribe", channel: "prices", symbols: adding },
        // With unknown symbols the server confirms the known ones, then sends the error with the same request_id.
        isDone: (reply) => reply.event === "subscribed" && adding.every((symbol) => reply.data.symbols?.includes(symbol)),
      };
    }
    return null;
  }

  #subscribeNotifications(session) {
    const since = this.#feed.lastId(session.userId);
    const frame = { action: "subscribe", channel: "notifications", user_id: session.userId };
    if (since) frame.since = since;
    return { kind: "notifications", since, frame };
  }

  #changeDone(session, change, reply) {
    session.change = null;
    if (session !== this.#session) return;
    if (change.kind === "notifications" && reply.event === "subscribed") {
      const recovered = reply.data.recovered === true;
      this.#feed.subscribed({ recovered, since: change.since ?? null });
      // Without `since` there was nothing to recover; with it, `false` means events may be missing.
      if (change.since && !recovered) this.#events.emit("gap", { userId: session.userId, since: change.since });
    }
    this.#scheduleSync();
  }

  #changeFailed(session, change, error) {
    session.change = null;
    if (session !== this.#session || error.code === "CONNECTION_LOST") return;
    if (error.code === "RATE_LIMITED") {
      // The frame had no effect: try again when the suspension ends.
      const wait = Number(error.details.retry_after_ms) || RULES.backoffInitialMs;
      session.holdUntil = this.#clock.now() + wait;
      this.#timers.set("sync", wait, () => this.#sync());
      return;
    }
    if (change.kind === "subscribe-prices") {
      const refused = error.code === "UNKNOWN_SYMBOL" && Array.isArray(error.details.symbols)
        ? error.details.symbols.map((symbol) => String(symbol).toUpperCase())
        : change.symbols.filter((symbol) => !session.symbols.has(symbol));
      this.#prices.refuse(refused, error);
    } else if (change.kind === "unsubscribe-prices") {
      // Not expected from the server; stop asking so we do not loop, and tell the waiting stop() calls.
      for (const symbol of change.symbols) session.symbols.delete(symbol);
      this.#prices.failRelease(change.symbols, error);
    } else if (change.frame.action === "unsubscribe") {
      session.notifications = false;
      this.#feed.failRelease(error);
    } else if (change.since && error.code === "INVALID_MESSAGE") {
      // The stored id is not one this server issued (another deployment, a corrupt store): start from now, and say so.
      this.#feed.forget(session.userId);
      this.#events.emit("gap", { userId: session.userId, since: change.since });
    } else {
      session.notificationsRefused = true;
      this.#feed.refuse(error);
    }
    this.#scheduleSync();
  }

  // --- token refresh ---------------------------------------------------------

  #scheduleRefresh(session, expiresAt, serverTime) {
    if (typeof this.#tokenSource !== "function") return; // a fixed string cannot be renewed
    const expiry = Date.parse(expiresAt);
    const serverNow = Date.parse(serverTime);
    if (!Number.isFinite(expiry) || !Number.isFinite(serverNow)) return;
    session.expiresAt = this.#clock.now() + (expiry - serverNow);
    this.#armRefresh(session);
  }

  /** Refreshes ahead of expiry: a minute before, or halfway there for short-lived tokens. */
  #armRefresh(session) {
    const remaining = session.expiresAt - this.#clock.now();
    if (remaining < 2_000) return; // too late to matter: the 4001 that follows fetches a new token anyway
    const lead = Math.min(RULES.tokenRefreshLeadMs, remaining / 2);
    this.#timers.set("refresh", remaining - lead, () => this.#refresh(session));
  }

  async #refresh(session) {
    try {
      const token = await this.#fetchToken("refresh");
      if (session !== this.#session) return;
      const reply = await session.request({ action: "auth", token });
      if (session !== this.#session) return;
      this.#scheduleRefresh(session, reply.data.expires_at, reply.timestamp);
      this.#events.emit("authenticated", reply.data);
    } catch (error) {
      if (session !== this.#session || error?.code === "CONNECTION_LOST") return;
      // Server errors were reported as they arrived; a failing provider is reported here.
      if (!(error instanceof TickwireError)) {
        this.#events.emit("error", TickwireError.client("TOKEN_PROVIDER_FAILED", String(error?.message ?? error), error));
      }
      this.#armRefresh(session); // the current token holds until it expires: try again closer to it
    }
  }
}

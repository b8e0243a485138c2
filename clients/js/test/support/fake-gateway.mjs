// A scripted Tickwire gateway on the test WebSocket server: enough of PROTOCOL.md to
// drive the SDK (connected, subscribe/unsubscribe, ping, auth, notifications with
// `since`), with hooks to make it misbehave on demand.

import { Tickwire, memoryStore } from "../../tickwire.js";
import { FakeClock, record, recordingWebSocket } from "./harness.mjs";
import { WebSocketTestServer } from "./ws-server.mjs";

export const SYMBOLS = ["BTC", "ETH", "SOL", "XLM", "ADA"];

export function price(symbol, price_usd = "100.00", extra = {}) {
  return {
    symbol,
    price_usd,
    price_change_24h: "1.5",
    volume_24h: "1000000.00",
    timestamp: "2025-10-14T10:30:00.000Z",
    source: "fake",
    stale: false,
    ...extra,
  };
}

function envelope(event, data, extra = {}) {
  return { event, ...extra, data, timestamp: new Date().toISOString() };
}

export class FakeGateway {
  /** `(token) => null` accepts; a string refuses with that error code and close 4001. */
  checkToken = () => null;
  userId = "alice";
  /** Lifetime of each token, as reported in `expires_at`. */
  tokenLifetimeMs = 3_600_000;
  /** Accept the WebSocket but never send `connected` (a server that hangs after the handshake). */
  hold = false;
  /** Expect `{"action":"auth"}` as the first message instead of `?token=`. */
  firstMessageAuth = false;
  /** Return true to take over a client message (the default reply is then not sent). */
  intercept = () => false;
  /** What a `since` replay answers. */
  replay = () => ({ recovered: true, events: [] });
  latest = new Map(SYMBOLS.map((symbol) => [symbol, price(symbol)]));
  /** Per server socket: its subscribed symbols. */
  held = new WeakMap();
  /** Tokens seen, in order (query or auth message). */
  tokens = [];
  #server;

  static async start(options = {}) {
    const gateway = new FakeGateway();
    gateway.#server = await WebSocketTestServer.start(options);
    gateway.#server.onConnection = (ws) => gateway.#accept(ws);
    return gateway;
  }

  get url() {
    return this.#server.url;
  }

  get port() {
    return this.#server.port;
  }

  get sockets() {
    return this.#server.sockets;
  }

  connection(n, options) {
    return this.#server.connection(n, options);
  }

  stop() {
    return this.#server.stop();
  }

  /** Sends the `connected` frame (the default does this as soon as the token checks out). */
  sendConnected(ws, token) {
    const now = Date.now();
    ws.send(
      envelope("connected", {
        connection_id: `conn-${this.sockets.indexOf(ws) + 1}`,
        server_time: new Date(now).toISOString(),
        user_id: this.userId,
        heartbeat_interval_ms: 30000,
        heartbeat_timeout_ms: 60000,
        expires_at: new Date(now + this.tokenLifetimeMs).toISOString(),
      }),
    );
    ws.token = token;
  }

  notify(ws, id, event = "notification", data = { notification_id: id, type: "test", title: "t", message: "m", priority: "normal" }) {
    ws.send(envelope(event, data, { id }));
  }

  #accept(ws) {
    this.held.set(ws, []);
    ws.onMessage((message) => this.#receive(ws, message));
    if (this.firstMessageAuth || this.hold) return; // wait for the auth message, or forever
    this.#authenticate(ws, ws.url.searchParams.get("token"));
  }

  #authenticate(ws, token) {
    this.tokens.push(token);
    const refusal = token ? this.checkToken(token) : "MISSING_TOKEN";
    if (refusal) {
      ws.send(envelope("error", { code: refusal, message: "refused by the fake", details: {} }));
      ws.close(4001, refusal);
      return;
    }
    this.sendConnected(ws, token);
  }

  #receive(ws, message) {
    if (this.firstMessageAuth && ws.token === undefined) {
      ws.token = null;
      if (message?.action === "auth") this.#authenticate(ws, message.token);
      else ws.close(4001, "MISSING_TOKEN");
      return;
    }
    if (this.intercept(ws, message)) return;
    const reply = (event, data) => ws.send(envelope(event, { ...data, request_id: message.request_id }));
    switch (`${message.action} ${message.channel ?? ""}`.trim()) {
      case "ping":
        return reply("pong", { server_time: new Date().toISOString() });
      case "auth":
        return this.#reauthenticate(ws, message, reply);
      case "subscribe prices":
        return this.#subscribePrices(ws, message, reply);
      case "unsubscribe prices": {
        const remaining = this.held.get(ws).filter((s) => !message.symbols.includes(s));
        this.held.set(ws, remaining);
        return reply("unsubscribed", { channel: "prices", symbols: remaining });
      }
      case "subscribe notifications": {
        const { recovered, events } = message.since ? this.replay(message.since) : { recovered: false, events: [] };
        reply("subscribed", { channel: "notifications", user_id: message.user_id, recovered });
        for (const id of events) this.notify(ws, id);
        return;
      }
      case "unsubscribe notifications":
        return reply("unsubscribed", { channel: "notifications", user_id: message.user_id });
    }
  }

  #reauthenticate(ws, message, reply) {
    this.tokens.push(message.token);
    const refusal = this.checkToken(message.token);
    if (refusal) return reply("error", { code: refusal, message: "refused by the fake", details: {} });
    reply("authenticated", {
      user_id: this.userId,
      expires_at: new Date(Date.now() + this.tokenLifetimeMs).toISOString(),
    });
  }

  #subscribePrices(ws, message, reply) {
    const held = this.held.get(ws);
    const known = message.symbols.filter((s) => SYMBOLS.includes(s));
    const unknown = message.symbols.filter((s) => !SYMBOLS.includes(s));
    const added = known.filter((s) => !held.includes(s));
    const all = SYMBOLS.filter((s) => held.includes(s) || known.includes(s));
    this.held.set(ws, all);
    if (known.length > 0) {
      reply("subscribed", { channel: "prices", symbols: all });
      const prices = added.map((s) => this.latest.get(s));
      if (prices.length > 0) ws.send(envelope("price_batch", { prices }));
    }
    if (unknown.length > 0) {
      reply("error", { code: "UNKNOWN_SYMBOL", message: "unknown symbols", details: { symbols: unknown } });
    }
  }
}

/**
 * Starts a fake gateway and a client of it on a fake clock, both closed after the test.
 * `random` is 0.5 unless given, so backoff delays are exactly half of each step: 500,
 * 1000, 2000 ms...
 */
export async function connectFake(t, options = {}, configure = () => {}) {
  const gateway = await FakeGateway.start();
  configure(gateway);
  const clock = new FakeClock();
  const sent = [];
  const tw = new Tickwire({
    url: gateway.url,
    token: "token-1",
    WebSocket: recordingWebSocket(sent),
    clock,
    random: () => 0.5,
    store: memoryStore(),
    ...options,
  });
  const states = record(tw, "state");
  const errors = record(tw, "error");
  const received = record(tw, "message");
  t.after(async () => {
    tw.close();
    await gateway.stop();
  });
  return { gateway, clock, tw, states, errors, sent, received };
}

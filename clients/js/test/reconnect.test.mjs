// Reconnection: backoff, close codes, refused connections, drops, wake-ups, and the
// state the app observes throughout.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Tickwire, memoryStore } from "../tickwire.js";
import { FakeGateway, connectFake } from "./support/fake-gateway.mjs";
import { FakeClock, last, names, record, waitFor } from "./support/harness.mjs";
import { WebSocketTestServer, encodeFrame } from "./support/ws-server.mjs";

async function freePort() {
  const server = await WebSocketTestServer.start();
  const port = server.port;
  await server.stop();
  return port;
}

async function connected(tw) {
  await waitFor(() => tw.state.state === "connected", { message: "connected" });
}

test("the app sees connecting, connected, reconnecting with its delay, and closed with its reason", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t);
  await connected(tw);
  assert.deepEqual(states[1], { state: "connected", userId: "alice", connectionId: "conn-1" });
  (await gateway.connection(1)).close(1001, "going away");
  await waitFor(() => tw.state.state === "reconnecting");
  assert.deepEqual(last(states), {
    state: "reconnecting",
    delay: 500,
    attempt: 1,
    cause: "close",
    code: 1001,
    error: null,
  });
  clock.advance(500);
  await connected(tw);
  tw.close();
  assert.deepEqual(last(states), { state: "closed", reason: "client", code: 1000 });
  assert.deepEqual(names(states), ["connecting", "connected", "reconnecting", "connecting", "connected", "closed"]);
  assert.equal(tw.state, last(states), "tw.state is the last state reported");
});

test("a refused connection is retried (Node 20 fires only `error` then), once per failure", async (t) => {
  const port = await freePort();
  const clock = new FakeClock();
  const tw = new Tickwire({ url: `ws://127.0.0.1:${port}/ws`, token: "t", clock, random: () => 0.5, store: memoryStore() });
  const states = record(tw, "state");
  let gateway;
  t.after(async () => {
    tw.close();
    await gateway?.stop();
  });
  await waitFor(() => tw.state.state === "reconnecting", { message: "the first retry" });
  assert.equal(last(states).cause, "network");
  assert.deepEqual(clock.pending, [500], "exactly one timer: the retry");
  clock.advance(500);
  await waitFor(() => states.length === 4, { message: "the second failure" });
  assert.deepEqual(names(states), ["connecting", "reconnecting", "connecting", "reconnecting"]);
  assert.equal(last(states).delay, 1000);
  assert.deepEqual(clock.pending, [1000]);
  gateway = await FakeGateway.start({ port });
  clock.advance(1000);
  await connected(tw);
});

/** A WebSocket that fails like a browser's: `error`, then `close` with 1006. */
class FailingWebSocket extends EventTarget {
  static instances = 0;
  readyState = 0;

  constructor() {
    super();
    FailingWebSocket.instances += 1;
    setTimeout(() => {
      this.readyState = 3;
      this.dispatchEvent(new Event("error"));
      this.dispatchEvent(Object.assign(new Event("close"), { code: 1006, reason: "", wasClean: false }));
      this.done = true;
    }, 1);
  }

  send() {}
  close() {}
}

test("`error` followed by `close` for the same failure schedules one reconnect, not two", async (t) => {
  const clock = new FakeClock();
  const tw = new Tickwire({ url: "ws://example.invalid/ws", token: "t", clock, random: () => 0.5, store: memoryStore(), WebSocket: FailingWebSocket });
  t.after(() => tw.close());
  const states = record(tw, "state");
  await waitFor(() => tw.state.state === "reconnecting");
  await waitFor(() => FailingWebSocket.instances === 1 && states.length >= 2);
  assert.deepEqual(names(states), ["connecting", "reconnecting"]);
  assert.deepEqual(clock.pending, [500]);
  clock.advance(500);
  await waitFor(() => states.length === 4);
  assert.deepEqual(names(states), ["connecting", "reconnecting", "connecting", "reconnecting"]);
  assert.deepEqual(clock.pending, [1000]);
});

test("a connection dropped in the middle of a frame is reconnected, and the partial frame is never delivered", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t);
  const seen = [];
  tw.prices(["BTC"], (p) => seen.push(p.price_usd));
  const ws = await gateway.connection(1);
  await waitFor(() => seen.length === 1, { message: "the snapshot" });
  const frame = encodeFrame(0x1, Buffer.from(JSON.stringify({ event: "price_update", data: { symbol: "BTC", price_usd: "999.00" } })));
  ws.sendRaw(frame.subarray(0, 20));
  ws.destroy();
  await waitFor(() => tw.state.state === "reconnecting");
  assert.equal(last(states).code, 1006);
  assert.equal(last(states).delay, 500);
  clock.advance(500);
  const again = await gateway.connection(2);
  await again.waitForMessage((m) => m.action === "subscribe" && m.channel === "prices");
  await waitFor(() => seen.length === 2, { message: "the new snapshot" });
  assert.deepEqual(seen, ["100.00", "100.00"]);
});

test("1001, 1013, 4008 and 4009 back off: 1 s doubling, full jitter", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t);
  const codes = [1001, 1013, 4008, 4009];
  for (const [i, code] of codes.entries()) {
    await connected(tw);
    (await gateway.connection(i + 1)).close(code, "test");
    await waitFor(() => tw.state.state === "reconnecting", { message: `reconnecting after ${code}` });
    assert.equal(last(states).code, code);
    assert.equal(last(states).delay, 500 * 2 ** i, `delay after ${code}`);
    clock.advance(last(states).delay - 1);
    assert.equal(tw.state.state, "reconnecting", "not before the delay");
    clock.advance(1);
    await gateway.connection(i + 2);
  }
  await connected(tw);
});

test("a connection that stayed up 10 s resets the backoff", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t);
  const dropAndDelay = async (n) => {
    await connected(tw);
    (await gateway.connection(n)).destroy();
    await waitFor(() => tw.state.state === "reconnecting");
    const delay = last(states).delay;
    clock.advance(delay);
    return delay;
  };
  assert.equal(await dropAndDelay(1), 500);
  assert.equal(await dropAndDelay(2), 1000);
  await connected(tw);
  clock.advance(9_999);
  assert.equal(await dropAndDelay(3), 2000, "9.999 s is not enough");
  await connected(tw);
  clock.advance(10_000);
  assert.equal(await dropAndDelay(4), 500, "10 s up: back to the first step");
});

test("close 1000 from the server stays closed", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t, { window: new EventTarget() });
  await connected(tw);
  (await gateway.connection(1)).close(1000, "bye");
  await waitFor(() => tw.state.state === "closed");
  assert.deepEqual(last(states), { state: "closed", reason: "server", code: 1000 });
  assert.deepEqual(clock.pending, [], "no retry scheduled, no timer left");
  clock.advance(120_000);
  assert.equal(gateway.sockets.length, 1);
});

test("close() by the app stays closed, and connect() opens again", async (t) => {
  const window = new EventTarget();
  const { gateway, clock, tw, states } = await connectFake(t, { window });
  await connected(tw);
  tw.close();
  assert.deepEqual(last(states), { state: "closed", reason: "client", code: 1000 });
  const ws = await gateway.connection(1);
  await waitFor(() => ws.clientCloseCode === 1000, { message: "the client's close frame" });
  assert.deepEqual(clock.pending, []);
  window.dispatchEvent(new Event("online"));
  assert.equal(tw.state.state, "closed", "going online does not reopen a closed client");
  tw.connect();
  await connected(tw);
  assert.equal(gateway.sockets.length, 2);
});

test("1008 waits at least 60 s; going online does not cut that short", async (t) => {
  const window = new EventTarget();
  const { gateway, clock, tw, states } = await connectFake(t, { window });
  await connected(tw);
  (await gateway.connection(1)).close(1008, "too many frames");
  await waitFor(() => tw.state.state === "reconnecting");
  assert.equal(last(states).delay, 60_500);
  window.dispatchEvent(new Event("online"));
  clock.advance(59_999);
  window.dispatchEvent(new Event("online"));
  assert.equal(tw.state.state, "reconnecting");
  assert.equal(gateway.sockets.length, 1);
  clock.advance(1);
  window.dispatchEvent(new Event("online"));
  assert.equal(tw.state.state, "connecting", "past 60 s, going online retries at once");
  await connected(tw);
});

test("going online again retries at once", async (t) => {
  const window = new EventTarget();
  const { gateway, tw } = await connectFake(t, { window, random: () => 0.99 });
  await connected(tw);
  (await gateway.connection(1)).destroy();
  await waitFor(() => tw.state.state === "reconnecting");
  window.dispatchEvent(new Event("online"));
  assert.equal(tw.state.state, "connecting");
  await connected(tw); // the clock never moved: no timer brought this
  assert.equal(gateway.sockets.length, 2);
});

test("a page becoming visible retries at once; becoming hidden does nothing", async (t) => {
  const document = Object.assign(new EventTarget(), { visibilityState: "visible" });
  const { gateway, tw } = await connectFake(t, { document });
  await connected(tw);
  (await gateway.connection(1)).destroy();
  await waitFor(() => tw.state.state === "reconnecting");
  document.visibilityState = "hidden";
  document.dispatchEvent(new Event("visibilitychange"));
  assert.equal(tw.state.state, "reconnecting");
  document.visibilityState = "visible";
  document.dispatchEvent(new Event("visibilitychange"));
  assert.equal(tw.state.state, "connecting");
  await connected(tw);
});

test("close() from a state listener is obeyed at any point", async (t) => {
  for (const target of ["connected", "reconnecting", "connecting"]) {
    const { gateway, clock, tw, states } = await connectFake(t);
    tw.on("state", (s) => s.state === target && tw.close());
    if (target !== "connected") {
      await waitFor(() => tw.state.state === "connected");
      (await gateway.connection(1)).destroy(); // reconnecting, then (after the delay) connecting
      await waitFor(() => tw.state.state !== "connected");
      clock.advance(500);
    }
    await waitFor(() => tw.state.state === "closed", { message: `closed from ${target}` });
    assert.deepEqual(last(states), { state: "closed", reason: "client", code: 1000 });
    assert.equal(states.filter((s) => s.state === "closed").length, 1);
    clock.advance(120_000);
    assert.deepEqual(clock.pending, [], `nothing left running after a close from ${target}`);
    assert.equal(gateway.sockets.length, 1, `no new connection after a close from ${target}`);
  }
});

test("a WebSocket constructor that throws is reported and backed off", async (t) => {
  class Throwing {
    constructor() {
      throw new SyntaxError("blocked by policy");
    }
  }
  const clock = new FakeClock();
  const tw = new Tickwire({ url: "ws://example.invalid/ws", token: "t", clock, random: () => 0.5, store: memoryStore(), WebSocket: Throwing });
  t.after(() => tw.close());
  const errors = record(tw, "error");
  await waitFor(() => tw.state.state === "reconnecting");
  assert.equal(tw.state.cause, "network");
  assert.deepEqual(errors.map((e) => [e.code, e.source, e.message]), [["CONNECTION_FAILED", "client", "blocked by policy"]]);
  assert.deepEqual(clock.pending, [500]);
});

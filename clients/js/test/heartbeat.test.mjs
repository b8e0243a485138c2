// Heartbeat: a ping every 30 s; 45 s without any frame means the connection is dead.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connectFake } from "./support/fake-gateway.mjs";
import { advanceAlive, last, names, waitFor } from "./support/harness.mjs";

const isPing = (m) => m.action === "ping";

test("sends a ping every 30 s once connected", async (t) => {
  const client = await connectFake(t);
  const { gateway, clock, tw, sent } = client;
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  clock.advance(29_999);
  assert.equal(sent.filter(isPing).length, 0);
  clock.advance(1);
  assert.equal(sent.filter(isPing).length, 1, "the first ping, at 30 s");
  // Let the pong land before moving on: otherwise the 45 s watchdog (rightly) fires first.
  await advanceAlive(clock, client, 29_999, 29_999);
  assert.equal(sent.filter(isPing).length, 1);
  clock.advance(1);
  assert.equal(sent.filter(isPing).length, 2, "the second ping, at 60 s");
  await waitFor(() => ws.received.filter(isPing).length === 2, { message: "both pings at the server" });
  assert.deepEqual(ws.received.find(isPing), { action: "ping" });
});

test("a server silent for 45 s is dead: the client drops it and reconnects", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t);
  gateway.intercept = (ws, message) => isPing(message); // swallow pings: no pong, nothing at all
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  // Let the subscriptions settle and the clock start from the last frame.
  clock.advance(44_999);
  assert.equal(tw.state.state, "connected");
  clock.advance(1);
  assert.equal(tw.state.state, "reconnecting");
  assert.equal(last(states).cause, "heartbeat");
  assert.equal(last(states).delay, 500);
  // The dead socket is closed from our side rather than waited for.
  await waitFor(() => ws.closed, { message: "the dead socket to be closed" });
  clock.advance(500);
  await gateway.connection(2);
  await waitFor(() => tw.state.state === "connected");
  assert.deepEqual(names(states), ["connecting", "connected", "reconnecting", "connecting", "connected"]);
});

test("any frame proves the server alive and restarts the 45 s", async (t) => {
  const { gateway, clock, tw } = await connectFake(t);
  gateway.intercept = (ws, message) => isPing(message);
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  clock.advance(40_000);
  const stop = tw.prices(["BTC"], () => {});
  await stop.ready; // the subscribe reply and the snapshot are frames
  clock.advance(40_000);
  assert.equal(tw.state.state, "connected", "80 s since connect, 40 s since the last frame");
  clock.advance(5_000);
  assert.equal(tw.state.state, "reconnecting");
  assert.ok(ws.received.some(isPing), "pings kept going out meanwhile");
});

test("a server that completes the handshake but never says connected is dead after 45 s", async (t) => {
  const { gateway, clock, tw, states } = await connectFake(t, {}, (g) => {
    g.hold = true;
  });
  await gateway.connection(1);
  clock.advance(44_999);
  assert.equal(tw.state.state, "connecting");
  clock.advance(1);
  assert.equal(tw.state.state, "reconnecting");
  assert.equal(last(states).cause, "heartbeat");
});

// Tokens: in the URL or as the first message, a provider called on every connect and
// before expiry, and the 4001 rules.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connectFake } from "./support/fake-gateway.mjs";
import { advanceAlive, last, names, record, waitFor } from "./support/harness.mjs";

/** A token provider handing out `tokens` in order (the last one forever), recording each call. */
function provider(...tokens) {
  const calls = [];
  const next = async (context) => {
    calls.push(context.reason);
    return tokens.length > 1 ? tokens.shift() : tokens[0];
  };
  return Object.assign(next, { calls });
}

const isAuth = (m) => m.action === "auth";

test("the token goes in the URL as ?token= by default", async (t) => {
  const { gateway, tw } = await connectFake(t, { token: "a+b/c=d" });
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  assert.equal(ws.url.searchParams.get("token"), "a+b/c=d");
  assert.equal(ws.received.filter(isAuth).length, 0);
});

test('tokenTransport "message" sends the token as the first message, never in the URL', async (t) => {
  const { gateway, tw } = await connectFake(t, { tokenTransport: "message", token: provider("secret") }, (g) => {
    g.firstMessageAuth = true;
  });
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  assert.equal(ws.url.search, "");
  assert.deepEqual(ws.received[0], { action: "auth", token: "secret" });
});

test("a token provider is called on every connect", async (t) => {
  const token = provider("one", "two");
  const { gateway, clock, tw } = await connectFake(t, { token });
  await waitFor(() => tw.state.state === "connected");
  (await gateway.connection(1)).close(1001);
  await waitFor(() => tw.state.state === "reconnecting");
  clock.advance(500);
  await waitFor(() => tw.state.state === "connected");
  assert.deepEqual(token.calls, ["connect", "connect"]);
  assert.deepEqual(gateway.tokens, ["one", "two"]);
});

test("4001 asks the provider for a new token and retries", async (t) => {
  const token = provider("bad", "good");
  const { gateway, clock, tw, states, errors } = await connectFake(t, { token }, (g) => {
    g.checkToken = (value) => (value === "bad" ? "INVALID_TOKEN" : null);
  });
  await waitFor(() => tw.state.state === "reconnecting");
  assert.equal(last(states).code, 4001);
  assert.equal(last(states).error.code, "INVALID_TOKEN");
  assert.equal(errors[0].code, "INVALID_TOKEN");
  clock.advance(last(states).delay);
  await waitFor(() => tw.state.state === "connected");
  assert.deepEqual(token.calls, ["connect", "refused"]);
  assert.equal(gateway.sockets.length, 2);
});

test("three refusals in a row: the client gives up and says why", async (t) => {
  const token = provider("bad");
  const { gateway, clock, tw, states, errors } = await connectFake(t, { token }, (g) => {
    g.checkToken = () => "INVALID_TOKEN";
  });
  for (let attempt = 1; attempt <= 2; attempt++) {
    await waitFor(() => tw.state.state === "reconnecting" && gateway.sockets.length === attempt);
    clock.advance(last(states).delay);
  }
  await waitFor(() => tw.state.state === "closed");
  assert.deepEqual(names(states), ["connecting", "reconnecting", "connecting", "reconnecting", "connecting", "closed"]);
  assert.equal(last(states).reason, "unauthorized");
  assert.equal(last(states).code, 4001);
  assert.equal(last(states).error.code, "INVALID_TOKEN");
  assert.equal(errors.length, 3);
  assert.deepEqual(clock.pending, []);
  assert.equal(gateway.sockets.length, 3);
});

test("a fixed token string cannot be renewed: its first refusal is final", async (t) => {
  const { gateway, tw, states } = await connectFake(t, { token: "expired" }, (g) => {
    g.checkToken = () => "TOKEN_EXPIRED";
  });
  await waitFor(() => tw.state.state === "closed");
  assert.equal(last(states).reason, "unauthorized");
  assert.equal(last(states).error.code, "TOKEN_EXPIRED");
  assert.equal(gateway.sockets.length, 1);
});

test("refusals count only in a row: a successful connect starts the count again", async (t) => {
  // Two refusals, a connect, a 4001 during the session, one more refusal, a connect: never three in a row.
  const token = provider("bad", "bad", "good", "bad", "good");
  const { gateway, clock, tw, states } = await connectFake(t, { token }, (g) => {
    g.checkToken = (value) => (value === "bad" ? "INVALID_TOKEN" : null);
  });
  const retryAfterSocket = async (n) => {
    await waitFor(() => tw.state.state === "reconnecting" && gateway.sockets.length === n, { message: `retry #${n}` });
    clock.advance(last(states).delay);
  };
  await retryAfterSocket(1);
  await retryAfterSocket(2);
  await waitFor(() => tw.state.state === "connected");
  (await gateway.connection(3)).close(4001, "TOKEN_EXPIRED"); // as on expiry during a session
  await retryAfterSocket(3);
  await retryAfterSocket(4);
  await waitFor(() => tw.state.state === "connected" && gateway.sockets.length === 5);
  assert.ok(!names(states).includes("closed"));
  assert.deepEqual(token.calls, ["connect", "refused", "refused", "refused", "refused"]);
});

test("the token is refreshed with `auth` before expires_at, without dropping the socket", async (t) => {
  const token = provider("first", "second", "third");
  const client = await connectFake(t, { token }, (g) => {
    g.tokenLifetimeMs = 120_000;
  });
  const { gateway, clock, tw } = client;
  const authenticated = record(tw, "authenticated");
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  await advanceAlive(clock, client, 59_999); // a minute before expiry
  assert.equal(ws.received.filter(isAuth).length, 0);
  clock.advance(1);
  const auth = await ws.waitForMessage(isAuth);
  assert.equal(auth.token, "second");
  assert.equal(typeof auth.request_id, "number");
  await waitFor(() => authenticated.length === 1, { message: "authenticated" });
  assert.equal(authenticated[0].user_id, "alice");
  await advanceAlive(clock, client, 60_000); // the new token's lifetime counts from its `authenticated`
  await waitFor(() => ws.received.filter(isAuth).length === 2, { message: "the second refresh" });
  assert.deepEqual(token.calls, ["connect", "refresh", "refresh"]);
  assert.equal(gateway.sockets.length, 1);
  assert.equal(tw.state.state, "connected");
});

test("a short-lived token is refreshed halfway to its expiry", async (t) => {
  const { gateway, clock, tw } = await connectFake(t, { token: provider("a", "b") }, (g) => {
    g.tokenLifetimeMs = 10_000;
  });
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  clock.advance(4_999);
  assert.equal(ws.received.filter(isAuth).length, 0);
  clock.advance(1);
  await ws.waitForMessage(isAuth);
});

test("a refused refresh is reported with its request_id, keeps the connection, and is tried again", async (t) => {
  const client = await connectFake(t, { token: provider("good", "bad", "good") }, (g) => {
    g.tokenLifetimeMs = 120_000;
    g.checkToken = (value) => (value === "bad" ? "INVALID_TOKEN" : null);
  });
  const { gateway, clock, tw, errors } = client;
  const ws = await gateway.connection(1);
  await waitFor(() => tw.state.state === "connected");
  await advanceAlive(clock, client, 60_000);
  const refused = await ws.waitForMessage(isAuth);
  await waitFor(() => errors.length === 1);
  assert.equal(errors[0].code, "INVALID_TOKEN");
  assert.equal(errors[0].requestId, refused.request_id);
  assert.equal(tw.state.state, "connected");
  await advanceAlive(clock, client, 30_000); // halfway to the expiry that still holds
  await waitFor(() => ws.received.filter(isAuth).length === 2, { message: "the second attempt" });
  assert.equal(ws.received.filter(isAuth)[1].token, "good");
});

test("a failing token provider is reported and backed off, not counted as a refusal", async (t) => {
  let calls = 0;
  const token = async () => {
    calls += 1;
    if (calls < 3) throw new Error("login service down");
    return "fine";
  };
  const { clock, tw, states, errors } = await connectFake(t, { token });
  for (let failures = 1; failures <= 2; failures++) {
    await waitFor(() => tw.state.state === "reconnecting" && calls === failures);
    assert.equal(last(states).cause, "token");
    clock.advance(last(states).delay);
  }
  await waitFor(() => tw.state.state === "connected");
  assert.deepEqual(errors.map((e) => [e.code, e.source]), [
    ["TOKEN_PROVIDER_FAILED", "client"],
    ["TOKEN_PROVIDER_FAILED", "client"],
  ]);
  assert.equal(errors[0].cause.message, "login service down");
});

// Prices: single prices from snapshots and updates, reference-counted symbols, promises
// matched by request_id, server errors, and resubscription after a reconnect.

import assert from "node:assert/strict";
import { test } from "node:test";
import { connectFake, price } from "./support/fake-gateway.mjs";
import { record, waitFor } from "./support/harness.mjs";

const subscribes = (ws) => ws.received.filter((m) => m.action === "subscribe" && m.channel === "prices");
const unsubscribes = (ws) => ws.received.filter((m) => m.action === "unsubscribe" && m.channel === "prices");

function envelope(event, data) {
  return { event, data, timestamp: new Date().toISOString() };
}

/** Settles-or-not, without waiting: "pending", "resolved" or "rejected". */
async function status(promise) {
  const marker = Symbol("pending");
  const result = await Promise.race([promise.then(() => "resolved", () => "rejected"), Promise.resolve(marker)]);
  return result === marker ? "pending" : result;
}

test("price_batch and price_update both arrive as single prices, decimal strings untouched", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const seen = [];
  tw.prices(["BTC", "ETH"], (p) => seen.push(p));
  const ws = await gateway.connection(1);
  await waitFor(() => seen.length === 2, { message: "the snapshot" });
  assert.deepEqual(seen.map((p) => p.symbol), ["BTC", "ETH"]);
  ws.send(envelope("price_update", price("BTC", "0.00001234", { price_change_24h: "-1.20", volume_24h: "12345678901234567890.12", feed_seq: 7 })));
  await waitFor(() => seen.length === 3);
  const update = seen[2];
  assert.equal(update.price_usd, "0.00001234");
  assert.equal(update.price_change_24h, "-1.20");
  assert.equal(update.volume_24h, "12345678901234567890.12", "no precision lost to a float");
  assert.equal(update.feed_seq, 7, "fields the SDK does not know pass through");
});

test("stale is exposed on each price", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const seen = [];
  tw.prices(["SOL"], (p) => seen.push(p));
  const ws = await gateway.connection(1);
  await waitFor(() => seen.length === 1);
  assert.equal(seen[0].stale, false);
  ws.send(envelope("price_update", price("SOL", "150.00", { stale: true })));
  await waitFor(() => seen.length === 2);
  assert.equal(seen[1].stale, true);
});

test("overlapping prices() calls share symbols; stop() unsubscribes only what no other caller holds", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const a = [];
  const b = [];
  const stopA = tw.prices(["BTC", "ETH"], (p) => a.push(p.symbol));
  await stopA.ready;
  const stopB = tw.prices(["eth", "SOL"], (p) => b.push(p.symbol));
  assert.deepEqual(await stopB.ready, ["ETH", "SOL"]);
  const ws = await gateway.connection(1);
  assert.deepEqual(subscribes(ws).map((m) => m.symbols), [["BTC", "ETH"], ["SOL"]], "ETH is not subscribed twice");
  // B gets ETH from the SDK at once: the server sends no snapshot for a symbol the connection already holds.
  await waitFor(() => b.length === 2);
  assert.deepEqual(b.sort(), ["ETH", "SOL"]);

  ws.send(envelope("price_update", price("SOL")));
  ws.send(envelope("price_update", price("ETH")));
  await waitFor(() => b.length === 4 && a.length === 3);
  assert.deepEqual(a, ["BTC", "ETH", "ETH"], "A does not get SOL");

  await stopA();
  assert.deepEqual(unsubscribes(ws).map((m) => m.symbols), [["BTC"]], "ETH stays: B still holds it");
  ws.send(envelope("price_update", price("ETH")));
  ws.send(envelope("price_update", price("BTC")));
  await waitFor(() => b.length === 5);
  assert.equal(a.length, 3, "a stopped caller gets nothing more");

  await stopB();
  assert.deepEqual(unsubscribes(ws).map((m) => m.symbols), [["BTC"], ["ETH", "SOL"]]);
  await stopB(); // stopping twice is harmless
  assert.equal(unsubscribes(ws).length, 2);
});

test("calls in the same tick share one subscribe frame", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const first = tw.prices(["BTC"], () => {});
  const second = tw.prices(["BTC", "XLM"], () => {});
  await Promise.all([first.ready, second.ready]);
  assert.deepEqual(subscribes(await gateway.connection(1)).map((m) => m.symbols), [["BTC", "XLM"]]);
});

test("ready settles on the `subscribed` with its own request_id, stop() on the `unsubscribed`", async (t) => {
  const held = [];
  const { gateway, tw } = await connectFake(t, {}, (g) => {
    g.intercept = (ws, message) => message.channel === "prices" && held.push({ ws, message });
  });
  const frames = record(tw, "message");
  const stop = tw.prices(["BTC"], () => {});
  await waitFor(() => held.length === 1);
  const { ws, message } = held[0];
  assert.equal(await status(stop.ready), "pending");
  ws.send(envelope("subscribed", { channel: "prices", symbols: ["BTC"], request_id: message.request_id + 100 }));
  ws.send(envelope("pong", { server_time: "x" })); // a frame after it: once seen, the first was handled
  await waitFor(() => frames.some((m) => m.event === "pong"));
  assert.equal(await status(stop.ready), "pending", "another request_id settles nothing");
  ws.send(envelope("subscribed", { channel: "prices", symbols: ["BTC"], request_id: message.request_id }));
  await stop.ready;

  const stopped = stop();
  await waitFor(() => held.length === 2);
  assert.equal(await status(stopped), "pending");
  ws.send(envelope("unsubscribed", { channel: "prices", symbols: [], request_id: held[1].message.request_id }));
  await stopped;
});

test("an unknown symbol rejects ready with the server's code and request_id; the others keep flowing", async (t) => {
  const { gateway, clock, tw, errors } = await connectFake(t);
  const seen = [];
  const stop = tw.prices(["BTC", "NOPE"], (p) => seen.push(p.symbol));
  const error = await stop.ready.then(() => null, (e) => e);
  const ws = await gateway.connection(1);
  const frame = subscribes(ws)[0];
  assert.equal(error.code, "UNKNOWN_SYMBOL");
  assert.equal(error.requestId, frame.request_id);
  assert.deepEqual(error.details.symbols, ["NOPE"]);
  assert.equal(errors[0], error, "the app's error listener got the same error");
  await waitFor(() => seen.includes("BTC"));

  ws.destroy(); // after a reconnect, the refused symbol is not asked for again
  await waitFor(() => tw.state.state === "reconnecting");
  clock.advance(500);
  const again = await gateway.connection(2);
  await waitFor(() => subscribes(again).length === 1);
  assert.deepEqual(subscribes(again)[0].symbols, ["BTC"]);
});

test("RATE_LIMITED: the subscription is sent again once retry_after_ms has passed", async (t) => {
  let refused = 0;
  const { gateway, clock, tw, errors } = await connectFake(t, {}, (g) => {
    g.intercept = (ws, message) => {
      if (message.action !== "subscribe" || refused > 0) return false;
      refused += 1;
      ws.send(envelope("error", {
        code: "RATE_LIMITED",
        message: "too many subscription changes",
        details: { limit: "subscriptions", retry_after_ms: 2000 },
        request_id: message.request_id,
      }));
      return true;
    };
  });
  const stop = tw.prices(["ETH"], () => {});
  await waitFor(() => errors.length === 1);
  assert.equal(errors[0].code, "RATE_LIMITED");
  const ws = await gateway.connection(1);
  clock.advance(1999);
  assert.equal(await status(stop.ready), "pending");
  assert.equal(subscribes(ws).length, 1);
  clock.advance(1);
  await stop.ready;
  assert.equal(subscribes(ws).length, 2);
});

test("SUBSCRIPTION_LIMIT rejects ready and is not retried in a loop", async (t) => {
  const { gateway, tw } = await connectFake(t, {}, (g) => {
    g.intercept = (ws, message) => {
      if (message.action !== "subscribe" || message.channel !== "prices") return false;
      ws.send(envelope("error", { code: "SUBSCRIPTION_LIMIT", message: "full", details: { max: 100, subscribed: 100 }, request_id: message.request_id }));
      return true;
    };
  });
  const stop = tw.prices(["ADA"], () => {});
  await assert.rejects(stop.ready, { code: "SUBSCRIPTION_LIMIT" });
  const ws = await gateway.connection(1);
  tw.prices(["BTC"], () => {}).ready.catch(() => {});
  await waitFor(() => subscribes(ws).length === 2);
  assert.deepEqual(subscribes(ws).map((m) => m.symbols), [["ADA"], ["BTC"]]);
});

test("after a reconnect every symbol is subscribed again, at most 50 per frame", async (t) => {
  const symbols = Array.from({ length: 60 }, (_, i) => `S${i}`);
  const { gateway, clock, tw } = await connectFake(t, {}, (g) => {
    // A gateway that lists every symbol: answer with the connection's whole set, as the real one does.
    g.intercept = (ws, message) => {
      if (message.channel !== "prices") return false;
      ws.set = new Set([...(ws.set ?? []), ...message.symbols]);
      ws.send(envelope("subscribed", { channel: "prices", symbols: [...ws.set], request_id: message.request_id }));
      return true;
    };
  });
  await tw.prices(symbols, () => {}).ready;
  const first = await gateway.connection(1);
  assert.deepEqual(subscribes(first).map((m) => m.symbols.length), [50, 10]);
  first.destroy();
  await waitFor(() => tw.state.state === "reconnecting");
  clock.advance(500);
  const second = await gateway.connection(2);
  await waitFor(() => subscribes(second).length === 2);
  assert.deepEqual(subscribes(second).flatMap((m) => m.symbols).sort(), [...symbols].sort());
});

test("symbols are checked and upper-cased before anything is sent", async (t) => {
  const { tw } = await connectFake(t);
  assert.throws(() => tw.prices([], () => {}), TypeError);
  assert.throws(() => tw.prices(["BT-C"], () => {}), /invalid symbol/);
  assert.throws(() => tw.prices(["A".repeat(16)], () => {}), /invalid symbol/);
  assert.throws(() => tw.prices(["BTC"]), /callback/);
  assert.deepEqual(await tw.prices("btc", () => {}).ready, ["BTC"]);
});

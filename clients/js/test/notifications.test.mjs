// Notifications: each id once, `since` after every reconnect and page reload, `recovered`
// surfaced as a gap, and the pluggable id store.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Tickwire, memoryStore, webStorageStore } from "../tickwire.js";
import { FakeGateway, connectFake } from "./support/fake-gateway.mjs";
import { FakeClock, record, waitFor } from "./support/harness.mjs";

const subscribes = (ws) => ws.received.filter((m) => m.action === "subscribe" && m.channel === "notifications");

async function reconnect(gateway, clock, tw, n) {
  (await gateway.connection(n)).destroy();
  await waitFor(() => tw.state.state === "reconnecting");
  clock.advance(tw.state.delay);
  const ws = await gateway.connection(n + 1);
  await waitFor(() => subscribes(ws).length === 1, { message: "the resubscription" });
  return ws;
}

test("events arrive with their ids, each id once", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const seen = [];
  const stop = tw.notifications((e) => seen.push(e));
  assert.deepEqual(await stop.ready, { recovered: false, since: null });
  const ws = await gateway.connection(1);
  assert.deepEqual(subscribes(ws)[0], { action: "subscribe", channel: "notifications", user_id: "alice", request_id: 1 });
  gateway.notify(ws, "100-0");
  gateway.notify(ws, "100-0");
  gateway.notify(ws, "100-1", "balance_update", { wallet_id: "w1", balance: "5.25", balance_usd: "168000.00", symbol: "BTC" });
  await waitFor(() => seen.length === 2);
  assert.deepEqual(seen.map((e) => [e.event, e.id]), [["notification", "100-0"], ["balance_update", "100-1"]]);
  assert.equal(seen[1].data.balance, "5.25");
  assert.equal(typeof seen[1].timestamp, "string");
});

test("after a reconnect: since = the last id seen; ids already delivered are dropped", async (t) => {
  const { gateway, clock, tw } = await connectFake(t, {}, (g) => {
    // A replay that repeats an id the client already has: the SDK dedupes anyway.
    g.replay = () => ({ recovered: true, events: ["100-1", "100-2"] });
  });
  const seen = [];
  tw.notifications((e) => seen.push(e.id));
  const ws = await gateway.connection(1);
  await waitFor(() => subscribes(ws).length === 1);
  gateway.notify(ws, "100-0");
  gateway.notify(ws, "100-1");
  await waitFor(() => seen.length === 2);
  const again = await reconnect(gateway, clock, tw, 1);
  assert.equal(subscribes(again)[0].since, "100-1");
  await waitFor(() => seen.length === 3);
  assert.deepEqual(seen, ["100-0", "100-1", "100-2"]);
});

test("recovered: false after a `since` reaches the app as a gap (reload that user's state)", async (t) => {
  const { gateway, clock, tw } = await connectFake(t, {}, (g) => {
    g.replay = () => ({ recovered: false, events: [] });
  });
  const gaps = record(tw, "gap");
  const seen = [];
  const stop = tw.notifications((e) => seen.push(e.id));
  await stop.ready;
  assert.equal(gaps.length, 0, "no `since` on the first connect: nothing was missed, no gap");
  gateway.notify(await gateway.connection(1), "7-0");
  await waitFor(() => seen.length === 1);
  await reconnect(gateway, clock, tw, 1);
  await waitFor(() => gaps.length === 1, { message: "the gap" });
  assert.deepEqual(gaps[0], { userId: "alice", since: "7-0" });
});

test("the last id is kept in the store, so a reloaded page catches up", async (t) => {
  const gateway = await FakeGateway.start();
  const store = memoryStore();
  const open = () => new Tickwire({ url: gateway.url, token: "t", store, clock: new FakeClock() });
  const first = open();
  const seen = [];
  first.notifications((e) => seen.push(e.id));
  const ws = await gateway.connection(1);
  await waitFor(() => subscribes(ws).length === 1);
  gateway.notify(ws, "42-3");
  await waitFor(() => seen.length === 1);
  first.close();

  const second = open(); // the page, reloaded
  t.after(async () => {
    second.close();
    await gateway.stop();
  });
  second.notifications(() => {});
  const next = await gateway.connection(2);
  await waitFor(() => subscribes(next).length === 1);
  assert.equal(subscribes(next)[0].since, "42-3");
  assert.equal(store.get(`tickwire:last-id:http://127.0.0.1:${gateway.port}/ws:alice`), null, "ws: URLs keep their own scheme");
  assert.equal(store.get(`tickwire:last-id:ws://127.0.0.1:${gateway.port}/ws:alice`), "42-3", "keyed by gateway and user");
});

test("webStorageStore keeps ids in a Web Storage, and survives a storage that throws", () => {
  const values = new Map();
  const storage = { getItem: (k) => values.get(k) ?? null, setItem: (k, v) => values.set(k, v) };
  const store = webStorageStore(storage);
  assert.equal(store.get("k"), null);
  store.set("k", "1-0");
  assert.equal(values.get("k"), "1-0");
  assert.equal(store.get("k"), "1-0");
  const broken = webStorageStore({
    getItem() {
      throw new Error("SecurityError");
    },
    setItem() {
      throw new Error("QuotaExceededError");
    },
  });
  assert.equal(broken.get("k"), null);
  assert.doesNotThrow(() => broken.set("k", "1-0"));
});

test("a stored id the server does not accept: start from now, and report the gap", async (t) => {
  const store = memoryStore();
  const { gateway, tw } = await connectFake(t, { store }, (g) => {
    g.intercept = (ws, message) => {
      if (message.channel !== "notifications" || !message.since) return false;
      ws.send({ event: "error", data: { code: "INVALID_MESSAGE", message: "since is not an event id this server issued", details: {}, request_id: message.request_id } });
      return true;
    };
  });
  const url = new URL(gateway.url);
  store.set(`tickwire:last-id:${url.origin}${url.pathname}:alice`, "not-an-id");
  const gaps = record(tw, "gap");
  const stop = tw.notifications(() => {});
  assert.deepEqual(await stop.ready, { recovered: false, since: null });
  const ws = await gateway.connection(1);
  assert.deepEqual(subscribes(ws).map((m) => m.since), ["not-an-id", undefined]);
  assert.deepEqual(gaps, [{ userId: "alice", since: "not-an-id" }]);
});

test("stop() unsubscribes when the last listener stops", async (t) => {
  const { gateway, tw } = await connectFake(t);
  const first = tw.notifications(() => {});
  const second = tw.notifications(() => {});
  await Promise.all([first.ready, second.ready]);
  const ws = await gateway.connection(1);
  await first();
  const unsubscribes = () => ws.received.filter((m) => m.action === "unsubscribe");
  assert.equal(unsubscribes().length, 0, "another listener still wants them");
  await second();
  assert.deepEqual(unsubscribes().map((m) => [m.channel, m.user_id]), [["notifications", "alice"]]);
});

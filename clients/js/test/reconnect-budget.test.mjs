// The specification's reconnection budget: 200 SDK clients on a gateway that crashes and
// comes back are all reconnected, resubscribed and holding a fresh price within 5 s of the
// gateway being up again. Prints the figure.

import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Tickwire, memoryStore } from "../tickwire.js";
import { waitFor } from "./support/harness.mjs";
import { TickwireProcess, mintToken, unavailable } from "./support/tickwire-process.mjs";

const CLIENTS = 200;
const BUDGET_MS = 5_000;
const skip = unavailable() ?? false;
const clients = [];
let server;

after(async () => {
  for (const tw of clients) tw.close();
  await server?.stop();
});

test(`${CLIENTS} clients are back with a price within ${BUDGET_MS / 1000} s of a restart`, { skip, timeout: 120_000 }, async () => {
  server = await TickwireProcess.start();
  // Each client remembers when it last got a price.
  const lastPrice = new Array(CLIENTS).fill(0);
  for (let index = 0; index < CLIENTS; index++) {
    const tw = new Tickwire({ url: server.url, token: mintToken({ sub: `budget-${index}` }), store: memoryStore() });
    tw.prices(["BTC", "ETH"], () => (lastPrice[index] = Date.now()));
    clients.push(tw);
  }
  await waitFor(() => lastPrice.every((at) => at > 0), { timeout: 30_000, message: "every client's first price" });

  await server.stop("SIGKILL");
  await waitFor(() => clients.every((tw) => tw.state.state !== "connected"), { timeout: 10_000, message: "every client to notice" });
  await server.restart();
  const up = Date.now();
  await waitFor(() => lastPrice.every((at) => at >= up), { timeout: 30_000, message: "every client's price after the restart" });
  const slowest = Math.max(...lastPrice) - up;
  const connectedNow = clients.filter((tw) => tw.state.state === "connected").length;
  console.log(`reconnection budget: ${CLIENTS} clients back with a price ${slowest} ms after the gateway was up (${connectedNow} connected)`);
  assert.equal(connectedNow, CLIENTS);
  assert.ok(slowest < BUDGET_MS, `the slowest client took ${slowest} ms`);
});

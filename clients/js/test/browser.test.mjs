// The price board (`GET /` on the gateway) in a real headless Chromium: it loads without a
// console error, shows prices that change, shows a published notification, and after its
// gateway is killed and restarted it reconnects and catches up on a notification published
// while it was down (a cluster: the notification waits in Redis).
//
// Needs Chromium and redis-server. Skipped without them, unless TICKWIRE_REQUIRE_BROWSER=1
// (scripts/test.sh sets it, after installing them): then their absence fails the test.

import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { after, before, test } from "node:test";
import { Browser, findChromium } from "./support/chromium.mjs";
import { RedisProcess, redisAvailable } from "./support/redis-process.mjs";
import { BINARY, TickwireProcess, mintToken, notificationData, unavailable } from "./support/tickwire-process.mjs";

const required = process.env.TICKWIRE_REQUIRE_BROWSER === "1";
const missing = unavailable() ?? (findChromium() ? null : "no Chromium") ?? (redisAvailable() ? null : "no redis-server");
const skip = missing && !required ? `${missing} (install it, or run scripts/test.sh)` : false;

let redis;
let gateway;
let browser;

before(async () => {
  if (skip) return;
  redis = await RedisProcess.start();
  gateway = await TickwireProcess.start({ args: ["--redis-url", redis.url, "--feed", "simulated", "--dev"] });
  browser = await Browser.launch();
});

after(async () => {
  await browser?.close();
  await gateway?.stop();
  redis?.stop();
});

/** `tickwire publish` straight to Redis: what a backend does while a gateway is down. */
function publishThroughRedis(user, data) {
  return new Promise((resolve, reject) => {
    const child = spawn(BINARY, ["publish", "--redis-url", redis.url, "--user", user, "--event", "notification", "--data", JSON.stringify(data)]);
    let out = "";
    child.stdout.on("data", (chunk) => (out += chunk));
    child.on("exit", (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`tickwire publish exited ${code}`))));
  });
}

const feedContains = (title) => `[...document.querySelectorAll("#feed li .title")].some((t) => t.textContent === ${JSON.stringify(title)})`;
const state = `document.getElementById("connection").dataset.state`;

test("the board shows live prices and notifications, and catches up after its gateway restarts", { skip, timeout: 120_000 }, async () => {
  const page = await browser.newPage();
  const token = mintToken({ sub: "board-user" });
  await page.goto(`${gateway.httpUrl}/?token=${token}`);

  await page.waitFor(`${state} === "connected"`, { what: "the board to connect" });
  await page.waitFor(`document.querySelectorAll("#rows tr").length >= 20 && [...document.querySelectorAll("#rows .price")].every((p) => /\\d/.test(p.textContent))`, {
    what: "a price in every row",
  });
  const first = await page.evaluate(`document.querySelector("#rows .price").textContent`);
  await page.waitFor(`document.querySelector("#rows .price").textContent !== ${JSON.stringify(first)}`, { what: "the first price to change" });

  await gateway.publish("board-user", "notification", notificationData("n1", "Deposit received"));
  await page.waitFor(feedContains("Deposit received"), { what: "the published notification" });

  // Dev mode: the board's own form publishes to the signed-in user (no API key in the page).
  await page.waitFor(`!document.getElementById("dev").hidden`, { what: "the dev form" });
  await page.evaluate(`(() => { document.getElementById("dev-title-input").value = "From the form"; document.querySelector("#dev-form button").click(); return true; })()`);
  await page.waitFor(feedContains("From the form"), { what: "the form's notification" });
  assert.deepEqual(page.errors, [], "no console error while the gateway is up");

  await gateway.stop("SIGKILL");
  await page.waitFor(`${state} === "reconnecting"`, { what: "the board to show it is reconnecting" });
  await publishThroughRedis("board-user", notificationData("n2", "Sent while you were away"));
  await gateway.restart();
  await page.waitFor(`${state} === "connected"`, { timeoutMs: 40_000, what: "the board to reconnect" });
  await page.waitFor(feedContains("Sent while you were away"), { what: "the missed notification, caught up with since" });
  const afterRestart = await page.evaluate(`document.querySelector("#rows .price").textContent`);
  await page.waitFor(`document.querySelector("#rows .price").textContent !== ${JSON.stringify(afterRestart)}`, { what: "live prices again" });

  // Readable on a phone: nothing wider than 390 px.
  await page.goto(`${gateway.httpUrl}/?token=${token}`, { width: 390, height: 844, mobile: true });
  await page.waitFor(`${state} === "connected"`);
  const width = await page.evaluate(`[document.documentElement.scrollWidth, innerWidth, [...document.querySelectorAll("body *")].filter((e) => e.getBoundingClientRect().right > 391).map((e) => e.tagName + "#" + e.id + "." + e.className + ":" + Math.round(e.getBoundingClientRect().right)).slice(0, 8)]`);
  assert.ok(width[0] <= 390, `no horizontal scrolling at 390 px: ${JSON.stringify(width)}`);
  if (process.env.TICKWIRE_SCREENSHOTS) {
    await page.screenshot(`${process.env.TICKWIRE_SCREENSHOTS}/board-phone.png`);
    await page.goto(`${gateway.httpUrl}/?token=${token}`);
    await page.waitFor(`${state} === "connected"`);
    await gateway.publish("board-user", "transaction_update", {
      transaction_id: "t1", type: "receive", amount: "0.25", symbol: "BTC", status: "confirmed", confirmations: 6,
      from_address: "bc1qxy2kgdygjrsqtzq2n0yrf2493p83kkfjhx0wlh", tx_hash: "9f3c...e1",
    });
    await page.waitFor(`document.querySelectorAll("#feed li").length > 0`);
    await page.screenshot(`${process.env.TICKWIRE_SCREENSHOTS}/board.png`);
  }
  page.close();
});

/** The README's ten-line page, as written, from a local file (the gateway serves the SDK with CORS). */
test("the README's browser quick start works as written", { skip, timeout: 60_000 }, async () => {
  const readme = fs.readFileSync(new URL("../../../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Prices in a browser, in ten lines"));
  const snippet = /```html\n([\s\S]*?)```/.exec(section)[1];
  assert.ok(snippet.split("\n").filter(Boolean).length <= 10, "ten lines at most");
  const page = snippet
    .replaceAll("127.0.0.1:8080", `127.0.0.1:${gateway.port}`)
    .replace("PASTE_THE_DEV_TOKEN", mintToken({ sub: "readme-reader" }));
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "tickwire-readme-")), "prices.html");
  fs.writeFileSync(file, page);
  const tab = await browser.newPage();
  await tab.goto(`file://${file}`);
  await tab.waitFor(`document.title === "connected"`, { what: "the state callback" });
  await tab.waitFor(`document.querySelectorAll("body > div").length >= 4`, { what: "a line per price" });
  const first = await tab.evaluate(`document.querySelector("body > div").textContent`);
  assert.match(first, /^[A-Z]+ \$\d[\d.]* -?\d/, first);
  await gateway.publish("readme-reader", "notification", notificationData("r1", "Hello"));
  await tab.waitFor(`[...document.querySelectorAll("body > div b")].some((b) => b.textContent === "notification")`, { what: "the notification line" });
  assert.deepEqual(tab.errors, []);
  tab.close();
});

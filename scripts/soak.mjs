// Soak test of issue 12, through the project's own JavaScript SDK. scripts/soak.sh starts the
// cluster (Redis, two gateways, a price feed) and runs this driver (Node 20 with
// --experimental-websocket; no packages):
//
//   warm-up  every client runs (stayers, churners, a steady publisher); then every client leaves
//            and, once both gateways report no connection and no socket, each gateway's RSS and
//            open descriptors become its baseline;
//   main     the clients come back and churn; halfway, gateway 1 is restarted (SIGTERM, then the
//            same command line), and its clients reconnect and catch up with `since`;
//   end      publishing stops, deliveries settle, every client leaves, the gateways are measured.
//
// Four checks, each printed with its numbers, then one JSON result (--json) and one `SOAK:` line.
// A gateway that stops answering ends the run at once (with its threads' stacks when gdb is
// installed). Exit status: 0 passed, 1 failed, 2 bad options.

import { spawn, spawnSync } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { parseArgs } from "node:util";
import { Tickwire, memoryStore } from "../clients/js/tickwire.js";

// ---------------------------------------------------------------------------
// Options: the defaults are the CI form of the scenario.

const OPTIONS = {
  minutes: { type: "string", help: "length of the run, warm-up included (required)" },
  clients: { type: "string", default: "2000", help: "clients in all, stayers included" },
  stayers: { type: "string", default: "500", help: "clients there for the whole run (users stay-0...)" },
  rate: { type: "string", default: "50", help: "notifications published per second" },
  "warmup-seconds": { type: "string", help: "warm-up length (default: 10% of the run, at most 60 s)" },
  "life-seconds": { type: "string", default: "1-20", help: "how long a churner stays connected, MIN-MAX" },
  "pause-seconds": { type: "string", default: "1-10", help: "how long a churner stays away, MIN-MAX" },
  "settle-seconds": { type: "string", default: "60", help: "longest wait for deliveries, and for the gateways to empty" },
  "rss-tolerance": { type: "string", default: "5", help: "percent of RSS growth allowed on gateway 2" },
  "fd-tolerance": { type: "string", default: "0", help: "open descriptors allowed off the baseline" },
  json: { type: "string", help: "write the result as JSON to this file" },
  "run-dir": { type: "string", help: "soak.sh's folder: NAME.pid, NAME.argv, NAME.log of each gateway" },
  gateway: { type: "string", multiple: true, help: "NAME:PORT:METRICS_PORT, twice (the first is restarted)" },
  help: { type: "boolean" },
};
const SYMBOLS = ["BTC", "ETH", "SOL", "XLM", "XRP", "BNB", "ADA", "DOGE", "TRX", "TON", "AVAX", "DOT", "LINK", "LTC", "BCH", "UNI", "ATOM", "NEAR", "SHIB", "USDT"];

function readOptions() {
  const { values } = parseArgs({ options: OPTIONS });
  if (values.help) {
    console.log("usage: scripts/soak.sh MINUTES [--binary PATH] [options]   (soak.sh passes --minutes, --run-dir, --gateway)");
    for (const [name, { help, default: value }] of Object.entries(OPTIONS)) {
      if (help) console.log(`  --${name.padEnd(16)} ${help}${value ? ` (default: ${value})` : ""}`);
    }
    process.exit(0);
  }
  const number = (name, text = values[name]) => {
    const value = Number(text);
    if (text === undefined || !Number.isFinite(value) || value < 0) usage(`--${name} must be a non-negative number, not '${text}'`);
    return value;
  };
  const range = (name) => {
    const [low, high = low] = values[name].split("-").map((text) => number(name, text));
    if (high < low) usage(`--${name} must be MIN-MAX, not '${values[name]}'`);
    return [low, high];
  };
  const minutes = number("minutes");
  if (!(minutes > 0)) usage("--minutes must be a positive number");
  if (values.gateway?.length !== 2 || !values["run-dir"]) usage("--run-dir and two --gateway are needed (soak.sh passes them)");
  const clients = Math.floor(number("clients"));
  const stayers = Math.min(clients, Math.floor(number("stayers")));
  return {
    minutes,
    clients,
    stayers,
    churners: clients - stayers,
    rate: number("rate"),
    warmupSeconds: values["warmup-seconds"] === undefined ? Math.min(60, minutes * 6) : number("warmup-seconds"),
    lifeSeconds: range("life-seconds"),
    pauseSeconds: range("pause-seconds"),
    settleMs: number("settle-seconds") * 1000,
    rssTolerance: number("rss-tolerance") / 100,
    fdTolerance: number("fd-tolerance"),
    json: values.json,
    runDir: values["run-dir"],
    gateways: values.gateway.map((spec) => {
      const [name, port, metricsPort] = spec.split(":");
      return { name, port: Number(port), metricsPort: Number(metricsPort) };
    }),
  };
}

function usage(message) {
  console.error(`soak.mjs: ${message}`);
  process.exit(2);
}

// ---------------------------------------------------------------------------
// Small helpers

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const uniform = ([low, high]) => low + Math.random() * (high - low);
const pick = (list) => list[Math.floor(Math.random() * list.length)];

/** Polls `condition` every 250 ms; true once it holds, false when `timeoutMs` ran out. */
async function waitUntil(condition, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await condition()) return true;
    if (Date.now() > deadline) return false;
    await sleep(250);
  }
}

/** Notification ids are `MILLISECONDS-SEQUENCE` (Redis stream ids): compared as two numbers. */
function compareIds(a, b) {
  const [aTime, aSeq] = a.split("-").map(Number);
  const [bTime, bSeq] = b.split("-").map(Number);
  return aTime - bTime || aSeq - bSeq;
}

/** An HS256 JWT for `sub`, signed with the gateways' secret; it outlives any run. */
function mintToken(sub, secret) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub, iat: now - 5, exp: now + 6 * 3600 })}`;
  return `${unsigned}.${crypto.createHmac("sha256", secret).update(unsigned).digest("base64url")}`;
}

/**
 * One HTTP request, failed when there is no answer `timeoutMs` after it was made (time spent
 * queued in `agent` included). `agent: false`: a connection of its own, closed after it.
 */
function request({ port, method = "GET", path, body, headers = {}, agent = false, timeoutMs = 10_000 }) {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: "127.0.0.1", port, method, path, agent, headers }, (res) => {
      let text = "";
      res.setEncoding("utf8");
      res.on("data", (chunk) => (text += chunk));
      res.on("end", () => resolve({ status: res.statusCode, text }));
      res.on("error", reject);
    });
    const timer = setTimeout(() => req.destroy(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
    req.on("close", () => clearTimeout(timer));
    req.on("error", reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------
// Gateways: metrics, /proc, restart

class Gateway {
  /** False while it is restarted on purpose: it takes no publish and the watchdog leaves it alone. */
  up = true;

  constructor({ name, port, metricsPort }, runDir) {
    Object.assign(this, { name, port, metricsPort, runDir });
    this.pidFile = `${runDir}/${name}.pid`;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get pid() {
    return Number(fs.readFileSync(this.pidFile, "utf8"));
  }

  /** Prometheus text as name{labels} -> value, from the metrics port (so a scrape is no client socket). */
  async metrics() {
    const { text } = await request({ port: this.metricsPort, path: "/metrics", timeoutMs: 5_000 });
    const values = new Map();
    for (const line of text.split("\n")) {
      const match = /^([a-z_]+(?:\{[^}]*\})?) (\S+)$/.exec(line);
      if (match) values.set(match[1], Number(match[2]));
    }
    return values;
  }

  /** The metrics of check (iv), or null when the gateway does not answer. */
  async connectionMetrics() {
    let values;
    try {
      values = await this.metrics();
    } catch {
      return null;
    }
    let disconnects = 0;
    for (const [key, value] of values) if (key.startsWith("tickwire_disconnects_total{")) disconnects += value;
    return {
      active: values.get("tickwire_connections_active"),
      sockets: values.get("tickwire_sockets_open"),
      connects: values.get("tickwire_connects_total"),
      disconnects,
    };
  }

  async isIdle() {
    const metrics = await this.connectionMetrics();
    return metrics?.active === 0 && metrics?.sockets === 0;
  }

  async answers() {
    try {
      return (await request({ port: this.metricsPort, path: "/healthz", timeoutMs: 5_000 })).status === 200;
    } catch {
      return false;
    }
  }

  /**
   * RSS (kB) and open descriptors, with what the descriptors are (socket, eventfd, ...) to tell
   * which kind changed. Read until two readings agree, so that a socket the kernel is still
   * closing is not counted.
   */
  async usage() {
    const pid = this.pid;
    try {
      const read = () => fs.readdirSync(`/proc/${pid}/fd`);
      let fds = read();
      for (let tries = 0; tries < 20; tries++) {
        await sleep(500);
        const again = read();
        if (again.length === fds.length) break;
        fds = again;
      }
      const fdKinds = {};
      for (const fd of fds) {
        try {
          const kind = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, "");
          fdKinds[kind] = (fdKinds[kind] ?? 0) + 1;
        } catch {
          // closed meanwhile
        }
      }
      const rssKb = Number(/VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
      return { pid, rssKb, fds: fds.length, fdKinds };
    } catch {
      return { pid, rssKb: null, fds: null, fdKinds: {} }; // the process is gone
    }
  }

  /** SIGTERM (the gateway drains its clients with 1001), wait for the exit, then the same command line again. */
  async restart(problems) {
    const oldPid = this.pid;
    const stopping = Date.now();
    process.kill(oldPid, "SIGTERM");
    const exited = () => {
      try {
        return /^\d+ \(.*\) Z/.test(fs.readFileSync(`/proc/${oldPid}/stat`, "utf8")); // a zombie has exited
      } catch {
        return true;
      }
    };
    if (!(await waitUntil(exited, 60_000))) {
      problems.push(`${this.name} (pid ${oldPid}) did not exit within 60 s of SIGTERM: killed`);
      process.kill(oldPid, "SIGKILL");
      await waitUntil(exited, 10_000);
    }
    const drainMs = Date.now() - stopping;
    const [binary, ...args] = fs.readFileSync(`${this.runDir}/${this.name}.argv`, "utf8").trimEnd().split("\n");
    const log = fs.openSync(`${this.runDir}/${this.name}.log`, "a");
    const child = spawn(binary, args, { stdio: ["ignore", log, log] });
    child.unref();
    fs.closeSync(log);
    fs.writeFileSync(this.pidFile, `${child.pid}\n`); // soak.sh stops whatever this file names
    if (!(await waitUntil(async () => {
      try {
        return (await request({ port: this.metricsPort, path: "/readyz", timeoutMs: 5_000 })).status === 200;
      } catch {
        return false;
      }
    }, 60_000))) {
      throw new Error(`${this.name} was not ready within 60 s of its restart`);
    }
    return { oldPid, newPid: child.pid, drainMs, downMs: Date.now() - stopping };
  }

  /**
   * Saves every thread's stack (gdb, when installed) next to the logs, and returns the first
   * frame of this project's code in each thread, which is where a deadlock shows.
   */
  backtrace() {
    const file = `${this.runDir}/${this.name}-stacks.txt`;
    const gdb = spawnSync("gdb", ["-p", String(this.pid), "-batch", "-ex", "thread apply all bt 40"], { encoding: "utf8", timeout: 120_000 });
    if (gdb.error) return `no stacks (gdb ${gdb.error.code === "ENOENT" ? "is not installed" : gdb.error.message})`;
    fs.writeFileSync(file, gdb.stdout);
    const frames = [];
    for (const thread of gdb.stdout.split(/\n(?=Thread \d+ )/)) {
      const name = /^Thread \d+ .*?"([^"]+)"/.exec(thread)?.[1];
      const frame = /\$s\w+? \(.*?\) at \/\S+\/(Sources\/Tickwire\w+\/\S+)/.exec(thread)?.[1];
      if (name && frame) frames.push(`${name} at ${frame}`);
    }
    return `threads ${frames.join(", ") || "in no Tickwire code"}; stacks in ${file}`;
  }
}

/** Waits until no gateway holds a connection or a socket; false after `timeoutMs`. */
async function waitForIdle(gateways, timeoutMs) {
  return waitUntil(async () => (await Promise.all(gateways.map((gateway) => gateway.isIdle()))).every(Boolean), timeoutMs);
}

/**
 * Asks each gateway for /healthz every 5 s; `hung` rejects once one has not answered 3 asks in a
 * row, and `hungGateways` names it.
 */
function watch(gateways, problems) {
  let fail;
  const hung = new Promise((_, reject) => (fail = reject));
  hung.catch(() => {});
  const hungGateways = new Set();
  const misses = new Map(gateways.map((gateway) => [gateway, 0]));
  const timer = setInterval(async () => {
    for (const gateway of gateways) {
      if (!gateway.up) continue;
      const missed = (await gateway.answers()) ? 0 : misses.get(gateway) + 1;
      misses.set(gateway, missed);
      if (missed === 3) {
        clearInterval(timer);
        hungGateways.add(gateway);
        problems.push(`${gateway.name} (pid ${gateway.pid}) stopped answering /healthz: ${gateway.backtrace()}`);
        fail(new Error(`${gateway.name} hung`));
      }
    }
  }, 5_000);
  return { hung, hungGateways, stop: () => clearInterval(timer) };
}

// ---------------------------------------------------------------------------
// Publisher: notifications at a steady rate to random users, acknowledged ids kept per user

class Publisher {
  /** user -> the ids the gateways acknowledged for it. */
  acked = new Map();
  published = 0;
  failed = 0;
  #sequence = 0;
  #inFlight = new Set();
  #timer = null;
  #agents = new Map();

  constructor(gateways, users, apiKey, rate) {
    Object.assign(this, { gateways, users, apiKey, rate });
  }

  start() {
    const startedAt = Date.now();
    let sent = 0;
    // Sends whatever is due by the clock, so a late timer does not lower the rate.
    this.#timer = setInterval(() => {
      const due = Math.floor(((Date.now() - startedAt) / 1000) * this.rate) - sent;
      for (let i = 0; i < due; i++) this.publish(pick(this.users));
      sent += Math.max(0, due);
    }, 100);
  }

  /** Stops sending, waits for the answers in flight, and closes the kept-alive connections (they count as gateway sockets). */
  async stop() {
    clearInterval(this.#timer);
    await Promise.allSettled([...this.#inFlight]);
    for (const agent of this.#agents.values()) agent.destroy();
    this.#agents.clear();
  }

  /** Publishes one notification to `user` through the next gateway that is up; settles when answered or failed. */
  publish(user) {
    const gateways = this.gateways.filter((gateway) => gateway.up);
    const sequence = ++this.#sequence;
    const gateway = gateways[sequence % gateways.length];
    if (!this.#agents.has(gateway)) this.#agents.set(gateway, new http.Agent({ keepAlive: true, maxSockets: 8 }));
    const sending = request({
      port: gateway.port,
      method: "POST",
      path: "/api/v1/publish",
      agent: this.#agents.get(gateway),
      headers: { authorization: `Bearer ${this.apiKey}`, "content-type": "application/json" },
      body: JSON.stringify({
        user_id: user,
        event: "notification",
        // The user in notification_id lets a client notice an event meant for someone else.
        data: { notification_id: `soak-${sequence}-${user}`, type: "info", title: "T", message: "M", priority: "normal" },
      }),
    }).then(
      ({ status, text }) => {
        if (status !== 200) return void this.failed++;
        this.published++;
        if (!this.acked.has(user)) this.acked.set(user, []);
        this.acked.get(user).push(JSON.parse(text).id);
      },
      () => void this.failed++,
    );
    this.#inFlight.add(sending);
    sending.finally(() => this.#inFlight.delete(sending));
    return sending;
  }
}

// ---------------------------------------------------------------------------
// Clients

/** A notification meant for another user (its notification_id names the user it was sent to). */
function isMisrouted(event, user) {
  return !String(event.data?.notification_id ?? "").endsWith(`-${user}`);
}

/**
 * A client there for the whole run but for the warm-up's end, when every client leaves: it
 * comes back with connect(), and its store's `since` catches it up. It records every id the SDK
 * hands over, and counts ids the server sent twice (the SDK drops those before the app sees them).
 */
class Stayer {
  delivered = [];
  serverRepeats = 0;
  misrouted = 0;
  gaps = 0;
  subscribed = false;
  #seen = new Set();

  constructor(index, gateway, secret) {
    this.user = `stay-${index}`;
    this.gateway = gateway;
    this.tw = new Tickwire({ url: gateway.url, token: () => mintToken(this.user, secret), store: memoryStore() });
    this.tw.prices([SYMBOLS[index % 5], SYMBOLS[(index + 1) % 5], SYMBOLS[5 + (index % 15)]], () => {});
    this.ready = this.tw.notifications((event) => {
      this.delivered.push(event.id);
      if (isMisrouted(event, this.user)) this.misrouted++;
    }).ready;
    this.tw.on("message", (message) => {
      if (message.event === "subscribed" && message.data?.channel === "notifications") this.subscribed = true;
      if (typeof message.id !== "string") return;
      if (this.#seen.has(message.id)) this.serverRepeats++;
      this.#seen.add(message.id);
    });
    this.tw.on("state", ({ state }) => state !== "connected" && (this.subscribed = false));
    this.tw.on("gap", () => this.gaps++);
  }
}

/** Churners: each slot connects as a new client, subscribes, drops some of it, leaves, pauses, and again. */
class Churn {
  cycles = 0;
  deliveries = 0;
  misrouted = 0;
  #live = new Set();
  #generation = 0;

  constructor(count, gateways, secret, options) {
    Object.assign(this, { count, gateways, secret, options });
  }

  start() {
    const generation = ++this.#generation;
    for (let slot = 0; slot < this.count; slot++) this.#cycle(slot, generation);
  }

  /** Ends every slot's loop and closes its client now. */
  stop() {
    this.#generation++;
    for (const tw of this.#live) tw.close();
    this.#live.clear();
  }

  async #cycle(slot, generation) {
    const user = `churn-${slot}`;
    const current = () => generation === this.#generation;
    // The first connections spread over a pause, so that the slots do not move in step.
    await sleep(uniform([0, this.options.pauseSeconds[1]]) * 1000);
    while (current()) {
      this.cycles++;
      const tw = new Tickwire({ url: pick(this.gateways).url, token: () => mintToken(user, this.secret), store: memoryStore() });
      this.#live.add(tw);
      const stops = [];
      const wantPrices = Math.random() < 0.7;
      if (wantPrices) {
        for (let calls = 1 + Math.floor(Math.random() * 3); calls > 0; calls--) stops.push(tw.prices([pick(SYMBOLS), pick(SYMBOLS)], () => {}));
      }
      if (!wantPrices || Math.random() < 0.6) {
        stops.push(tw.notifications((event) => {
          this.deliveries++;
          if (isMisrouted(event, user)) this.misrouted++;
        }));
      }
      const lifeMs = uniform(this.options.lifeSeconds) * 1000;
      const unsubscribeAfterMs = lifeMs * Math.random();
      await sleep(unsubscribeAfterMs);
      if (!current()) return;
      if (stops.length > 1) stops.splice(Math.floor(Math.random() * stops.length), 1)[0](); // unsubscribe some
      await sleep(lifeMs - unsubscribeAfterMs);
      if (!current()) return;
      tw.close();
      this.#live.delete(tw);
      await sleep(uniform(this.options.pauseSeconds) * 1000);
    }
  }
}

// ---------------------------------------------------------------------------
// Checks: each returns { passed, line, ...numbers }

/** (i) Every notification acknowledged for a stayer reached that stayer's client exactly once, in order. */
function checkNoLoss(stayers, publisher) {
  const n = { acknowledged: 0, delivered: 0, lost: 0, duplicated: 0, outOfOrder: 0, misrouted: 0, unacknowledged: 0, serverRepeats: 0, gaps: 0 };
  const examples = [];
  for (const stayer of stayers) {
    const acked = publisher.acked.get(stayer.user) ?? [];
    const delivered = new Set(stayer.delivered);
    const ackedSet = new Set(acked);
    n.acknowledged += acked.length;
    n.delivered += stayer.delivered.length;
    n.duplicated += stayer.delivered.length - delivered.size;
    for (const id of acked.filter((id) => !delivered.has(id))) {
      n.lost++;
      if (examples.length < 5) examples.push(`${stayer.user} (${stayer.gateway.name}) lost ${id}, published ${new Date(Number(id.split("-")[0])).toISOString()}`);
    }
    for (let i = 1; i < stayer.delivered.length; i++) {
      if (compareIds(stayer.delivered[i - 1], stayer.delivered[i]) >= 0) n.outOfOrder++;
    }
    // Stored but not acknowledged: a publish whose answer was lost. Not a failure.
    for (const id of delivered) if (!ackedSet.has(id)) n.unacknowledged++;
    n.misrouted += stayer.misrouted;
    n.serverRepeats += stayer.serverRepeats;
    n.gaps += stayer.gaps;
  }
  const passed = n.lost === 0 && n.duplicated === 0 && n.outOfOrder === 0 && n.misrouted === 0;
  const line = `check (i)   ${passed ? "PASS" : "FAIL"} no loss for stayers: ${stayers.length} stayers, ${n.acknowledged} notifications ` +
    `acknowledged for them, ${n.delivered} delivered; lost ${n.lost}, duplicated ${n.duplicated}, out of order ${n.outOfOrder}, ` +
    `misrouted ${n.misrouted} (also: ${n.unacknowledged} delivered without an acknowledgement, ${n.serverRepeats} ids ` +
    `the server sent twice, ${n.gaps} gap events)` + examples.map((example) => `\n              ${example}`).join("");
  return { name: "no loss", passed, line, ...n, examples };
}

const kb = (value) => (value === null || value === undefined ? "?" : `${value} kB`);
const growth = (base, end) => (base && end ? (end - base) / base : null);
const percent = (ratio) => (ratio === null ? "?" : `${ratio >= 0 ? "+" : ""}${(ratio * 100).toFixed(2)}%`);

/** (ii) No leak: gateway 2, never restarted, ends within the tolerance of its baseline RSS (less is fine). Gateway 1's process changed: printed only. */
function checkMemory(gateways, baseline, end, tolerance) {
  const rows = gateways.map((gateway, i) => ({
    gateway: gateway.name, rssKbBaseline: baseline?.[i].rssKb ?? null, rssKbEnd: end?.[i].rssKb ?? null,
    growth: growth(baseline?.[i].rssKb, end?.[i].rssKb),
  }));
  const passed = rows[1].growth !== null && rows[1].growth <= tolerance;
  const line = `check (ii)  ${passed ? "PASS" : "FAIL"} RSS: ${rows[1].gateway} ${kb(rows[1].rssKbBaseline)} -> ${kb(rows[1].rssKbEnd)} ` +
    `(${percent(rows[1].growth)}, at most +${tolerance * 100}%); ${rows[0].gateway}, restarted, not checked: ` +
    `${kb(rows[0].rssKbBaseline)} -> ${kb(rows[0].rssKbEnd)} (${percent(rows[0].growth)})`;
  return { name: "memory", passed, line, tolerance, gateways: rows };
}

/**
 * (iii) Open descriptors back to the baseline. Gateway 1's end is its new process's, compared with
 * its first process's baseline: the same command line holds the same descriptors at rest (soak.sh
 * closes what it inherited, so neither process holds anything foreign).
 */
function checkDescriptors(gateways, baseline, end, tolerance) {
  const rows = gateways.map((gateway, i) => {
    const before = baseline?.[i] ?? { fds: null, fdKinds: {} };
    const after = end?.[i] ?? { fds: null, fdKinds: {} };
    const changed = {};
    for (const kind of new Set([...Object.keys(before.fdKinds), ...Object.keys(after.fdKinds)])) {
      const delta = (after.fdKinds[kind] ?? 0) - (before.fdKinds[kind] ?? 0);
      if (delta !== 0 && before.fds !== null) changed[kind] = delta;
    }
    return { gateway: gateway.name, fdsBaseline: before.fds, fdsEnd: after.fds, changed };
  });
  const passed = rows.every((row) => row.fdsEnd !== null && row.fdsBaseline !== null && Math.abs(row.fdsEnd - row.fdsBaseline) <= tolerance);
  const line = `check (iii) ${passed ? "PASS" : "FAIL"} open descriptors: ` + rows.map((row) => {
    const changed = Object.entries(row.changed).map(([kind, delta]) => `${kind} ${delta > 0 ? "+" : ""}${delta}`);
    return `${row.gateway} ${row.fdsBaseline ?? "?"} -> ${row.fdsEnd ?? "?"}${changed.length ? ` (${changed.join(", ")})` : ""}`;
  }).join(", ") + ` (tolerance ${tolerance})`;
  return { name: "descriptors", passed, line, tolerance, gateways: rows };
}

/**
 * (iv) Connection metrics consistent at rest. tickwire_connects_total counts WebSocket handshakes
 * and tickwire_disconnects_total{code} one close per handshake (counted when the close is
 * decided, or as 1006 when the socket just ends), so connects minus the disconnects of every code
 * is the WebSockets still open: tickwire_connections_active, which must be 0 here, as must
 * tickwire_sockets_open (HTTP and WebSocket sockets of the public port).
 */
function checkMetrics(gateways, endMetrics) {
  const rows = gateways.map((gateway, i) => {
    const m = endMetrics?.[i];
    if (!m) return { gateway: gateway.name, answered: false, consistent: false };
    const openByCounters = m.connects - m.disconnects;
    return { gateway: gateway.name, ...m, openByCounters, consistent: m.active === 0 && m.sockets === 0 && openByCounters === m.active };
  });
  const passed = rows.every((row) => row.consistent);
  const line = `check (iv)  ${passed ? "PASS" : "FAIL"} metrics at rest: ` + rows.map((row) =>
    row.answered === false ? `${row.gateway} did not answer /metrics`
      : `${row.gateway} active ${row.active}, sockets ${row.sockets}, connects ${row.connects} - disconnects ${row.disconnects} = ${row.openByCounters}`,
  ).join("; ");
  return { name: "metrics", passed, line, gateways: rows };
}

// ---------------------------------------------------------------------------
// The run

async function main() {
  const options = readOptions();
  const secret = process.env.TICKWIRE_SOAK_JWT_SECRET;
  const apiKey = process.env.TICKWIRE_SOAK_API_KEY;
  if (!secret || !apiKey) usage("TICKWIRE_SOAK_JWT_SECRET and TICKWIRE_SOAK_API_KEY must be set (soak.sh sets them)");
  const gateways = options.gateways.map((spec) => new Gateway(spec, options.runDir));
  const startedAt = Date.now();
  const endsAt = startedAt + options.minutes * 60_000;
  const events = [];
  const log = (text) => {
    events.push(text);
    console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] ${text}`);
  };
  const problems = [];
  const watchdog = watch(gateways, problems);

  const stayers = Array.from({ length: options.stayers }, (_, index) => new Stayer(index, gateways[index % 2], secret));
  const churn = new Churn(options.churners, gateways, secret, options);
  const users = [...stayers.map((stayer) => stayer.user), ...Array.from({ length: options.churners }, (_, slot) => `churn-${slot}`)];
  const publisher = new Publisher(gateways, users, apiKey, options.rate);
  const subscribedStayers = () => stayers.filter((stayer) => stayer.subscribed).length;
  const deliveredToStayers = () => stayers.reduce((sum, stayer) => sum + stayer.delivered.length, 0);
  const progress = setInterval(() => {
    console.log(`[${((Date.now() - startedAt) / 1000).toFixed(1).padStart(6)} s] stayers subscribed ${subscribedStayers()}/${stayers.length}, ` +
      `churn cycles ${churn.cycles}, published ${publisher.published} (failed ${publisher.failed}), delivered to stayers ${deliveredToStayers()}`);
  }, 30_000);
  const run = { baseline: null, restart: null };

  async function phases() {
    // (a) Warm-up.
    log(`warm-up: ${options.clients} clients (${options.stayers} stayers), ${options.rate} notifications/s, ${options.warmupSeconds} s`);
    churn.start();
    await Promise.race([Promise.allSettled(stayers.map((stayer) => stayer.ready)), sleep(options.settleMs)]);
    log(`stayers subscribed: ${subscribedStayers()}/${stayers.length}`);
    // One notification to each stayer first: a client that has received none has no `since`, and
    // could not catch up on what is published while it is away at the end of the warm-up.
    await Promise.all(stayers.map((stayer) => publisher.publish(stayer.user)));
    await waitUntil(() => stayers.every((stayer) => stayer.delivered.length > 0), options.settleMs);
    publisher.start();
    await sleep(startedAt + options.warmupSeconds * 1000 - Date.now());
    churn.stop();
    for (const stayer of stayers) stayer.tw.close();
    // Publishing goes on a little while the stayers are away: they catch up on it when they return.
    await sleep(5_000);
    await publisher.stop();
    const idle = await waitForIdle(gateways, options.settleMs);
    run.baseline = await Promise.all(gateways.map((gateway) => gateway.usage()));
    log(`baseline${idle ? "" : " (the gateways did NOT empty)"}: ` +
      run.baseline.map((u, i) => `${gateways[i].name} pid ${u.pid} rss ${kb(u.rssKb)} fds ${u.fds}`).join(", "));

    // (b) Main phase, gateway 1 restarted halfway.
    const mainStartedAt = Date.now();
    for (const stayer of stayers) stayer.tw.connect();
    churn.start();
    publisher.start();
    await sleep((mainStartedAt + endsAt) / 2 - Date.now());
    log(`restarting ${gateways[0].name} (SIGTERM)`);
    gateways[0].up = false;
    run.restart = await gateways[0].restart(problems);
    gateways[0].up = true;
    log(`${gateways[0].name} restarted: pid ${run.restart.oldPid} gone ${run.restart.drainMs} ms after SIGTERM, ` +
      `pid ${run.restart.newPid} ready ${run.restart.downMs} ms after it`);
    const restartedAt = Date.now();
    const stayersBack = waitUntil(() => stayers.every((stayer) => stayer.subscribed), endsAt + options.settleMs - restartedAt).then((back) =>
      log(`stayers ${back ? "all" : "NOT all"} subscribed again ${((Date.now() - restartedAt) / 1000).toFixed(1)} s after the restart ` +
        `(${subscribedStayers()}/${stayers.length})`));

    // (c) End.
    await sleep(endsAt - Date.now());
    await publisher.stop();
    const settled = await waitUntil(() => stayers.every((stayer) => {
      const delivered = new Set(stayer.delivered);
      return (publisher.acked.get(stayer.user) ?? []).every((id) => delivered.has(id));
    }), options.settleMs);
    await stayersBack;
    log(`publishing stopped; deliveries ${settled ? "settled" : "did NOT settle"}`);
  }

  try {
    await Promise.race([phases(), watchdog.hung]);
  } catch (error) {
    if (!problems.length) problems.push(`the driver stopped: ${error.stack ?? error}`);
    log(`run cut short: ${problems[0]}`);
  }
  watchdog.stop();
  await publisher.stop();
  churn.stop();
  for (const stayer of stayers) stayer.tw.close();
  const hung = watchdog.hungGateways.size > 0;
  const idle = await waitForIdle(gateways.filter((gateway) => !watchdog.hungGateways.has(gateway)), options.settleMs) && !hung;
  const end = await Promise.all(gateways.map((gateway) => gateway.usage()));
  const endMetrics = await Promise.all(gateways.map((gateway) => gateway.connectionMetrics()));
  log(`end${idle ? "" : " (the gateways did NOT empty)"}: ` + end.map((u, i) => `${gateways[i].name} pid ${u.pid} rss ${kb(u.rssKb)} fds ${u.fds}`).join(", "));
  clearInterval(progress);

  const checks = [
    checkNoLoss(stayers, publisher),
    checkMemory(gateways, run.baseline, end, options.rssTolerance),
    checkDescriptors(gateways, run.baseline, end, options.fdTolerance),
    checkMetrics(gateways, endMetrics),
  ];
  for (const check of checks) console.log(check.line);
  for (const problem of problems) console.log(`problem: ${problem}`);
  const passed = problems.length === 0 && checks.every((check) => check.passed);
  const [noLoss] = checks;
  if (options.json) {
    const result = {
      passed, minutes: options.minutes, clients: options.clients, stayers: options.stayers, rate: options.rate,
      published: publisher.published, publishFailed: publisher.failed, churnCycles: churn.cycles,
      churnerDeliveries: churn.deliveries, churnerMisrouted: churn.misrouted,
      restart: run.restart, baseline: run.baseline, end, endMetrics,
      checks: checks.map(({ line, ...check }) => check), problems, events,
    };
    fs.writeFileSync(options.json, `${JSON.stringify(result, null, 2)}\n`);
  }
  const perGateway = (field) => gateways.map((g, i) => `${g.name}=${run.baseline?.[i][field] ?? "?"}->${end[i][field] ?? "?"}`).join(" ");
  console.log(`SOAK: ${passed ? "PASSED" : "FAILED"} minutes=${options.minutes} clients=${options.clients} ` +
    `published=${publisher.published} to_stayers=${noLoss.acknowledged} delivered_to_stayers=${noLoss.delivered} ` +
    `lost=${noLoss.lost} duplicated=${noLoss.duplicated} rss_kb ${perGateway("rssKb")} fds ${perGateway("fds")}` +
    (hung ? " (a gateway hung)" : ""));
  process.exit(passed ? 0 : 1);
}

main().catch((error) => {
  console.error(`soak.mjs: ${error.stack ?? error}`);
  console.log("SOAK: FAILED (the driver stopped: see above)");
  process.exit(1);
});

// A real `tickwire serve` for tests: started on a free (or given) port, killed and
// restarted on demand, with HS256 tokens minted here and notifications published over
// its HTTP API.

import { spawn } from "node:child_process";
import crypto from "node:crypto";
import fs from "node:fs";
import http from "node:http";
import { fileURLToPath } from "node:url";

// At least 32 characters each: the server refuses shorter ones.
export const JWT_SECRET = "js-sdk-tests-jwt-secret-0123456789abcdef";
export const API_KEY = "js-sdk-tests-api-key-0123456789abcdefghij";

/** The binary under test: $TICKWIRE_BIN, else the debug build of this checkout. */
export const BINARY = process.env.TICKWIRE_BIN ?? fileURLToPath(new URL("../../../../.build/debug/tickwire", import.meta.url));

/** Why the real-server tests cannot run here, or null when they can. */
export function unavailable() {
  return fs.existsSync(BINARY) ? null : `no tickwire binary at ${BINARY} (swift build, or set TICKWIRE_BIN)`;
}

/** An HS256 JWT: `sub`, `iat` (a little in the past, for clock skew) and `exp`. */
export function mintToken({ sub, ttlSeconds = 3600, secret = JWT_SECRET } = {}) {
  const encode = (value) => Buffer.from(JSON.stringify(value)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const unsigned = `${encode({ alg: "HS256", typ: "JWT" })}.${encode({ sub, iat: now - 5, exp: now + ttlSeconds })}`;
  const signature = crypto.createHmac("sha256", secret).update(unsigned).digest("base64url");
  return `${unsigned}.${signature}`;
}

export class TickwireProcess {
  #child = null;
  #args;
  #stderr = "";

  constructor(args) {
    this.#args = args;
  }

  /**
   * Starts `tickwire serve` on 127.0.0.1 (`port` 0: a free one) with fast prices
   * (--price-interval 1 --feed-tick 0.2) and the test secret and key.
   */
  static async start({ port = 0, args = [] } = {}) {
    const server = new TickwireProcess(args);
    await server.#spawn(port);
    return server;
  }

  get url() {
    return `ws://127.0.0.1:${this.port}/ws`;
  }

  get httpUrl() {
    return `http://127.0.0.1:${this.port}`;
  }

  /** What the server wrote to stderr (its logs), for failure messages. */
  get logs() {
    return this.#stderr;
  }

  async #spawn(port) {
    const child = spawn(BINARY, [
      "serve", "--host", "127.0.0.1", "--port", String(port),
      "--jwt-secret", JWT_SECRET, "--api-key", API_KEY,
      "--price-interval", "1", "--feed-tick", "0.2",
      ...this.#args,
    ], { stdio: ["ignore", "pipe", "pipe"] });
    this.#child = child;
    // A test process that dies mid-test must not leave a gateway running.
    const reap = () => child.kill("SIGKILL");
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
    child.stderr.on("data", (chunk) => {
      this.#stderr = (this.#stderr + chunk).slice(-20_000);
    });
    this.port = await new Promise((resolve, reject) => {
      let stdout = "";
      const timer = setTimeout(() => reject(new Error(`tickwire did not start in 60 s:\n${this.#stderr}`)), 60_000);
      child.stdout.on("data", (chunk) => {
        stdout += chunk;
        const match = /listening on wss?:\/\/127\.0\.0\.1:(\d+)\/ws/.exec(stdout);
        if (match) {
          clearTimeout(timer);
          resolve(Number(match[1]));
        }
      });
      child.once("exit", (code) => {
        clearTimeout(timer);
        reject(new Error(`tickwire exited with ${code} before listening:\n${this.#stderr}`));
      });
    });
    child.stdout.resume();
  }

  /** Ends the process: SIGKILL (a crash: no drain, no close frames) unless told otherwise. */
  async stop(signal = "SIGKILL") {
    const child = this.#child;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once("exit", resolve));
    child.kill(signal);
    await exited;
  }

  /** Starts again on the same port (after stop()), retrying while the port is not yet free. */
  async restart() {
    const deadline = Date.now() + 30_000;
    for (;;) {
      try {
        await this.#spawn(this.port);
        return;
      } catch (error) {
        if (Date.now() > deadline) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
  }

  /** POST /api/v1/publish: returns the server's answer (`id`, `user_id`, `event`, `timestamp`). */
  async publish(userId, event, data) {
    const { status, body } = await request(this.port, "POST", "/api/v1/publish", { user_id: userId, event, data });
    if (status !== 200) throw new Error(`publish failed: ${status} ${JSON.stringify(body)}`);
    return body;
  }

  /** GET /api/v1/prices. */
  async prices() {
    return (await request(this.port, "GET", "/api/v1/prices")).body.prices;
  }
}

/** One HTTP request on its own connection (no keep-alive pool shared with the tests' WebSockets). */
function request(port, method, path, json) {
  return new Promise((resolve, reject) => {
    const body = json === undefined ? undefined : JSON.stringify(json);
    const req = http.request(
      { host: "127.0.0.1", port, method, path, agent: false, headers: { authorization: `Bearer ${API_KEY}`, "content-type": "application/json" } },
      (res) => {
        let text = "";
        res.setEncoding("utf8");
        res.on("data", (chunk) => (text += chunk));
        res.on("end", () => resolve({ status: res.statusCode, body: JSON.parse(text) }));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
}

/** A `notification` event's data, as the publish API checks it. */
export function notificationData(id, title = "Test") {
  return { notification_id: id, type: "test", title, message: `message ${id}`, priority: "normal" };
}

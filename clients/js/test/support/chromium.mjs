// A real headless Chromium for tests, driven over the DevTools protocol with Node's own
// WebSocket and fetch: no Playwright, no Puppeteer, nothing to download.

import { execFileSync, spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";

const CANDIDATES = ["chromium-headless-shell", "chromium", "chromium-browser", "google-chrome"];

/** The browser binary: $CHROMIUM, else the first of the usual names on PATH; null when there is none. */
export function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const name of CANDIDATES) {
    try {
      return execFileSync("which", [name], { encoding: "utf8" }).trim();
    } catch {
      // not this one
    }
  }
  return null;
}

export class Browser {
  #child;
  #profile;
  #origin;

  /** Starts a headless browser on a free debugging port. */
  static async launch(binary = findChromium()) {
    if (!binary) throw new Error("no Chromium found (install chromium, or set CHROMIUM)");
    const browser = new Browser();
    browser.#profile = fs.mkdtempSync(path.join(os.tmpdir(), "tickwire-chromium-"));
    const args = ["--no-sandbox", "--disable-gpu", "--remote-debugging-port=0", `--user-data-dir=${browser.#profile}`, "about:blank"];
    if (!binary.includes("headless-shell")) args.unshift("--headless=new");
    // Its own process group: Chromium's renderers outlive a killed parent (and hold its stderr open).
    const child = spawn(binary, args, { stdio: ["ignore", "ignore", "pipe"], detached: true });
    browser.#child = child;
    const reap = () => Browser.#killGroup(child);
    process.once("exit", reap);
    child.once("exit", () => process.off("exit", reap));
    browser.#origin = await new Promise((resolve, reject) => {
      let stderr = "";
      const timer = setTimeout(() => reject(new Error(`Chromium did not start in 30 s:\n${stderr}`)), 30_000);
      child.stderr.on("data", (chunk) => {
        stderr += chunk;
        const match = /DevTools listening on ws:\/\/([^/\s]+)\//.exec(stderr);
        if (match) {
          clearTimeout(timer);
          child.stderr.destroy();
          resolve(`http://${match[1]}`);
        }
      });
      child.once("exit", (code) => reject(new Error(`Chromium exited (${code}):\n${stderr}`)));
    });
    return browser;
  }

  static #killGroup(child) {
    try {
      process.kill(-child.pid, "SIGKILL");
    } catch {
      // gone already
    }
  }

  /** A new tab. */
  async newPage() {
    const target = await (await fetch(`${this.#origin}/json/new?about:blank`, { method: "PUT" })).json();
    const page = new Page(target.webSocketDebuggerUrl);
    await page.ready;
    return page;
  }

  async close() {
    const child = this.#child;
    const exited = child.exitCode === null && child.signalCode === null ? new Promise((resolve) => child.once("exit", resolve)) : null;
    Browser.#killGroup(child);
    await exited;
    fs.rmSync(this.#profile, { recursive: true, force: true });
  }
}

/** One tab: navigate, evaluate, wait for a condition, read what its console said, take a screenshot. */
export class Page {
  #socket;
  #nextId = 0;
  #pending = new Map();
  /** Console errors, uncaught exceptions and error-level log entries, as text. */
  errors = [];

  constructor(url) {
    this.#socket = new WebSocket(url);
    this.#socket.addEventListener("message", (event) => this.#receive(JSON.parse(event.data)));
    this.ready = new Promise((resolve, reject) => {
      this.#socket.addEventListener("open", resolve, { once: true });
      this.#socket.addEventListener("error", () => reject(new Error(`cannot reach the tab at ${url}`)), { once: true });
    }).then(() => Promise.all([this.send("Runtime.enable"), this.send("Log.enable"), this.send("Page.enable")]));
  }

  #receive(message) {
    if (message.id !== undefined) {
      const pending = this.#pending.get(message.id);
      this.#pending.delete(message.id);
      if (message.error) pending?.reject(new Error(`${message.error.message} (${message.error.code})`));
      else pending?.resolve(message.result);
      return;
    }
    const { method, params } = message;
    if (method === "Runtime.consoleAPICalled" && (params.type === "error" || params.type === "assert")) {
      this.errors.push(`console.${params.type}: ${params.args.map((a) => a.value ?? a.description).join(" ")}`);
    } else if (method === "Runtime.exceptionThrown") {
      const details = params.exceptionDetails;
      this.errors.push(`exception: ${details.exception?.description ?? details.text}`);
    } else if (method === "Log.entryAdded" && params.entry.level === "error") {
      this.errors.push(`log: ${params.entry.text} ${params.entry.url ?? ""}`);
    }
  }

  send(method, params = {}) {
    const id = ++this.#nextId;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#socket.send(JSON.stringify({ id, method, params }));
    });
  }

  /** Loads `url` and waits for its load event. */
  async goto(url, { width = 1280, height = 900, mobile = false } = {}) {
    await this.send("Emulation.setDeviceMetricsOverride", { width, height, deviceScaleFactor: 1, mobile });
    const loaded = new Promise((resolve) => {
      const onMessage = (event) => {
        if (JSON.parse(event.data).method === "Page.loadEventFired") {
          this.#socket.removeEventListener("message", onMessage);
          resolve();
        }
      };
      this.#socket.addEventListener("message", onMessage);
    });
    await this.send("Page.navigate", { url });
    await loaded;
  }

  /** The value of a JavaScript expression in the page (promises awaited). */
  async evaluate(expression) {
    const result = await this.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
    if (result.exceptionDetails) throw new Error(`${expression}: ${result.exceptionDetails.exception?.description ?? result.exceptionDetails.text}`);
    return result.result.value;
  }

  /** Polls `expression` until it is truthy; returns its value, or throws after `timeoutMs`. */
  async waitFor(expression, { timeoutMs = 10_000, what = expression } = {}) {
    const deadline = Date.now() + timeoutMs;
    let last;
    for (;;) {
      last = await this.evaluate(expression).catch((error) => error.message);
      if (last && !(typeof last === "string" && last.startsWith(expression))) return last;
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what} (last: ${JSON.stringify(last)})`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  /** A PNG of the whole page. */
  async screenshot(file) {
    const { data } = await this.send("Page.captureScreenshot", { format: "png", captureBeyondViewport: true });
    fs.writeFileSync(file, Buffer.from(data, "base64"));
  }

  close() {
    this.#socket.close();
  }
}

// Test harness: polling with deadlines and a manual clock. (node --test also loads the
// modules under test/support/ as test files, because they lie under a directory named
// test: they define no tests, so each shows as one empty passing entry.)

import { setTimeout as sleep } from "node:timers/promises";

// --- waiting: tests wait for a condition, never for a fixed time ----------------

/** Polls `predicate` until it returns a truthy value (returned), or throws after `timeout` ms. */
export async function waitFor(predicate, { timeout = 5_000, interval = 5, message = "a condition" } = {}) {
  const deadline = Date.now() + timeout;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${message}`);
    await sleep(interval);
  }
}

/** Records every value of a Tickwire event, for assertions on sequences. */
export function record(tw, type) {
  const values = [];
  tw.on(type, (value) => values.push(value));
  return values;
}

/** The names of the recorded states, e.g. ["connecting", "connected"]. */
export function names(states) {
  return states.map((s) => s.state);
}

/** A WebSocket class that records, synchronously and parsed, every frame the client sends into `sent`. */
export function recordingWebSocket(sent) {
  return class RecordingWebSocket extends globalThis.WebSocket {
    send(data) {
      sent.push(JSON.parse(data));
      super.send(data);
    }
  };
}

export function last(list) {
  return list[list.length - 1];
}

// --- a manual clock for the SDK's `clock` option: timers fire only when a test advances time -----

export class FakeClock {
  #now = 0;
  #timers = new Map();
  #nextId = 1;

  now() {
    return this.#now;
  }

  setTimeout(fn, ms) {
    const id = this.#nextId++;
    this.#timers.set(id, { at: this.#now + Math.max(0, ms), fn, id });
    return id;
  }

  clearTimeout(id) {
    this.#timers.delete(id);
  }

  /** Pending timers as delays from now, soonest first. */
  get pending() {
    return [...this.#timers.values()].sort((a, b) => a.at - b.at || a.id - b.id).map((t) => t.at - this.#now);
  }

  /** Moves time forward by `ms`, running each timer that falls due, in order (timers they arm included). */
  advance(ms) {
    const target = this.#now + ms;
    for (;;) {
      const due = [...this.#timers.values()].filter((t) => t.at <= target).sort((a, b) => a.at - b.at || a.id - b.id)[0];
      if (!due) break;
      this.#timers.delete(due.id);
      this.#now = due.at;
      due.fn();
    }
    this.#now = target;
  }
}

/**
 * Advances a fake clock across a live connection in steps. Before each step, and after the
 * last, it waits until every ping the client sent (`sent`) has its pong among the frames
 * the client received (`received`): jumping past 45 s while a pong is still on the wire
 * would (rightly) declare the connection dead.
 */
export async function advanceAlive(clock, { sent, received }, ms, step = 10_000) {
  const count = (list, test) => list.filter(test).length;
  const answered = () =>
    waitFor(() => count(received, (m) => m.event === "pong") >= count(sent, (m) => m.action === "ping"), {
      message: "the pongs",
    });
  for (let left = ms; left > 0; left -= step) {
    await answered();
    clock.advance(Math.min(step, left));
  }
  await answered();
}

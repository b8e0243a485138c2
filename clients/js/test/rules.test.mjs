// The shared rules as plain values and pure decisions: timings, backoff, close codes.

import assert from "node:assert/strict";
import { test } from "node:test";
import { Backoff, RULES, nextStep } from "../tickwire.js";

test("the timings are the documented ones", () => {
  assert.equal(RULES.pingIntervalMs, 30_000);
  assert.equal(RULES.silenceTimeoutMs, 45_000);
  assert.equal(RULES.backoffInitialMs, 1_000);
  assert.equal(RULES.backoffMaxMs, 30_000);
  assert.equal(RULES.stableAfterMs, 10_000);
  assert.equal(RULES.policyWaitMs, 60_000);
  assert.equal(RULES.maxTokenRefusals, 3);
});

test("backoff: 1 s doubling to 30 s", () => {
  const almostOne = new Backoff(() => 0.999999);
  const delays = Array.from({ length: 8 }, () => almostOne.next());
  assert.deepEqual(delays, [999, 1999, 3999, 7999, 15999, 29999, 29999, 29999]);
});

test("backoff: full jitter, a delay anywhere between 0 and the current step", () => {
  const zero = new Backoff(() => 0);
  assert.deepEqual([zero.next(), zero.next(), zero.next()], [0, 0, 0]);
  const half = new Backoff(() => 0.5);
  assert.deepEqual(Array.from({ length: 7 }, () => half.next()), [500, 1000, 2000, 4000, 8000, 15000, 15000]);
  const values = [0.1, 0.9, 0.3];
  const scripted = new Backoff(() => values.shift());
  assert.deepEqual([scripted.next(), scripted.next(), scripted.next()], [100, 1800, 1200]);
});

test("backoff: reset starts again from 1 s", () => {
  const backoff = new Backoff(() => 0.5);
  backoff.next();
  backoff.next();
  backoff.next();
  assert.equal(backoff.attempt, 3);
  backoff.reset();
  assert.equal(backoff.attempt, 0);
  assert.equal(backoff.next(), 500);
});

const context = (extra = {}) => ({ refusals: 0, renewableToken: true, backoff: new Backoff(() => 0.5), ...extra });

test("close 1000 from the server stays closed", () => {
  assert.deepEqual(nextStep({ cause: "close", code: 1000 }, context()), { close: { reason: "server", code: 1000 } });
});

test("1001, 1011, 1013, 4008, 4009, network errors and silence back off", () => {
  for (const loss of [
    { cause: "close", code: 1001 },
    { cause: "close", code: 1011 },
    { cause: "close", code: 1013 },
    { cause: "close", code: 4008 },
    { cause: "close", code: 4009 },
    { cause: "network", code: 1006 },
    { cause: "heartbeat", code: null },
    { cause: "token", code: null },
  ]) {
    const step = nextStep(loss, context());
    assert.equal(step.delay, 500, `code ${loss.code} (${loss.cause})`);
    assert.equal(step.close, undefined);
    assert.equal(step.holdMs, undefined);
  }
});

test("1008 waits at least 60 s, plus the jittered step", () => {
  const step = nextStep({ cause: "close", code: 1008 }, context({ backoff: new Backoff(() => 0) }));
  assert.equal(step.delay, 60_000);
  assert.equal(step.holdMs, 60_000);
  assert.equal(nextStep({ cause: "close", code: 1008 }, context()).delay, 60_500);
});

test("4001 asks for a new token and retries, and gives up at the third refusal in a row", () => {
  const first = nextStep({ cause: "close", code: 4001 }, context({ refusals: 1 }));
  assert.equal(first.tokenReason, "refused");
  assert.equal(first.delay, 500);
  assert.equal(nextStep({ cause: "close", code: 4001 }, context({ refusals: 2 })).tokenReason, "refused");
  const error = { code: "INVALID_TOKEN" };
  assert.deepEqual(nextStep({ cause: "close", code: 4001, error }, context({ refusals: 3 })), {
    close: { reason: "unauthorized", code: 4001, error },
  });
});

test("4001 with a fixed token string is final: no retry can change the token", () => {
  const step = nextStep({ cause: "close", code: 4001 }, context({ refusals: 1, renewableToken: false }));
  assert.equal(step.close.reason, "unauthorized");
});

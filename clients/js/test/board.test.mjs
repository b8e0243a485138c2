// The price board page: self-contained, its script compiles, its helpers keep decimal
// strings as text, it is accessible (labels, polite throttled announcements, AA contrast),
// and it never holds the API key.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { FakeClock } from "./support/harness.mjs";

const html = fs.readFileSync(new URL("../board.html", import.meta.url), "utf8");
const script = /<script type="module">([\s\S]*?)<\/script>/.exec(html)[1];

/** The page's pure helpers, lifted out of its module script. */
function helpers() {
  const start = script.indexOf("// --- pure helpers");
  const end = script.indexOf("// --- end pure helpers ---");
  assert.ok(start >= 0 && end > start, "the helper markers are in the script");
  const names = "{ groupDigits, compareDecimals, describeChange, describeAge, throttledAnnouncer }";
  return new Function(`${script.slice(start, end)}\nreturn ${names};`)();
}

test("self-contained: the SDK from /sdk/tickwire.js, inline CSS and JS, nothing from another origin", () => {
  assert.match(script, /^\s*import \{ Tickwire \} from "\/sdk\/tickwire\.js";/);
  assert.doesNotMatch(html, /<script[^>]+src=/);
  assert.doesNotMatch(html, /<link[^>]+stylesheet/);
  assert.doesNotMatch(html, /(src|href)="(https?:)?\/\//);
  assert.match(html, /<style>/);
});

test("the page's module script compiles", () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), "board-")), "board.mjs");
  fs.writeFileSync(file, script);
  execFileSync(process.execPath, ["--check", file]); // throws with the syntax error
});

test("readable on a phone and accessible: viewport, language, labels, real buttons", () => {
  assert.match(html, /<html lang="en">/);
  assert.match(html, /<meta name="viewport" content="width=device-width, initial-scale=1">/);
  const controls = [...html.matchAll(/<(input|select|textarea)\b([^>]*)>/g)];
  assert.ok(controls.length >= 5);
  for (const [tag, , attributes] of controls) {
    const id = /\bid="([^"]+)"/.exec(attributes)?.[1];
    const labelled = id && html.includes(`<label for="${id}"`);
    const wrapped = new RegExp(`<label[^>]*>\\s*${tag.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`).test(html);
    assert.ok(labelled || wrapped, `a label for ${tag}`);
  }
  assert.doesNotMatch(html, /<(div|span|a)[^>]+onclick/i, "actions are buttons");
  assert.match(html, /<th scope="col">Price \(USD\)<\/th>/);
  assert.match(html, /id="connection"[^>]*role="status"/, "the connection state is announced");
});

test("prices are announced politely, at most once per 5 s", () => {
  assert.match(html, /id="announcer"[^>]*aria-live="polite"/);
  assert.doesNotMatch(html, /<tbody[^>]*aria-live/, "the table itself is not a live region");
  const { throttledAnnouncer } = helpers();
  const clock = new FakeClock();
  const spoken = [];
  const announce = throttledAnnouncer((text) => spoken.push(text), 5000, clock);
  announce("BTC", "BTC 1");
  clock.advance(0);
  assert.deepEqual(spoken, ["BTC 1"]);
  announce("BTC", "BTC 2");
  announce("ETH", "ETH 1");
  clock.advance(1000);
  announce("BTC", "BTC 3"); // the newest text per symbol wins
  clock.advance(3999);
  assert.equal(spoken.length, 1, "nothing more within 5 s");
  clock.advance(1);
  assert.deepEqual(spoken, ["BTC 1", "BTC 3. ETH 1"]);
  clock.advance(60_000);
  assert.equal(spoken.length, 2, "nothing to say, nothing said");
});

test("decimal strings are formatted and compared as text, never as floats", () => {
  const { groupDigits, compareDecimals, describeChange, describeAge } = helpers();
  assert.equal(groupDigits("90123.45"), "90,123.45");
  assert.equal(groupDigits("1234567"), "1,234,567");
  assert.equal(groupDigits("0.00001234"), "0.00001234");
  assert.equal(groupDigits("-1234.5"), "-1,234.5");
  assert.equal(groupDigits("12345678901234567890.123456789"), "12,345,678,901,234,567,890.123456789");
  assert.equal(compareDecimals("90123.45", "90123.450"), 0);
  assert.equal(compareDecimals("9.5", "10.1"), -1);
  assert.equal(compareDecimals("0.00001235", "0.00001234"), 1);
  assert.equal(compareDecimals("12345678901234567890.1", "12345678901234567890.09"), 1);
  assert.deepEqual(describeChange("2.5"), { direction: "up", text: "+2.5%", spoken: "up 2.5 percent" });
  assert.deepEqual(describeChange("-1.20"), { direction: "down", text: "\u22121.20%", spoken: "down 1.20 percent" });
  assert.equal(describeChange("0.00").direction, "flat");
  assert.equal(describeAge(500), "just now");
  assert.equal(describeAge(12_000), "12 s ago");
  assert.equal(describeAge(180_000), "3 min ago");
});

/** WCAG 2 contrast ratio of two #rrggbb colours. */
function contrast(a, b) {
  const luminance = (hex) => {
    const [r, g, b] = [1, 3, 5].map((i) => parseInt(hex.slice(i, i + 2), 16) / 255);
    const linear = (c) => (c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4);
    return 0.2126 * linear(r) + 0.7152 * linear(g) + 0.0722 * linear(b);
  };
  const [light, dark] = [luminance(a), luminance(b)].sort((x, y) => y - x);
  return (light + 0.05) / (dark + 0.05);
}

test("colours pass WCAG AA: 4.5:1 for text, 3:1 for controls and focus", () => {
  const palette = Object.fromEntries([...html.matchAll(/--([a-z-]+):\s*(#[0-9a-f]{6});/g)].map((m) => [m[1], m[2]]));
  const text = [
    ["text", "bg"], ["text", "surface"], ["text", "flash"],
    ["muted", "bg"], ["muted", "surface"],
    ["up", "bg"], ["up", "surface"], ["down", "bg"], ["down", "surface"],
    ["stale-text", "stale-bg"], ["accent-text", "accent"], ["accent", "bg"],
  ];
  for (const [fg, bg] of text) {
    const ratio = contrast(palette[fg], palette[bg]);
    assert.ok(ratio >= 4.5, `--${fg} on --${bg}: ${ratio.toFixed(2)}:1`);
  }
  for (const [fg, bg] of [["control", "bg"], ["focus", "bg"], ["focus", "surface"], ["live", "bg"], ["waiting", "bg"], ["off", "bg"]]) {
    const ratio = contrast(palette[fg], palette[bg]);
    assert.ok(ratio >= 3, `--${fg} on --${bg}: ${ratio.toFixed(2)}:1`);
  }
});

test("the page never holds the API key: the dev form posts with the user's own token", () => {
  assert.doesNotMatch(html, /api[_-]?key/i);
  assert.doesNotMatch(html, /\/api\/v1\/publish/);
  assert.match(script, /fetch\("\/api\/v1\/dev", /);
  assert.match(script, /fetch\("\/api\/v1\/dev\/publish", \{\s*method: "POST",\s*headers: \{ authorization: `Bearer \$\{token\}`/);
  assert.match(script, /event: "notification",/);
  assert.match(html, /<section id="dev"[^>]*hidden>/, "the dev form starts hidden");
});

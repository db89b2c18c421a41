// End-to-end test of the fieldmesh web UI in headless Chromium.
//
//   node tests/e2e/web.spec.mjs PATH/TO/fieldmesh [SCREENSHOT_DIR]
//
// Starts two nodes on loopback (B dials A, no mDNS), opens each node's page,
// composes a P1 in A's page, waits for it to appear live in B's page with its
// priority badge, transcribes it in B's page (confirming the dialog), waits for
// it to disappear from A's page, and saves screenshots (default target/e2e/).
// Never sleeps a fixed time: every wait is for a selector or an answer, with a
// deadline. Exits non-zero on any failure.
import { chromium } from "playwright-core";
import { spawn } from "node:child_process";
import { mkdtempSync, mkdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";

const BIN = process.argv[2];
const OUT = resolve(process.argv[3] || "target/e2e");
const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const WAIT = 15_000;

if (!BIN) {
  console.error("usage: node web.spec.mjs PATH/TO/fieldmesh [SCREENSHOT_DIR]");
  process.exit(2);
}
mkdirSync(OUT, { recursive: true });
const scratch = mkdtempSync(join(tmpdir(), "fieldmesh-e2e-"));
const children = [];

function check(cond, what) {
  if (!cond) throw new Error("assertion failed: " + what);
}

// Starts `fieldmesh up --json` and resolves with its ready line.
function startNode(name, extra) {
  const data = join(scratch, name);
  const child = spawn(
    BIN,
    ["--data", data, "up", "--json", "--no-mdns", "--name", name, "--listen", "/ip4/127.0.0.1/tcp/0", ...extra],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, RUST_LOG: "fieldmesh=info,warn" } },
  );
  children.push(child);
  let log = "";
  child.stderr.on("data", (d) => (log += d));
  return new Promise((res, rej) => {
    const timer = setTimeout(() => rej(new Error(`${name}: no ready line; log:\n${log}`)), WAIT);
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      const ready = JSON.parse(line);
      check(ready.event === "ready" && typeof ready.web === "string", `${name} ready line with web URL`);
      res({ ...ready, log: () => log });
    });
    child.once("exit", (code) => rej(new Error(`${name} exited ${code}; log:\n${log}`)));
  });
}

// GET an API path of a node with its token (from the ready line's URL).
async function api(node, path) {
  const url = new URL(node.web);
  const token = url.hash.replace("#token=", "");
  const res = await fetch(new URL(path, url.origin), { headers: { Authorization: `Bearer ${token}` } });
  check(res.ok, `${path}: HTTP ${res.status}`);
  return res.json();
}

async function until(what, fn) {
  const deadline = Date.now() + WAIT;
  for (;;) {
    if (await fn()) return;
    if (Date.now() > deadline) throw new Error("timed out waiting for " + what);
    await new Promise((r) => setTimeout(r, 100));
  }
}

// Records what the page would show as browser notifications, and makes it look
// unfocused (a notification is raised only then).
function spyNotifications() {
  window.__notes = [];
  window.Notification = class {
    constructor(title, options) {
      window.__notes.push({ title, options: options || {} });
    }
    static get permission() {
      return "granted";
    }
    static requestPermission() {
      return Promise.resolve("granted");
    }
  };
  document.hasFocus = () => false;
}

async function openPage(context, node, init) {
  const page = await context.newPage();
  if (init) await page.addInitScript(init);
  await page.setViewportSize({ width: 1280, height: 720 });
  await page.goto(node.web);
  await page.waitForSelector('body[data-live="true"]', { timeout: WAIT });
  await page.waitForFunction(() => document.getElementById("channel-title").textContent === "#triage", null, {
    timeout: WAIT,
  });
  // The token leaves the address bar once read.
  check(!page.url().includes("token="), "token removed from the address bar");
  return page;
}

const titleIsSafe = (t) => /^(\(\d+\) )?fieldmesh$/.test(t);

// WCAG contrast ratio of each visible element matching a selector against the
// first opaque background behind it; returns the worst as [ratio, selector].
function worstContrast(selectors) {
  const rgb = (c) => c.match(/[\d.]+/g).map(Number);
  const lum = ([r, g, b]) => {
    const f = (v) => ((v /= 255) <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4);
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = (e) => {
    for (; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length < 4 || c[3] > 0.9) return c;
    }
    return [255, 255, 255];
  };
  let worst = [99, ""];
  for (const sel of selectors) {
    for (const e of document.querySelectorAll(sel)) {
      if (!e.offsetParent) continue;
      const [a, b] = [lum(rgb(getComputedStyle(e).color)), lum(background(e))];
      const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
      if (ratio < worst[0]) worst = [ratio, sel];
    }
  }
  return worst;
}

let context;
let pages = {};
async function main() {
  const a = await startNode("tent-a", []);
  const b = await startNode("tent-b", ["--peer", `${a.listen[0]}/p2p/${a.peer_id}`]);
  // Both see the other subscribed to triage: the gossip mesh can carry it.
  for (const [x, y] of [[a, b], [b, a]]) {
    await until(`${y.peer_id} on triage at ${x.peer_id}`, async () =>
      (await api(x, "/api/peers")).some((p) => p.peer_id === y.peer_id && p.channels.includes("triage")),
    );
  }

  context = await chromium.launchPersistentContext(join(scratch, "profile"), {
    executablePath: CHROMIUM,
    headless: true,
    acceptDownloads: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  pages.a = await openPage(context, a);
  pages.b = await openPage(context, b, spyNotifications);
  // Keyboard: on a fresh page the first Tab reaches the skip link.
  await pages.b.keyboard.press("Tab");
  const first = await pages.b.evaluate(() => document.activeElement.outerHTML.slice(0, 80));
  check(first.includes("Skip to messages"), `skip link first, not ${first}`);

  // B turns on P1 alerts.
  await pages.b.click("#alerts");
  check((await pages.b.getAttribute("#alerts", "aria-pressed")) === "true", "alerts on");

  // A keyboard user's focus in B's channel list survives the list being redrawn.
  await pages.b.focus('#channel-list button[data-channel="general"]');

  // Compose a P1 in A's page.
  const text = `Bay 4: airway, needs anaesthetist (e2e ${Date.now()})`;
  await pages.a.fill("#text", text);
  await pages.a.selectOption("#priority", "p1");
  const ttl = await pages.a.inputValue("#ttl");
  check(Number(ttl) > 0, `TTL pre-filled from the team default (${ttl})`);
  await pages.a.click("#send");
  const inA = pages.a.locator("li.message", { hasText: text });
  await inA.waitFor({ timeout: WAIT });
  const id = await inA.getAttribute("data-id");
  check((await pages.a.inputValue("#priority")) === "p3", "priority back to the default after a send");
  check(/^[0-9a-f]{64}$/.test(id), "message id on the element");

  // It appears live in B's page, with its priority badge.
  const inB = pages.b.locator(`li.message[data-id="${id}"]`);
  await inB.waitFor({ timeout: WAIT });
  check((await inB.locator(".body").textContent()) === text, "text in B");
  check((await inB.locator(".badge").textContent()) === "P1", "P1 badge in B");
  check(
    (await pages.b.evaluate(() => document.activeElement.dataset.channel)) === "general",
    "focus kept on the channel button while the list is redrawn",
  );
  check(await inB.evaluate((e) => e.classList.contains("p1")), "P1 styling in B");
  const left = await inB.locator(".ttl").textContent();
  check(/^expires in (\d+d \d+h|\d+h \d\dm|\d+m \d\ds)$/.test(left), `remaining TTL shown: ${left}`);
  await pages.b.locator(`li.message[data-id="${id}"] .held`).filter({ hasText: "held by 2" }).waitFor({ timeout: WAIT });
  // While it lives, the channel list of both pages marks triage with a P1 badge.
  for (const page of [pages.a, pages.b]) {
    await page.locator('#channel-list button[data-channel="triage"] .badge.p1').waitFor({ state: "visible", timeout: WAIT });
  }
  for (const [name, page] of Object.entries(pages)) {
    const title = await page.title();
    check(titleIsSafe(title) && !title.includes("Bay"), `${name} title carries no text: ${title}`);
  }
  // Contrast (WCAG AA, 4.5:1) of text on both pages, badges included.
  for (const [name, page] of Object.entries(pages)) {
    const [ratio, sel] = await page.evaluate(worstContrast, [
      ".badge", ".meta", ".body", "#channel-list button", ".unread", ".hint", "label",
      "button", ".node", "h1", "h2",
    ]);
    check(ratio >= 4.5, `${name}: contrast ${ratio.toFixed(2)} < 4.5 for ${sel}`);
  }
  // Keyboard: Ctrl+Enter sends from the text field.
  await pages.b.focus("#text");
  await pages.b.keyboard.type("seen, on my way (keyboard)");
  await pages.b.keyboard.press("Control+Enter");
  await pages.a.locator("li.message", { hasText: "seen, on my way (keyboard)" }).waitFor({ timeout: WAIT });
  // B's notification says priority and channel only (lock-screen rule).
  const notes = await pages.b.evaluate(() => window.__notes);
  check(notes.length === 1, `one notification, got ${JSON.stringify(notes)}`);
  check(notes[0].title === "P1 message in #triage" && !notes[0].options.body, `notification text: ${JSON.stringify(notes[0])}`);
  await pages.a.screenshot({ path: join(OUT, "a-sent-p1.png"), fullPage: true });
  await pages.b.screenshot({ path: join(OUT, "b-received-p1.png"), fullPage: true });

  // Transcribe in B: confirm the dialog, receive the export download.
  await inB.locator("button.transcribe").click();
  const dialog = pages.b.locator("dialog#confirm");
  await dialog.waitFor({ state: "visible", timeout: WAIT });
  check((await pages.b.evaluate(() => document.activeElement.id)) === "confirm-cancel", "Cancel has focus");
  await pages.b.screenshot({ path: join(OUT, "b-confirm-transcribe.png") });
  const download = pages.b.waitForEvent("download", { timeout: WAIT });
  await pages.b.click("#confirm-ok");
  const file = await (await download).path();
  const exported = JSON.parse(readFileSync(file, "utf8"));
  check(JSON.stringify(exported).includes(text), "the export holds the message");

  // Gone from B's page at once and from A's page by the tombstone.
  await inB.waitFor({ state: "detached", timeout: WAIT });
  await pages.a.locator(`li.message[data-id="${id}"]`).waitFor({ state: "detached", timeout: WAIT });
  // …and its P1 badge leaves A's channel list.
  await pages.a.locator('#channel-list button[data-channel="triage"] .badge.p1').waitFor({ state: "detached", timeout: WAIT });
  await pages.a.screenshot({ path: join(OUT, "a-after-transcribe.png"), fullPage: true });
  await pages.b.screenshot({ path: join(OUT, "b-after-transcribe.png"), fullPage: true });

  // Peers view in A: B over TCP.
  await pages.a.click("#show-peers");
  await pages.a.locator("#peer-rows tr", { hasText: "TCP" }).waitFor({ timeout: WAIT });
  check(await pages.a.locator("#channel-view").isHidden(), "the channel view gives way to the peers view");
  await pages.a.screenshot({ path: join(OUT, "a-peers.png"), fullPage: true });

  // Lock in A: no message element stays in the page; unlock (drill: empty passphrase).
  await pages.a.click("#show-channels");
  await pages.a.fill("#text", "kept after unlock");
  await pages.a.click("#send");
  await pages.a.locator("li.message", { hasText: "kept after unlock" }).waitFor({ timeout: WAIT });
  await pages.a.fill("#text", "draft: bay 7");
  await pages.a.click("#lock");
  await pages.a.locator("#locked").waitFor({ state: "visible", timeout: WAIT });
  check(await pages.a.locator("#app").isHidden(), "channels and messages hidden while locked");
  check((await pages.a.locator("li.message").count()) === 0, "no message in a locked page");
  check((await pages.a.inputValue("#text")) === "", "no draft in a locked page");
  const lockedHtml = await pages.a.content();
  check(!lockedHtml.includes("kept after unlock") && !lockedHtml.includes("bay 7"), "no text in a locked page");
  await pages.a.screenshot({ path: join(OUT, "a-locked.png"), fullPage: true });
  await pages.a.fill("#passphrase", "");
  await pages.a.click("#unlock-form button");
  await pages.a.locator("li.message", { hasText: "kept after unlock" }).waitFor({ timeout: WAIT });

  // A page left alone hides its messages until it is used again (idle limit
  // shortened through the URL for the test).
  const idle = await context.newPage();
  await idle.goto(`${b.web}&idle_ms=1500`);
  await idle.locator(`li.message[data-id]`).first().waitFor({ timeout: WAIT });
  await idle.locator("#idle").waitFor({ state: "visible", timeout: WAIT });
  check(await idle.locator("#app").isHidden(), "messages hidden on an idle page");
  await idle.screenshot({ path: join(OUT, "b-idle.png"), fullPage: true });
  await idle.keyboard.press("Shift");
  await idle.locator("#app").waitFor({ state: "visible", timeout: WAIT });
  await idle.close();

  // A page opened without the token says what to do, and shows nothing.
  const bare = await context.newPage();
  await bare.goto(new URL(a.web).origin + "/");
  await bare.locator("#alert", { hasText: "no valid access token" }).waitFor({ timeout: WAIT });
  check((await bare.locator("li.message").count()) === 0, "nothing without a token");
  await bare.close();

  // A small screen: one column, the compose form still reachable.
  await pages.b.setViewportSize({ width: 480, height: 800 });
  await pages.b.locator("#send").scrollIntoViewIfNeeded();
  check(await pages.b.locator("#send").isVisible(), "Send visible at 480 px");
  await pages.b.screenshot({ path: join(OUT, "b-narrow.png"), fullPage: true });
  console.log(`ok: web UI end to end; screenshots in ${OUT}`);
}

let failed = false;
try {
  await main();
} catch (e) {
  failed = true;
  console.error("FAILED:", e.message);
  for (const [name, page] of Object.entries(pages)) {
    await page.screenshot({ path: join(OUT, `failure-${name}.png`), fullPage: true }).catch(() => {});
  }
} finally {
  if (context) await context.close().catch(() => {});
  // Stop the nodes and let them flush before their data dirs go.
  await Promise.all(
    children.map(
      (c) =>
        new Promise((res) => {
          if (c.exitCode !== null || c.signalCode !== null) return res();
          const timer = setTimeout(() => (c.kill("SIGKILL"), res()), WAIT);
          c.once("exit", () => (clearTimeout(timer), res()));
          c.kill("SIGTERM");
        }),
    ),
  );
  rmSync(scratch, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);

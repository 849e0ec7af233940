// The zone dashboard in a real headless browser (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser is downloaded). Run by ci/dashboard-test, which starts
// `connector up` and passes its state directory; this script adds a second MMR VM as its own
// process, so it can kill it.
//
// It checks what an operator would: the page shows the running deployment's nodes as ready;
// a participant joining shows up without a reload; an MMR VM killed shows as not reporting;
// a drain shows as draining and in the recent events; a wrong key gets a clear message.
"use strict";
const { chromium } = require("playwright-core");
const { spawn, execFileSync } = require("node:child_process");
const http = require("node:http");
const https = require("node:https");
const fs = require("node:fs");
const path = require("node:path");

const STATE = need("STATE");
const CONNECTOR = need("CONNECTOR");
const SCREENSHOT = process.env.SCREENSHOT || "";
const CLOUD = { host: "127.0.0.1", port: 10443 };
// Monitoring reports come every 5 s from `connector up`'s nodes, the page polls every second.
const CHANGE_WITHIN_MS = 15000;

function need(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set (run ci/dashboard-test)`);
  return v;
}

const children = [];
function start(args, name) {
  const log = fs.openSync(path.join(STATE, `${name}.log`), "w");
  const child = spawn(CONNECTOR, args, { stdio: ["ignore", log, log] });
  children.push(child);
  return child;
}
function cli(args) {
  return execFileSync(CONNECTOR, args, { encoding: "utf8" }).trim();
}
const clientArgs = ["--config", path.join(STATE, "client.toml"), "--ca", path.join(STATE, "certs", "ca.pem")];

// Chromium cannot handshake with the cloud: deployment certificates are Ed25519, which
// Chromium's TLS stack does not accept for a server (ERR_SSL_PROTOCOL_ERROR, whatever the
// certificate flags). So the browser talks plain HTTP to this loopback forwarder, which passes
// every request byte for byte to the cloud's HTTPS port and verifies the cloud against the
// deployment CA (Node's TLS does Ed25519). The page, its polling and its authorization are the
// cloud's, unchanged.
function startForwarder() {
  const ca = fs.readFileSync(path.join(STATE, "certs", "ca.pem"));
  const server = http.createServer((req, res) => {
    const headers = { ...req.headers, host: `${CLOUD.host}:${CLOUD.port}` };
    const upstream = https.request({ ...CLOUD, ca, path: req.url, method: req.method, headers }, (up) => {
      res.writeHead(up.statusCode, up.headers);
      up.pipe(res);
    });
    upstream.on("error", (e) => { res.writeHead(502); res.end(`cloud unreachable: ${e.message}`); });
    req.pipe(upstream);
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

// A second MMR VM beside `up`'s, in its own process, reporting every second.
function startSecondMmr() {
  const config = fs.readFileSync(path.join(STATE, "mmr-1.toml"), "utf8")
    .replace(/mmr-1/g, "mmr-2")
    .replace(/listen = "127\.0\.0\.11"/, 'listen = "127.0.0.12"')
    .replace(/monitoring_interval_ms = \d+/, "monitoring_interval_ms = 1000");
  fs.writeFileSync(path.join(STATE, "mmr-2.toml"), config);
  return start(["mmr", "--config", path.join(STATE, "mmr-2.toml"), "--certs", path.join(STATE, "certs")], "mmr-2");
}

function step(what) {
  console.log(`dashboard: ${what}`);
}

async function main() {
  const key = fs.readFileSync(path.join(STATE, "api-key"), "utf8").trim();
  const mmr2 = startSecondMmr();
  const forwarder = await startForwarder();
  const URL_BASE = `http://127.0.0.1:${forwarder.address().port}`;
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
  });
  try {
    const page = await browser.newPage({ viewport: { width: 1366, height: 768 } });
    const pageErrors = [];
    page.on("pageerror", (e) => pageErrors.push(e.message));
    const external = [];
    page.on("request", (r) => { if (!r.url().startsWith(URL_BASE)) external.push(r.url()); });

    step("opens the page with the key in the URL fragment");
    await page.goto(`${URL_BASE}/dashboard#key=${key}`);
    if (page.url().includes(key)) throw new Error(`the key stayed in the address bar: ${page.url()}`);
    // Set once: still there after every later change means the page never reloaded.
    await page.evaluate(() => { window.__loadedOnce = true; });

    const card = (node) => page.locator(`[data-node="${node}"]`);
    const ready = (node) => page.locator(`[data-node="${node}"][data-ready="true"]`);
    step("shows controller-1, mmr-1 and mmr-2 ready");
    for (const node of ["controller-1", "mmr-1", "mmr-2"]) {
      await ready(node).waitFor({ timeout: CHANGE_WITHIN_MS });
    }
    await expectText(card("mmr-2"), "ready");

    step("a participant joins: the meeting and its one participant show without a reload");
    const meeting = cli(["meeting", "create", ...clientArgs, "--topic", "dashboard test"]);
    if (!/^\d+$/.test(meeting)) throw new Error(`meeting create printed ${JSON.stringify(meeting)}`);
    start(["client", ...clientArgs, "--meeting", meeting, "--name", "Ada", "--duration-ms", "0"], "client");
    const row = page.locator(`[data-meeting="${meeting}"]`);
    await row.waitFor({ timeout: CHANGE_WITHIN_MS });
    await expectText(row, "controller-1");
    await page.waitForFunction(
      (id) => {
        const cells = document.querySelectorAll(`[data-meeting="${id}"] td`);
        return cells.length === 4 && cells[3].textContent === "1" &&
          document.getElementById("t-participants").textContent === "1";
      },
      meeting, { timeout: CHANGE_WITHIN_MS });

    step("an MMR VM is killed: it shows as not ready and not reporting");
    mmr2.kill("SIGKILL");
    await page.locator('[data-node="mmr-2"][data-ready="false"]').waitFor({ timeout: CHANGE_WITHIN_MS });
    await expectText(card("mmr-2"), "not reporting");

    step("mmr-1 is drained from the CLI: it shows draining, and the drain is in the recent events");
    cli(["drain", ...clientArgs, "mmr", "mmr-1", "--deadline-s", "600"]);
    await expectText(card("mmr-1"), "draining");
    await expectText(page.locator("#events"), "drain");

    if (!(await page.evaluate(() => window.__loadedOnce === true))) throw new Error("the page reloaded");
    if (pageErrors.length) throw new Error(`script errors on the page: ${pageErrors.join("; ")}`);
    if (external.length) throw new Error(`the page fetched from elsewhere: ${external.join(", ")}`);
    if (SCREENSHOT) {
      await page.waitForTimeout(1500);
      await page.screenshot({ path: SCREENSHOT });
      step(`screenshot saved to ${SCREENSHOT}`);
    }

    step("a wrong key gets a clear message and the key form");
    const other = await browser.newPage();
    await other.goto(`${URL_BASE}/dashboard#key=not-a-key`);
    await expectText(other.locator("#message"), "does not know this key");
    await other.locator("#keyform input").waitFor({ state: "visible" });
    step("passed");
  } finally {
    await browser.close();
    forwarder.close();
  }
}

async function expectText(locator, text) {
  const deadline = Date.now() + CHANGE_WITHIN_MS;
  let seen = "";
  while (Date.now() < deadline) {
    seen = (await locator.first().textContent({ timeout: CHANGE_WITHIN_MS }).catch(() => "")) || "";
    if (seen.includes(text)) return;
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`expected ${JSON.stringify(text)} within ${CHANGE_WITHIN_MS} ms; the element shows ${JSON.stringify(seen)}`);
}

main().then(
  () => { for (const c of children) c.kill("SIGTERM"); },
  (e) => { for (const c of children) c.kill("SIGTERM"); console.error(`dashboard test FAILED: ${e.stack || e}`); process.exit(1); },
);

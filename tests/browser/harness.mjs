// Shared harness of the headless-Chromium tests: the real `stompede serve` on a free port, a
// Chromium (Debian's /usr/bin/chromium through playwright-core; no browser download), test pages
// on the server's own origin, and failure messages that carry everything needed to see why
// (browser console errors, the page's STOMP/SockJS trace, the requests the browser made, the
// server's log lines of that test).
//
// Every wait is bounded. Servers, browsers and browser contexts are closed in `after` hooks and
// `finally` blocks, which run when a test fails too.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, statSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));

/** The repository root: the server runs there, so its default `[web] root` finds web/dist. */
export const REPO_ROOT = path.resolve(HERE, '..', '..');
/** The binary under test: $STOMPEDE_BIN, else target/debug/stompede. */
export const BIN = path.resolve(REPO_ROOT, process.env.STOMPEDE_BIN || 'target/debug/stompede');
/** Chromium to drive: $CHROMIUM_BIN, else Debian's package. */
export const CHROMIUM = process.env.CHROMIUM_BIN || '/usr/bin/chromium';

/** Longest any single step (connect, receipts, messages) may take. */
export const STEP_TIMEOUT = 15_000;
/** Longest a whole test may take (node:test `timeout`). */
export const TEST_TIMEOUT = 90_000;

const PAGE_SCRIPT = readFileSync(path.join(HERE, 'page.js'), 'utf8');
const MAX_EVENTS = 400;
const MAX_EVENT_LEN = 300;
const MAX_SERVER_LOG = 20_000;

/** Rejects if `promise` does not settle within `ms`. */
export function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: not within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** Resolves after `ms`. */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A running `stompede serve`, its log in a file. */
export class Server {
  constructor(proc, port, logPath) {
    this.proc = proc;
    this.port = port;
    this.origin = `http://127.0.0.1:${port}`;
    this.logPath = logPath;
    this.spawnError = null;
    this.exited = new Promise((resolve) => {
      proc.once('exit', (code, signal) => resolve({ code, signal }));
      proc.once('error', (error) => {
        this.spawnError = error;
        resolve({ code: null, signal: null, error });
      });
    });
  }

  /**
   * Starts the binary on a free 127.0.0.1 port with cwd = the repository root and waits (bounded)
   * until /healthz answers. `env` is added to a copy of this process's environment without its
   * STOMPEDE* variables, so the server runs on its defaults plus exactly these overrides.
   * `port` binds that port instead of a free one (a restart on the port of a stopped server, for
   * the reconnect tests).
   */
  static async start(env = {}, { port: wanted } = {}) {
    const port = wanted ?? (await freePort());
    const logPath = path.join(
      mkdtempSync(path.join(os.tmpdir(), 'stompede-browser-')),
      'stompede.log',
    );
    const logFd = openSync(logPath, 'a');
    const childEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('STOMPEDE')),
    );
    childEnv.RUST_LOG ??= 'info,stompede=debug,stompede_server=debug'; // per-session lines for failures
    childEnv.NO_COLOR = '1'; // plain log lines in failure messages
    Object.assign(childEnv, env);
    const proc = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`], {
      cwd: REPO_ROOT,
      env: childEnv,
      stdio: ['ignore', logFd, logFd],
    });
    closeSync(logFd);
    const server = new Server(proc, port, logPath);
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      if (server.spawnError) throw new Error(`cannot start ${BIN}: ${server.spawnError.message}`);
      if (proc.exitCode !== null || proc.signalCode !== null) break;
      try {
        const res = await fetch(`${server.origin}/healthz`, { signal: AbortSignal.timeout(1000) });
        if (res.ok) return server;
      } catch {
        // not listening yet
      }
      await sleep(50);
    }
    await server.stop();
    throw new Error(
      `stompede (${BIN}) did not answer /healthz within 15 s; its log:\n${server.logSince(0)}`,
    );
  }

  /** Current size of the log, to show only what a test caused. */
  logSize() {
    try {
      return statSync(this.logPath).size;
    } catch {
      return 0;
    }
  }

  /** The log from byte `offset` on (its last MAX_SERVER_LOG characters). */
  logSince(offset) {
    try {
      const text = readFileSync(this.logPath).subarray(offset).toString('utf8');
      return text.length > MAX_SERVER_LOG ? `[…]${text.slice(-MAX_SERVER_LOG)}` : text;
    } catch {
      return '(no log)';
    }
  }

  /** SIGTERM, then SIGKILL after a bounded wait. Resolves to the exit status. */
  async stop() {
    const { proc } = this;
    if (proc.exitCode !== null || proc.signalCode !== null || this.spawnError) return this.exited;
    proc.kill('SIGTERM');
    try {
      return await within(this.exited, 15_000, 'stompede exit after SIGTERM');
    } catch {
      proc.kill('SIGKILL');
      return within(this.exited, 5_000, 'stompede exit after SIGKILL').catch(() => ({}));
    }
  }
}

/** Headless Chromium; close it with `closeBrowser`. */
export async function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    // Containers often have a small /dev/shm; Chromium then crashes tabs without this.
    args: ['--disable-dev-shm-usage'],
  });
}

/** Closes the browser, killing its process if it does not go within a bounded wait. */
export async function closeBrowser(browser) {
  if (!browser) return;
  try {
    await within(browser.close(), 10_000, 'closing Chromium');
  } catch {
    browser.process()?.kill('SIGKILL');
  }
}

/**
 * One browser context (own cookies, so its own JSESSIONID) with one page on the server's origin
 * that has loaded the server's /vendor/sockjs.min.js and /vendor/stomp.umd.min.js and page.js.
 *
 * Why /healthz: stompede's default origin policy is same-origin, so the page must be a document
 * of http://127.0.0.1:PORT, yet the server has no test page to serve. /healthz is a real
 * response of the server (plain text, which Chromium renders as an HTML document with a head and
 * a body), so the page has the server's origin; the scripts are then added as <script src>
 * elements and fetched from the server itself, which is part of what is tested (web/dist filled
 * by scripts/build-web.sh). A page made up by Playwright (`page.route` + `fulfill`) would have
 * the origin too, but no IP address behind it: Chromium then counts it as a public page, and its
 * Local Network Access checks block its WebSocket to 127.0.0.1
 * (net::ERR_BLOCKED_BY_LOCAL_NETWORK_ACCESS_CHECKS). No request interception is used at all, so
 * the browser talks to the server directly on every transport.
 */
export class TestPage {
  constructor(name, context, page) {
    this.name = name;
    this.context = context;
    this.page = page;
    this.events = [];
    this.consoleErrors = [];
    this.pageErrors = [];
    /** "METHOD path" of every request of the page and its frames, in order. */
    this.requests = [];
  }

  /**
   * A new context and page, watched from the start; `load` puts the test page in it, `loadApp`
   * the chat app. `contextOptions` go to Playwright's `browser.newContext` (locale, viewport).
   */
  static async create(browser, server, name, contextOptions = {}) {
    const context = await browser.newContext(contextOptions);
    const page = await context.newPage();
    const tp = new TestPage(name, context, page);
    tp.watch(server);
    return tp;
  }

  event(line) {
    this.events.push(String(line).slice(0, MAX_EVENT_LEN));
    if (this.events.length > MAX_EVENTS) this.events.splice(0, this.events.length - MAX_EVENTS);
  }

  /** Records console output, uncaught errors, requests and WebSocket traffic of every frame. */
  watch(server) {
    const { page } = this;
    const short = (url) => (url.startsWith(server.origin) ? url.slice(server.origin.length) : url);
    const frameName = (frame) =>
      frame && frame !== page.mainFrame() ? ` [frame ${short(frame.url())}]` : '';
    page.on('console', (msg) => {
      const where = msg.location();
      const at = `${short(where.url || '?')}:${where.lineNumber}`;
      this.event(`console.${msg.type()} (${at}): ${msg.text()}`);
      // Chromium asks for /favicon.ico of the /healthz page itself; the server has none.
      const favicon = at.startsWith('/favicon.ico:');
      if (msg.type() === 'error' && !favicon) this.consoleErrors.push(`${msg.text()} (${at})`);
    });
    page.on('pageerror', (error) => {
      this.event(`pageerror: ${error.message}`);
      this.pageErrors.push(error.stack || error.message);
    });
    page.on('crash', () => this.event('page crashed'));
    page.on('request', (req) => this.requests.push(`${req.method()} ${short(req.url())}`));
    page.on('request', (req) =>
      this.event(`-> ${req.method()} ${short(req.url())}${frameName(req.frame())}`),
    );
    page.on('response', (res) => this.event(`<- ${res.status()} ${short(res.url())}`));
    page.on('requestfinished', (req) => this.event(`.. done ${short(req.url())}`));
    page.on('requestfailed', (req) =>
      this.event(`!! failed ${req.method()} ${short(req.url())}: ${req.failure()?.errorText}`),
    );
    page.on('websocket', (ws) => {
      const url = short(ws.url());
      this.event(`ws open ${url}`);
      ws.on('framesent', (f) => this.event(`ws >> ${JSON.stringify(String(f.payload))}`));
      ws.on('framereceived', (f) => this.event(`ws << ${JSON.stringify(String(f.payload))}`));
      ws.on('socketerror', (err) => this.event(`ws error ${url}: ${err}`));
      ws.on('close', () => this.event(`ws closed ${url}`));
    });
  }

  async load(server) {
    const { page } = this;
    await page.goto(`${server.origin}/healthz`, { waitUntil: 'load', timeout: STEP_TIMEOUT });
    for (const url of ['/vendor/sockjs.min.js', '/vendor/stomp.umd.min.js']) {
      await within(page.addScriptTag({ url }), STEP_TIMEOUT, `${this.name}: loading ${url}`).catch(
        (e) => {
          throw new Error(`${url} did not load (run scripts/build-web.sh): ${e.message}`);
        },
      );
    }
    await page.addScriptTag({ content: PAGE_SCRIPT });
    const ready = await page.evaluate(() => ({
      sockjs: typeof window.SockJS === 'function' ? window.SockJS.version : null,
      stompjs: typeof window.StompJs?.Client === 'function',
      harness: typeof window.stompedeTest === 'object',
    }));
    assert.deepEqual(
      ready,
      { sockjs: '1.6.1', stompjs: true, harness: true },
      'scripts in the page',
    );
  }

  /**
   * Opens the chat app the server serves (web/src, copied to web/dist by scripts/build-web.sh)
   * at `appPath` (e.g. `/index.html?transports=xhr-streaming#/room/r1`) and waits until its
   * script has run (`window.chatDebug`).
   */
  async loadApp(server, appPath) {
    const { page } = this;
    await page.goto(`${server.origin}${appPath}`, { waitUntil: 'load', timeout: STEP_TIMEOUT });
    await page
      .waitForFunction(() => typeof window.chatDebug === 'object', null, { timeout: STEP_TIMEOUT })
      .catch((e) => {
        throw new Error(`${this.name}: the chat app did not start at ${appPath}: ${e.message}`);
      });
  }

  /** Calls `window.stompedeTest[fn](args)` in the page; bounded by `args.timeoutMs` plus slack. */
  call(fn, args = {}) {
    const timeoutMs = args.timeoutMs ?? STEP_TIMEOUT;
    const run = this.page.evaluate(
      ([f, a]) => window.stompedeTest[f](a),
      [fn, { timeoutMs, ...args }],
    );
    return within(run, timeoutMs + 5_000, `${this.name}: ${fn}`);
  }

  /** Everything the page saw, for a failure message. */
  async report() {
    let trace;
    try {
      trace = await within(
        this.page.evaluate(() =>
          (window.stompedeTest?.log ?? window.chatDebug?.log ?? ['(no trace)']).join('\n'),
        ),
        5_000,
        'trace',
      );
    } catch (e) {
      trace = `(unavailable: ${e.message})`;
    }
    return [
      `--- ${this.name}: browser console errors (${this.consoleErrors.length}) ---`,
      ...this.consoleErrors,
      `--- ${this.name}: uncaught page errors (${this.pageErrors.length}) ---`,
      ...this.pageErrors,
      `--- ${this.name}: page trace (window.stompedeTest.log or window.chatDebug.log) ---`,
      trace,
      `--- ${this.name}: browser events (console, requests, WebSocket frames) ---`,
      ...this.events,
    ].join('\n');
  }

  async close() {
    await within(this.context.close(), 10_000, `${this.name}: closing the browser context`).catch(
      () => {},
    );
  }
}

/**
 * Runs `body(open)` where `open(name)` gives a TestPage with the test page loaded, and
 * `open(name, { app: '/index.html#/room/r1', context: { locale: 'ko-KR' } })` one with the chat
 * app at that path, in a context made with those options. On failure the error is rethrown with
 * every page's report and the server's log lines of this run appended; the pages are closed
 * either way.
 */
export async function scenario(browser, server, body) {
  const pages = [];
  const logStart = server.logSize();
  const open = async (name, { app, context } = {}) => {
    const tp = await TestPage.create(browser, server, name, context);
    pages.push(tp); // before loading, so a page that fails to load is reported and closed too
    if (app === undefined) await tp.load(server);
    else await tp.loadApp(server, app);
    return tp;
  };
  try {
    return await body(open);
  } catch (error) {
    // The stack starts with the message; the reporter adds its own "Error: ".
    const parts = [String(error.stack || error).replace(/^Error: /, '')];
    for (const tp of pages) parts.push(await tp.report());
    parts.push(`--- server log of this test (${server.logPath}) ---`, server.logSince(logStart));
    throw new Error(parts.join('\n'));
  } finally {
    await Promise.all(pages.map((tp) => tp.close()));
  }
}

// End-to-end tests of the stompede binary with @stomp/stompjs, the client the chat page uses,
// over the `ws` package (Node 20 has no global WebSocket).
//
// The binary is $STOMPEDE_BIN, or target/debug/stompede under the repository root. One server is
// started on a free 127.0.0.1 port for this file and stopped (SIGTERM, then SIGKILL after a bounded
// wait) in an `after` hook, which runs even when a test fails. Every wait is bounded.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { openSync, closeSync, readFileSync, mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { Client } from '@stomp/stompjs';
import WebSocket from 'ws';

const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const BIN = path.resolve(REPO_ROOT, process.env.STOMPEDE_BIN || 'target/debug/stompede');
const TIMEOUT = 10_000;
const TEST_TIMEOUT = 30_000;
const SUBPROTOCOLS = ['v12.stomp', 'v11.stomp', 'v10.stomp'];

let server; // { proc, port, logPath }
let failed = false;
const openClients = new Set();

// ---------------------------------------------------------------------------------------------
// helpers

/** Rejects if `promise` does not settle within `ms`. */
function within(promise, ms, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

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

async function startServer() {
  const port = await freePort();
  const logPath = path.join(mkdtempSync(path.join(os.tmpdir(), 'stompede-js-')), 'stompede.log');
  const logFd = openSync(logPath, 'a');
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([k]) => !k.startsWith('STOMPEDE')),
  );
  env.RUST_LOG ??= 'info';
  env.NO_COLOR = '1'; // plain log lines in the failure report
  const proc = spawn(BIN, ['serve', '--bind', `127.0.0.1:${port}`], {
    env,
    stdio: ['ignore', logFd, logFd],
  });
  closeSync(logFd);
  const exited = new Promise((resolve) => {
    proc.once('exit', (code, signal) => resolve({ code, signal }));
    proc.once('error', (error) => resolve({ code: null, signal: null, error }));
  });
  const started = { proc, port, logPath, exited, spawnError: null };
  proc.once('error', (e) => {
    started.spawnError = e;
  });
  const deadline = Date.now() + 15_000;
  while (Date.now() < deadline) {
    if (started.spawnError) throw new Error(`cannot start ${BIN}: ${started.spawnError.message}`);
    if (proc.exitCode !== null || proc.signalCode !== null) break;
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`, { signal: AbortSignal.timeout(1000) });
      if (res.ok && (await res.text()).trim() === 'ok') return started;
    } catch {
      // not listening yet
    }
    await sleep(50);
  }
  await stopServer(started);
  throw new Error(`stompede (${BIN}) did not become ready:\n${readLog(started)}`);
}

/** SIGTERM, bounded wait, then SIGKILL. Resolves to the exit code (null if it had to be killed). */
async function stopServer(s) {
  if (!s) return null;
  if (s.proc.exitCode !== null || s.proc.signalCode !== null) return s.proc.exitCode;
  s.proc.kill('SIGTERM');
  try {
    const { code } = await within(s.exited, 15_000, 'stompede exit after SIGTERM');
    return code;
  } catch {
    s.proc.kill('SIGKILL');
    await within(s.exited, 5_000, 'stompede exit after SIGKILL').catch(() => {});
    return null;
  }
}

function readLog(s) {
  try {
    return readFileSync(s.logPath, 'utf8').slice(-20_000);
  } catch {
    return '(no log)';
  }
}

/** A queue of received frames with bounded waits. */
class Inbox {
  constructor(name) {
    this.name = name;
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    const waiter = this.waiters.shift();
    if (waiter) waiter(item);
    else this.items.push(item);
  }

  next(ms = TIMEOUT) {
    if (this.items.length) return Promise.resolve(this.items.shift());
    let resolveFn;
    const p = new Promise((resolve) => {
      resolveFn = resolve;
      this.waiters.push(resolve);
    });
    return within(p, ms, `${this.name}: next message`).catch((e) => {
      this.waiters = this.waiters.filter((w) => w !== resolveFn);
      throw e;
    });
  }

  async nothingWithin(ms) {
    await sleep(ms);
    assert.deepEqual(this.items.map((m) => m.body), [], `${this.name}: unexpected messages`);
  }
}

/**
 * Activates a stompjs Client on the raw WebSocket endpoint and waits (bounded) for CONNECTED.
 * Returns { client, connected, errors, closes } where errors/closes are Inboxes of ERROR frames
 * and WebSocket close events.
 */
async function connectClient(name, config = {}) {
  const url = `ws://127.0.0.1:${server.port}/ws/websocket`;
  const errors = new Inbox(`${name} errors`);
  const closes = new Inbox(`${name} closes`);
  let onConnected;
  let onFailed;
  const connectedP = new Promise((resolve, reject) => {
    onConnected = resolve;
    onFailed = reject;
  });
  const client = new Client({
    webSocketFactory: () => new WebSocket(url, SUBPROTOCOLS),
    reconnectDelay: 0, // a test sees failures instead of retrying them away
    connectionTimeout: TIMEOUT,
    debug: () => {},
    onConnect: (frame) => onConnected(frame),
    onStompError: (frame) => {
      errors.push(frame);
      onFailed(new Error(`${name}: ERROR ${frame.headers.message}`));
    },
    onWebSocketClose: (evt) => {
      closes.push(evt);
      onFailed(new Error(`${name}: closed ${evt.code}`));
    },
    onWebSocketError: () => onFailed(new Error(`${name}: WebSocket error`)),
    ...config,
  });
  openClients.add(client);
  client.activate();
  const connected = await within(connectedP, TIMEOUT, `${name}: CONNECTED`);
  return { client, connected, errors, closes };
}

async function closeClient(client) {
  openClients.delete(client);
  try {
    await within(client.deactivate(), 5_000, 'deactivate');
  } catch {
    client.forceDisconnect();
  }
}

/** Waits (bounded) for a RECEIPT, registering for it before `send` runs. */
function receiptFor(client, receiptId, send) {
  const p = new Promise((resolve) => client.watchForReceipt(receiptId, resolve));
  send();
  return within(p, TIMEOUT, `RECEIPT ${receiptId}`);
}

/**
 * Joins a chat room exactly as the Spring chat demo page does: subscribe to the room topic, then
 * send ENTER to /app/chat/message with no headers.
 */
async function joinRoom(sender, roomId) {
  const conn = await connectClient(sender);
  const inbox = new Inbox(`${sender} in room ${roomId}`);
  conn.client.subscribe(`/topic/chat/room/${roomId}`, (message) => inbox.push(message));
  conn.client.publish({
    destination: '/app/chat/message',
    headers: {},
    body: JSON.stringify({ type: 'ENTER', roomId, sender, message: '' }),
  });
  return { ...conn, inbox, sender, roomId };
}

function talk(member, message) {
  member.client.publish({
    destination: '/app/chat/message',
    headers: {},
    body: JSON.stringify({ type: 'TALK', roomId: member.roomId, sender: member.sender, message }),
  });
}

async function nextChat(member) {
  const frame = await member.inbox.next();
  assert.equal(frame.headers.destination, `/topic/chat/room/${member.roomId}`);
  return JSON.parse(frame.body);
}

/** A test whose failure prints the server's log. */
function e2e(name, fn) {
  test(name, { timeout: TEST_TIMEOUT }, async (t) => {
    try {
      await fn(t);
    } catch (e) {
      failed = true;
      throw e;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// lifecycle

before(async () => {
  server = await startServer();
});

after(async () => {
  for (const client of [...openClients]) await closeClient(client);
  const code = await stopServer(server);
  if (failed || code !== 0) {
    console.error(`--- stompede log (exit code ${code}) ---\n${readLog(server)}`);
  }
  assert.equal(code, 0, 'stompede exits 0 on SIGTERM');
});

// ---------------------------------------------------------------------------------------------
// tests

e2e('two clients join room 1 and both see the announcements', async () => {
  const alice = await joinRoom('alice', '1');
  assert.equal(alice.connected.headers.version, '1.2');
  assert.ok(alice.connected.headers.session, 'CONNECTED carries a session');
  assert.deepEqual(await nextChat(alice), {
    type: 'ENTER', roomId: '1', sender: 'alice', message: 'alice님이 입장했습니다.',
  });

  const bob = await joinRoom('bob', '1');
  const bobEnters = { type: 'ENTER', roomId: '1', sender: 'bob', message: 'bob님이 입장했습니다.' };
  assert.deepEqual(await nextChat(alice), bobEnters);
  assert.deepEqual(await nextChat(bob), bobEnters);

  await closeClient(alice.client);
  await closeClient(bob.client);
});

e2e('two clients in room 1 see each other\'s TALK', async () => {
  const carol = await joinRoom('carol', '1');
  await nextChat(carol); // her own announcement: she is subscribed
  const dave = await joinRoom('dave', '1');
  await nextChat(carol);
  await nextChat(dave);
  const elsewhere = await joinRoom('eve', '2');
  await nextChat(elsewhere);

  talk(carol, '안녕하세요, dave! 🚀');
  for (const m of [carol, dave]) {
    assert.deepEqual(await nextChat(m), {
      type: 'TALK', roomId: '1', sender: 'carol', message: '안녕하세요, dave! 🚀',
    });
  }
  talk(dave, 'hi carol');
  for (const m of [carol, dave]) {
    assert.deepEqual(await nextChat(m), {
      type: 'TALK', roomId: '1', sender: 'dave', message: 'hi carol',
    });
  }
  await elsewhere.inbox.nothingWithin(300); // room 2 heard nothing of room 1

  for (const m of [carol, dave, elsewhere]) await closeClient(m.client);
});

e2e('receipts and a 60 KiB non-ASCII body round trip', async () => {
  const { client } = await connectClient('receipts');
  const inbox = new Inbox('big');
  let subscription;
  await receiptFor(client, 'sub-1', () => {
    subscription = client.subscribe('/topic/js/big', (m) => inbox.push(m), { receipt: 'sub-1' });
  });

  const unit = '가나다라마바사 ümlaut ✓ 🚀 ';
  let body = '';
  while (Buffer.byteLength(body + unit) <= 60 * 1024) body += unit;
  const bytes = Buffer.byteLength(body);
  assert.ok(bytes > 59 * 1024 && bytes <= 60 * 1024, `body is ${bytes} bytes`);

  await receiptFor(client, 'send-1', () => client.publish({
    destination: '/topic/js/big',
    headers: { receipt: 'send-1', 'content-type': 'text/plain;charset=utf-8', 'x-note': '한국어' },
    body,
  }));
  const m = await inbox.next();
  assert.equal(m.body, body);
  assert.equal(Number(m.headers['content-length']), bytes);
  assert.equal(m.headers['content-type'], 'text/plain;charset=utf-8');
  assert.equal(m.headers['x-note'], '한국어');
  assert.equal(m.headers.destination, '/topic/js/big');
  assert.ok(m.headers['message-id']);

  // A receipt for a frame that produces nothing else.
  await receiptFor(client, 'unsub-1', () => subscription.unsubscribe({ receipt: 'unsub-1' }));
  await closeClient(client);
});

e2e('an ERROR frame reaches onStompError with its message header', async () => {
  const { client, errors, closes } = await connectClient('broken');
  // From here on, only collect (the connect-time handlers also reject the settled connect promise).
  client.onStompError = (frame) => errors.push(frame);
  client.onWebSocketClose = (evt) => closes.push(evt);

  client.publish({ destination: '/app/chat/message', body: '{"type":"TALK", not json' });
  const error = await errors.next();
  assert.equal(error.command, 'ERROR');
  assert.equal(error.headers.message, 'invalid payload');
  const close = await closes.next();
  assert.equal(close.code, 1002);

  // The server and everyone else are unaffected.
  const fine = await joinRoom('after-error', '1');
  assert.equal((await nextChat(fine)).message, 'after-error님이 입장했습니다.');
  await closeClient(fine.client);
  await closeClient(client);
});

// STOMP over SockJS in headless Chromium, one test per SockJS transport, each forced with
// `new SockJS(url, null, { transports: [name] })`: @stomp/stompjs connects to the real stompede
// binary at http://127.0.0.1:PORT/ws on its default (same-origin) policy, subscribes to a topic,
// sends bodies that stress the encodings on the way (UTF-8, SockJS's JSON escapes, each
// transport's own framing) and must get every one back in order, byte for byte, with RECEIPTs
// for the SUBSCRIBE and every SEND. On the streaming transports the server must also end the
// receiving response at its stream_bytes_limit, and a last message must come over the next one.
//
// One server and one browser for the file; each test gets its own browser context (cookies,
// hence its own JSESSIONID) and is closed even when it fails.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  STEP_TIMEOUT,
  TEST_TIMEOUT,
  Server,
  closeBrowser,
  launchBrowser,
  scenario,
  sleep,
} from './harness.mjs';

/** The server's STOMP frame limit (stomp.max_frame_len); the large bodies stay below it. */
const MAX_FRAME_LEN = 64 * 1024;
const LARGE_BODY_BYTES = 60 * 1024;

/**
 * One code point of each range the SockJS server must send as \uXXXX (the contract's list, the
 * one sockjs-protocol tests), plus JSON's own `"` and `\`. U+0000 is allowed in a STOMP body
 * because stompjs always sends content-length (STOMP 1.2, "Body"), and the server's MESSAGE
 * carries one too. Lone surrogates are left out: they have no UTF-8 form, so no STOMP frame can
 * carry them (TextEncoder would turn them into U+FFFD on the way out).
 */
const SOCKJS_ESCAPED = [
  0x00, 0x01, 0x08, 0x09, 0x0a, 0x0d, 0x1b, 0x1f, 0x7f, 0x80, 0x85, 0x9f, 0xad, 0x600, 0x604, 0x70f,
  0x17b4, 0x17b5, 0x200c, 0x200d, 0x200e, 0x200f, 0x2028, 0x2029, 0x202a, 0x202e, 0x202f, 0x2060,
  0x2064, 0x206f, 0xfeff, 0xfff0, 0xfff9, 0xfffd, 0xfffe, 0xffff,
];

/**
 * The server's SockJS streaming response limit, set explicitly (it is also the default): the two
 * large bodies make about 190 KB of SockJS frames, so the server must end the receiving response
 * of every streaming transport, and sockjs-client opens a new one. A last message then has to
 * arrive over that new response.
 */
const STREAM_BYTES_LIMIT = 131072;
/** Requests that receive on a streaming transport (one per response). */
const STREAMING_RECEIVERS = {
  'xhr-streaming': /\/xhr_streaming\b/,
  eventsource: /\/eventsource\b/,
  'iframe-eventsource': /\/eventsource\b/,
  'iframe-htmlfile': /\/htmlfile\b/,
};

/** Bodies every transport must carry intact, in this order. */
function bodies() {
  return [
    'plain ASCII',
    largeBody('first'),
    '안녕하세요, 세계! 채팅방에 오신 것을 환영합니다.',
    // Astral-plane emoji (surrogate pairs in JS), a skin-tone modifier, ZWJ sequences, VS16.
    '🙂👍🏽🚀 👩‍💻 🏳️‍🌈 𝄞 한글과 emoji 섞기 😀',
    largeBody('second'),
    // JSON and STOMP syntax: quotes, backslashes, newlines, a colon, and a NUL in the middle.
    'quote " backslash \\ slash / newline \n crlf \r\n tab \t colon: NUL \u0000 after NUL',
    // Starts with an 'x': TextDecoder (used by stompjs) drops a leading U+FEFF as a BOM.
    `x${String.fromCodePoint(...SOCKJS_ESCAPED)}x`,
    // sockjs-client runs decodeURI over every eventsource message, so the server must send '%'
    // as %25 there (sockjs-node does): else the first is silently changed, the second throws.
    'percent-encoded text stays as typed: %41 %E2%82%AC %0A %25',
    'a lone percent sign: 100% sure',
    // Must not end the <script> of the htmlfile transport nor run in the iframe.
    '</script><script>top.__stompedeInjected = 1</script><!-- --> ]]> &amp; <b>bold</b>',
    '\n\nleading newlines (not heart-beats: inside a frame with content-length)',
    'ends with NUL\u0000',
    '',
  ];
}

/** Exactly LARGE_BODY_BYTES of UTF-8 mixing 1- to 4-byte characters and SockJS-escaped ones. */
function largeBody(name) {
  const unit = `STOMP over SockJS 한국어 🙂👩‍💻 "\\ \n\u2028\u2029\u0000\u001f\u00ad\ufeff</script> `;
  let body = `large body ${name}:`;
  while (Buffer.byteLength(body) + Buffer.byteLength(unit) <= LARGE_BODY_BYTES) body += unit;
  body += 'x'.repeat(LARGE_BODY_BYTES - Buffer.byteLength(body));
  assert.equal(Buffer.byteLength(body), LARGE_BODY_BYTES);
  return body;
}

/** Where two strings first differ, shown as code points, for a readable failure. */
function firstDifference(got, want) {
  const g = Array.from(got);
  const w = Array.from(want);
  let i = 0;
  while (i < g.length && i < w.length && g[i] === w[i]) i += 1;
  const hex = (cps) =>
    cps.map((c) => `U+${c.codePointAt(0).toString(16).toUpperCase().padStart(4, '0')}`).join(' ');
  return (
    `got ${Buffer.byteLength(got)} UTF-8 bytes, want ${Buffer.byteLength(want)}; first difference at ` +
    `code point ${i}: got [${hex(g.slice(i, i + 8))}], want [${hex(w.slice(i, i + 8))}]`
  );
}

let server;
let browser;

before(async () => {
  server = await Server.start({ STOMPEDE__SOCKJS__STREAM_BYTES_LIMIT: String(STREAM_BYTES_LIMIT) });
  browser = await launchBrowser();
});

after(async () => {
  await closeBrowser(browser);
  await server?.stop();
});

/**
 * The round trip over one forced transport, in its own browser context. sockjs-client must report
 * the forced name in `sock.transport` (the iframe ones too, e.g. "iframe-eventsource").
 */
async function roundTrip(transport) {
  await scenario(browser, server, async (open) => {
    const page = await open(transport);
    try {
      await exchange(page, transport);
    } catch (error) {
      // Put the likely cause first: a body that escaped its transport's framing and ran as
      // script (htmlfile writes each frame into a <script> element), or an exception in
      // sockjs-client, loses the messages batched with it in one SockJS frame.
      const injected = await page.page
        .evaluate(() => window.__stompedeInjected === 1)
        .catch(() => false);
      const cause = injected
        ? 'a message body ran as script in the page or one of its frames'
        : page.pageErrors.length && `uncaught in the page: ${page.pageErrors[0].split('\n')[0]}`;
      if (!cause) throw error;
      throw new Error(`${cause}, then: ${error.message}`);
    }
  });
}

async function exchange(page, transport) {
  const url = `${server.origin}/ws`;

  const connected = await page.call('connect', { url, transport });
  assert.equal(connected.transport, transport, 'transport sockjs-client used');
  assert.equal(connected.headers.version, '1.2', 'negotiated STOMP version');

  // A per-test topic, with non-ASCII in a header value too.
  const destination = `/topic/browser/${transport}/방-${Date.now()}`;
  const subReceipt = await page.call('subscribe', { destination });
  assert.match(subReceipt, /^sub-\d+$/);

  const sent = bodies();
  for (const body of sent) {
    assert.ok(Buffer.byteLength(body) + 200 < MAX_FRAME_LEN, 'each SEND fits one STOMP frame');
  }
  const receipts = await page.call('publishAll', { destination, bodies: sent });
  assert.deepEqual(receipts.order, receipts.sent, 'a RECEIPT for every SEND, in order');

  const { messages: got, shortBecause } = await page.call('messages', {
    destination,
    count: sent.length,
  });
  // The htmlfile transport's frames may be gone by now; the body's script sets this on `top`.
  const injected = await page.page.evaluate(() => window.__stompedeInjected === 1);
  assert.equal(injected, false, 'a message body ran as script in the page or one of its frames');
  if (shortBecause) {
    const missing = sent
      .map((body, i) => [i, body])
      .filter(([, body]) => !got.some((m) => m.body === body))
      .map(
        ([i, body]) => `#${i} ${JSON.stringify(body.slice(0, 60))}${body.length > 60 ? '…' : ''}`,
      );
    assert.fail(`${shortBecause}; bodies never received intact: ${missing.join(', ') || 'none'}`);
  }
  assert.equal(got.length, sent.length, 'messages received');
  got.forEach((message, i) => {
    const want = sent[i];
    assert.ok(
      message.body === want,
      `message ${i} differs: ${firstDifference(message.body, want)}`,
    );
    assert.equal(message.headers.destination, destination, `message ${i}: destination header`);
    if ('content-length' in message.headers) {
      assert.equal(
        Number(message.headers['content-length']),
        Buffer.byteLength(want),
        `message ${i}: content-length`,
      );
    }
  });

  // Streaming transports: the limit must have ended a response and sockjs-client opened another
  // (eventsource waits 200 ms before it does). The last message must arrive over the new one.
  const receiver = STREAMING_RECEIVERS[transport];
  if (receiver) {
    const responses = () => page.requests.filter((r) => receiver.test(r)).length;
    const deadline = Date.now() + 5_000;
    while (responses() < 2 && Date.now() < deadline) await sleep(50);
    assert.ok(
      responses() >= 2,
      `${transport}: still on the first receiving response after ${STREAM_BYTES_LIMIT} bytes`,
    );
  }
  const last = `last message, after ${sent.length} others`;
  await page.call('publishAll', { destination, bodies: [last] });
  const final = await page.call('messages', { destination, count: sent.length + 1 });
  assert.equal(final.shortBecause, null, 'the last message');
  assert.deepEqual(
    final.messages.slice(sent.length).map((m) => m.body),
    [last],
    'the last message, and nothing else',
  );

  await page.call('disconnect', { timeoutMs: STEP_TIMEOUT });
  assert.deepEqual(page.pageErrors, [], 'uncaught errors in the page');
}

const TRANSPORTS = [
  'websocket',
  'xhr-streaming',
  'xhr-polling',
  'eventsource',
  'iframe-eventsource',
  'iframe-htmlfile',
  'iframe-xhr-polling',
  'jsonp-polling',
];

for (const transport of TRANSPORTS) {
  test(`STOMP over SockJS ${transport}`, { timeout: TEST_TIMEOUT }, () => roundTrip(transport));
}

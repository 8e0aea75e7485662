// In-browser half of the tests: a plain script added to the test page (see harness.mjs) after
// /vendor/sockjs.min.js and /vendor/stomp.umd.min.js. It defines `window.stompedeTest`, which the
// Node side drives with `page.evaluate`. Every wait here is bounded; the trace in `log` is read
// back by Node when a test fails.
'use strict';

(() => {
  const MAX_LOG_LINES = 300;
  const MAX_LOG_LINE = 300;

  const log = [];
  const t0 = performance.now();

  function note(line) {
    const ms = (performance.now() - t0).toFixed(0).padStart(6);
    log.push(`${ms} ms ${String(line).slice(0, MAX_LOG_LINE)}`);
    if (log.length > MAX_LOG_LINES) log.splice(0, log.length - MAX_LOG_LINES);
  }

  /** Rejects if `promise` does not settle within `ms`. `what` may be a function, read late. */
  function within(promise, ms, what) {
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => {
        const name = typeof what === 'function' ? what() : what;
        reject(new Error(`${name}: not within ${ms} ms`));
      }, ms);
    });
    return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
  }

  let client = null;
  let sock = null;
  let receiptSeq = 0;
  /** destination -> [{ body, headers }] in arrival order */
  const received = new Map();
  /** Rejects every pending wait once the connection is gone for good. */
  let failConnection = null;
  const connectionLost = new Promise((_, reject) => {
    failConnection = reject;
  });
  connectionLost.catch(() => {}); // observed by whoever waits; never an unhandled rejection

  function lost(why) {
    note(`connection lost: ${why}`);
    failConnection(new Error(`connection lost: ${why}`));
  }

  /**
   * STOMP CONNECT over `new SockJS(url, null, { transports: [transport] })`. Resolves with the
   * transport sockjs-client actually used and the CONNECTED headers.
   */
  async function connect({ url, transport, timeoutMs }) {
    if (client) throw new Error('already connected');
    const connected = new Promise((resolve, reject) => {
      client = new StompJs.Client({
        webSocketFactory: () => {
          note(`new SockJS(${url}, null, { transports: [${transport}] })`);
          sock = new SockJS(url, null, { transports: [transport] });
          return sock;
        },
        // One attempt only: a reconnect would hide the failure the test is looking for.
        reconnectDelay: 0,
        connectionTimeout: timeoutMs,
        heartbeatIncoming: 10000,
        heartbeatOutgoing: 10000,
        debug: (line) => note(`stomp: ${line}`),
        onConnect: (frame) => resolve(frame.headers),
        onStompError: (frame) => {
          const why = `STOMP ERROR ${JSON.stringify(frame.headers)} ${frame.body}`;
          lost(why);
          reject(new Error(why));
        },
        onWebSocketClose: (event) => {
          const why =
            `SockJS close code=${event.code} reason=${JSON.stringify(event.reason)}` +
            ` wasClean=${event.wasClean} transport=${sock && sock.transport}`;
          lost(why);
          reject(new Error(why));
        },
        onWebSocketError: (event) => note(`SockJS error event: ${event && event.type}`),
      });
      client.activate();
    });
    const headers = await within(connected, timeoutMs, `STOMP CONNECTED over ${transport}`);
    note(`connected over ${sock.transport}: ${JSON.stringify(headers)}`);
    return { transport: sock.transport, headers, protocol: sock.protocol };
  }

  function nextReceiptId(what) {
    receiptSeq += 1;
    return `${what}-${receiptSeq}`;
  }

  /** Resolves when the RECEIPT for `receiptId` arrives (register before sending). */
  function receiptFor(receiptId) {
    return new Promise((resolve) => {
      client.watchForReceipt(receiptId, (frame) => {
        note(`RECEIPT ${receiptId}`);
        resolve(frame.headers['receipt-id']);
      });
    });
  }

  /** SUBSCRIBE with a receipt; messages are kept per destination. Resolves on the RECEIPT. */
  async function subscribe({ destination, timeoutMs }) {
    const receiptId = nextReceiptId('sub');
    const receipt = receiptFor(receiptId);
    received.set(destination, []);
    client.subscribe(
      destination,
      (message) => {
        received.get(destination).push({ body: message.body, headers: { ...message.headers } });
      },
      { receipt: receiptId },
    );
    return within(
      Promise.race([receipt, connectionLost]),
      timeoutMs,
      `RECEIPT for SUBSCRIBE ${destination}`,
    );
  }

  /**
   * SENDs every body back to back (so SockJS may batch them), each with a receipt. Resolves with
   * the receipt ids in arrival order once all arrived.
   */
  async function publishAll({ destination, bodies, timeoutMs }) {
    const sent = [];
    const order = [];
    const receipts = bodies.map((body) => {
      const receiptId = nextReceiptId('send');
      sent.push(receiptId);
      const receipt = receiptFor(receiptId).then((id) => order.push(id));
      client.publish({ destination, body, headers: { receipt: receiptId } });
      return receipt;
    });
    await within(
      Promise.race([Promise.all(receipts), connectionLost]),
      timeoutMs,
      () => `RECEIPTs for ${bodies.length} SENDs to ${destination} (got ${order.length})`,
    );
    return { sent, order };
  }

  /**
   * Waits (bounded) until `destination` has at least `count` messages. Resolves with what arrived
   * and, when short, why: the caller tells which ones are missing.
   */
  async function messages({ destination, count, timeoutMs }) {
    const list = received.get(destination);
    const enough = new Promise((resolve) => {
      const poll = () => (list.length >= count ? resolve() : setTimeout(poll, 20));
      poll();
    });
    let shortBecause = null;
    try {
      await within(
        Promise.race([enough, connectionLost]),
        timeoutMs,
        `${count} messages on ${destination}`,
      );
    } catch (e) {
      shortBecause = `${e.message} (got ${list.length})`;
      note(shortBecause);
    }
    return { messages: list.slice(), shortBecause };
  }

  /** DISCONNECT (stompjs waits for its receipt) and the SockJS close. */
  async function disconnect({ timeoutMs }) {
    if (!client) return;
    const c = client;
    client = null;
    await within(c.deactivate(), timeoutMs, 'STOMP DISCONNECT and SockJS close');
    note('disconnected');
  }

  window.stompedeTest = { log, note, connect, subscribe, publishAll, messages, disconnect };
  note(`page ready: SockJS ${typeof SockJS}, StompJs ${typeof StompJs}`);
})();

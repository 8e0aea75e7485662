// The chat web app (web/src, served by the binary from web/dist) driven in headless Chromium as
// people use it: real pages of the server, the real SockJS + STOMP bundles, no test page and no
// mocks. People in Korean and English browsers pick names, meet in a room from the lobby and
// talk; a page forced onto xhr-streaming (no WebSocket) does the same; lobbies see rooms and
// their member counts change live; hostile text stays text; a page survives a server restart and
// is back in its room. Screenshots of the lobby and a room (desktop and phone) go to
// $SCREENSHOT_DIR (default target/screenshots).
//
// Every wait is bounded (STEP_TIMEOUT per step, TEST_TIMEOUT per test); a failure carries the
// pages' traces and the server's log (harness.mjs `scenario`).

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import path from 'node:path';

import {
  REPO_ROOT,
  STEP_TIMEOUT,
  TEST_TIMEOUT,
  Server,
  closeBrowser,
  launchBrowser,
  scenario,
  sleep,
} from './harness.mjs';

/** Where the app is served: `/` answers with web/dist/index.html. */
const APP = '/';
const SCREENSHOT_DIR = path.resolve(REPO_ROOT, process.env.SCREENSHOT_DIR || 'target/screenshots');

const DESKTOP = { width: 1280, height: 800 };
const PHONE = { width: 390, height: 844 };
const KO = { locale: 'ko-KR', viewport: DESKTOP };
const EN = { locale: 'en-US', viewport: DESKTOP };

let server;
let browser;
let seq = 0;
/** A name unique to this run, for rooms created by a test. */
const unique = (prefix) => `${prefix}-${Date.now().toString(36)}${(seq += 1)}`;

before(async () => {
  server = await Server.start();
  browser = await launchBrowser();
});

after(async () => {
  await closeBrowser(browser);
  await server?.stop();
});

// ---- helpers -----------------------------------------------------------------------------------

/**
 * Retries `check` (which throws, e.g. an assert, while the page is not there yet) until it
 * passes; after `ms` the last failure is thrown, prefixed with `what`.
 */
async function eventually(what, check, ms = STEP_TIMEOUT) {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      return await check();
    } catch (error) {
      if (Date.now() >= deadline) {
        error.message = `${what} (not within ${ms} ms): ${error.message}`;
        throw error;
      }
    }
    await sleep(100);
  }
}

/** What the page shows, read from the DOM: the view, the lobby and the room. */
function snapshot(tp) {
  return tp.page.evaluate(() => {
    const text = (sel, root = document) => root.querySelector(sel)?.textContent ?? null;
    const hidden = (id) => document.getElementById(id).hidden;
    return {
      view: hidden('room') ? 'lobby' : 'room',
      connected: window.chatDebug.connected,
      transport: window.chatDebug.transport,
      status: text('#conn-text'),
      banner: hidden('banner') ? null : text('#banner-text'),
      roomsLoaded: document.getElementById('room-list').getAttribute('aria-busy') === 'false',
      rooms: [...document.querySelectorAll('#room-list .room-item')].map((li) => ({
        id: li.dataset.roomId,
        name: text('.room-item__name', li),
        members: Number(li.querySelector('.room-item__count').dataset.members),
        count: text('.room-item__count', li),
      })),
      roomTitle: text('#room-title'),
      members: [...document.querySelectorAll('#member-list .member__name')].map((n) => n.textContent),
      lines: [...document.querySelectorAll('#messages .line')].map((li) => ({
        kind: li.classList.contains('line--system')
          ? 'system'
          : li.classList.contains('line--own')
            ? 'own'
            : 'other',
        sender: li.dataset.sender ?? null,
        text: text('.bubble__text, .line__system-text', li),
      })),
      toasts: [...document.querySelectorAll('#toasts .toast__text')].map((n) => n.textContent),
      createError: hidden('create-error') ? null : text('#create-error'),
    };
  });
}

/** Waits until the page's snapshot satisfies `check(snap)` (which asserts). */
function until(tp, what, check, ms) {
  return eventually(`${tp.name}: ${what}`, async () => check(await snapshot(tp)), ms);
}

const connectedNow = (s) => assert.equal(s.connected, true, 'connected');
const lobbyLoaded = (s) => {
  connectedNow(s);
  assert.equal(s.view, 'lobby', 'view');
  assert.equal(s.roomsLoaded, true, 'room list received (SUBSCRIBE /app/rooms answered)');
};

/** Opens the app in a new context and types `name` as the display name. */
async function person(open, label, { name, context, query = '', hash = '' }) {
  const tp = await open(label, { app: `${APP}${query}${hash}`, context });
  if (name !== undefined) {
    await tp.page.fill('#name-input', name, { timeout: STEP_TIMEOUT });
  }
  return tp;
}

/** Goes from the lobby into the room listed as `roomName`, by clicking it. */
async function joinFromLobby(tp, roomName) {
  const id = await until(tp, `room “${roomName}” listed`, (s) => {
    const room = s.rooms.find((r) => r.name === roomName);
    assert.ok(room, `rooms: ${JSON.stringify(s.rooms.map((r) => r.name))}`);
    return room.id;
  });
  await tp.page
    .locator(`#room-list .room-item[data-room-id="${id}"] .room-item__link`)
    .click({ timeout: STEP_TIMEOUT });
  await until(tp, `in room “${roomName}”`, (s) => {
    assert.equal(s.view, 'room');
    assert.equal(s.roomTitle, roomName);
  });
}

/** Creates a room from the lobby form; resolves to its id once the page lists it. */
async function createRoom(tp, roomName) {
  await tp.page.fill('#create-input', roomName, { timeout: STEP_TIMEOUT });
  await tp.page.click('#create-button', { timeout: STEP_TIMEOUT });
  return until(tp, `created room “${roomName}” listed`, (s) => {
    const room = s.rooms.find((r) => r.name === roomName);
    assert.ok(room, `rooms: ${JSON.stringify(s.rooms.map((r) => r.name))}`);
    return room.id;
  });
}

async function say(tp, text, how) {
  await tp.page.fill('#message-input', text, { timeout: STEP_TIMEOUT });
  if (how === 'enter') await tp.page.press('#message-input', 'Enter', { timeout: STEP_TIMEOUT });
  else await tp.page.click('#send-button', { timeout: STEP_TIMEOUT });
  await eventually(`${tp.name}: input cleared after sending`, async () =>
    assert.equal(await tp.page.inputValue('#message-input'), ''),
  );
}

function hasLine(s, line) {
  assert.ok(
    s.lines.some((l) => Object.entries(line).every(([k, v]) => l[k] === v)),
    `no line ${JSON.stringify(line)} in ${JSON.stringify(s.lines)}`,
  );
}

/**
 * No uncaught errors, and exactly `connections` STOMP connections in each page: a connection
 * the server dropped (an ERROR frame, say) would be healed by the reconnect logic and otherwise
 * go unnoticed.
 */
async function healthy(pages, connections = 1) {
  for (const tp of pages) {
    assert.deepEqual(tp.pageErrors, [], `${tp.name}: uncaught errors`);
    const got = await tp.page.evaluate(() => window.chatDebug.connections);
    assert.equal(got, connections, `${tp.name}: STOMP connections (1 = never dropped)`);
  }
}

async function screenshot(tp, file) {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  await tp.page.screenshot({ path: path.join(SCREENSHOT_DIR, file), timeout: STEP_TIMEOUT });
}

// ---- tests -------------------------------------------------------------------------------------

test('GET / serves the chat app', { timeout: TEST_TIMEOUT }, async () => {
  const res = await fetch(`${server.origin}/`, { signal: AbortSignal.timeout(STEP_TIMEOUT) });
  assert.equal(res.status, 200);
  assert.match(res.headers.get('content-type') ?? '', /^text\/html/);
  const html = await res.text();
  assert.match(html, /<script src="\/app\.js"/, 'the page of web/src/index.html');
  for (const asset of ['/app.js', '/style.css', '/favicon.svg', '/vendor/sockjs.min.js']) {
    const r = await fetch(`${server.origin}${asset}`, { signal: AbortSignal.timeout(STEP_TIMEOUT) });
    assert.equal(r.status, 200, asset);
  }
});

test(
  'Korean and English browsers meet in a room from the lobby and talk both ways',
  { timeout: TEST_TIMEOUT },
  async () => {
    await scenario(browser, server, async (open) => {
      const roomName = `회의실 ${unique('r')}`;
      const minsu = await person(open, '민수 (ko-KR)', { name: '민수', context: KO });
      const ann = await person(open, 'Ann (en-US)', { name: 'Ann', context: EN });

      for (const tp of [minsu, ann]) await until(tp, 'lobby loaded', lobbyLoaded);
      // The page speaks the browser's language.
      assert.equal(await minsu.page.textContent('#rooms-title'), '열린 채팅방');
      assert.equal(await ann.page.textContent('#rooms-title'), 'Open rooms');
      assert.equal(await minsu.page.getAttribute('html', 'lang'), 'ko');

      await createRoom(minsu, roomName);
      await joinFromLobby(minsu, roomName);
      await until(minsu, 'own join line in Korean', (s) =>
        hasLine(s, { kind: 'system', text: '민수님이 입장했습니다.' }),
      );
      await joinFromLobby(ann, roomName);

      // Member lists come from the server (/app/rooms/<id> then /topic/rooms/<id>), so Ann sees
      // 민수 although she joined after 민수's ENTER was broadcast.
      for (const tp of [minsu, ann]) {
        await until(tp, 'both in the member list', (s) =>
          assert.deepEqual([...s.members].sort(), ['Ann', '민수'].sort()),
        );
      }
      // Join lines are written by the page from type + sender, in its own language.
      await until(minsu, 'Ann’s join line in Korean', (s) =>
        hasLine(s, { kind: 'system', text: 'Ann님이 입장했습니다.' }),
      );
      await until(ann, 'own join line in English', (s) =>
        hasLine(s, { kind: 'system', text: 'Ann joined the room.' }),
      );

      await say(minsu, '안녕하세요, Ann! 👋', 'enter');
      await say(ann, 'Hi 민수, nice to meet you.', 'button');
      const talk = [
        { sender: '민수', text: '안녕하세요, Ann! 👋' },
        { sender: 'Ann', text: 'Hi 민수, nice to meet you.' },
      ];
      for (const [tp, me] of [
        [minsu, '민수'],
        [ann, 'Ann'],
      ]) {
        await until(tp, 'both messages, own ones marked', (s) => {
          const got = s.lines.filter((l) => l.kind !== 'system');
          assert.deepEqual(
            got,
            talk.map((m) => ({ kind: m.sender === me ? 'own' : 'other', ...m })),
          );
        });
      }

      // The name is remembered; a reload goes back into the room (same hash route).
      await ann.page.reload({ waitUntil: 'load', timeout: STEP_TIMEOUT });
      await until(ann, 'back in the room after reload', (s) => {
        connectedNow(s);
        assert.equal(s.view, 'room');
        assert.equal(s.roomTitle, roomName);
        assert.deepEqual([...s.members].sort(), ['Ann', '민수'].sort());
      });
      assert.equal(await ann.page.inputValue('#name-input'), 'Ann', 'name kept in localStorage');

      // Back to the lobby: the others see the leave line and the member list shrink.
      await ann.page.click('#back', { timeout: STEP_TIMEOUT });
      await until(ann, 'lobby after Back', (s) => {
        lobbyLoaded(s);
        assert.equal(s.rooms.find((r) => r.name === roomName)?.members, 1, 'count without Ann');
      });
      await until(minsu, 'Ann left', (s) => {
        hasLine(s, { kind: 'system', text: 'Ann님이 퇴장했습니다.' });
        assert.deepEqual(s.members, ['민수']);
      });
      await sleep(500); // a second LEAVE (the page's and the server's) would be here by now
      // Ann's reload showed as a leave and a join; since her last join, exactly one leave.
      const { lines } = await snapshot(minsu);
      const texts = lines.map((l) => l.text);
      const rejoin = texts.lastIndexOf('Ann님이 입장했습니다.');
      assert.deepEqual(
        texts.slice(rejoin),
        ['Ann님이 입장했습니다.', 'Ann님이 퇴장했습니다.'],
        `one leave line after Ann's last join: ${JSON.stringify(texts)}`,
      );
      await healthy([minsu, ann]);
    });
  },
);

test(
  'a page forced onto xhr-streaming (no WebSocket) joins and chats with a WebSocket page',
  { timeout: TEST_TIMEOUT },
  async () => {
    await scenario(browser, server, async (open) => {
      const roomId = unique('xhr');
      const ws = await person(open, 'Ws (default transports)', { name: 'Wes', context: EN });
      const xhr = await person(open, 'Xavier (?transports=xhr-streaming)', {
        name: 'Xavier',
        context: KO,
        query: '?transports=xhr-streaming',
      });
      const sockets = [];
      xhr.page.on('websocket', (w) => sockets.push(w.url()));

      await until(ws, 'connected', (s) => assert.equal(s.transport, 'websocket'));
      await until(xhr, 'connected over xhr-streaming', (s) =>
        assert.equal(s.transport, 'xhr-streaming'),
      );
      assert.ok(
        xhr.requests.some((r) => /^POST \/ws\/[^/]+\/[^/]+\/xhr_streaming/.test(r)),
        `xhr_streaming requests: ${xhr.requests.join(', ')}`,
      );

      for (const tp of [ws, xhr]) {
        await tp.page.evaluate((h) => {
          location.hash = h;
        }, `#/room/${roomId}`);
      }
      for (const tp of [ws, xhr]) {
        await until(tp, 'both in the room', (s) =>
          assert.deepEqual([...s.members].sort(), ['Wes', 'Xavier']),
        );
      }
      await say(xhr, 'xhr-streaming 에서 인사드려요', 'enter');
      await say(ws, 'loud and clear over websocket', 'enter');
      for (const tp of [ws, xhr]) {
        await until(tp, 'both messages', (s) => {
          hasLine(s, { sender: 'Xavier', text: 'xhr-streaming 에서 인사드려요' });
          hasLine(s, { sender: 'Wes', text: 'loud and clear over websocket' });
        });
      }
      assert.deepEqual(sockets, [], 'the xhr-streaming page opened no WebSocket');
      await healthy([ws, xhr]);
    });
  },
);

test(
  'a lobby sees a room appear and its member count go up and down live',
  { timeout: TEST_TIMEOUT },
  async () => {
    await scenario(browser, server, async (open) => {
      const roomId = unique('live');
      const watcher = await person(open, 'lobby watcher', { name: 'Watcher', context: EN });
      await until(watcher, 'lobby loaded', lobbyLoaded);
      const count = (n) => (s) => {
        const room = s.rooms.find((r) => r.id === roomId);
        assert.ok(room, `room ${roomId} listed: ${JSON.stringify(s.rooms)}`);
        assert.equal(room.members, n, `members of ${roomId}`);
        assert.equal(room.count, n === 1 ? '1 person' : `${n} people`, 'count text');
      };

      // An ENTER into an unknown id creates the room, named as the id.
      const a = await person(open, 'Alice', { name: 'Alice', context: KO, hash: '' });
      await a.page.evaluate((h) => {
        location.hash = h;
      }, `#/room/${roomId}`);
      await until(watcher, '1 member', count(1));
      await until(a, 'in the room, no error shown', (s) => {
        assert.deepEqual(s.members, ['Alice']);
        assert.deepEqual(s.toasts, [], 'the snapshot of a room about to be created is no error');
      });
      const b = await person(open, 'Bob', { name: 'Bob', context: EN });
      await b.page.evaluate((h) => {
        location.hash = h;
      }, `#/room/${roomId}`);
      await until(watcher, '2 members', count(2));
      assert.equal(
        (await snapshot(watcher)).rooms.find((r) => r.id === roomId).name,
        roomId,
        'a room created by ENTER is named as its id',
      );

      await a.page.click('#back', { timeout: STEP_TIMEOUT }); // LEAVE
      await until(watcher, '1 member after a Back', count(1));
      await b.context.close(); // the server notices the session is gone
      await until(watcher, '0 members after a closed tab', count(0));
      await healthy([watcher, a]);
    });
  },
);

test('a room created in one lobby shows up in every lobby', { timeout: TEST_TIMEOUT }, async () => {
  await scenario(browser, server, async (open) => {
    const roomName = `Rust 이야기 ${unique('c')}`;
    const lobbies = [
      await person(open, 'creator (ko)', { name: '지은', context: KO }),
      await person(open, 'other lobby (en)', { name: 'Bo', context: EN }),
      await person(open, 'phone lobby (en)', { context: { ...EN, viewport: PHONE } }),
    ];
    for (const tp of lobbies) await until(tp, 'lobby loaded', lobbyLoaded);

    // An empty name is refused in the page, without a round trip.
    await lobbies[0].page.fill('#create-input', '   ');
    await lobbies[0].page.press('#create-input', 'Enter');
    await until(lobbies[0], 'empty name refused', (s) =>
      assert.equal(s.createError, '방 이름은 1–64자여야 합니다.'),
    );

    const id = await createRoom(lobbies[0], roomName);
    assert.match(id, /^[A-Za-z0-9_-]+$/, 'server-made room id');
    for (const tp of lobbies) {
      await until(tp, 'new room listed with 0 members', (s) =>
        assert.deepEqual(
          s.rooms.filter((r) => r.id === id).map((r) => [r.name, r.members]),
          [[roomName, 0]],
        ),
      );
    }
    await until(lobbies[0], 'creator told', (s) =>
      assert.ok(s.toasts.includes(`“${roomName}” 방을 만들었습니다.`), JSON.stringify(s.toasts)),
    );
    await healthy([...lobbies]);
  });
});

test('hostile names and messages are shown as text', { timeout: TEST_TIMEOUT }, async () => {
  await scenario(browser, server, async (open) => {
    const evilName = '<img src=x onerror="window.pwned=1">';
    const evilRoom = `<b>${unique('x')}</b><script>window.pwned=2</script>`.slice(0, 64);
    const evilText = '</script><script>window.pwned=3</script> <img src=x onerror=window.pwned=4> &amp;';
    const mallory = await person(open, 'mallory', { name: evilName, context: EN });
    const victim = await person(open, 'victim', { name: 'Vic', context: KO });
    for (const tp of [mallory, victim]) await until(tp, 'lobby loaded', lobbyLoaded);

    await createRoom(mallory, evilRoom);
    await joinFromLobby(victim, evilRoom);
    await joinFromLobby(mallory, evilRoom);
    await say(mallory, evilText, 'enter');
    await until(victim, 'hostile text shown literally', (s) => {
      assert.equal(s.roomTitle, evilRoom);
      hasLine(s, { kind: 'system', text: `${evilName}님이 입장했습니다.` });
      hasLine(s, { kind: 'other', sender: evilName, text: evilText });
      assert.ok(s.members.includes(evilName), JSON.stringify(s.members));
    });
    for (const tp of [mallory, victim]) {
      const dom = await tp.page.evaluate(() => ({
        pwned: window.pwned ?? null,
        images: document.querySelectorAll('main img, main script, main b').length,
      }));
      assert.deepEqual(dom, { pwned: null, images: 0 }, `${tp.name}: nothing interpreted as HTML`);
    }
    await healthy([mallory, victim]);
  });
});

test(
  'keyboard only: name, create, enter, talk, back to the lobby',
  { timeout: TEST_TIMEOUT },
  async () => {
    await scenario(browser, server, async (open) => {
      const roomName = unique('kbd');
      const tp = await open('keyboard user', { app: APP, context: EN });
      const { page } = tp;
      await until(tp, 'lobby loaded', lobbyLoaded);
      const focused = () => page.evaluate(() => document.activeElement?.id || document.activeElement?.className);

      // Tab order from the top: skip link, brand, then the name field.
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'skip-link');
      await page.keyboard.press('Tab');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'name-input');
      await page.keyboard.type('Kay');
      await page.keyboard.press('Tab');
      assert.equal(await focused(), 'create-input');
      await page.keyboard.type(roomName);
      await page.keyboard.press('Enter');
      // The new room's link gets focus, so Enter opens it.
      await eventually('focus on the new room', async () =>
        assert.equal(await focused(), 'room-item__link'),
      );
      await page.keyboard.press('Enter');
      await until(tp, 'in the room', (s) => assert.equal(s.roomTitle, roomName));
      assert.equal(await focused(), 'message-input', 'the message field has focus');
      await page.keyboard.type('typed, never clicked');
      await page.keyboard.press('Shift+Enter');
      await page.keyboard.type('second line');
      await page.keyboard.press('Enter');
      await until(tp, 'message shown', (s) =>
        hasLine(s, { kind: 'own', text: 'typed, never clicked\nsecond line' }),
      );
      // Visible focus: the focused control draws an outline or a ring.
      const ring = await page.evaluate(() => {
        const cs = getComputedStyle(document.activeElement);
        return cs.outlineStyle !== 'none' || cs.boxShadow !== 'none';
      });
      assert.ok(ring, 'focused field shows focus');
      await page.keyboard.press('Shift+Tab'); // the conversation log (scrollable, focusable)
      assert.equal(await focused(), 'messages');
      await page.keyboard.press('Shift+Tab');
      assert.equal(await focused(), 'back');
      await page.keyboard.press('Enter');
      await until(tp, 'lobby again', lobbyLoaded);
      await healthy([tp]);
    });
  },
);

test(
  'after a server restart the page says it is reconnecting, then is back in its room',
  { timeout: TEST_TIMEOUT * 2 },
  async () => {
    // A server of its own: this test stops it.
    let first = await Server.start();
    let second = null;
    try {
      await scenario(browser, first, async (open) => {
        const roomId = unique('phoenix');
        const tp = await person(open, 'Remy (en)', { name: 'Remy', context: EN });
        const ko = await person(open, '레미 (ko, xhr-polling)', {
          name: '레미',
          context: KO,
          query: '?transports=xhr-polling',
        });
        for (const [p, line] of [
          [tp, 'Remy joined the room.'],
          [ko, '레미님이 입장했습니다.'],
        ]) {
          await p.page.evaluate((h) => {
            location.hash = h;
          }, `#/room/${roomId}`);
          await until(p, 'joined', (s) => hasLine(s, { kind: 'system', text: line }));
        }
        await say(tp, 'before the restart', 'enter');
        await until(ko, 'message before the restart', (s) => hasLine(s, { text: 'before the restart' }));

        const { port } = first;
        await first.stop();
        await until(tp, 'reconnecting notice', (s) => {
          assert.equal(s.connected, false);
          assert.match(s.banner ?? '', /^Connection lost — reconnecting in \d+ s…$/);
        });
        await until(ko, 'reconnecting notice in Korean', (s) =>
          assert.match(s.banner ?? '', /^연결이 끊겼습니다 — \d+초 후 다시 연결합니다…$/),
        );
        // Let at least one retry fail, so the backoff has grown past its first step.
        await eventually('a retry failed', async () =>
          assert.ok((await tp.page.evaluate(() => window.chatDebug.attempt)) >= 2),
        );
        await screenshot(tp, 'reconnecting.png');

        second = await Server.start({}, { port });
        for (const p of [tp, ko]) {
          await until(
            p,
            'reconnected and back in the room',
            (s) => {
              connectedNow(s);
              assert.equal(s.banner, null, 'notice gone');
              assert.equal(s.view, 'room');
              assert.deepEqual([...s.members].sort(), ['Remy', '레미'].sort());
            },
            35_000, // the backoff may have reached 8 s ±25 %, plus connecting
          );
        }
        await say(ko, '다시 왔어요', 'enter');
        for (const p of [tp, ko]) {
          await until(p, 'talk after the restart', (s) =>
            hasLine(s, { sender: '레미', text: '다시 왔어요' }),
          );
        }
        await until(tp, 'a “Reconnected” line', (s) =>
          hasLine(s, { kind: 'system', text: 'Reconnected.' }),
        );
        await healthy([tp, ko], 2);
      });
    } catch (error) {
      if (second) error.message += `\n--- log of the restarted server ---\n${second.logSince(0)}`;
      throw error;
    } finally {
      await second?.stop();
      await first.stop();
    }
  },
);

test(
  'screenshots: lobby and a room with a conversation, desktop and phone',
  { timeout: TEST_TIMEOUT * 2 },
  async () => {
    // A server of its own, so the lobby holds only the rooms of this test.
    const own = await Server.start();
    try {
      await screenshots(own);
    } finally {
      await own.stop();
    }
  },
);

async function screenshots(server) {
  await scenario(browser, server, async (open) => {
    // A lived-in lobby: a few rooms with people in them.
    const rooms = ['Product launch', 'Rust 이야기', 'Random'];
    const host = await person(open, 'Ann (desktop, en)', { name: 'Ann', context: EN });
    await until(host, 'lobby loaded', lobbyLoaded);
    for (const name of rooms) {
      const existing = (await snapshot(host)).rooms.find((r) => r.name === name);
      if (!existing) await createRoom(host, name);
    }
    const minsu = await person(open, '민수 (phone, ko)', {
      name: '민수',
      context: { locale: 'ko-KR', viewport: PHONE, isMobile: true, hasTouch: true, deviceScaleFactor: 2 },
    });
    const jo = await person(open, 'Jo (en)', { name: 'Jo', context: EN });
    await until(minsu, 'lobby loaded', lobbyLoaded);
    await joinFromLobby(jo, rooms[1]);
    await until(host, 'Jo counted', (s) =>
      assert.equal(s.rooms.find((r) => r.name === rooms[1]).members, 1),
    );
    await until(minsu, 'Jo counted', (s) =>
      assert.equal(s.rooms.find((r) => r.name === rooms[1]).members, 1),
    );
    for (const tp of [host, minsu]) await tp.page.evaluate(() => document.activeElement?.blur());
    await screenshot(host, 'lobby.png');
    await screenshot(minsu, 'lobby-phone.png');

    await joinFromLobby(host, rooms[0]);
    await joinFromLobby(minsu, rooms[0]);
    await until(host, 'both here', (s) => assert.equal(s.members.length, 2));
    await say(host, 'Morning! Is the launch still on for Thursday?', 'enter');
    await say(minsu, '네, 목요일 오전 10시에 진행합니다 🚀', 'enter');
    await say(minsu, 'QA 쪽 체크리스트도 오늘 안에 공유드릴게요.', 'enter');
    await say(host, 'Perfect — thanks 민수!\nI will prepare the release notes.', 'button');
    await until(host, 'four messages', (s) =>
      assert.equal(s.lines.filter((l) => l.kind !== 'system').length, 4),
    );
    await until(minsu, 'four messages', (s) =>
      assert.equal(s.lines.filter((l) => l.kind !== 'system').length, 4),
    );
    await sleep(300); // let the toasts' entry animation finish
    await screenshot(host, 'room.png');
    await screenshot(minsu, 'room-phone.png');
    await healthy([host, minsu, jo]);
  });
}

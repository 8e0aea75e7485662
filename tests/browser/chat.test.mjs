// The chat demo's round trip in headless Chromium over SockJS fallback transports, as the page
// does it: two people in separate browser contexts (one on xhr-streaming, one on xhr-polling)
// subscribe to /topic/chat/room/{roomId}, SEND to /app/chat/message (the handler in
// crates/stompede-server/src/chat.rs), and both get the server's broadcast: the ENTER
// announcement the server writes, then a TALK passed through unchanged.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  STEP_TIMEOUT,
  TEST_TIMEOUT,
  Server,
  closeBrowser,
  launchBrowser,
  scenario,
} from './harness.mjs';

let server;
let browser;

before(async () => {
  server = await Server.start();
  browser = await launchBrowser();
});

after(async () => {
  await closeBrowser(browser);
  await server?.stop();
});

test(
  'chat demo round trip over xhr-streaming and xhr-polling',
  { timeout: TEST_TIMEOUT },
  async () => {
    await scenario(browser, server, async (open) => {
      const url = `${server.origin}/ws`;
      const roomId = `room-${Date.now()}`;
      const room = `/topic/chat/room/${roomId}`;
      const minsu = await open('민수 (xhr-streaming)');
      const ann = await open('Ann (xhr-polling)');

      for (const [page, transport] of [
        [minsu, 'xhr-streaming'],
        [ann, 'xhr-polling'],
      ]) {
        const connected = await page.call('connect', { url, transport });
        assert.equal(connected.transport, transport, `${page.name}: transport sockjs-client used`);
        await page.call('subscribe', { destination: room });
      }

      // The server replaces an ENTER's message with its announcement (default locale "ko").
      const enter = { type: 'ENTER', roomId, sender: '민수', message: '' };
      await minsu.call('publishAll', {
        destination: '/app/chat/message',
        bodies: [JSON.stringify(enter)],
      });
      const announcement = { ...enter, message: '민수님이 입장했습니다.' };

      const talk = {
        type: 'TALK',
        roomId,
        sender: 'Ann',
        message: '안녕하세요 👋 "quoted" \u2028 </script>',
      };
      await ann.call('publishAll', {
        destination: '/app/chat/message',
        bodies: [JSON.stringify(talk)],
      });

      for (const page of [minsu, ann]) {
        const { messages: got } = await page.call('messages', { destination: room, count: 2 });
        assert.deepEqual(
          got.map((m) => JSON.parse(m.body)),
          [announcement, talk],
          `${page.name}: broadcasts on ${room}`,
        );
        for (const m of got)
          assert.equal(m.headers.destination, room, `${page.name}: destination header`);
      }
      // Both pages have read their lines before either leaves: the server announces a
      // session's end to the room it entered.
      for (const page of [minsu, ann]) {
        await page.call('disconnect', { timeoutMs: STEP_TIMEOUT });
        assert.deepEqual(page.pageErrors, [], `${page.name}: uncaught errors in the page`);
      }
    });
  },
);

// The stompede chat app: a lobby (display name, live room list, create a room) and a room view
// (`#/room/<id>`) on one page, so one STOMP connection (@stomp/stompjs over SockJS at /ws)
// serves both. After a drop it reconnects with exponential backoff (1 s doubling to 30 s, with
// jitter), says so on screen, and then re-subscribes and re-enters the room it was in.
//
// Every piece of user or server text reaches the DOM through `textContent`, never as HTML.
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------------
  // Language
  // ---------------------------------------------------------------------------------------------

  const LANG = String(navigator.language || '').toLowerCase().startsWith('ko') ? 'ko' : 'en';

  const STRINGS = {
    en: {
      appName: 'chat',
      title: 'stompede chat',
      skipToContent: 'Skip to content',
      statusConnecting: 'Connecting…',
      statusConnected: 'Connected',
      statusReconnecting: 'Reconnecting…',
      statusOffline: 'Offline',
      lostIn: (s) => `Connection lost — reconnecting in ${s} s…`,
      lostNow: 'Connection lost — reconnecting…',
      unreachableIn: (s) => `Can’t reach the server — retrying in ${s} s…`,
      unreachableNow: 'Can’t reach the server — retrying…',
      retryNow: 'Retry now',
      reconnected: 'Reconnected.',
      lobbyTitle: 'Chat rooms',
      lobbyLead: 'Pick a display name, then open a room or start a new one. Everything updates live.',
      profileTitle: 'Your name',
      nameLabel: 'Display name',
      nameHint: 'Others see this name. It is saved on this device.',
      nameRequired: 'Enter a display name of 1–64 characters.',
      nameNeeded: (room) => `Choose a display name to join “${room}”, then press Enter.`,
      roomsTitle: 'Open rooms',
      createLabel: 'Create a room',
      createPlaceholder: 'Room name',
      createButton: 'Create',
      createInvalid: 'A room name has 1–64 characters.',
      created: (name) => `Room “${name}” created.`,
      roomsLoading: 'Loading rooms…',
      roomsEmpty: 'No rooms yet. Create the first one!',
      people: (n) => (n === 1 ? '1 person' : `${n} people`),
      back: 'Rooms',
      backToLobby: 'stompede chat — back to the rooms',
      conversation: 'Conversation',
      messageLabel: 'Message',
      messagePlaceholder: 'Write a message…',
      send: 'Send',
      composerHint: 'Enter to send · Shift+Enter for a new line',
      membersTitle: (n) => `In this room · ${n}`,
      membersLoading: 'Who is here…',
      you: 'you',
      youSaid: 'You',
      joined: (name) => `${name} joined the room.`,
      left: (name) => `${name} left the room.`,
      joining: 'Joining…',
      here: (n) => (n === 1 ? '1 person here' : `${n} people here`),
      emptyRoom: 'No messages yet. Say hello!',
      notConnected: 'Not connected — your message was kept; send it again once reconnected.',
      badRoom: 'That room address is not valid.',
      serverError: (error, detail) => (detail ? `${error}: ${detail}` : error),
      dismiss: 'Dismiss',
    },
    ko: {
      appName: '채팅',
      title: 'stompede 채팅',
      skipToContent: '본문으로 건너뛰기',
      statusConnecting: '연결 중…',
      statusConnected: '연결됨',
      statusReconnecting: '다시 연결 중…',
      statusOffline: '연결 끊김',
      lostIn: (s) => `연결이 끊겼습니다 — ${s}초 후 다시 연결합니다…`,
      lostNow: '연결이 끊겼습니다 — 다시 연결하는 중…',
      unreachableIn: (s) => `서버에 연결할 수 없습니다 — ${s}초 후 다시 시도합니다…`,
      unreachableNow: '서버에 연결할 수 없습니다 — 다시 시도하는 중…',
      retryNow: '지금 다시 시도',
      reconnected: '다시 연결되었습니다.',
      lobbyTitle: '채팅방',
      lobbyLead: '대화명을 정한 뒤 채팅방에 들어가거나 새 방을 만드세요. 모든 내용이 실시간으로 바뀝니다.',
      profileTitle: '내 이름',
      nameLabel: '대화명',
      nameHint: '다른 사람에게 보이는 이름입니다. 이 기기에 저장됩니다.',
      nameRequired: '대화명을 1–64자로 입력하세요.',
      nameNeeded: (room) => `“${room}” 방에 들어가려면 대화명을 정하고 Enter를 누르세요.`,
      roomsTitle: '열린 채팅방',
      createLabel: '새 채팅방 만들기',
      createPlaceholder: '방 이름',
      createButton: '만들기',
      createInvalid: '방 이름은 1–64자여야 합니다.',
      created: (name) => `“${name}” 방을 만들었습니다.`,
      roomsLoading: '채팅방 목록을 불러오는 중…',
      roomsEmpty: '아직 채팅방이 없습니다. 첫 방을 만들어 보세요!',
      people: (n) => `${n}명`,
      back: '채팅방 목록',
      backToLobby: 'stompede 채팅 — 채팅방 목록으로',
      conversation: '대화',
      messageLabel: '메시지',
      messagePlaceholder: '메시지를 입력하세요…',
      send: '보내기',
      composerHint: 'Enter로 보내기 · Shift+Enter로 줄바꿈',
      membersTitle: (n) => `참여자 ${n}명`,
      membersLoading: '참여자 확인 중…',
      you: '나',
      youSaid: '나',
      joined: (name) => `${name}님이 입장했습니다.`,
      left: (name) => `${name}님이 퇴장했습니다.`,
      joining: '입장하는 중…',
      here: (n) => `${n}명 참여 중`,
      emptyRoom: '아직 메시지가 없습니다. 먼저 인사해 보세요!',
      notConnected: '연결되어 있지 않습니다 — 메시지는 남아 있으니 다시 연결되면 보내세요.',
      badRoom: '올바르지 않은 채팅방 주소입니다.',
      serverError: (error, detail) => (detail ? `${error}: ${detail}` : error),
      dismiss: '닫기',
    },
  };

  /** The UI string `key` in the page's language; functions get `args`. */
  function t(key, ...args) {
    const value = STRINGS[LANG][key];
    return typeof value === 'function' ? value(...args) : value;
  }

  // ---------------------------------------------------------------------------------------------
  // Constants and state
  // ---------------------------------------------------------------------------------------------

  const ENDPOINT = '/ws';
  const NAME_KEY = 'stompede.chat.name';
  const BACKOFF_FIRST_MS = 1000;
  const BACKOFF_MAX_MS = 30_000;
  const CONNECT_TIMEOUT_MS = 10_000;
  const HEARTBEAT_MS = 10_000;
  const MAX_NAME = 64;
  const MAX_MESSAGE = 2000;
  const MAX_RENDERED_MESSAGES = 500;
  const MAX_TRACE = 300;
  const ROOM_ID = /^[A-Za-z0-9_-]{1,128}$/;
  /** Consecutive messages of one sender within this window share one header. */
  const GROUP_MS = 3 * 60_000;

  /** `?transports=xhr-streaming,xhr-polling` forces SockJS transports; default: all of them. */
  const TRANSPORTS = (() => {
    const raw = new URLSearchParams(location.search).get('transports');
    if (!raw) return null;
    const list = raw.split(',').map((s) => s.trim()).filter(Boolean);
    return list.length ? list : null;
  })();

  const state = {
    /** 'connecting' | 'connected' | 'waiting' (a retry is scheduled) */
    conn: 'connecting',
    client: null,
    sock: null,
    /** Whether any connection ever succeeded (wording of the banner). */
    everConnected: false,
    /** Successful STOMP connections of this page (1 + reconnections). */
    connections: 0,
    /** Failed attempts since the last successful connection. */
    attempt: 0,
    retryTimer: null,
    countdownTimer: null,
    retryAt: 0,
    /** A drop happened since the last successful connection: say "Reconnected". */
    dropped: false,

    view: 'lobby',
    /** id -> {id, name, members} from /app/rooms and /topic/rooms; null until the first list. */
    rooms: null,
    lobbySubs: [],
    alwaysSubs: [],

    roomId: null,
    roomName: '',
    /** Names from /app/rooms/<id> and /topic/rooms/<id>; null until the first one. */
    members: null,
    roomSubs: [],
    /** Room the user tried to open before choosing a name. */
    pendingRoom: null,
    /** Room id to focus when the lobby list renders (after leaving it or creating it). */
    focusRoom: null,
  };

  const trace = [];
  function note(line) {
    trace.push(`${new Date().toISOString().slice(11, 23)} ${String(line).slice(0, 300)}`);
    if (trace.length > MAX_TRACE) trace.splice(0, trace.length - MAX_TRACE);
  }

  const $ = (id) => document.getElementById(id);
  const el = {
    conn: $('conn'),
    connText: $('conn-text'),
    banner: $('banner'),
    bannerText: $('banner-text'),
    bannerSr: $('banner-sr'),
    retryNow: $('retry-now'),
    main: $('main'),
    lobby: $('lobby'),
    nameForm: $('name-form'),
    nameInput: $('name-input'),
    nameError: $('name-error'),
    roomsCount: $('rooms-count'),
    createForm: $('create-form'),
    createInput: $('create-input'),
    createError: $('create-error'),
    roomsEmpty: $('rooms-empty'),
    roomList: $('room-list'),
    room: $('room'),
    roomTitle: $('room-title'),
    roomSubtitle: $('room-subtitle'),
    membersTitle: $('members-title'),
    memberList: $('member-list'),
    messages: $('messages'),
    composer: $('composer'),
    messageInput: $('message-input'),
    toasts: $('toasts'),
  };

  /** Creates an element with a class and, optionally, text (always as textContent). */
  function make(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function parseJson(body) {
    try {
      return JSON.parse(body);
    } catch {
      note(`not JSON: ${body}`);
      return null;
    }
  }

  const chars = (s) => Array.from(s).length;

  // ---------------------------------------------------------------------------------------------
  // Connection
  // ---------------------------------------------------------------------------------------------

  function connect() {
    clearRetry();
    if (state.client) {
      const old = state.client;
      state.client = null;
      old.deactivate({ force: true }).catch(() => {});
    }
    setConn('connecting');
    const client = new StompJs.Client({
      webSocketFactory: () => {
        const sock = TRANSPORTS
          ? new SockJS(ENDPOINT, null, { transports: TRANSPORTS })
          : new SockJS(ENDPOINT);
        note(`new SockJS(${ENDPOINT}) transports=${TRANSPORTS ? TRANSPORTS.join(',') : 'all'}`);
        state.sock = sock;
        return sock;
      },
      // Our own backoff (below) shows a countdown; the library's reconnect is off.
      reconnectDelay: 0,
      connectionTimeout: CONNECT_TIMEOUT_MS,
      heartbeatIncoming: HEARTBEAT_MS,
      heartbeatOutgoing: HEARTBEAT_MS,
      debug: (line) => note(`stomp: ${line}`),
      onConnect: () => {
        if (client === state.client) onConnected();
      },
      onStompError: (frame) => {
        note(`STOMP ERROR ${frame.headers.message || ''} ${frame.body || ''}`);
      },
      onWebSocketClose: (event) => {
        if (client !== state.client) return;
        note(`socket closed code=${event.code} reason=${event.reason}`);
        state.client = null;
        state.sock = null;
        // Already closed, so this only marks the client inactive.
        client.deactivate().catch(() => {});
        onDropped();
      },
    });
    state.client = client;
    client.activate();
  }

  function connected() {
    return state.conn === 'connected' && state.client !== null && state.client.connected;
  }

  function onConnected() {
    const wasDropped = state.dropped;
    state.attempt = 0;
    state.everConnected = true;
    state.connections += 1;
    state.dropped = false;
    setConn('connected');
    note(`connected over ${transportName()}`);

    // The subscriptions of the previous connection died with it.
    state.lobbySubs = [];
    state.roomSubs = [];
    state.alwaysSubs = [
      subscribe('/user/queue/errors', onServerError),
      subscribe('/user/queue/rooms', onRoomCreated),
    ];
    if (state.view === 'room' && state.roomId) {
      if (wasDropped) systemLine(t('reconnected'), 'reconnected');
      enterRoom();
    } else {
      subscribeLobby();
    }
    if (wasDropped) toast(t('reconnected'));
  }

  function onDropped() {
    state.dropped = state.dropped || state.everConnected;
    state.lobbySubs = [];
    state.roomSubs = [];
    state.alwaysSubs = [];
    const base = Math.min(BACKOFF_MAX_MS, BACKOFF_FIRST_MS * 2 ** state.attempt);
    // ±25 % jitter so that many clients dropped at once do not return in lockstep.
    const delay = Math.min(BACKOFF_MAX_MS, Math.round(base * (0.75 + Math.random() * 0.5)));
    state.attempt += 1;
    state.retryAt = Date.now() + delay;
    note(`retry ${state.attempt} in ${delay} ms`);
    setConn('waiting');
    state.retryTimer = setTimeout(connect, delay);
    state.countdownTimer = setInterval(renderConn, 250);
  }

  function clearRetry() {
    clearTimeout(state.retryTimer);
    clearInterval(state.countdownTimer);
    state.retryTimer = null;
    state.countdownTimer = null;
  }

  function transportName() {
    return (state.sock && state.sock.transport) || null;
  }

  function setConn(conn) {
    state.conn = conn;
    renderConn();
  }

  let lastBanner = '';
  function renderConn() {
    const { conn } = state;
    el.conn.dataset.state = conn;
    let status;
    if (conn === 'connected') status = t('statusConnected');
    else if (conn === 'waiting') status = t('statusOffline');
    else status = state.dropped || state.attempt > 0 ? t('statusReconnecting') : t('statusConnecting');
    el.connText.textContent = status;
    el.conn.title = conn === 'connected' && transportName() ? `SockJS: ${transportName()}` : '';

    let banner = '';
    if (conn === 'waiting') {
      const secs = Math.max(1, Math.ceil((state.retryAt - Date.now()) / 1000));
      banner = state.everConnected ? t('lostIn', secs) : t('unreachableIn', secs);
    } else if (conn === 'connecting' && state.attempt > 0) {
      banner = state.everConnected ? t('lostNow') : t('unreachableNow');
    }
    if (banner !== lastBanner) {
      lastBanner = banner;
      el.bannerText.textContent = banner;
      el.banner.hidden = !banner;
      document.body.classList.toggle('is-offline', Boolean(banner));
      // Announced once per drop, not once per second of the countdown.
      const spoken = !banner ? '' : state.everConnected ? t('lostNow') : t('unreachableNow');
      if (el.bannerSr.textContent !== spoken) el.bannerSr.textContent = spoken;
    }
  }

  function subscribe(destination, onBody) {
    return state.client.subscribe(destination, (frame) => {
      const body = parseJson(frame.body);
      if (body !== null) onBody(body, frame);
    });
  }

  /**
   * SUBSCRIBE to an application destination that answers once, straight back (Spring's
   * `@SubscribeMapping`). The server keeps no subscription for it, so it is never unsubscribed.
   */
  function snapshotOnce(destination, onBody) {
    subscribe(destination, onBody);
  }

  function publish(destination, body) {
    state.client.publish({
      destination,
      body: JSON.stringify(body),
      headers: { 'content-type': 'application/json' },
    });
  }

  function unsubscribeAll(subs) {
    if (!connected()) return;
    for (const sub of subs) {
      try {
        sub.unsubscribe();
      } catch (e) {
        note(`unsubscribe failed: ${e.message}`);
      }
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Name
  // ---------------------------------------------------------------------------------------------

  function storedName() {
    try {
      return localStorage.getItem(NAME_KEY) || '';
    } catch {
      return '';
    }
  }

  function myName() {
    return el.nameInput.value.trim();
  }

  function validName(name) {
    return name.length > 0 && chars(name) <= MAX_NAME;
  }

  function saveName() {
    try {
      localStorage.setItem(NAME_KEY, myName());
    } catch {
      // Private mode or storage disabled: the name lives as long as the page.
    }
  }

  function showNameError(text) {
    el.nameError.textContent = text;
    el.nameError.hidden = !text;
    el.nameInput.setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  // ---------------------------------------------------------------------------------------------
  // Lobby
  // ---------------------------------------------------------------------------------------------

  function subscribeLobby() {
    if (!connected() || state.lobbySubs.length) return;
    // The topic first, so no change between the snapshot and the subscription is missed.
    state.lobbySubs = [subscribe('/topic/rooms', onRoomList)];
    snapshotOnce('/app/rooms', onRoomList);
  }

  function onRoomList(body) {
    if (!body || !Array.isArray(body.rooms)) return;
    state.rooms = new Map();
    for (const room of body.rooms) {
      if (room && typeof room.id === 'string') state.rooms.set(room.id, normalizeRoom(room));
    }
    renderRooms();
  }

  function normalizeRoom(room) {
    const members = Array.isArray(room.members) ? room.members.length : Number(room.members) || 0;
    return { id: room.id, name: String(room.name ?? room.id), members };
  }

  function onRoomCreated(body) {
    if (!body || typeof body.id !== 'string') return;
    const room = normalizeRoom(body);
    if (!state.rooms) state.rooms = new Map();
    if (!state.rooms.has(room.id)) state.rooms.set(room.id, room);
    el.createInput.value = '';
    showCreateError('');
    toast(t('created', room.name));
    state.focusRoom = room.id;
    renderRooms(room.id);
  }

  function renderRooms(highlight) {
    const list = el.roomList;
    el.roomList.setAttribute('aria-busy', state.rooms ? 'false' : 'true');
    if (!state.rooms) {
      el.roomsEmpty.textContent = t('roomsLoading');
      el.roomsEmpty.hidden = false;
      el.roomsCount.textContent = '';
      return;
    }
    const rooms = [...state.rooms.values()];
    el.roomsCount.textContent = rooms.length ? String(rooms.length) : '';
    el.roomsEmpty.textContent = t('roomsEmpty');
    el.roomsEmpty.hidden = rooms.length > 0;

    // Update rows in place (a live count change must not steal focus from a row); rebuild only
    // when the order changed, then put focus back where it was.
    const existing = new Map([...list.children].map((li) => [li.dataset.roomId, li]));
    const sameOrder =
      existing.size === rooms.length && rooms.every((r, i) => list.children[i]?.dataset.roomId === r.id);
    const focused = document.activeElement?.closest?.('.room-item')?.dataset.roomId;
    const rows = rooms.map((room) => {
      const li = existing.get(room.id) || makeRoomRow(room.id);
      updateRoomRow(li, room);
      return li;
    });
    if (!sameOrder) {
      list.replaceChildren(...rows);
      if (focused && state.rooms.has(focused)) roomLink(focused)?.focus();
    }
    if (highlight) {
      const li = rows.find((r) => r.dataset.roomId === highlight);
      if (li) {
        li.classList.remove('is-new');
        void li.offsetWidth; // restart the animation
        li.classList.add('is-new');
      }
    }
    if (state.focusRoom && state.view === 'lobby') {
      const link = roomLink(state.focusRoom);
      if (link) {
        state.focusRoom = null;
        link.focus();
      }
    }
  }

  function roomLink(id) {
    for (const li of el.roomList.children) if (li.dataset.roomId === id) return li.querySelector('a');
    return null;
  }

  function makeRoomRow(id) {
    const li = make('li', 'room-item');
    li.dataset.roomId = id;
    const a = make('a', 'room-item__link');
    a.href = `#/room/${encodeURIComponent(id)}`;
    const avatar = make('span', 'avatar room-item__avatar');
    avatar.setAttribute('aria-hidden', 'true');
    const text = make('span', 'room-item__text');
    const name = make('span', 'room-item__name');
    const count = make('span', 'room-item__count');
    const chevron = make('span', 'room-item__chevron', '›');
    chevron.setAttribute('aria-hidden', 'true');
    text.append(name, count);
    a.append(avatar, text, chevron);
    li.append(a);
    return li;
  }

  function updateRoomRow(li, room) {
    const avatar = li.querySelector('.room-item__avatar');
    const name = li.querySelector('.room-item__name');
    const count = li.querySelector('.room-item__count');
    if (name.textContent !== room.name) {
      name.textContent = room.name;
      avatar.textContent = initial(room.name);
      avatar.style.setProperty('--hue', String(hue(room.id)));
    }
    const people = t('people', room.members);
    if (count.textContent !== people) count.textContent = people;
    count.dataset.members = String(room.members);
    li.classList.toggle('is-active', room.members > 0);
  }

  function showCreateError(text) {
    el.createError.textContent = text;
    el.createError.hidden = !text;
    el.createInput.setAttribute('aria-invalid', text ? 'true' : 'false');
  }

  function onCreateSubmit(event) {
    event.preventDefault();
    const name = el.createInput.value.trim();
    if (!name || chars(name) > MAX_NAME) {
      showCreateError(t('createInvalid'));
      el.createInput.focus();
      return;
    }
    if (!connected()) {
      showCreateError(t('notConnected'));
      return;
    }
    showCreateError('');
    publish('/app/rooms/create', { name });
  }

  function onServerError(body) {
    if (!body) return;
    note(`server error ${JSON.stringify(body)}`);
    const text = t('serverError', String(body.error || 'error'), body.detail ? String(body.detail) : '');
    const destination = String(body.destination || '');
    if (destination === '/app/rooms/create') {
      showCreateError(text);
      return;
    }
    // The room snapshot of a room nobody entered yet: our ENTER creates it.
    if (body.error === 'not found' && state.roomId && destination === `/app/rooms/${state.roomId}`) {
      return;
    }
    toast(text, 'error');
  }

  // ---------------------------------------------------------------------------------------------
  // Room
  // ---------------------------------------------------------------------------------------------

  function enterRoom() {
    if (!connected() || !state.roomId || state.roomSubs.length) return;
    const roomId = state.roomId;
    const sender = myName();
    state.roomSubs = [
      subscribe(`/topic/chat/room/${roomId}`, onChatMessage),
      subscribe(`/topic/rooms/${roomId}`, onRoomInfo),
    ];
    publish('/app/chat/message', { type: 'ENTER', roomId, sender });
    // After the ENTER, so the snapshot already has us in it (and the room exists).
    snapshotOnce(`/app/rooms/${roomId}`, onRoomInfo);
  }

  function leaveRoom() {
    if (!state.roomId) return;
    if (connected() && state.roomSubs.length) {
      try {
        publish('/app/chat/message', { type: 'LEAVE', roomId: state.roomId, sender: myName() });
      } catch (e) {
        note(`LEAVE not sent: ${e.message}`);
      }
      unsubscribeAll(state.roomSubs);
    }
    state.roomSubs = [];
    state.roomId = null;
    state.members = null;
  }

  function onRoomInfo(body) {
    if (!body || body.id !== state.roomId) return;
    if (typeof body.name === 'string' && body.name) setRoomName(body.name);
    if (Array.isArray(body.members)) {
      state.members = body.members.map(String);
      renderMembers();
    }
  }

  function onChatMessage(body) {
    if (!body || body.roomId !== state.roomId) return;
    const sender = String(body.sender ?? '');
    switch (body.type) {
      case 'ENTER':
        systemLine(t('joined', sender), 'enter');
        break;
      case 'LEAVE':
        systemLine(t('left', sender), 'leave');
        break;
      case 'TALK':
        talkLine(sender, String(body.message ?? ''));
        break;
      default:
        note(`unknown message type ${body.type}`);
    }
  }

  function setRoomName(name) {
    state.roomName = name;
    el.roomTitle.textContent = name;
    document.title = `${name} · ${t('title')}`;
  }

  function renderMembers() {
    const { members } = state;
    if (!members) {
      el.membersTitle.textContent = t('membersLoading');
      el.roomSubtitle.textContent = t('joining');
      el.memberList.replaceChildren();
      return;
    }
    el.membersTitle.textContent = t('membersTitle', members.length);
    el.roomSubtitle.textContent = t('here', members.length);
    const me = myName();
    // Me first, then everyone else in the server's order.
    const sorted = [...members].sort((a, b) => (b === me) - (a === me));
    let meShown = false;
    el.memberList.replaceChildren(
      ...sorted.map((name) => {
        const li = make('li', 'member');
        const avatar = make('span', 'avatar member__avatar', initial(name));
        avatar.setAttribute('aria-hidden', 'true');
        avatar.style.setProperty('--hue', String(hue(name)));
        const label = make('span', 'member__name', name);
        li.append(avatar, label);
        if (name === me && !meShown) {
          meShown = true;
          li.classList.add('member--me');
          li.append(make('span', 'member__you', `(${t('you')})`));
        }
        return li;
      }),
    );
  }

  const timeFormat = new Intl.DateTimeFormat(LANG, { hour: '2-digit', minute: '2-digit' });

  /** Appends `li` to the conversation, keeping the view pinned to the bottom if it was. */
  function appendLine(li, force) {
    const box = el.messages;
    const nearBottom = box.scrollHeight - box.scrollTop - box.clientHeight < 120;
    el.messages.querySelector('.messages__empty')?.remove();
    box.append(li);
    while (box.children.length > MAX_RENDERED_MESSAGES) box.firstElementChild.remove();
    if (nearBottom || force) box.scrollTop = box.scrollHeight;
  }

  function systemLine(text, kind) {
    const li = make('li', `line line--system line--${kind}`);
    li.append(make('span', 'line__system-text', text));
    appendLine(li, false);
  }

  function talkLine(sender, text) {
    const now = Date.now();
    const own = sender === myName();
    const prev = el.messages.lastElementChild;
    const grouped =
      prev &&
      prev.classList.contains('line--talk') &&
      prev.dataset.sender === sender &&
      now - Number(prev.dataset.at) < GROUP_MS;

    const li = make('li', `line line--talk ${own ? 'line--own' : 'line--other'}`);
    if (grouped) li.classList.add('line--grouped');
    li.dataset.sender = sender;
    li.dataset.at = String(now);

    if (!own) {
      const avatar = make('span', 'avatar line__avatar', grouped ? '' : initial(sender));
      avatar.setAttribute('aria-hidden', 'true');
      avatar.style.setProperty('--hue', String(hue(sender)));
      li.append(avatar);
    }
    const bubble = make('div', 'bubble');
    // The sender is always in the accessible text; visually only on a group's first line.
    const who = make('span', grouped || own ? 'bubble__sender visually-hidden' : 'bubble__sender');
    who.textContent = own ? `${t('youSaid')}: ` : sender;
    if (!grouped && !own) who.append(make('span', 'visually-hidden', ': '));
    const body = make('p', 'bubble__text', text);
    const time = make('time', 'bubble__time', timeFormat.format(now));
    time.dateTime = new Date(now).toISOString();
    bubble.append(who, body, time);
    li.append(bubble);
    appendLine(li, own);
  }

  function showEmptyHint() {
    const li = make('li', 'messages__empty', t('emptyRoom'));
    li.setAttribute('aria-hidden', 'true');
    el.messages.replaceChildren(li);
  }

  function onComposerSubmit(event) {
    event.preventDefault();
    const text = el.messageInput.value.replace(/\s+$/u, '');
    if (!text.trim()) return;
    if (!connected() || !state.roomId) {
      toast(t('notConnected'), 'error');
      return;
    }
    publish('/app/chat/message', {
      type: 'TALK',
      roomId: state.roomId,
      sender: myName(),
      message: Array.from(text).slice(0, MAX_MESSAGE).join(''),
    });
    el.messageInput.value = '';
    autosize();
    el.messageInput.focus();
  }

  function onComposerKey(event) {
    // Enter sends; Shift+Enter is a new line; Enter that ends an IME composition (Korean,
    // Japanese, …) only commits the composed text.
    if (event.key !== 'Enter' || event.shiftKey || event.isComposing || event.keyCode === 229) return;
    event.preventDefault();
    el.composer.requestSubmit();
  }

  function autosize() {
    const input = el.messageInput;
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight + 2, 160)}px`;
  }

  // ---------------------------------------------------------------------------------------------
  // Views and routing
  // ---------------------------------------------------------------------------------------------

  function route() {
    const match = /^#\/room\/(.+)$/.exec(location.hash);
    if (!match) {
      showLobby();
      return;
    }
    let id = null;
    try {
      id = decodeURIComponent(match[1]);
    } catch {
      // malformed escape
    }
    if (!id || !ROOM_ID.test(id)) {
      history.replaceState(null, '', '#/');
      showLobby();
      toast(t('badRoom'), 'error');
      return;
    }
    if (!validName(myName())) {
      state.pendingRoom = id;
      history.replaceState(null, '', '#/');
      showLobby();
      const room = state.rooms?.get(id);
      showNameError(myName() ? t('nameRequired') : t('nameNeeded', room ? room.name : id));
      el.nameInput.focus();
      return;
    }
    showRoom(id);
  }

  function clearToasts() {
    el.toasts.replaceChildren();
  }

  function showLobby() {
    const left = state.roomId;
    if (state.view === 'room') clearToasts();
    if (state.view === 'room') leaveRoom();
    state.view = 'lobby';
    el.room.hidden = true;
    el.lobby.hidden = false;
    document.body.dataset.view = 'lobby';
    document.title = t('title');
    subscribeLobby();
    if (left) {
      state.focusRoom = left;
      renderRooms();
      if (state.focusRoom) el.main.focus();
    }
  }

  function showRoom(id) {
    if (state.view === 'room' && state.roomId === id) return;
    if (state.view === 'room') leaveRoom();
    unsubscribeAll(state.lobbySubs);
    state.lobbySubs = [];
    state.pendingRoom = null;
    clearToasts();
    state.view = 'room';
    state.roomId = id;
    state.members = null;
    setRoomName(state.rooms?.get(id)?.name || id);
    renderMembers();
    showEmptyHint();
    el.lobby.hidden = true;
    el.room.hidden = false;
    document.body.dataset.view = 'room';
    el.messageInput.value = '';
    autosize();
    el.messageInput.focus();
    enterRoom();
  }

  // ---------------------------------------------------------------------------------------------
  // Toasts, helpers
  // ---------------------------------------------------------------------------------------------

  function toast(text, kind = 'info') {
    const item = make('div', `toast toast--${kind}`);
    item.append(make('span', 'toast__text', text));
    const close = make('button', 'toast__close', '×');
    close.type = 'button';
    close.setAttribute('aria-label', t('dismiss'));
    close.addEventListener('click', () => item.remove());
    item.append(close);
    for (const old of el.toasts.querySelectorAll('.toast')) {
      if (old.firstElementChild.textContent === text) old.remove();
    }
    el.toasts.append(item);
    while (el.toasts.children.length > 2) el.toasts.firstElementChild.remove();
    setTimeout(() => item.remove(), kind === 'error' ? 8000 : 3500);
  }

  function initial(name) {
    const first = Array.from(String(name).trim())[0] || '?';
    return first.toLocaleUpperCase(LANG);
  }

  /** A stable hue for a name, for avatars. */
  function hue(text) {
    let h = 0;
    for (const ch of String(text)) h = (h * 31 + ch.codePointAt(0)) >>> 0;
    return h % 360;
  }

  function applyStrings() {
    document.documentElement.lang = LANG;
    for (const node of document.querySelectorAll('[data-i18n]')) node.textContent = t(node.dataset.i18n);
    for (const node of document.querySelectorAll('[data-i18n-placeholder]'))
      node.placeholder = t(node.dataset.i18nPlaceholder);
    for (const node of document.querySelectorAll('[data-i18n-label]'))
      node.setAttribute('aria-label', t(node.dataset.i18nLabel));
    document.title = t('title');
  }

  // ---------------------------------------------------------------------------------------------
  // Start
  // ---------------------------------------------------------------------------------------------

  function start() {
    applyStrings();
    el.nameInput.value = storedName();
    renderRooms();

    el.nameInput.addEventListener('input', () => {
      saveName();
      if (validName(myName())) showNameError('');
    });
    el.nameForm.addEventListener('submit', (event) => {
      event.preventDefault();
      if (!validName(myName())) {
        showNameError(t('nameRequired'));
        return;
      }
      saveName();
      showNameError('');
      if (state.pendingRoom) location.hash = `#/room/${encodeURIComponent(state.pendingRoom)}`;
    });
    el.createForm.addEventListener('submit', onCreateSubmit);
    el.createInput.addEventListener('input', () => showCreateError(''));
    el.composer.addEventListener('submit', onComposerSubmit);
    el.messageInput.addEventListener('keydown', onComposerKey);
    el.messageInput.addEventListener('input', autosize);
    el.retryNow.addEventListener('click', connect);
    window.addEventListener('online', () => {
      if (state.conn === 'waiting') connect();
    });
    window.addEventListener('hashchange', route);
    // Tell the room right away rather than when the server notices the session is gone.
    window.addEventListener('pagehide', () => {
      if (state.view === 'room') leaveRoom();
    });
    // Back from the back/forward cache: the connection and the room are gone; start afresh.
    window.addEventListener('pageshow', (event) => {
      if (event.persisted) location.reload();
    });

    route();
    connect();
  }

  Object.defineProperty(window, 'chatDebug', {
    value: Object.freeze({
      get connected() {
        return connected();
      },
      /** The SockJS transport of the current connection, e.g. "websocket", "xhr-streaming". */
      get transport() {
        return connected() ? transportName() : null;
      },
      get forcedTransports() {
        return TRANSPORTS ? [...TRANSPORTS] : null;
      },
      get view() {
        return state.view;
      },
      get roomId() {
        return state.roomId;
      },
      get lang() {
        return LANG;
      },
      /** Failed connection attempts since the last success. */
      get attempt() {
        return state.attempt;
      },
      /** Successful connections so far: 1, plus one per reconnection. */
      get connections() {
        return state.connections;
      },
      get log() {
        return [...trace];
      },
    }),
    enumerable: true,
  });

  if (typeof SockJS !== 'function' || typeof StompJs !== 'object') {
    note('sockjs.min.js or stomp.umd.min.js missing (run scripts/build-web.sh)');
    document.addEventListener('DOMContentLoaded', () => {
      applyStrings();
      el.connText.textContent = t('statusOffline');
      el.conn.dataset.state = 'waiting';
    });
    return;
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

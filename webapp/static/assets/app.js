// Carillon web app: sign-in, room list, a live room, roster, webhooks
// panel and mentions. Plain ES modules, no build step.
//
// Rule for the next engineer: message bodies are inserted only from the
// server's sanitized Html (setMessageHtml); every other string — names,
// room names, content snippets, error messages — goes in as text via h()
// or textContent.

import { api, enc, onUnauthorized, ApiError } from './api.js';
import { Live } from './live.js';
import {
  $, h, icon, clear, show, avatar, initials, colorClass, timeEl, dayKey, dayLabel,
  relativeTime, utf8Length, plural,
} from './dom.js';

const MAX_CONTENT_BYTES = 4096; // SPEC §1: Content ≤ 4096 bytes of UTF-8
const MAX_WEBHOOKS = 10; // SPEC §1: at most 10 webhooks a room
const PAGE_SIZE = 50;
const GROUP_WINDOW_MS = 5 * 60 * 1000; // messages of one sender within 5 min share a header
const ROOM_PATH = /^\/rooms\/([^/]+)$/;

const state = {
  me: null, // User
  rooms: new Map(), // RoomId → Room (with UnreadCount, MentionCount)
  notifications: [], // newest first
  presence: new Map(), // MemberId → bool, from presence events
  messageCache: new Map(), // MessageId → message, for mention snippets
  room: null, // the open room's RoomState
  live: null,
  detailsOpen: null, // user's choice for the details panel; null = default
};

// ---------------------------------------------------------------------------
// Boot and sign-in

const els = {};

function bindElements() {
  for (const id of [
    'boot', 'boot-text', 'boot-retry', 'login-view', 'login-form', 'login-email', 'login-password', 'login-error',
    'login-submit', 'app-view', 'sidebar', 'notif-button', 'notif-count', 'new-room-button', 'new-room-form',
    'new-room-name', 'new-room-error', 'room-list', 'room-list-empty', 'me-avatar', 'me-name', 'me-email',
    'logout-button', 'room-view', 'room-empty', 'room-empty-title', 'room-empty-text', 'room-main', 'room-name',
    'room-sub', 'conn-status', 'details-button', 'messages', 'history-status', 'message-list', 'jump-button',
    'composer', 'composer-input', 'composer-send', 'composer-error', 'composer-count', 'details', 'details-close',
    'people-count', 'roster', 'add-member-form', 'add-member-email', 'add-member-role', 'add-member-error',
    'webhooks-panel', 'webhooks-meter', 'webhooks-usage', 'webhook-list', 'new-webhook-form', 'new-webhook-name',
    'new-webhook-submit', 'new-webhook-error', 'leave-button', 'scrim', 'notif-dialog', 'notif-read-all',
    'notif-close', 'notif-list', 'notif-empty', 'confirm-dialog', 'confirm-title', 'confirm-text', 'confirm-ok',
    'toasts',
  ]) {
    els[id] = $(id);
  }
}

async function boot() {
  bindElements();
  wireStaticHandlers();
  onUnauthorized(() => sessionEnded());
  els['boot-retry'].addEventListener('click', () => {
    show(els['boot-retry'], false);
    els['boot-text'].textContent = 'Loading Carillon…';
    whoAmI();
  });
  await whoAmI();
}

async function whoAmI() {
  try {
    const { User } = await api('GET', '/users/me', undefined, { quiet401: true });
    await enterApp(User);
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) {
      showLogin();
    } else {
      els['boot-text'].textContent = err.message;
      show(els['boot-retry'], true);
    }
  }
}

function showLogin(message) {
  document.body.className = 'view-login';
  show(els.boot, false);
  show(els['app-view'], false);
  show(els['login-view'], true);
  const p = location.pathname + location.hash;
  if (location.pathname !== '/login') {
    if (p !== '/') sessionStorage.setItem('carillon.next', p);
    history.replaceState(null, '', '/login');
  }
  document.title = 'Sign in · Carillon';
  setFormError(els['login-error'], message || '');
  els['login-submit'].disabled = false;
  els['login-email'].focus();
}

async function submitLogin(e) {
  e.preventDefault();
  const email = els['login-email'].value.trim();
  const password = els['login-password'].value;
  if (!email || !password) {
    setFormError(els['login-error'], 'Enter your e-mail address and your password.');
    return;
  }
  els['login-submit'].disabled = true;
  setFormError(els['login-error'], '');
  try {
    const { User } = await api('POST', '/sessions', { Email: email, Password: password }, { quiet401: true });
    els['login-password'].value = '';
    const next = sessionStorage.getItem('carillon.next');
    sessionStorage.removeItem('carillon.next');
    history.replaceState(null, '', next && next.startsWith('/') && !next.startsWith('//') ? next : '/');
    await enterApp(User);
  } catch (err) {
    els['login-submit'].disabled = false;
    const msg = err.status === 401 ? 'Wrong e-mail address or password. Check both and try again.' : err.message;
    setFormError(els['login-error'], msg);
    els['login-password'].select();
  }
}

async function enterApp(user) {
  state.me = user;
  show(els.boot, false);
  show(els['login-view'], false);
  show(els['app-view'], true);
  document.body.className = 'view-app';
  els['me-name'].textContent = user.FullName;
  els['me-email'].textContent = user.Email;
  els['me-avatar'].textContent = initials(user.FullName);
  els['me-avatar'].className = `avatar ${colorClass(user.UserId)}`;
  if (location.pathname === '/login') history.replaceState(null, '', '/');

  // Open the stream first, then load: nothing that happens in between
  // is lost (events for a room that is still loading are queued).
  startLive();
  await Promise.all([loadRooms(), loadNotifications()]);
  route();
}

async function logout() {
  try {
    await api('DELETE', '/sessions', undefined, { quiet401: true });
  } catch {
    // Signed out already, or the server is away: forget the session here anyway.
  }
  resetState();
  history.pushState(null, '', '/login');
  showLogin();
}

function sessionEnded() {
  if (!state.me) return;
  resetState();
  showLogin('Your session has ended. Sign in again.');
}

function resetState() {
  state.live?.stop();
  state.live = null;
  state.me = null;
  state.rooms.clear();
  state.notifications = [];
  state.presence.clear();
  state.messageCache.clear();
  state.room = null;
  clear(els['room-list']);
  clear(els['message-list']);
  clear(els.roster);
  clear(els['webhook-list']);
  clear(els['notif-list']);
  if (els['notif-dialog'].open) els['notif-dialog'].close();
}

// ---------------------------------------------------------------------------
// Routing: /, /login, /rooms/{RoomId}[#m-{MessageId}]

function navigate(path) {
  if (path === location.pathname + location.hash) return;
  history.pushState(null, '', path);
  route();
}

function route() {
  if (!state.me) return;
  const m = ROOM_PATH.exec(location.pathname);
  if (m) {
    openRoom(decodeURIComponent(m[1]));
  } else {
    if (location.pathname !== '/') history.replaceState(null, '', '/');
    closeRoom();
  }
}

function setRouteClass() {
  document.body.classList.toggle('route-room', !!state.room);
  document.body.classList.toggle('route-home', !state.room);
}

// ---------------------------------------------------------------------------
// Room list

async function loadRooms() {
  try {
    const { Rooms } = await api('GET', '/rooms');
    state.rooms.clear();
    for (const r of Rooms) state.rooms.set(r.RoomId, r);
    renderRooms();
  } catch (err) {
    toast(err.message, 'error');
  }
}

let loadRoomsTimer = 0;
function loadRoomsSoon() {
  clearTimeout(loadRoomsTimer);
  loadRoomsTimer = setTimeout(loadRooms, 300);
}

function renderRooms() {
  const list = els['room-list'];
  clear(list);
  const rooms = [...state.rooms.values()].sort((a, b) => a.Name.localeCompare(b.Name, undefined, { sensitivity: 'base' }));
  for (const r of rooms) list.append(roomItem(r));
  show(els['room-list-empty'], rooms.length === 0);
  updateTitle();
}

function roomItem(r) {
  const current = state.room?.id === r.RoomId;
  const unread = current ? 0 : r.UnreadCount;
  const mentions = current ? 0 : r.MentionCount;
  const labelParts = [r.Name];
  if (unread) labelParts.push(plural(unread, 'unread message'));
  if (mentions) labelParts.push(plural(mentions, 'mention'));
  return h('li', { 'data-room-id': r.RoomId },
    h('a', {
      class: `room-link${unread ? ' has-unread' : ''}${current ? ' current' : ''}`,
      href: `/rooms/${enc(r.RoomId)}`,
      'data-nav': true,
      'aria-current': current ? 'page' : null,
      'aria-label': labelParts.join(', '),
    },
    icon('hash', 'room-hash'),
    h('span', { class: 'room-link-name' }, r.Name),
    mentions ? h('span', { class: 'mention-badge', title: plural(mentions, 'mention') }, `@${mentions}`) : null,
    unread ? h('span', { class: 'unread-badge', title: plural(unread, 'unread message') }, unread > 99 ? '99+' : String(unread)) : null));
}

function updateTitle() {
  let mentions = 0;
  for (const r of state.rooms.values()) if (r.RoomId !== state.room?.id) mentions += r.MentionCount;
  const name = state.room?.room?.Name;
  document.title = `${mentions ? `(${mentions}) ` : ''}${name ? name + ' · ' : ''}Carillon`;
}

async function createRoom(e) {
  e.preventDefault();
  const name = els['new-room-name'].value.trim();
  if (!name) return;
  setFormError(els['new-room-error'], '');
  try {
    const { Room } = await api('POST', '/rooms', { Name: name });
    state.rooms.set(Room.RoomId, Room);
    els['new-room-name'].value = '';
    toggleNewRoom(false);
    renderRooms();
    navigate(`/rooms/${enc(Room.RoomId)}`);
  } catch (err) {
    setFormError(els['new-room-error'], err.message);
  }
}

function toggleNewRoom(open) {
  show(els['new-room-form'], open);
  els['new-room-button'].setAttribute('aria-expanded', String(open));
  if (open) els['new-room-name'].focus();
  else setFormError(els['new-room-error'], '');
}

// ---------------------------------------------------------------------------
// A room

/** RoomState is everything the open room shows. */
class RoomState {
  constructor(id) {
    this.id = id;
    this.room = state.rooms.get(id) || null;
    this.messages = []; // oldest first
    this.byId = new Map();
    this.nextToken = null;
    this.loaded = false;
    this.loadingOlder = false;
    this.queue = []; // live messages that arrived while loading
    this.roster = [];
    this.webhooks = null; // null: not an administrator
    this.admin = false;
    this.lastMarked = '';
    this.stick = true; // keep the view at the newest message
  }
}

function closeRoom() {
  state.room = null;
  show(els['room-main'], false);
  show(els['room-empty'], true);
  els['room-empty-title'].textContent = 'Pick a room';
  els['room-empty-text'].textContent = 'Choose a room, or create one. Webhook messages arrive live.';
  setRouteClass();
  renderRooms();
  closeDetailsOverlay();
}

async function openRoom(id) {
  if (state.room?.id === id) {
    focusHashMessage();
    return;
  }
  const rs = new RoomState(id);
  state.room = rs;
  setRouteClass();
  show(els['room-empty'], false);
  show(els['room-main'], true);
  els['room-name'].textContent = rs.room?.Name || '';
  els['room-sub'].textContent = '';
  clear(els['message-list']);
  clear(els.roster);
  clear(els['webhook-list']);
  show(els['webhooks-panel'], false);
  show(els['add-member-form'], false);
  show(els['jump-button'], false);
  els['history-status'].textContent = 'Loading messages…';
  els['composer-input'].value = '';
  updateComposer();
  renderRooms();
  applyDetailsDefault();

  let room;
  try {
    ({ Room: room } = await api('GET', `/rooms/${enc(id)}`));
  } catch (err) {
    if (state.room !== rs) return;
    state.room = null;
    show(els['room-main'], false);
    show(els['room-empty'], true);
    setRouteClass();
    els['room-empty-title'].textContent = err.status === 404 ? 'Room not found' : 'This room cannot be shown';
    els['room-empty-text'].textContent = err.status === 404
      ? 'There is no such room, or you are not a member of it.'
      : err.message;
    return;
  }
  if (state.room !== rs) return;
  rs.room = room;
  if (state.rooms.has(id)) state.rooms.set(id, { ...state.rooms.get(id), Name: room.Name });
  els['room-name'].textContent = room.Name;
  els['composer-input'].placeholder = `Message #${room.Name}`;
  updateTitle();
  if (matchMedia('(min-width: 720px)').matches) els['composer-input'].focus({ preventScroll: true });

  await Promise.all([loadMessages(rs), loadRoster(rs), loadWebhooks(rs)]);
}

async function loadMessages(rs) {
  try {
    const page = await api('GET', `/rooms/${enc(rs.id)}/messages?MaxResults=${PAGE_SIZE}&SortOrder=DESCENDING`);
    if (state.room !== rs) return;
    rs.messages = page.Messages.slice().reverse();
    rs.byId = new Map(rs.messages.map((m) => [m.MessageId, m]));
    rs.nextToken = page.NextToken;
    rs.loaded = true;
    for (const m of rs.messages) cacheMessage(m);
    renderAllMessages(rs);
    // Live messages that arrived meanwhile.
    const queued = rs.queue;
    rs.queue = [];
    for (const m of queued) addLiveMessage(rs, m);
    scrollToBottom();
    await fillViewport(rs);
    await focusHashMessage();
    markReadSoon();
  } catch (err) {
    if (state.room !== rs) return;
    els['history-status'].textContent = err.message;
  }
}

/** fillViewport loads older pages until the list can scroll (so scrolling up can load more). */
async function fillViewport(rs) {
  const sc = els.messages;
  for (let i = 0; i < 5 && rs.nextToken && sc.scrollHeight <= sc.clientHeight + 10; i++) {
    await loadOlder(rs);
  }
  updateHistoryStatus(rs);
}

async function loadOlder(rs) {
  if (!rs.nextToken || rs.loadingOlder) return;
  rs.loadingOlder = true;
  els['history-status'].textContent = 'Loading older messages…';
  try {
    const page = await api('GET', `/rooms/${enc(rs.id)}/messages?MaxResults=${PAGE_SIZE}&SortOrder=DESCENDING&NextToken=${enc(rs.nextToken)}`);
    if (state.room !== rs) return;
    const older = page.Messages.slice().reverse().filter((m) => !rs.byId.has(m.MessageId));
    rs.nextToken = page.NextToken;
    for (const m of older) {
      rs.byId.set(m.MessageId, m);
      cacheMessage(m);
    }
    if (older.length) prependMessages(rs, older);
  } catch (err) {
    if (state.room === rs) toast(err.message, 'error');
  } finally {
    rs.loadingOlder = false;
    if (state.room === rs) updateHistoryStatus(rs);
  }
}

function updateHistoryStatus(rs) {
  const el = els['history-status'];
  if (rs.nextToken) {
    el.textContent = '';
  } else if (rs.messages.length === 0) {
    el.textContent = '';
  } else {
    el.textContent = `This is the beginning of #${rs.room?.Name ?? 'this room'}.`;
  }
  if (rs.messages.length === 0) {
    clear(els['message-list']);
    els['message-list'].append(h('li', { class: 'room-intro' },
      h('span', { class: 'room-intro-icon' }, icon('hash')),
      h('strong', null, `Welcome to #${rs.room?.Name ?? ''}`),
      h('span', null, 'No messages yet. Say hello, or add a webhook and let your scripts talk.')));
  }
}

// ---- rendering messages

/** setMessageHtml inserts the server's sanitized Html — the only HTML the app inserts. */
function setMessageHtml(el, m) {
  el.innerHTML = m.Html;
  const me = state.me?.UserId;
  let mentionsMe = false;
  for (const span of el.querySelectorAll('span.mention')) {
    const mention = span.getAttribute('data-mention');
    if ((me && span.getAttribute('data-member-id') === me) || mention === 'all' || mention === 'present') {
      span.classList.add('mention-me');
      mentionsMe = true;
    }
  }
  // Links in messages open in a new tab (the server already sets target
  // and rel; this keeps it so if the renderer ever changes).
  for (const a of el.querySelectorAll('a[href]')) {
    a.setAttribute('target', '_blank');
    a.setAttribute('rel', 'noopener noreferrer nofollow');
  }
  for (const img of el.querySelectorAll('img')) {
    img.setAttribute('loading', 'lazy');
    img.setAttribute('referrerpolicy', 'no-referrer');
    img.addEventListener('load', keepAtBottom);
  }
  return mentionsMe;
}

function isWebhookMessage(m) {
  return m.Sender?.SenderType === 'Webhook';
}

/** continues reports whether m continues prev's group (same sender, same day, within 5 minutes). */
function continues(prev, m) {
  return !!prev && prev.Sender.SenderId === m.Sender.SenderId && prev.DisplayName === m.DisplayName &&
    dayKey(prev.CreatedTimestamp) === dayKey(m.CreatedTimestamp) &&
    new Date(m.CreatedTimestamp) - new Date(prev.CreatedTimestamp) < GROUP_WINDOW_MS;
}

/** messageNodes returns the day divider (if m starts a day) and m's list item. */
function messageNodes(m, prev) {
  const nodes = [];
  if (!prev || dayKey(prev.CreatedTimestamp) !== dayKey(m.CreatedTimestamp)) {
    nodes.push(h('li', { class: 'day-divider', 'data-day-of': m.MessageId, role: 'separator', 'aria-label': dayLabel(m.CreatedTimestamp) },
      h('span', null, dayLabel(m.CreatedTimestamp))));
  }
  const cont = continues(prev, m);
  const webhook = isWebhookMessage(m);
  const body = h('div', { class: 'msg-body' });
  const mentionsMe = setMessageHtml(body, m);
  const ownMessage = m.Sender.SenderId === state.me?.UserId;
  const li = h('li', {
    class: `msg${cont ? ' msg-cont' : ''}${webhook ? ' msg-webhook' : ''}${mentionsMe && !ownMessage ? ' msg-mentions-me' : ''}${m.Format === 'Code' ? ' msg-code' : ''}`,
    id: `m-${m.MessageId}`,
    'data-message-id': m.MessageId,
    'data-sender-type': m.Sender.SenderType,
  },
  h('div', { class: 'msg-gutter' },
    cont ? timeEl(m.CreatedTimestamp, 'msg-time-compact') : avatar(m.Sender.SenderId, m.Sender.Name, webhook)),
  h('div', { class: 'msg-main' },
    cont ? null : h('div', { class: 'msg-head' },
      h('span', { class: 'msg-author' }, m.DisplayName),
      webhook ? h('span', { class: 'webhook-mark', title: 'Posted by a webhook' }, icon('webhook'), h('span', { class: 'sr-only' }, 'webhook')) : null,
      timeEl(m.CreatedTimestamp, 'msg-time')),
    cont ? h('span', { class: 'sr-only' }, `${m.DisplayName}: `) : null,
    body));
  nodes.push(li);
  return nodes;
}

function renderAllMessages(rs) {
  const list = els['message-list'];
  clear(list);
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of rs.messages) {
    frag.append(...messageNodes(m, prev));
    prev = m;
  }
  list.append(frag);
  updateHistoryStatus(rs);
}

function prependMessages(rs, older) {
  const sc = els.messages;
  const fromBottom = sc.scrollHeight - sc.scrollTop;
  const list = els['message-list'];
  const frag = document.createDocumentFragment();
  let prev = null;
  for (const m of older) {
    frag.append(...messageNodes(m, prev));
    prev = m;
  }
  // The former first message may now continue the last older one: rebuild it.
  const first = rs.messages[0];
  if (first) {
    document.querySelector(`[data-day-of="${CSS.escape(first.MessageId)}"]`)?.remove();
    const oldLi = document.getElementById(`m-${first.MessageId}`);
    const nodes = messageNodes(first, prev);
    if (oldLi) oldLi.replaceWith(...nodes);
  }
  list.querySelector('.room-intro')?.remove();
  list.prepend(frag);
  rs.messages = older.concat(rs.messages);
  sc.scrollTop = sc.scrollHeight - fromBottom;
}

function addLiveMessage(rs, m) {
  if (rs.byId.has(m.MessageId)) return;
  const wasAtBottom = isAtBottom();
  const prev = rs.messages[rs.messages.length - 1] || null;
  rs.messages.push(m);
  rs.byId.set(m.MessageId, m);
  const list = els['message-list'];
  list.querySelector('.room-intro')?.remove();
  list.append(...messageNodes(m, prev));
  updateHistoryStatus(rs);
  const mine = m.Sender.SenderId === state.me?.UserId;
  if (wasAtBottom || mine) {
    scrollToBottom();
    markReadSoon();
  } else {
    show(els['jump-button'], true);
  }
}

/** catchUp merges the newest page into the open room (after a post, or a stream gap). */
async function catchUp(rs) {
  try {
    const page = await api('GET', `/rooms/${enc(rs.id)}/messages?MaxResults=${PAGE_SIZE}&SortOrder=DESCENDING`);
    if (state.room !== rs || !rs.loaded) return;
    const newest = page.Messages.slice().reverse();
    const known = newest.some((m) => rs.byId.has(m.MessageId));
    if (!known && rs.messages.length && newest.length === PAGE_SIZE) {
      // Too much was missed to merge: reload the room.
      reloadRoom();
      return;
    }
    for (const m of newest) if (!rs.byId.has(m.MessageId)) addLiveMessage(rs, m);
  } catch {
    // The live stream will bring it, or the next catch-up.
  }
}

function reloadRoom() {
  const id = state.room?.id;
  state.room = null;
  if (id) openRoom(id);
}

// ---- scrolling and read position

function isAtBottom() {
  const sc = els.messages;
  return sc.scrollHeight - sc.scrollTop - sc.clientHeight < 48;
}

function scrollToBottom() {
  const sc = els.messages;
  sc.scrollTop = sc.scrollHeight;
  if (state.room) state.room.stick = true;
  show(els['jump-button'], false);
}

function keepAtBottom() {
  if (state.room?.stick) scrollToBottom();
}

function onMessagesScroll() {
  const rs = state.room;
  if (!rs || !rs.loaded) return;
  rs.stick = isAtBottom();
  if (rs.stick) {
    show(els['jump-button'], false);
    markReadSoon();
  }
  if (els.messages.scrollTop < 300) loadOlder(rs);
}

let markReadTimer = 0;
function markReadSoon() {
  clearTimeout(markReadTimer);
  markReadTimer = setTimeout(markRead, 400);
}

async function markRead() {
  const rs = state.room;
  if (!rs || !rs.loaded || document.visibilityState !== 'visible' || !isAtBottom()) return;
  const newest = rs.messages[rs.messages.length - 1];
  const r = state.rooms.get(rs.id);
  if (r) {
    r.UnreadCount = 0;
    r.MentionCount = 0;
    renderRooms();
  }
  if (!newest || newest.MessageId === rs.lastMarked) return;
  rs.lastMarked = newest.MessageId;
  try {
    await api('POST', `/rooms/${enc(rs.id)}/read`, { MessageId: newest.MessageId });
  } catch {
    // Not a member (an instance admin looking in), or offline: harmless.
  }
}

/** focusHashMessage scrolls to #m-{MessageId} (a link from the mentions list), loading older pages to find it. */
async function focusHashMessage() {
  const rs = state.room;
  const id = location.hash.startsWith('#m-') ? location.hash.slice(3) : '';
  if (!rs || !id || !rs.loaded) return;
  for (let i = 0; i < 20 && !rs.byId.has(id) && rs.nextToken && state.room === rs; i++) {
    await loadOlder(rs);
  }
  const el = document.getElementById(`m-${id}`);
  if (!el) {
    toast('That message is no longer in this room.', 'error');
    return;
  }
  rs.stick = false;
  el.scrollIntoView({ block: 'center' });
  el.classList.remove('flash');
  void el.offsetWidth; // restart the animation
  el.classList.add('flash');
}

// ---- composer

function updateComposer() {
  const text = els['composer-input'].value;
  const bytes = utf8Length(text);
  const over = bytes > MAX_CONTENT_BYTES;
  const count = els['composer-count'];
  show(count, bytes > MAX_CONTENT_BYTES - 600);
  count.textContent = `${bytes.toLocaleString()} / ${MAX_CONTENT_BYTES.toLocaleString()} bytes`;
  count.classList.toggle('over', over);
  els['composer-input'].setAttribute('aria-invalid', String(over));
  if (over) {
    setFormError(els['composer-error'],
      `This message is ${bytes.toLocaleString()} bytes long; the limit is ${MAX_CONTENT_BYTES.toLocaleString()} bytes (UTF-8). Shorten it or split it into several messages.`);
  } else if (els['composer-error'].dataset.kind === 'size') {
    setFormError(els['composer-error'], '');
  }
  if (over) els['composer-error'].dataset.kind = 'size';
  els['composer-send'].disabled = over || text.trim() === '';
}

async function sendMessage(e) {
  e?.preventDefault();
  const rs = state.room;
  const input = els['composer-input'];
  const text = input.value;
  if (!rs || text.trim() === '') return;
  if (utf8Length(text) > MAX_CONTENT_BYTES) {
    updateComposer();
    return;
  }
  // Clear at once, as chat apps do; the text comes back if the post fails.
  input.value = '';
  updateComposer();
  setFormError(els['composer-error'], '');
  try {
    const res = await api('POST', `/rooms/${enc(rs.id)}/messages`, { Content: text });
    // The live stream normally brings the message at once; if it is
    // down, fetch it.
    setTimeout(() => {
      if (state.room === rs && !rs.byId.has(res.MessageId)) catchUp(rs);
    }, 1500);
  } catch (err) {
    if (state.room === rs && input.value.trim() === '') {
      input.value = text;
      updateComposer();
    }
    setFormError(els['composer-error'], err.message);
    els['composer-error'].dataset.kind = 'api';
  }
  input.focus();
}

function composerKeydown(e) {
  if (e.key === 'Enter' && !e.shiftKey && !e.altKey && !e.ctrlKey && !e.metaKey && !e.isComposing) {
    e.preventDefault();
    sendMessage();
  }
}

// ---------------------------------------------------------------------------
// Roster and administration

async function loadRoster(rs) {
  try {
    const { RoomMemberships } = await api('GET', `/rooms/${enc(rs.id)}/memberships`);
    if (state.room !== rs) return;
    rs.roster = RoomMemberships;
    for (const m of RoomMemberships) {
      if (m.Member.MemberType === 'User' && m.Present !== null) state.presence.set(m.Member.MemberId, m.Present);
    }
    const mine = RoomMemberships.find((m) => m.Member.MemberId === state.me.UserId);
    if (mine?.Role === 'Administrator') rs.admin = true;
    renderRoster(rs);
  } catch (err) {
    if (state.room === rs) toast(err.message, 'error');
  }
}

function sortRoster(rs) {
  const byName = (a, b) => a.Member.FullName.localeCompare(b.Member.FullName, undefined, { sensitivity: 'base' });
  const users = rs.roster.filter((m) => m.Member.MemberType !== 'Webhook').sort(byName);
  const hooks = rs.roster.filter((m) => m.Member.MemberType === 'Webhook').sort(byName);
  rs.roster = users.concat(hooks);
}

function renderRoster(rs) {
  sortRoster(rs);
  const users = rs.roster.filter((m) => m.Member.MemberType !== 'Webhook');
  const hooks = rs.roster.filter((m) => m.Member.MemberType === 'Webhook');
  reconcile(els.roster, rs.roster, (m) => m.Member.MemberId,
    (m) => JSON.stringify([m, state.presence.get(m.Member.MemberId) ?? null, rs.admin]), (m) => rosterItem(rs, m));
  els['people-count'].textContent = String(users.length);
  els['room-sub'].textContent = [plural(users.length, 'member'), hooks.length ? plural(hooks.length, 'webhook') : null]
    .filter(Boolean).join(' · ');
  show(els['add-member-form'], rs.admin);
  const mine = rs.roster.find((m) => m.Member.MemberId === state.me.UserId);
  show(els['leave-button'], !!mine);
}

function rosterItem(rs, m) {
  const isHook = m.Member.MemberType === 'Webhook';
  const isMe = m.Member.MemberId === state.me.UserId;
  const present = isHook ? null : (state.presence.get(m.Member.MemberId) ?? m.Present ?? false);
  const sub = isHook ? 'Webhook' : [m.Role === 'Administrator' ? 'Administrator' : 'Member', m.Member.Alias ? '@' + m.Member.Alias : null].filter(Boolean).join(' · ');
  const canRemove = rs.admin && !isHook && !isMe;
  return h('li', {
    class: `member${isHook ? ' member-webhook' : ''}`,
    'data-member-id': m.Member.MemberId,
    'data-member-type': m.Member.MemberType,
  },
  h('span', { class: 'member-avatar' },
    avatar(m.Member.MemberId, m.Member.FullName, isHook, 'sm'),
    isHook ? null : h('span', { class: `presence ${present ? 'on' : 'off'}`, title: present ? 'Online' : 'Away' })),
  h('span', { class: 'member-text' },
    h('span', { class: 'member-name' }, m.Member.FullName, isMe ? h('span', { class: 'you' }, ' (you)') : null,
      isHook ? icon('webhook', 'member-webhook-icon') : null),
    h('span', { class: 'member-sub' }, sub,
      isHook ? null : h('span', { class: 'sr-only' }, present ? ', online' : ', away'))),
  m.Role === 'Administrator' ? h('span', { class: 'role-badge' }, 'Admin') : null,
  canRemove ? h('button', {
    class: 'icon-btn small member-remove',
    type: 'button',
    'aria-label': `Remove ${m.Member.FullName} from the room`,
    title: 'Remove from the room',
    onclick: () => removeMember(rs, m),
  }, icon('x')) : null);
}

async function addMember(e) {
  e.preventDefault();
  const rs = state.room;
  const email = els['add-member-email'].value.trim();
  if (!rs || !email) return;
  setFormError(els['add-member-error'], '');
  try {
    const { RoomMembership } = await api('POST', `/rooms/${enc(rs.id)}/memberships`, { Email: email, Role: els['add-member-role'].value });
    upsertRoster(rs, RoomMembership);
    els['add-member-email'].value = '';
    toast(`Added ${RoomMembership.Member.FullName}.`);
  } catch (err) {
    setFormError(els['add-member-error'], err.message);
  }
}

async function removeMember(rs, m) {
  const ok = await confirmDialog({
    title: `Remove ${m.Member.FullName}?`,
    text: `${m.Member.FullName} will no longer see this room or its messages.`,
    ok: 'Remove',
  });
  if (!ok) return;
  try {
    await api('DELETE', `/rooms/${enc(rs.id)}/memberships/${enc(m.Member.MemberId)}`);
    rs.roster = rs.roster.filter((x) => x.Member.MemberId !== m.Member.MemberId);
    if (state.room === rs) renderRoster(rs);
  } catch (err) {
    toast(err.message, 'error');
  }
}

async function leaveRoom() {
  const rs = state.room;
  if (!rs) return;
  const ok = await confirmDialog({
    title: `Leave #${rs.room?.Name ?? ''}?`,
    text: 'You will stop seeing this room and its messages. An administrator can add you again.',
    ok: 'Leave',
  });
  if (!ok) return;
  try {
    await api('DELETE', `/rooms/${enc(rs.id)}/memberships/${enc(state.me.UserId)}`);
    state.rooms.delete(rs.id);
    navigate('/');
  } catch (err) {
    toast(err.message, 'error');
  }
}

function upsertRoster(rs, membership) {
  const i = rs.roster.findIndex((x) => x.Member.MemberId === membership.Member.MemberId);
  if (i >= 0) rs.roster[i] = membership;
  else rs.roster.push(membership);
  if (membership.Member.MemberType === 'User' && membership.Present !== null && membership.Present !== undefined && !state.presence.has(membership.Member.MemberId)) {
    state.presence.set(membership.Member.MemberId, membership.Present);
  }
  if (state.room === rs) renderRoster(rs);
}

// ---- webhooks panel (administrators)

async function loadWebhooks(rs) {
  try {
    const { Webhooks } = await api('GET', `/rooms/${enc(rs.id)}/webhooks`);
    if (state.room !== rs) return;
    rs.admin = true; // 200 here means the caller administers the room
    rs.webhooks = Webhooks;
    renderWebhooks(rs);
    renderRoster(rs);
  } catch (err) {
    if (state.room !== rs) return;
    rs.webhooks = null;
    if (err.status !== 403) toast(err.message, 'error');
    show(els['webhooks-panel'], false);
  }
}

let loadWebhooksTimer = 0;
function loadWebhooksSoon(rs) {
  clearTimeout(loadWebhooksTimer);
  loadWebhooksTimer = setTimeout(() => {
    if (state.room === rs && rs.admin) loadWebhooks(rs);
  }, 250);
}

function renderWebhooks(rs) {
  show(els['webhooks-panel'], true);
  const hooks = rs.webhooks.slice().sort((a, b) => a.Name.localeCompare(b.Name, undefined, { sensitivity: 'base' }));
  // A new last-used time is written into the item, not rebuilt: a reload
  // while the webhook posts must not swap the buttons under the pointer or
  // close an open rename form.
  reconcile(els['webhook-list'], hooks, (w) => w.WebhookId, (w) => JSON.stringify({ ...w, LastUsedTimestamp: null }), (w) => webhookItem(rs, w));
  for (const w of hooks) {
    const used = els['webhook-list'].querySelector(`li[data-webhook-id="${w.WebhookId}"] .hook-used`);
    if (used && used.dataset.ts !== (w.LastUsedTimestamp ?? '')) {
      used.dataset.ts = w.LastUsedTimestamp ?? '';
      used.textContent = lastUsedText(w.LastUsedTimestamp);
    }
  }
  const n = hooks.length;
  els['webhooks-usage'].textContent = `${n} of ${MAX_WEBHOOKS} used`;
  els['webhooks-meter'].value = n;
  els['webhooks-meter'].textContent = `${n} of ${MAX_WEBHOOKS}`;
  const full = n >= MAX_WEBHOOKS;
  els['new-webhook-name'].disabled = full;
  els['new-webhook-submit'].disabled = full;
  els['new-webhook-name'].placeholder = full ? 'Limit reached: delete one to add another' : 'e.g. CI alerts';
}

function webhookItem(rs, w) {
  const urlId = `hook-url-${w.WebhookId}`;
  const urlInput = h('input', {
    id: urlId, class: 'hook-url-input', type: 'text', readonly: true, value: w.Url ?? '',
    placeholder: w.Url ? null : 'URL unavailable: regenerate it', spellcheck: 'false',
    onfocus: (e) => e.target.select(),
  });
  const renameInput = h('input', { type: 'text', maxlength: '64', required: true, value: w.Name, 'aria-label': `New name for ${w.Name}` });
  const renameForm = h('form', { class: 'hook-rename', hidden: true },
    renameInput,
    h('button', { class: 'btn small primary', type: 'submit' }, 'Save'),
    h('button', { class: 'btn small', type: 'button', onclick: () => { show(renameForm, false); show(actions, true); } }, 'Cancel'));
  renameForm.addEventListener('submit', (e) => {
    e.preventDefault();
    const name = renameInput.value.trim();
    if (!name || name === w.Name) {
      show(renameForm, false);
      show(actions, true);
      return;
    }
    renameWebhook(rs, w, name);
  });
  const actions = h('div', { class: 'hook-actions' },
    h('button', { class: 'btn small hook-rename-button', type: 'button', onclick: () => { show(actions, false); show(renameForm, true); renameInput.select(); } },
      icon('edit'), 'Rename'),
    h('button', { class: 'btn small hook-regenerate', type: 'button', onclick: () => regenerateWebhook(rs, w) }, icon('refresh'), 'Regenerate'),
    h('button', { class: 'btn small danger-text hook-delete', type: 'button', onclick: () => deleteWebhook(rs, w), 'aria-label': `Delete ${w.Name}` }, icon('trash'), 'Delete'));
  return h('li', { class: 'hook', 'data-webhook-id': w.WebhookId },
    h('div', { class: 'hook-head' },
      h('span', { class: 'avatar avatar-webhook avatar-sm' }, icon('webhook')),
      h('span', { class: 'hook-text' },
        h('span', { class: 'hook-name' }, w.Name),
        h('span', { class: 'hook-used', 'data-ts': w.LastUsedTimestamp ?? '' }, lastUsedText(w.LastUsedTimestamp)))),
    h('label', { class: 'sr-only', for: urlId }, `URL of ${w.Name}`),
    h('div', { class: 'hook-url' },
      urlInput,
      h('button', {
        class: 'btn small primary hook-copy', type: 'button', disabled: !w.Url,
        onclick: () => copyUrl(w.Url, urlInput),
      }, icon('copy'), 'Copy')),
    actions,
    renameForm);
}

function lastUsedText(ts) {
  return ts ? `Last used ${relativeTime(ts)}` : 'Not used yet';
}

async function createWebhook(e) {
  e.preventDefault();
  const rs = state.room;
  const name = els['new-webhook-name'].value.trim();
  if (!rs || !name) return;
  setFormError(els['new-webhook-error'], '');
  try {
    const { Webhook } = await api('POST', `/rooms/${enc(rs.id)}/webhooks`, { Name: name });
    els['new-webhook-name'].value = '';
    rs.webhooks = (rs.webhooks || []).filter((w) => w.WebhookId !== Webhook.WebhookId).concat(Webhook);
    renderWebhooks(rs);
    addWebhookToRoster(rs, Webhook.WebhookId, Webhook.Name);
    toast(`Webhook "${Webhook.Name}" created. Copy its URL into your script.`);
  } catch (err) {
    setFormError(els['new-webhook-error'], err.message);
  }
}

async function renameWebhook(rs, w, name) {
  try {
    const { Webhook } = await api('PATCH', `/rooms/${enc(rs.id)}/webhooks/${enc(w.WebhookId)}`, { Name: name });
    replaceWebhook(rs, Webhook);
    addWebhookToRoster(rs, Webhook.WebhookId, Webhook.Name);
  } catch (err) {
    toast(err.message, 'error');
  }
}

async function regenerateWebhook(rs, w) {
  const ok = await confirmDialog({
    title: `Regenerate the URL of "${w.Name}"?`,
    text: 'The current URL stops working at once: anything still posting to it gets 404 Not Found. Update your scripts with the new URL.',
    ok: 'Regenerate URL',
  });
  if (!ok) return;
  try {
    const { Webhook } = await api('POST', `/rooms/${enc(rs.id)}/webhooks/${enc(w.WebhookId)}/regenerate`);
    replaceWebhook(rs, Webhook);
    toast(`New URL for "${Webhook.Name}". The old one no longer works.`);
  } catch (err) {
    toast(err.message, 'error');
  }
}

async function deleteWebhook(rs, w) {
  const ok = await confirmDialog({
    title: `Delete "${w.Name}"?`,
    text: 'Its URL stops working at once (404 Not Found). Messages it already posted stay in the room.',
    ok: 'Delete webhook',
  });
  if (!ok) return;
  try {
    await api('DELETE', `/rooms/${enc(rs.id)}/webhooks/${enc(w.WebhookId)}`);
    rs.webhooks = rs.webhooks.filter((x) => x.WebhookId !== w.WebhookId);
    rs.roster = rs.roster.filter((x) => x.Member.MemberId !== w.WebhookId);
    if (state.room === rs) {
      renderWebhooks(rs);
      renderRoster(rs);
    }
    toast(`Webhook "${w.Name}" deleted.`);
  } catch (err) {
    toast(err.message, 'error');
  }
}

function replaceWebhook(rs, webhook) {
  rs.webhooks = (rs.webhooks || []).map((x) => (x.WebhookId === webhook.WebhookId ? webhook : x));
  if (state.room === rs) renderWebhooks(rs);
}

function addWebhookToRoster(rs, id, name) {
  upsertRoster(rs, {
    RoomId: rs.id, Role: null, Present: null,
    Member: { MemberId: id, MemberType: 'Webhook', Email: null, Alias: null, FullName: name },
  });
}

async function copyUrl(url, input) {
  if (!url) return;
  let ok = false;
  try {
    if (navigator.clipboard && window.isSecureContext) {
      await navigator.clipboard.writeText(url);
      ok = true;
    }
  } catch {
    ok = false;
  }
  if (!ok) {
    // Plain-http deployments have no Clipboard API: copy the selection.
    input.focus();
    input.select();
    try {
      ok = document.execCommand('copy');
    } catch {
      ok = false;
    }
  }
  toast(ok ? 'Webhook URL copied.' : 'Press Ctrl+C (⌘C) to copy the selected URL.', ok ? 'ok' : 'error');
}

// ---------------------------------------------------------------------------
// Details panel (roster and webhooks): a column on wide screens, an
// overlay on narrow ones.

const wide = matchMedia('(min-width: 1100px)');

function applyDetailsDefault() {
  // Open by default as a column on wide screens (unless closed there
  // before); an overlay on narrow ones only opens when asked for.
  const open = wide.matches && (state.detailsOpen ?? localStorage.getItem('carillon.details') !== 'closed');
  setDetails(open && !!state.room, false);
}

function setDetails(open, remember) {
  if (remember && wide.matches) {
    state.detailsOpen = open;
    localStorage.setItem('carillon.details', open ? 'open' : 'closed');
  }
  show(els.details, open);
  els['app-view'].classList.toggle('details-open', open);
  els['details-button'].setAttribute('aria-expanded', String(open));
  show(els.scrim, open && !wide.matches);
}

function closeDetailsOverlay() {
  if (!wide.matches || !state.room) setDetails(false, false);
}

// ---------------------------------------------------------------------------
// Mentions (notifications)

async function loadNotifications() {
  try {
    const { Notifications } = await api('GET', '/notifications');
    state.notifications = Notifications;
    renderNotifications();
  } catch (err) {
    toast(err.message, 'error');
  }
}

function renderNotifications() {
  const unread = state.notifications.filter((n) => !n.Read).length;
  const badge = els['notif-count'];
  show(badge, unread > 0);
  badge.textContent = unread > 99 ? '99+' : String(unread);
  els['notif-button'].setAttribute('aria-label', unread ? `Mentions, ${plural(unread, 'unread')}` : 'Mentions');
  if (!els['notif-dialog'].open) return;
  const list = els['notif-list'];
  clear(list);
  for (const n of state.notifications) list.append(notificationItem(n));
  show(els['notif-empty'], state.notifications.length === 0);
  els['notif-read-all'].disabled = unread === 0;
}

const REASONS = { Direct: 'mentioned you', All: 'mentioned @All', Present: 'mentioned @Present' };

function notificationItem(n) {
  const m = state.messageCache.get(n.MessageId);
  const room = state.rooms.get(n.RoomId);
  const who = m ? m.DisplayName : 'Someone';
  const snippet = m ? m.Content.replace(/^\/(md|code)\s/, '').replace(/\s+/g, ' ').slice(0, 160) : '';
  const link = h('a', {
    class: 'notif-link', href: `/rooms/${enc(n.RoomId)}#m-${enc(n.MessageId)}`,
    onclick: (e) => {
      e.preventDefault();
      els['notif-dialog'].close();
      if (!n.Read) markNotificationsRead([n.NotificationId]);
      navigate(`/rooms/${enc(n.RoomId)}#m-${enc(n.MessageId)}`);
      focusHashMessage();
    },
  },
  h('span', { class: 'notif-line' },
    h('strong', null, who), ` ${REASONS[n.Reason] || 'mentioned you'} in `,
    h('strong', null, room ? `#${room.Name}` : 'a room')),
  snippet ? h('span', { class: 'notif-snippet' }, snippet) : null,
  timeEl(n.CreatedTimestamp, 'notif-time', relativeTime(n.CreatedTimestamp)));
  return h('li', { class: `notif${n.Read ? '' : ' unread'}`, 'data-notification-id': n.NotificationId },
    link,
    n.Read ? null : h('button', {
      class: 'icon-btn small', type: 'button', 'aria-label': 'Mark as read', title: 'Mark as read',
      onclick: () => markNotificationsRead([n.NotificationId]),
    }, icon('check')));
}

async function markNotificationsRead(ids) {
  const all = ids === 'all';
  try {
    await api('POST', '/notifications/read', all ? { All: true } : { NotificationIds: ids });
    for (const n of state.notifications) if (all || ids.includes(n.NotificationId)) n.Read = true;
    renderNotifications();
  } catch (err) {
    toast(err.message, 'error');
  }
}

function openNotifications() {
  els['notif-dialog'].showModal();
  renderNotifications();
  loadNotifications();
}

function cacheMessage(m) {
  state.messageCache.set(m.MessageId, m);
  if (state.messageCache.size > 2000) {
    state.messageCache.delete(state.messageCache.keys().next().value);
  }
}

// ---------------------------------------------------------------------------
// Live events

function startLive() {
  state.live?.stop();
  const live = new Live({
    message: onLiveMessage,
    notification: onLiveNotification,
    presence: onLivePresence,
    membership: onLiveMembership,
    webhook: onLiveWebhook,
    reset: resync,
    resync,
    state: setConnState,
    beforeRetry: async () => {
      try {
        await api('GET', '/users/me', undefined, { quiet401: true });
        return true;
      } catch (err) {
        if (err.status === 401) {
          sessionEnded();
          return false;
        }
        return true;
      }
    },
  });
  state.live = live;
  live.start();
}

let connTimer = 0;
function setConnState(s) {
  const el = els['conn-status'];
  clearTimeout(connTimer);
  if (s === 'live' || s === 'connecting') {
    show(el, false);
    return;
  }
  // Short blips are not worth a flash of "Reconnecting".
  connTimer = setTimeout(() => {
    el.textContent = s === 'offline' ? 'Offline — retrying' : 'Reconnecting…';
    el.className = `conn-status ${s}`;
    show(el, true);
  }, 1500);
}

function onLiveMessage(m) {
  cacheMessage(m);
  const rs = state.room;
  if (rs && rs.id === m.RoomId) {
    if (rs.loaded) addLiveMessage(rs, m);
    else rs.queue.push(m);
  }
  const r = state.rooms.get(m.RoomId);
  if (!r) {
    loadRoomsSoon();
    return;
  }
  if (m.Sender.SenderId !== state.me.UserId && !(rs && rs.id === m.RoomId)) {
    r.UnreadCount++;
    renderRooms();
  }
}

function onLiveNotification(n) {
  if (!state.notifications.some((x) => x.NotificationId === n.NotificationId)) {
    state.notifications.unshift(n);
  }
  const r = state.rooms.get(n.RoomId);
  if (r && state.room?.id !== n.RoomId) {
    r.MentionCount++;
    renderRooms();
  }
  renderNotifications();
}

function onLivePresence(p) {
  state.presence.set(p.MemberId, p.Present);
  const rs = state.room;
  if (rs && rs.roster.some((m) => m.Member.MemberId === p.MemberId)) renderRoster(rs);
}

function onLiveMembership(ev) {
  const ms = ev.RoomMembership;
  const isMe = ms.Member.MemberId === state.me.UserId;
  const rs = state.room?.id === ms.RoomId ? state.room : null;
  if (ev.Action === 'Removed') {
    if (isMe) {
      state.rooms.delete(ms.RoomId);
      if (rs) {
        toast(`You are no longer a member of #${rs.room?.Name ?? 'this room'}.`, 'error');
        navigate('/');
      }
      renderRooms();
      return;
    }
    if (rs) {
      rs.roster = rs.roster.filter((x) => x.Member.MemberId !== ms.Member.MemberId);
      renderRoster(rs);
    }
    return;
  }
  if (isMe) loadRoomsSoon();
  if (rs) {
    upsertRoster(rs, ms);
    if (isMe) {
      rs.admin = ms.Role === 'Administrator';
      loadWebhooks(rs);
    }
  }
}

function onLiveWebhook(ev) {
  const rs = state.room?.id === ev.RoomId ? state.room : null;
  if (!rs) return;
  if (ev.Action === 'Deleted') {
    rs.roster = rs.roster.filter((x) => x.Member.MemberId !== ev.WebhookId);
    renderRoster(rs);
    if (rs.webhooks) {
      rs.webhooks = rs.webhooks.filter((w) => w.WebhookId !== ev.WebhookId);
      renderWebhooks(rs);
    }
    return;
  }
  addWebhookToRoster(rs, ev.WebhookId, ev.Name);
  // A change this tab made is shown already: reloading would only redraw
  // the list under the pointer and lose a click.
  const known = rs.webhooks?.find((w) => w.WebhookId === ev.WebhookId);
  if (known && (ev.Action === 'Created' || known.Name === ev.Name)) return;
  if (rs.admin) loadWebhooksSoon(rs);
}

/** resync reloads everything shown: after a reset event, or a gap the stream could not replay. */
function resync() {
  loadRooms();
  loadNotifications();
  if (state.room) reloadRoom();
}

// ---------------------------------------------------------------------------
// Small UI pieces

/**
 * reconcile makes list show one item per element of items, in order,
 * rebuilding only the items whose signature changed: re-renders caused by
 * live events must not steal focus or close a half-typed rename.
 */
function reconcile(list, items, keyOf, sigOf, build) {
  const old = new Map();
  for (const li of list.children) old.set(li.dataset.key, li);
  const next = items.map((item) => {
    const key = keyOf(item);
    const sig = sigOf(item);
    const li = old.get(key);
    if (li && li.dataset.sig === sig) return li;
    const fresh = build(item);
    fresh.dataset.key = key;
    fresh.dataset.sig = sig;
    return fresh;
  });
  if (next.length === list.children.length && next.every((li, i) => li === list.children[i])) return;
  list.replaceChildren(...next);
}

function setFormError(el, message) {
  el.textContent = message;
  show(el, !!message);
  if (!message) delete el.dataset.kind;
}

function toast(message, kind = 'ok') {
  const t = h('div', { class: `toast ${kind}` }, message);
  els.toasts.append(t);
  setTimeout(() => t.classList.add('leaving'), 3800);
  setTimeout(() => t.remove(), 4200);
}

let confirmResolve = null;
/** confirmDialog asks a yes/no question in a modal dialog; resolves true on OK. */
function confirmDialog({ title, text, ok }) {
  const d = els['confirm-dialog'];
  els['confirm-title'].textContent = title;
  els['confirm-text'].textContent = text;
  els['confirm-ok'].textContent = ok || 'OK';
  // The close event of the last question is dispatched after the dialog
  // closed: asked again before it arrives, answer the last one here.
  confirmResolve?.(d.returnValue === 'ok');
  d.returnValue = '';
  d.showModal();
  return new Promise((resolve) => {
    confirmResolve = resolve;
  });
}

function wireStaticHandlers() {
  els['login-form'].addEventListener('submit', submitLogin);
  els['logout-button'].addEventListener('click', logout);
  els['new-room-button'].addEventListener('click', () => toggleNewRoom(els['new-room-form'].hidden));
  els['new-room-form'].addEventListener('submit', createRoom);
  els['new-room-name'].addEventListener('keydown', (e) => {
    if (e.key === 'Escape') toggleNewRoom(false);
  });
  els.composer.addEventListener('submit', sendMessage);
  els['composer-input'].addEventListener('keydown', composerKeydown);
  els['composer-input'].addEventListener('input', updateComposer);
  els.messages.addEventListener('scroll', onMessagesScroll, { passive: true });
  els['jump-button'].addEventListener('click', () => {
    scrollToBottom();
    markReadSoon();
  });
  els['details-button'].addEventListener('click', () => setDetails(els.details.hidden, true));
  els['details-close'].addEventListener('click', () => {
    setDetails(false, true);
    els['details-button'].focus();
  });
  els.scrim.addEventListener('click', () => setDetails(false, true));
  els['add-member-form'].addEventListener('submit', addMember);
  els['new-webhook-form'].addEventListener('submit', createWebhook);
  els['leave-button'].addEventListener('click', leaveRoom);
  els['notif-button'].addEventListener('click', openNotifications);
  els['notif-close'].addEventListener('click', () => els['notif-dialog'].close());
  els['notif-read-all'].addEventListener('click', () => markNotificationsRead('all'));
  els['notif-dialog'].addEventListener('click', (e) => {
    if (e.target === els['notif-dialog']) els['notif-dialog'].close(); // a click on the backdrop
  });
  els['confirm-dialog'].addEventListener('close', () => {
    if (els['confirm-dialog'].open) return; // the last question's, answered when this one opened
    const r = confirmResolve;
    confirmResolve = null;
    r?.(els['confirm-dialog'].returnValue === 'ok');
  });
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !els.details.hidden && !wide.matches && !document.querySelector('dialog[open]')) {
      setDetails(false, true);
      els['details-button'].focus();
    }
  });
  wide.addEventListener('change', () => state.room && applyDetailsDefault());

  // In-app links (data-nav, room links) navigate without reloading.
  document.addEventListener('click', (e) => {
    const a = e.target.closest?.('a[data-nav]');
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin) return;
    e.preventDefault();
    navigate(url.pathname + url.hash);
  });
  window.addEventListener('popstate', route);
  window.addEventListener('hashchange', focusHashMessage);
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState === 'visible') markReadSoon();
  });
  new ResizeObserver(keepAtBottom).observe(els['message-list']);
  // Relative times ("5 minutes ago") and day labels stay current.
  setInterval(() => {
    for (const el of document.querySelectorAll('.hook-used[data-ts]')) el.textContent = lastUsedText(el.dataset.ts);
  }, 30000);
}

boot();

// The console: one page, a client of the public API only. Everything from
// the server is put on the page as text (textContent, text nodes), never as
// HTML, so a message body can only ever show its characters.
import { APIError, allows, cursorAfter, newKey, paths, request, timeKey } from './api.js';
import { Feed } from './feed.js';
import { highlighted, parseTerms } from './highlight.js';

const TOKEN_KEY = 'instachat.console.token';
const PAGE = 50; // messages per page when scrolling back
const SEND_TIMEOUT = 10000; // a send without an answer by then is retried with its key
const SEND_ATTEMPTS = 6;
const COUNTS_EVERY = 5000; // how often counts of the chat list are refreshed

const $ = (id) => document.getElementById(id);
const el = (tag, props = {}, ...children) => {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (k === 'class') e.className = v;
    else if (k === 'text') e.textContent = v;
    else if (k.startsWith('data-') || k.startsWith('aria-') || k === 'role' || k === 'for') e.setAttribute(k, v);
    else e[k] = v;
  }
  e.append(...children);
  return e;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

const ui = {};
for (const id of ['token', 'open-app', 'create-app', 'new-app-name', 'notice', 'notice-text', 'notice-close',
  'welcome', 'sidebar', 'app-title', 'app-feed-state', 'close-app', 'chat-list', 'more-chats', 'create-chat',
  'new-chat-name', 'chat', 'back', 'chat-title', 'chat-state', 'rename', 'rename-form', 'rename-input',
  'rename-cancel', 'search-form', 'search', 'results', 'results-title', 'results-close', 'result-list',
  'more-results', 'scroller', 'older', 'start', 'message-list', 'composer-form', 'composer']) {
  ui[id.replace(/-(\w)/g, (_, c) => c.toUpperCase())] = $(id);
}

const state = {
  token: null,
  app: null,
  chats: new Map(), // number → {chat, el}
  chatsCursor: '', // next page of the chat list, '' when all are listed
  chatsPages: 0,
  appFeed: null,
  countsTimer: 0,
  chat: null, // the open chat, see openChat
  canDelete: false,
};

// ---- notices: every error in the API's own words -------------------------

let noticeTimer = 0;
function notify(err) {
  const text = err instanceof APIError || err instanceof Error ? err.message : String(err);
  ui.noticeText.textContent = text;
  ui.notice.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { ui.notice.hidden = true; }, 12000);
}
ui.noticeClose.addEventListener('click', () => { ui.notice.hidden = true; });

function setFeedState(node, s, detail) {
  node.dataset.state = s;
  node.textContent = s;
  node.title = detail || '';
  // A feed stops for good only when the API refused it (e.g. the chat or
  // the application is gone): say why, in its words.
  if (s === 'stopped' && detail) notify(new Error(detail));
}

// ---- the application -------------------------------------------------------

ui.openApp.addEventListener('submit', (e) => {
  e.preventDefault();
  const token = ui.token.value.trim();
  if (token) openApp(token);
});

ui.createApp.addEventListener('submit', async (e) => {
  e.preventDefault();
  try {
    const { data } = await request('POST', paths.apps(), { body: { name: ui.newAppName.value } });
    ui.newAppName.value = '';
    showApp(data);
  } catch (err) {
    notify(err);
  }
});

ui.closeApp.addEventListener('click', () => {
  localStorage.removeItem(TOKEN_KEY);
  closeApp();
  ui.token.value = '';
  history.replaceState(null, '', location.pathname);
  ui.token.focus();
});

async function openApp(token, { restoring = false } = {}) {
  try {
    const { data } = await request('GET', paths.app(token));
    showApp(data);
  } catch (err) {
    if (restoring && err.status === 404) localStorage.removeItem(TOKEN_KEY);
    // The field shows the application that is open, not the one that failed.
    if (state.token) ui.token.value = state.token;
    notify(err);
  }
}

function showApp(app) {
  // A chat named in the URL belongs to the application that was open.
  if (state.token && state.token !== app.token) history.replaceState(null, '', location.pathname);
  closeApp();
  state.token = app.token;
  state.app = app;
  localStorage.setItem(TOKEN_KEY, app.token); // never in the page's URL
  ui.token.value = app.token;
  ui.appTitle.textContent = app.name || 'Unnamed application';
  ui.welcome.hidden = true;
  ui.sidebar.hidden = false;
  document.body.classList.add('has-app');
  const token = app.token;
  allows('DELETE', paths.message(token, 1, 1)).then((yes) => {
    if (state.token !== token) return;
    state.canDelete = yes;
    document.body.classList.toggle('can-delete', yes);
  });
  loadChats().then(() => {
    const n = chatInHash();
    if (n && state.token === token) openChat(n);
  });
  state.appFeed = new Feed({
    url: paths.appEvents(token),
    after: typeof app.revision === 'number' ? app.revision : null,
    names: ['chat.created', 'chat.updated', 'chat.deleted', 'application.deleted'],
    last: ['application.deleted'],
    onEvent: (ev) => {
      if (ev.event === 'application.deleted') appDeleted(token);
      else if (ev.event === 'chat.deleted') removeChat(ev.chat.number);
      else upsertChat(ev.chat);
    },
    onState: (s, detail) => setFeedState(ui.appFeedState, s, detail),
    check: () => request('GET', paths.app(token)),
    // The application is gone (deleted): the refusal says so.
    onRefused: (err) => { if (err.status === 404) forgetApp(token); },
  });
  state.countsTimer = setInterval(refreshCounts, COUNTS_EVERY);
}

// forgetApp closes the application, if it is still the open one, and
// forgets its token: it was deleted.
function forgetApp(token) {
  if (state.token !== token) return false;
  localStorage.removeItem(TOKEN_KEY);
  closeApp();
  ui.token.value = '';
  history.replaceState(null, '', location.pathname);
  return true;
}

// appDeleted handles application.deleted, the last event of every stream of
// a deleted application: it is closed and forgotten at once, and its feeds
// stop instead of reconnecting to be refused.
function appDeleted(token) {
  if (forgetApp(token)) notify(new Error('This application was deleted.'));
}

function closeApp() {
  closeChat();
  state.appFeed?.stop();
  state.appFeed = null;
  clearInterval(state.countsTimer);
  state.token = state.app = null;
  state.chats.clear();
  state.chatsCursor = '';
  state.chatsPages = 0;
  ui.chatList.replaceChildren();
  ui.moreChats.hidden = true;
  ui.sidebar.hidden = true;
  ui.welcome.hidden = false;
  document.body.classList.remove('has-app', 'has-chat', 'can-delete');
}

// ---- chats -----------------------------------------------------------------

async function loadChats() {
  const token = state.token;
  try {
    const q = new URLSearchParams({ limit: '100' });
    if (state.chatsCursor) q.set('cursor', state.chatsCursor);
    const { data } = await request('GET', `${paths.chats(token)}?${q}`);
    if (state.token !== token) return;
    data.data.forEach(upsertChat);
    state.chatsCursor = data.next_cursor || '';
    state.chatsPages++;
    ui.moreChats.hidden = !state.chatsCursor;
  } catch (err) {
    notify(err);
  }
}
ui.moreChats.addEventListener('click', loadChats);

// refreshCounts re-reads the listed pages of chats for their counts:
// messages_count moves with every create, and the application feed carries
// only chat creates and renames, as counts do not advance its revision. New
// chats come from the feed alone, which replays any it missed.
async function refreshCounts() {
  if (document.hidden || !state.token) return;
  const token = state.token;
  let cursor = '';
  try {
    for (let page = 0; page < state.chatsPages; page++) {
      const q = new URLSearchParams({ limit: '100' });
      if (cursor) q.set('cursor', cursor);
      const { data } = await request('GET', `${paths.chats(token)}?${q}`);
      if (state.token !== token) return;
      data.data.filter((c) => state.chats.has(c.number)).forEach(upsertChat);
      cursor = data.next_cursor;
      if (!cursor) break;
    }
  } catch {
    // The next refresh tries again; a feed's state already shows an outage.
  }
}

function chatName(c) {
  return c.name || `Chat ${c.number}`;
}

function upsertChat(c) {
  let entry = state.chats.get(c.number);
  if (!entry) {
    const button = el('button', { type: 'button', class: 'chat-link' });
    button.addEventListener('click', () => openChat(c.number));
    const li = el('li', { class: 'chat-item', 'data-testid': 'chat-item', 'data-number': String(c.number) }, button);
    entry = { chat: c, el: li, button };
    state.chats.set(c.number, entry);
    // Chats are numbered in creation order; keep the list in it.
    let next = null;
    for (const [n, other] of state.chats) if (n > c.number && (!next || n < Number(next.dataset.number))) next = other.el;
    ui.chatList.insertBefore(li, next);
  } else if (timeKey(c.updated_at) < timeKey(entry.chat.updated_at)) {
    // An older copy of the chat (a page read before a rename): keep the
    // newer name, take the count, which only grows between reads.
    c = { ...entry.chat, messages_count: Math.max(entry.chat.messages_count, c.messages_count) };
  }
  entry.chat = c;
  const count = el('span', { class: 'count', 'aria-label': `${c.messages_count} messages`, text: String(c.messages_count) });
  entry.button.replaceChildren(el('span', { class: 'chat-name', text: chatName(c) }), el('span', { class: 'chat-number', text: `#${c.number}` }), count);
  const open = state.chat?.number === c.number;
  entry.button.setAttribute('aria-current', open ? 'true' : 'false');
  if (open) ui.chatTitle.textContent = chatName(c);
}

// removeChat takes a deleted chat off the page; tell says so when nothing
// else has (a feed that stopped already showed the API's words).
function removeChat(number, tell = true) {
  state.chats.get(number)?.el.remove();
  state.chats.delete(number);
  if (state.chat?.number === number) {
    closeChat();
    history.replaceState(null, '', location.pathname);
    if (tell) notify(new Error(`Chat ${number} was deleted.`));
  }
}

ui.createChat.addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = state.token;
  try {
    const { status, data } = await request('POST', paths.chats(token), {
      body: { name: ui.newChatName.value }, headers: { 'Idempotency-Key': newKey() },
    });
    ui.newChatName.value = '';
    if (state.token !== token) return;
    upsertChat(data);
    openChat(data.number, { created: status === 202 });
  } catch (err) {
    notify(err);
  }
});

ui.rename.addEventListener('click', () => {
  ui.renameInput.value = state.chat ? chatName(state.chats.get(state.chat.number)?.chat ?? { number: state.chat.number }) : '';
  ui.renameForm.hidden = false;
  ui.rename.hidden = true;
  ui.chatTitle.hidden = true;
  ui.renameInput.focus();
  ui.renameInput.select();
});
function endRename() {
  ui.renameForm.hidden = true;
  ui.rename.hidden = false;
  ui.chatTitle.hidden = false;
}
ui.renameCancel.addEventListener('click', () => { endRename(); ui.rename.focus(); });
ui.renameInput.addEventListener('keydown', (e) => { if (e.key === 'Escape') { endRename(); ui.rename.focus(); } });
ui.renameForm.addEventListener('submit', async (e) => {
  e.preventDefault();
  const c = state.chat;
  if (!c) return;
  try {
    const { data } = await request('PATCH', paths.chat(state.token, c.number), { body: { name: ui.renameInput.value } });
    upsertChat(data);
    endRename();
    ui.rename.focus();
  } catch (err) {
    notify(err);
  }
});

// ---- one chat --------------------------------------------------------------

function chatInHash() {
  const m = /^#chat-(\d+)$/.exec(location.hash);
  return m ? Number(m[1]) : 0;
}

addEventListener('hashchange', () => {
  const n = chatInHash();
  if (state.token && n && n !== state.chat?.number) openChat(n);
  if (!n && state.chat) closeChat();
});

ui.back.addEventListener('click', () => {
  const n = state.chat?.number;
  closeChat();
  history.replaceState(null, '', location.pathname);
  state.chats.get(n)?.button.focus();
});

function closeChat() {
  const c = state.chat;
  if (!c) return;
  c.feed?.stop();
  clearTimeout(c.countTimer);
  state.chat = null;
  ui.chat.hidden = true;
  ui.messageList.replaceChildren();
  closeResults();
  endRename();
  document.body.classList.remove('has-chat');
  for (const { button } of state.chats.values()) button.setAttribute('aria-current', 'false');
}

// openChat shows a chat's newest messages, then follows its feed from the
// revision read before them, so nothing committed in between is missed.
async function openChat(number, { created = false } = {}) {
  closeChat();
  const token = state.token;
  const c = {
    number,
    messages: new Map(), // number → {m, el, state}
    deleted: new Set(), // numbers deleted while open, never shown again
    // below: every message numbered above it is on the page (or arrives by
    // the feed); older ones are loaded by loadOlder. null until loaded.
    below: null,
    loading: false,
    feed: null,
    countTimer: 0,
  };
  state.chat = c;
  history.replaceState(null, '', `#chat-${number}`);
  ui.chat.hidden = false;
  ui.older.hidden = false;
  ui.start.hidden = true;
  document.body.classList.add('has-chat');
  setFeedState(ui.chatState, 'connecting');
  for (const [n, { button }] of state.chats) button.setAttribute('aria-current', n === number ? 'true' : 'false');
  const known = state.chats.get(number)?.chat;
  ui.chatTitle.textContent = known ? chatName(known) : `Chat ${number}`;
  try {
    const chat = await readChat(token, number, created);
    if (state.chat !== c) return;
    upsertChat(chat);
    await loadNewest(c, chat.messages_count);
    if (state.chat !== c) return;
    c.feed = new Feed({
      url: paths.chatEvents(token, number),
      after: typeof chat.revision === 'number' ? chat.revision : null,
      names: ['message.created', 'message.updated', 'message.deleted', 'chat.deleted', 'application.deleted'],
      last: ['chat.deleted', 'application.deleted'],
      onEvent: (ev) => (ev.event === 'application.deleted' ? appDeleted(token) : applyChatEvent(c, ev)),
      onState: (s, detail) => { if (state.chat === c) setFeedState(ui.chatState, s, detail); },
      check: () => request('GET', paths.chat(token, number)),
      onRefused: (err) => { if (err.status === 404 && state.token === token) removeChat(number, false); },
    });
    await fillScreen(c);
  } catch (err) {
    if (state.chat === c) setFeedState(ui.chatState, 'stopped', err.message); // which shows the error
  }
}

// readChat reads a chat. One just created through a dispatcher that answered
// 202 (production) is readable once a worker stored it, shortly after.
async function readChat(token, number, created) {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await request('GET', paths.chat(token, number))).data;
    } catch (err) {
      if (!created || err.status !== 404 || attempt === 20) throw err;
      await sleep(250);
    }
  }
}

// loadNewest reads the newest page. The list API pages ascending by number
// after a cursor; numbers are unique and positive, so the highest is at least
// messages_count, and the newest page starts at or after number
// messages_count - PAGE. It walks forward from there to the end (one or two
// requests, more only where many numbers above that point survive after
// older messages were deleted) and keeps the newest PAGE.
async function loadNewest(c, count) {
  let below = Math.max(0, count - PAGE);
  let cursor = cursorAfter(below);
  const got = [];
  for (;;) {
    const q = new URLSearchParams({ limit: '100' });
    if (cursor) q.set('cursor', cursor);
    const { data } = await request('GET', `${paths.messages(state.token, c.number)}?${q}`);
    if (state.chat !== c) return;
    got.push(...data.data);
    if (!data.next_cursor) break;
    cursor = data.next_cursor;
  }
  const keep = got.length > PAGE ? got.slice(-PAGE) : got;
  if (keep.length < got.length) below = keep[0].number - 1;
  c.below = below;
  for (const m of keep) upsertMessage(c, m, { page: true });
  showStart(c);
  scrollToEnd();
}

// loadOlder reads the PAGE numbers below c.below: pages after
// max(0, below - PAGE), followed until they pass below (a page may end
// early, by bytes), hold every message numbered up to below; anything above
// below they return is on the page already. A range with no message left
// (all deleted) moves on to the next.
async function loadOlder(c) {
  if (c.loading || c.below === null || c.below === 0) return;
  c.loading = true;
  try {
    let found = 0;
    for (let tries = 0; found === 0 && c.below > 0 && tries < 20; tries++) {
      const lo = Math.max(0, c.below - PAGE);
      const hi = c.below;
      let cursor = cursorAfter(lo);
      const older = [];
      for (;;) {
        const q = new URLSearchParams({ limit: String(PAGE) });
        if (cursor) q.set('cursor', cursor);
        const { data } = await request('GET', `${paths.messages(state.token, c.number)}?${q}`);
        if (state.chat !== c) return;
        older.push(...data.data.filter((m) => m.number > lo && m.number <= hi));
        const last = data.data[data.data.length - 1];
        if (!data.next_cursor || !last || last.number >= hi) break;
        cursor = data.next_cursor;
      }
      const fromEnd = ui.scroller.scrollHeight - ui.scroller.scrollTop;
      for (const m of older) upsertMessage(c, m, { page: true });
      found += older.length;
      c.below = lo;
      ui.scroller.scrollTop = ui.scroller.scrollHeight - fromEnd; // keep what the reader sees in place
    }
    showStart(c);
  } catch (err) {
    notify(err);
  } finally {
    c.loading = false;
  }
}

// fillScreen loads older pages until the list can scroll (or has them all),
// since a list that cannot scroll cannot be scrolled up to load more.
async function fillScreen(c) {
  while (state.chat === c && c.below > 0 && ui.scroller.scrollHeight <= ui.scroller.clientHeight + 40) {
    await loadOlder(c);
  }
}

function showStart(c) {
  ui.start.hidden = c.below !== 0;
  ui.older.hidden = c.below === 0;
}

ui.older.addEventListener('click', () => state.chat && loadOlder(state.chat));
ui.scroller.addEventListener('scroll', () => {
  if (state.chat && ui.scroller.scrollTop < 150) loadOlder(state.chat);
}, { passive: true });

// The list sticks to its newest message while the reader is there, also when
// the space it has changes (search results opening, the composer growing).
let stickToEnd = true;
ui.scroller.addEventListener('scroll', () => { stickToEnd = nearEnd(); }, { passive: true });
new ResizeObserver(() => { if (stickToEnd) scrollToEnd(); }).observe(ui.scroller);

function nearEnd() {
  return ui.scroller.scrollHeight - ui.scroller.scrollTop - ui.scroller.clientHeight < 120;
}
function scrollToEnd() {
  ui.scroller.scrollTop = ui.scroller.scrollHeight;
  stickToEnd = true;
}

function applyChatEvent(c, ev) {
  if (state.chat !== c) return;
  switch (ev.event) {
    case 'message.created':
    case 'message.updated': {
      const end = nearEnd();
      upsertMessage(c, ev.message, { stored: true });
      if (end) scrollToEnd();
      if (ev.event === 'message.created') refreshChatSoon(c);
      break;
    }
    case 'message.deleted':
      removeMessage(c, ev.message.number);
      refreshChatSoon(c);
      break;
    case 'chat.deleted':
      removeChat(c.number);
      break;
  }
}

// refreshChatSoon re-reads the open chat's count shortly after its messages
// change, once for a burst of them.
function refreshChatSoon(c) {
  if (c.countTimer) return;
  c.countTimer = setTimeout(async () => {
    c.countTimer = 0;
    try {
      const { data } = await request('GET', paths.chat(state.token, c.number));
      if (state.chat === c) upsertChat(data);
    } catch {
      // counts are refreshed again by refreshCounts
    }
  }, 300);
}

// upsertMessage applies a message as the upsert, keyed by its number, that
// the feed's guarantee asks of clients. A page (page: true) may add numbers at
// or below c.below; a feed event or a send may not, as those are loaded by
// loadOlder, in order, when the reader scrolls back. stored says the message
// is known committed (a feed event, or a create answered 201).
function upsertMessage(c, m, { page = false, stored = page, own = false } = {}) {
  if (c.deleted.has(m.number)) return null;
  if (!page && c.below !== null && m.number <= c.below) return null;
  let e = c.messages.get(m.number);
  if (e) {
    if (timeKey(m.updated_at) >= timeKey(e.m.updated_at)) e.m = m;
    if (stored) e.state = 'stored';
    if (own) e.own = true;
  } else {
    e = { m, state: stored ? 'stored' : 'accepted', own, el: null };
    e.el = messageElement(c, e);
    c.messages.set(m.number, e);
    let next = null; // the first shown message numbered above m
    for (let node = ui.messageList.lastElementChild; node; node = node.previousElementSibling) {
      if (!node.dataset.number) { next = node; continue; } // pending sends stay last
      if (Number(node.dataset.number) > m.number) next = node;
      else break;
    }
    ui.messageList.insertBefore(e.el, next);
  }
  renderMessage(e);
  return e;
}

function removeMessage(c, number) {
  c.deleted.add(number);
  const e = c.messages.get(number);
  if (e) {
    e.el.remove();
    c.messages.delete(number);
  }
}

function formatTime(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '' : d.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit' });
}

function messageElement(c, e) {
  const li = el('li', { class: 'message', 'data-testid': 'message-item', 'data-number': String(e.m.number) });
  li.addEventListener('click', (ev) => {
    const action = ev.target.closest('button')?.dataset.action;
    if (action === 'edit') startEdit(c, e);
    if (action === 'delete') confirmDelete(c, e);
  });
  return li;
}

function renderMessage(e) {
  if (e.editing) return;
  const { m } = e;
  e.el.dataset.state = e.state;
  const meta = el('div', { class: 'meta' },
    el('span', { class: 'num', text: `#${m.number}` }),
    el('time', { dateTime: m.created_at, title: new Date(m.created_at).toLocaleString(), text: formatTime(m.created_at) }));
  if (timeKey(m.updated_at) > timeKey(m.created_at)) meta.append(el('span', { class: 'edited', title: `edited ${new Date(m.updated_at).toLocaleString()}`, text: 'edited' }));
  if (e.own) meta.append(el('span', { class: 'delivery', text: e.state === 'stored' ? 'stored' : 'accepted, storing…' }));
  meta.append(el('span', { class: 'actions' },
    el('button', { type: 'button', class: 'quiet small', 'data-action': 'edit', 'aria-label': `Edit message ${m.number}`, text: 'Edit' }),
    el('button', { type: 'button', class: 'quiet small delete-action', 'data-action': 'delete', 'aria-label': `Delete message ${m.number}`, text: 'Delete' })));
  e.el.replaceChildren(meta, el('p', { class: 'body', text: m.body }));
}

function startEdit(c, e) {
  e.editing = true;
  const area = el('textarea', { class: 'edit-area', value: e.m.body, rows: Math.min(8, e.m.body.split('\n').length + 1), id: `edit-${e.m.number}` });
  const error = el('p', { class: 'inline-error', role: 'alert' });
  const done = () => { e.editing = false; renderMessage(e); e.el.querySelector('[data-action=edit]')?.focus(); };
  const form = el('form', { class: 'edit-form' },
    el('label', { for: area.id, class: 'visually-hidden', text: `Edit message ${e.m.number}` }), area,
    el('div', { class: 'row' }, el('button', { type: 'submit', text: 'Save' }), el('button', { type: 'button', class: 'quiet', text: 'Cancel', onclick: done })),
    error);
  area.addEventListener('keydown', (ev) => {
    if (ev.key === 'Escape') done();
    if (ev.key === 'Enter' && (ev.ctrlKey || ev.metaKey)) form.requestSubmit();
  });
  form.addEventListener('submit', async (ev) => {
    ev.preventDefault();
    try {
      const { data } = await request('PATCH', paths.message(state.token, c.number, e.m.number), { body: { body: area.value } });
      e.editing = false;
      upsertMessage(c, data, { stored: true });
      e.el.querySelector('[data-action=edit]')?.focus();
    } catch (err) {
      error.textContent = err.message;
    }
  });
  e.el.replaceChildren(form);
  area.focus();
}

function confirmDelete(c, e) {
  if (!state.canDelete) return;
  const actions = e.el.querySelector('.actions');
  const cancel = el('button', { type: 'button', class: 'quiet small', text: 'Keep' });
  const yes = el('button', { type: 'button', class: 'small danger', text: `Delete #${e.m.number}` });
  const error = el('span', { class: 'inline-error', role: 'alert' });
  cancel.addEventListener('click', () => renderMessage(e));
  yes.addEventListener('click', async () => {
    try {
      await request('DELETE', paths.message(state.token, c.number, e.m.number));
      removeMessage(c, e.m.number);
      refreshChatSoon(c);
    } catch (err) {
      error.textContent = err.message;
    }
  });
  actions.replaceChildren(el('span', { text: 'Delete this message?' }), yes, cancel, error);
  yes.focus();
}

// ---- sending: pending → stored, retried with the same key ------------------

ui.composer.addEventListener('keydown', (e) => {
  if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
    e.preventDefault();
    ui.composerForm.requestSubmit();
  }
});
ui.composer.addEventListener('input', autoGrow);
function autoGrow() {
  ui.composer.style.height = 'auto';
  ui.composer.style.height = `${Math.min(ui.composer.scrollHeight, 160)}px`;
}

ui.composerForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const c = state.chat;
  const body = ui.composer.value;
  if (!c || body.trim() === '') return;
  ui.composer.value = '';
  autoGrow();
  send(c, { key: newKey(), body, attempt: 0 });
});

// send posts one message with its Idempotency-Key. Whatever goes wrong on
// the way (no answer in time, 429, 5xx), it is retried with the same key,
// which the server answers with the message the key created, never a second
// one. Other refusals (e.g. 422) are shown, in the API's words.
async function send(c, p) {
  if (!p.el) {
    p.el = el('li', { class: 'message pending', 'data-testid': 'message-item', 'data-state': 'pending' });
    ui.messageList.append(p.el);
    scrollToEnd();
  }
  for (;;) {
    p.attempt++;
    renderPending(c, p, p.attempt === 1 ? 'sending…' : `retrying (attempt ${p.attempt})…`);
    try {
      const { status, data } = await request('POST', paths.messages(state.token, c.number), {
        body: { body: p.body }, headers: { 'Idempotency-Key': p.key }, timeout: SEND_TIMEOUT,
      });
      p.el.remove();
      if (state.chat !== c) return;
      const end = nearEnd();
      upsertMessage(c, data, { stored: status === 201, own: true });
      if (end) scrollToEnd();
      return;
    } catch (err) {
      if (!(err instanceof APIError)) throw err;
      if (err.retryable && p.attempt < SEND_ATTEMPTS) {
        const wait = Math.max(err.retryAfter * 1000, 500 * 2 ** (p.attempt - 1));
        renderPending(c, p, `${err.message} Retrying in ${Math.ceil(wait / 1000)} s…`);
        await sleep(wait);
        continue;
      }
      renderPending(c, p, err.message, true);
      return;
    }
  }
}

function renderPending(c, p, note, failed = false) {
  p.el.dataset.state = failed ? 'failed' : 'pending';
  const meta = el('div', { class: 'meta' }, el('span', { class: 'delivery', text: failed ? 'not sent' : 'pending' }));
  const parts = [meta, el('p', { class: 'body', text: p.body }), el('p', { class: failed ? 'inline-error' : 'note', text: note })];
  if (failed) {
    const again = el('button', { type: 'button', class: 'small', text: 'Send again' });
    const drop = el('button', { type: 'button', class: 'quiet small', text: 'Discard' });
    again.addEventListener('click', () => { p.attempt = 0; send(c, p); });
    drop.addEventListener('click', () => p.el.remove());
    parts.push(el('div', { class: 'actions shown' }, again, drop));
  }
  p.el.replaceChildren(...parts);
}

// ---- search ----------------------------------------------------------------

const search = { q: '', terms: [], cursor: '', chat: null };

ui.searchForm.addEventListener('submit', (e) => {
  e.preventDefault();
  const q = ui.search.value.trim();
  if (!q) { closeResults(); return; }
  Object.assign(search, { q, terms: parseTerms(q), cursor: '', chat: state.chat });
  ui.resultList.replaceChildren();
  searchPage();
});
ui.search.addEventListener('keydown', (e) => {
  if (e.key === 'Escape') { ui.search.value = ''; closeResults(); }
});
ui.resultsClose.addEventListener('click', () => { closeResults(); ui.search.focus(); });
ui.moreResults.addEventListener('click', () => searchPage());

async function searchPage() {
  const c = search.chat;
  if (!c) return;
  const q = new URLSearchParams({ q: search.q, limit: '20' });
  if (search.cursor) q.set('cursor', search.cursor);
  try {
    const { data } = await request('GET', `${paths.search(state.token, c.number)}?${q}`);
    if (state.chat !== c) return;
    for (const m of data.data) {
      ui.resultList.append(el('li', { class: 'result', 'data-testid': 'search-result', 'data-number': String(m.number) },
        el('div', { class: 'meta' }, el('span', { class: 'num', text: `#${m.number}` }), el('time', { dateTime: m.created_at, text: formatTime(m.created_at) })),
        el('p', { class: 'body' }, highlighted(m.body, search.terms))));
    }
    search.cursor = data.next_cursor || '';
    const n = ui.resultList.childElementCount;
    ui.resultsTitle.textContent = n === 0 ? `No message matches “${search.q}”` : `${n}${search.cursor ? '+' : ''} ${n === 1 ? 'match' : 'matches'} for “${search.q}”`;
    ui.moreResults.hidden = !search.cursor;
    ui.results.hidden = false;
  } catch (err) {
    notify(err);
  }
}

function closeResults() {
  ui.results.hidden = true;
  ui.resultList.replaceChildren();
  search.chat = null;
}

// ---- start -----------------------------------------------------------------

const saved = localStorage.getItem(TOKEN_KEY);
if (saved) {
  ui.token.value = saved;
  openApp(saved, { restoring: true });
}

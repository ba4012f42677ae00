// accessgate console: sign-in with an access key, personal and
// organisation-wide access key lists with each key's usage limits, quota
// use and a 24-hour sparkline of its requests, a usage chart per key, the
// organisation's Usage page (totals and top keys), create / edit / rotate / delete dialogs, and the
// organisation's key policies. Plain DOM, no framework;
// every text from the server is inserted as text, never as markup.

const API_BASE = new URL('../api/v1/', document.baseURI);
const STORAGE_KEY = 'accessgate.console.credentials';
const ACCESS_ID_RE = /^su[0-9A-Za-z]{12}$/;
const ACCESS_KEY_RE = /^[0-9A-Za-z]{64}$/;
const MAX_ORIGINS = 20;
const MAX_LABEL = 128;
// Bounds of both key policies, in days, as the API enforces them.
const MAX_POLICY_DAYS = 365;
// Bounds of a key's limits, as the API enforces them.
const MAX_RATE_REQUESTS = 1e9;
const MAX_CONCURRENCY = 1e6;
const MAX_QUOTA = 1e12;

// Capabilities the management API checks (holding any one of a set is
// enough): reading and writing one's own keys, every key of the
// organisation, and the policies.
const CAPS_OWN_READ = ['createAccessKeys', 'managePersonalAccessKeys', 'viewPersonalAccessKeys', 'manageAccessKeys'];
const CAPS_OWN_WRITE = ['createAccessKeys', 'managePersonalAccessKeys', 'manageAccessKeys'];

// Page size of the organisation-wide list; ?pageSize=N overrides it.
const PAGE_SIZE = (() => {
  const n = Number.parseInt(new URLSearchParams(location.search).get('pageSize') ?? '', 10);
  return Number.isInteger(n) && n >= 1 && n <= 1000 ? n : 100;
})();

// ---------------------------------------------------------------- helpers

const $ = (sel, root = document) => root.querySelector(sel);
const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

/** Creates an element; props set attributes (text, class, dataset and on* are special). */
function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(props)) {
    if (v == null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c != null && c !== false) el.append(c instanceof Node ? c : String(c));
  }
  return el;
}

const dateFmt = new Intl.DateTimeFormat(undefined, { year: 'numeric', month: 'short', day: 'numeric' });
const timeFmt = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const fullFmt = new Intl.DateTimeFormat(undefined, { dateStyle: 'full', timeStyle: 'long' });
const relFmt = new Intl.RelativeTimeFormat(undefined, { numeric: 'auto' });

/** Renders an API time (or null) as a <time> with a relative hint. */
function timeCell(iso, never) {
  if (!iso) return h('span', { class: 'muted', text: never });
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return h('span', { text: iso });
  return h('time', { datetime: iso, title: fullFmt.format(d) },
    h('span', { class: 'date', text: dateFmt.format(d) }),
    h('span', { class: 'time', text: `${timeFmt.format(d)} · ${relative(d)}` }));
}

function relative(d) {
  const diff = d.getTime() - Date.now();
  const abs = Math.abs(diff);
  const units = [['day', 86400e3], ['hour', 3600e3], ['minute', 60e3]];
  for (const [unit, ms] of units) {
    if (abs >= ms) return relFmt.format(Math.round(diff / ms), unit);
  }
  return relFmt.format(0, 'minute');
}

/** Splits a textarea's text into origins, one per line or comma. */
function parseOrigins(text) {
  return text.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
}

const numFmt = new Intl.NumberFormat();

/** A count with its noun: "1 key", "1,000 requests". */
function plural(n, one, many) {
  return `${numFmt.format(n)} ${n === 1 ? one : many}`;
}

// ------------------------------------------------------------- API client

/** An API answer that was not a success, or a failed request. */
class APIError extends Error {
  constructor(status, problems, errorId) {
    super(problems.map((p) => p.message).join(' '));
    this.status = status;
    this.problems = problems;
    this.errorId = errorId;
  }
}

const state = {
  creds: null,
  me: null,
  caps: null,
  // The API refused to list the key's own keys: it holds none of
  // CAPS_OWN_READ, and its capabilities cannot be read.
  keysRefused: false,
  tab: 'personal',
  lists: {
    personal: { keys: [], loaded: false, sort: { key: 'createdAt', dir: 'desc' } },
    org: { keys: [], next: null, loaded: false, sort: { key: 'createdAt', dir: 'desc' } },
  },
  policiesLoaded: false,
};

/**
 * Calls the management API with the signed-in credentials. Resolves with
 * the decoded JSON (null for 204); rejects with an APIError that carries
 * the messages and error id of body A ({status,id,code,message}) or body B
 * ({id, errors:[{code,message}]}).
 */
async function api(method, path, body, creds = state.creds) {
  const headers = {
    Accept: 'application/json',
    Authorization: `Basic ${btoa(`${creds.accessId}:${creds.accessKey}`)}`,
  };
  const init = { method, headers, credentials: 'omit', cache: 'no-store', redirect: 'error' };
  if (body !== undefined) {
    headers['Content-Type'] = 'application/json';
    init.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(new URL(path, API_BASE), init);
  } catch {
    throw new APIError(0, [{ code: 'network', message: 'The management API could not be reached. Check the connection and try again.' }], '');
  }
  const text = await res.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (res.ok) return data;
  throw errorFromResponse(res, data);
}

function errorFromResponse(res, data) {
  let problems = [];
  if (data && Array.isArray(data.errors)) {
    problems = data.errors.map((e) => ({ code: String(e?.code ?? ''), message: String(e?.message ?? '') }));
  } else if (data && typeof data.message === 'string') {
    problems = [{ code: String(data.code ?? ''), message: data.message }];
  }
  problems = problems.filter((p) => p.message || p.code);
  if (problems.length === 0) {
    problems = [{ code: '', message: `The server answered ${res.status}${res.statusText ? ` ${res.statusText}` : ''}.` }];
  }
  const id = data && typeof data.id === 'string' ? data.id : '';
  return new APIError(res.status, problems, id);
}

/** Fills a banner with an error: what failed, each message, the error id. */
function showError(banner, err, what) {
  banner.replaceChildren();
  if (!(err instanceof APIError)) {
    err = new APIError(0, [{ code: '', message: String(err?.message ?? err) }], '');
  }
  banner.append(h('p', { class: 'banner-title', text: what }));
  if (err.problems.length === 1) {
    banner.append(h('p', { class: 'error-message', text: err.problems[0].message }));
  } else {
    banner.append(h('ul', { class: 'error-list' }, err.problems.map((p) => h('li', { class: 'error-message', text: p.message }))));
  }
  const hint = errorHint(err);
  if (hint) banner.append(h('p', { class: 'error-hint', text: hint }));
  const meta = [];
  if (err.status) meta.push(`HTTP ${err.status}`);
  const codes = err.problems.map((p) => p.code).filter(Boolean);
  if (codes.length) meta.push(`code ${codes.join(', ')}`);
  const details = h('p', { class: 'error-meta' });
  if (err.errorId) {
    details.append('Error ID: ', h('code', { class: 'error-id', text: err.errorId }));
    if (meta.length) details.append(` (${meta.join('; ')})`);
  } else if (meta.length) {
    details.append(meta.join('; '));
  }
  if (details.childNodes.length) banner.append(details);
  banner.hidden = false;
}

function errorHint(err) {
  const msg = err.problems.map((p) => p.message).join(' ');
  if (err.status === 403 && /origin is not allowlisted/i.test(msg)) {
    return `The key you signed in with does not allowlist this console's origin (${location.origin}). Add it to that key's allowlist, or sign in with another key.`;
  }
  if (err.status === 429) return 'Wait a minute before trying again.';
  if (err.status === 503) return 'The key store is unavailable; try again shortly.';
  return '';
}

function clearError(banner) {
  banner.hidden = true;
  banner.replaceChildren();
}

// ------------------------------------------------------------ credentials

function loadCreds() {
  try {
    const v = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
    if (v && ACCESS_ID_RE.test(v.accessId) && ACCESS_KEY_RE.test(v.accessKey)) return v;
  } catch {
    // unreadable: sign in again
  }
  sessionStorage.removeItem(STORAGE_KEY);
  return null;
}

function saveCreds(creds) {
  state.creds = creds;
  sessionStorage.setItem(STORAGE_KEY, JSON.stringify(creds));
}

function resetState() {
  state.creds = null;
  state.me = null;
  state.caps = null;
  state.keysRefused = false;
  state.lists.personal.keys = [];
  state.lists.personal.loaded = false;
  state.lists.org.keys = [];
  state.lists.org.next = null;
  state.lists.org.loaded = false;
  state.policiesLoaded = false;
}

// --------------------------------------------------------------- sign-in

const signinView = $('#signin-view');
const appView = $('#app-view');
const signinForm = $('#signin-form');
const signinError = $('#signin-error');
const appError = $('#app-error');
const statusRegion = $('#status');

function setFieldError(input, message) {
  const el = document.getElementById(`${input.id}-error`);
  if (message) {
    input.setAttribute('aria-invalid', 'true');
    el.textContent = message;
    el.hidden = false;
  } else {
    input.removeAttribute('aria-invalid');
    el.textContent = '';
    el.hidden = true;
  }
}

signinForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  clearError(signinError);
  const idInput = $('#signin-access-id');
  const keyInput = $('#signin-access-key');
  const accessId = idInput.value.trim();
  const accessKey = keyInput.value.trim();
  let firstBad = null;
  const idProblem = !accessId ? 'Enter your Access ID.'
    : ACCESS_ID_RE.test(accessId) ? '' : 'An Access ID is 14 letters and digits starting with "su".';
  const keyProblem = !accessKey ? 'Enter your Access Key.'
    : ACCESS_KEY_RE.test(accessKey) ? '' : 'An Access Key is 64 letters and digits.';
  setFieldError(idInput, idProblem);
  setFieldError(keyInput, keyProblem);
  if (idProblem) firstBad = idInput;
  else if (keyProblem) firstBad = keyInput;
  if (firstBad) {
    firstBad.focus();
    return;
  }
  const button = $('#signin-submit');
  button.disabled = true;
  button.textContent = 'Signing in…';
  const creds = { accessId, accessKey };
  try {
    const res = await api('GET', 'accessKeys/personal', undefined, creds);
    saveCreds(creds);
    learnCaps(res?.data ?? []);
    state.lists.personal.keys = res?.data ?? [];
    state.lists.personal.loaded = true;
    keyInput.value = '';
    enterApp(true);
  } catch (err) {
    if (isCapabilityRefusal(err)) {
      // Valid credentials that may not list their own keys: sign in and
      // show only what such a key may still use.
      saveCreds(creds);
      state.keysRefused = true;
      keyInput.value = '';
      enterApp(true);
      return;
    }
    showError(signinError, err, 'Sign-in failed.');
    signinError.focus();
  } finally {
    button.disabled = false;
    button.textContent = 'Sign in';
  }
});

/** Works out what the signed-in key may do from its own row. */
function learnCaps(keys) {
  const me = keys.find((k) => k.id === state.creds.accessId);
  state.me = me ?? null;
  state.caps = me ? new Set(me.effectiveScopes ?? []) : null;
  state.keysRefused = false;
}

/** Reports whether err is a 403 for a missing capability (not a refused origin). */
function isCapabilityRefusal(err) {
  return err instanceof APIError && err.status === 403
    && !/origin is not allowlisted/i.test(err.message);
}

/**
 * Reports whether the signed-in key holds any of caps. While its
 * capabilities are unknown the API decides; a key refused its own keys
 * holds none of the key capabilities.
 */
function can(...caps) {
  if (state.keysRefused && caps.some((c) => CAPS_OWN_READ.includes(c))) return false;
  return state.caps === null || caps.some((c) => state.caps.has(c));
}

const canReadOwn = () => can(...CAPS_OWN_READ);
const canWriteOwn = () => can(...CAPS_OWN_WRITE);
const canManageKeys = () => can('manageAccessKeys');
// Any key may read the policies; a key whose capabilities are unknown sees
// them and the API decides on a change.
const canPolicies = () => (state.caps === null ? true : state.caps.has('manageOrgSettings'));

/**
 * Shows the tabs and buttons the signed-in key may use, says what it may
 * not do, and leaves a tab that went away. Any key may read the policies,
 * so a key always has a tab.
 */
function updateTabs() {
  $('#tab-personal').hidden = !canReadOwn();
  $('#tab-org').hidden = !canManageKeys();
  $('#tab-usage').hidden = !canManageKeys();
  $('#tab-policies').hidden = !canPolicies();
  for (const b of $$('[data-action="create"]')) b.hidden = !canWriteOwn();
  const notice = $('#app-notice');
  if (state.keysRefused) {
    notice.textContent = 'This access key may not view or manage access keys: it lacks createAccessKeys, managePersonalAccessKeys, viewPersonalAccessKeys and manageAccessKeys. It may only read the policies below; changing them needs manageOrgSettings. Sign in with another key to manage keys.';
  } else if (!canWriteOwn()) {
    notice.textContent = 'This access key may view its owner\'s keys but not create or change them: that needs createAccessKeys or managePersonalAccessKeys.';
  }
  notice.hidden = !(state.keysRefused || !canWriteOwn());
  for (const n of tabNames) {
    if ($(`#tab-${n}`).hidden) $(`#panel-${n}`).hidden = true;
  }
  if (state.tab && $(`#tab-${state.tab}`).hidden) selectTab(visibleTabs()[0], { focus: false });
}

function showSignin(message) {
  resetState();
  sessionStorage.removeItem(STORAGE_KEY);
  closeAllDialogs();
  appView.hidden = true;
  $('#session').hidden = true;
  signinView.hidden = false;
  clearError(appError);
  statusRegion.textContent = '';
  $('#signin-access-key').value = '';
  document.title = 'Sign in · accessgate console';
  if (message) {
    showError(signinError, message.err, message.what);
  } else {
    clearError(signinError);
  }
  $('#signin-access-id').focus();
}

$('#sign-out').addEventListener('click', () => {
  showSignin(null);
  announce('Signed out.');
});

function renderSession() {
  $('#session-id').textContent = state.creds.accessId;
  $('#session-owner').textContent = state.me?.ownerId ? ` (owner ${state.me.ownerId})` : '';
  $('#session').hidden = false;
}

function enterApp(fresh) {
  signinView.hidden = true;
  appView.hidden = false;
  clearError(signinError);
  renderSession();
  state.tab = null;
  updateTabs();
  const tabs = visibleTabs();
  const wanted = location.hash.replace(/^#/, '');
  const tab = tabs.includes(wanted) ? wanted : tabs[0];
  selectTab(tab, { focus: false });
  if (fresh) $(`#${tab}-title`).focus();
}

/** Handles credentials that stopped working while signed in. */
function handleAuthLost(err) {
  if (err instanceof APIError && err.status === 401) {
    showSignin({ err, what: 'You were signed out: the server no longer accepts the key you signed in with.' });
    return true;
  }
  return false;
}

// ------------------------------------------------------------------- tabs

const tabNames = ['personal', 'org', 'usage', 'policies'];

function visibleTabs() {
  return tabNames.filter((n) => !$(`#tab-${n}`).hidden);
}

function selectTab(name, { focus = true } = {}) {
  state.tab = name;
  for (const n of tabNames) {
    const tab = $(`#tab-${n}`);
    const on = n === name;
    tab.setAttribute('aria-selected', String(on));
    tab.tabIndex = on ? 0 : -1;
    $(`#panel-${n}`).hidden = !on;
  }
  if (focus) $(`#tab-${name}`).focus();
  clearError(appError);
  announce('');
  history.replaceState(null, '', `#${name}`);
  const titles = { personal: 'Personal Access Keys', org: 'Access Keys', usage: 'Usage', policies: 'Policies' };
  document.title = `${titles[name]} · accessgate console`;
  if (name === 'policies') loadPolicies();
  else if (name === 'usage') initUsagePage();
  else if (state.lists[name].loaded) renderList(name);
  else loadList(name);
}

$('#tablist').addEventListener('click', (ev) => {
  const tab = ev.target.closest('[role="tab"]');
  if (tab) selectTab(tab.id.replace('tab-', ''));
});

$('#tablist').addEventListener('keydown', (ev) => {
  const tabs = visibleTabs();
  const i = tabs.indexOf(state.tab);
  let next = null;
  if (ev.key === 'ArrowRight') next = tabs[(i + 1) % tabs.length];
  else if (ev.key === 'ArrowLeft') next = tabs[(i - 1 + tabs.length) % tabs.length];
  else if (ev.key === 'Home') next = tabs[0];
  else if (ev.key === 'End') next = tabs[tabs.length - 1];
  if (next) {
    ev.preventDefault();
    selectTab(next);
  }
});

// ------------------------------------------------------------------ lists

function listContainer(name) {
  return $(`[data-list="${name}"]`);
}

async function loadList(name, { keepFocus = null } = {}) {
  const list = state.lists[name];
  const box = listContainer(name);
  box.setAttribute('aria-busy', 'true');
  if (!list.loaded) box.replaceChildren(h('p', { class: 'muted loading', text: 'Loading access keys…' }));
  try {
    if (name === 'personal') {
      const res = await api('GET', 'accessKeys/personal');
      list.keys = res?.data ?? [];
      if (state.creds) {
        learnCaps(list.keys);
        renderSession();
        updateTabs();
      }
    } else {
      const limit = Math.min(1000, Math.max(PAGE_SIZE, list.loaded ? list.keys.length : 0));
      const res = await api('GET', `accessKeys?limit=${limit}`);
      list.keys = res?.data ?? [];
      list.next = res?.next ?? null;
    }
    list.loaded = true;
    renderList(name);
    if (keepFocus) restoreFocus(keepFocus);
  } catch (err) {
    if (handleAuthLost(err)) return;
    if (name === 'personal' && state.creds && isCapabilityRefusal(err)) {
      state.keysRefused = true;
      box.replaceChildren();
      updateTabs();
      return;
    }
    box.replaceChildren(h('p', { class: 'muted', text: 'The keys could not be loaded.' }));
    showError(appError, err, 'Loading access keys failed.');
  } finally {
    box.removeAttribute('aria-busy');
  }
}

$('#org-more').addEventListener('click', async (ev) => {
  const list = state.lists.org;
  const button = ev.currentTarget;
  if (!list.next) return;
  button.disabled = true;
  try {
    const res = await api('GET', `accessKeys?limit=${PAGE_SIZE}&token=${encodeURIComponent(list.next)}`);
    const seen = new Set(list.keys.map((k) => k.id));
    const more = (res?.data ?? []).filter((k) => !seen.has(k.id));
    list.keys = list.keys.concat(more);
    list.next = res?.next ?? null;
    renderList('org');
    announce(`Loaded ${plural(more.length, 'more key', 'more keys')}; ${list.keys.length} shown.`);
    if (list.next) button.focus();
    else $('#org-title').focus();
  } catch (err) {
    if (!handleAuthLost(err)) showError(appError, err, 'Loading more access keys failed.');
  } finally {
    button.disabled = false;
  }
});

const sortable = {
  createdAt: { label: 'Created', never: -Infinity },
  lastUsed: { label: 'Last Used', never: -Infinity },
  expiresAt: { label: 'Expires At', never: Infinity },
};

function sortKeys(keys, { key, dir }) {
  const never = sortable[key].never;
  const value = (k) => (k[key] ? Date.parse(k[key]) : never);
  const sign = dir === 'asc' ? 1 : -1;
  return keys.slice().sort((a, b) => {
    const va = value(a);
    const vb = value(b);
    if (va !== vb) return va < vb ? -sign : sign;
    return (a.label ?? '').localeCompare(b.label ?? '') || a.id.localeCompare(b.id);
  });
}

/** The key's status: the API's status field, else derived from expiry and disabled. */
function statusOf(k) {
  if (k.status === 'active' || k.status === 'deactivated' || k.status === 'expired') return k.status;
  if (k.expiresAt && Date.parse(k.expiresAt) <= Date.now()) return 'expired';
  return k.disabled ? 'deactivated' : 'active';
}

const statusText = { active: 'Active', deactivated: 'Deactivated', expired: 'Expired' };

function renderList(name) {
  const list = state.lists[name];
  const box = listContainer(name);
  if (name === 'org') $('#org-more').hidden = !list.next;
  if (list.keys.length === 0) {
    box.replaceChildren(h('p', { class: 'empty', text: name === 'personal' ? 'You have no access keys yet.' : 'There are no access keys yet.' }));
    return;
  }
  const keys = sortKeys(list.keys, list.sort);
  const sortHeader = (key) => {
    const on = list.sort.key === key;
    const dirWord = list.sort.dir === 'asc' ? 'ascending' : 'descending';
    return h('th', { scope: 'col', class: 'col-sortable', 'aria-sort': on ? dirWord : null },
      h('button', { type: 'button', class: 'sort', dataset: { sort: key } },
        sortable[key].label,
        h('span', { class: `sort-icon${on ? ' on' : ''}`, 'aria-hidden': 'true', text: on ? (list.sort.dir === 'asc' ? '▲' : '▼') : '↕' })));
  };
  const head = h('tr', {},
    h('th', { scope: 'col', text: 'Name' }),
    h('th', { scope: 'col', text: 'Access ID' }),
    h('th', { scope: 'col', text: 'Status' }),
    h('th', { scope: 'col', text: 'Scopes' }),
    h('th', { scope: 'col', text: 'Allowlist' }),
    h('th', { scope: 'col', text: 'Limits' }),
    h('th', { scope: 'col', text: 'Requests (24 h)' }),
    sortHeader('createdAt'),
    sortHeader('lastUsed'),
    sortHeader('expiresAt'),
    h('th', { scope: 'col' }, h('span', { class: 'visually-hidden', text: 'Actions' })));
  const rows = keys.map((k) => keyRow(name, k));
  const sortDesc = `sorted by ${sortable[list.sort.key].label}, ${list.sort.dir === 'asc' ? 'ascending' : 'descending'}`;
  const title = name === 'personal' ? 'Personal Access Keys' : 'Access Keys';
  const table = h('table', { class: 'key-table' },
    h('caption', { class: 'visually-hidden', text: `${title}, ${plural(keys.length, 'key', 'keys')}, ${sortDesc}` }),
    h('thead', {}, head),
    h('tbody', {}, rows));
  box.replaceChildren(table);
}

function keyRow(name, k) {
  const status = statusOf(k);
  const mine = state.creds && k.id === state.creds.accessId;
  return h('tr', { dataset: { id: k.id, status, created: k.createdAt ?? '', lastUsed: k.lastUsed ?? '', expires: k.expiresAt ?? '' } },
    cell('Name', 'cell-name',
      h('span', { class: 'key-label', text: k.label || '(no name)' }),
      name === 'org' ? ownerLine(k) : null,
      mine ? h('span', { class: 'tag', text: 'signed in with this key' }) : null),
    cell('Access ID', null, h('code', { class: 'access-id', text: k.id })),
    cell('Status', null, h('span', { class: `badge badge-${status}`, text: statusText[status] ?? status })),
    cell('Scopes', null, scopesCell(k)),
    cell('Allowlist', null, allowlistCell(k)),
    cell('Limits', 'cell-limits', limitsCell(k)),
    cell('Requests (24 h)', 'cell-usage', usageCell(name, k)),
    cell('Created', null, timeCell(k.createdAt, 'Unknown')),
    cell('Last Used', null, timeCell(k.lastUsed, 'Never')),
    cell('Expires At', null, timeCell(k.expiresAt, 'Never')),
    h('td', { class: 'cell-actions' }, rowMenu(name, k)));
}

/** A table cell whose label is shown beside it when rows become cards. */
function cell(label, cls, ...children) {
  return h('td', { class: cls, dataset: { label } }, h('div', { class: 'cell-body' }, ...children));
}

function scopesCell(k) {
  const scopes = k.scopes ?? [];
  const effective = new Set(k.effectiveScopes ?? []);
  if (scopes.length === 0) {
    return h('span', { class: 'chip', title: "All of the owner's capabilities" }, 'Default');
  }
  const chip = (s) => {
    if (effective.has(s)) return h('li', { class: 'chip', text: s });
    return h('li', { class: 'chip chip-missing', title: 'The owner lacks this capability, so the key cannot use it' },
      h('span', { 'aria-hidden': 'true', text: '⚠\u00a0' }), s,
      h('span', { class: 'visually-hidden', text: ' (owner lacks this capability)' }));
  };
  const shown = scopes.slice(0, 4);
  const rest = scopes.slice(4);
  const ul = h('ul', { class: 'chips' }, shown.map(chip));
  if (rest.length === 0) return ul;
  const missingInRest = rest.some((s) => !effective.has(s));
  return h('div', {}, ul,
    h('details', { class: 'more-scopes' },
      h('summary', { text: `${rest.length} more${missingInRest ? ' (some not usable)' : ''}` }),
      h('ul', { class: 'chips' }, rest.map(chip))));
}

function allowlistCell(k) {
  const origins = k.corsHeaders ?? [];
  if (origins.length === 0) {
    return h('span', {},
      h('span', {
        class: 'muted no-origins',
        title: 'Every browser origin is refused: requests that carry an Origin header fail with 403. Requests without an Origin header (servers, scripts) are not affected.',
        text: 'No browser origins',
      }),
      h('span', { class: 'visually-hidden', text: ': requests with an Origin header are refused' }));
  }
  // A break opportunity after the scheme keeps the column narrow.
  return h('ul', { class: 'origins' }, origins.map((o) => {
    const i = o.indexOf('://');
    return i < 0 ? h('li', { text: o }) : h('li', {}, o.slice(0, i + 3), h('wbr'), o.slice(i + 3));
  }));
}

// ----------------------------------------------------------------- limits

// Rate periods the API accepts, in seconds: short and long names.
const ratePeriods = { 1: ['s', 'second'], 60: ['min', 'minute'], 3600: ['h', 'hour'] };

/** The burst of a rate, where 0 or absent means the rate itself. */
function burstOf(r) {
  return r.burst ? r.burst : r.requests;
}

/** A rate in short: "100/min", "4/s, burst 8". */
function rateShort(r) {
  const unit = ratePeriods[r.periodSeconds]?.[0] ?? `${r.periodSeconds}s`;
  const burst = burstOf(r);
  return `${numFmt.format(r.requests)}/${unit}${burst !== r.requests ? `, burst ${numFmt.format(burst)}` : ''}`;
}

/** A rate in words: "100 requests per minute, bursts of up to 200". */
function rateWords(r) {
  const unit = ratePeriods[r.periodSeconds]?.[1] ?? `${r.periodSeconds} seconds`;
  const burst = burstOf(r);
  return `${plural(r.requests, 'request', 'requests')} per ${unit}${burst !== r.requests ? `, bursts of up to ${numFmt.format(burst)}` : ''}`;
}

/**
 * The Limits cell: the key's own rate and concurrency limits in short
 * (with the same in words for screen readers), and its quota with how much
 * of it the current period has used; "-" when the key has none of its own.
 */
function limitsCell(k) {
  const short = [];
  const words = [];
  if (k.rateLimit) {
    short.push(rateShort(k.rateLimit));
    words.push(`rate ${rateWords(k.rateLimit)}`);
  }
  if (k.concurrencyLimit != null) {
    short.push(`${numFmt.format(k.concurrencyLimit)} conc`);
    words.push(`at most ${plural(k.concurrencyLimit, 'request', 'requests')} in flight`);
  }
  const parts = [];
  if (short.length) {
    parts.push(h('p', { class: 'limits-line', title: words.join('; ') },
      h('span', { class: 'limits-short', 'aria-hidden': 'true', text: short.join(' · ') }),
      h('span', { class: 'visually-hidden', text: `${words.join('; ')}.` })));
  }
  if (k.quota) parts.push(quotaUse(k));
  if (parts.length === 0) {
    return h('span', { class: 'muted limits-none', title: 'No limits of its own: the gateway\'s defaults apply' },
      h('span', { 'aria-hidden': 'true', text: '-' }),
      h('span', { class: 'visually-hidden', text: 'Gateway defaults' }));
  }
  return h('div', { class: 'limits' }, parts);
}

/** The quota of a key and how much of it the current period has used. */
function quotaUse(k) {
  const q = k.quota;
  const used = Math.max(0, Number(k.quotaUsed ?? 0) || 0);
  const when = q.period === 'month' ? 'this month' : 'today';
  const resets = k.quotaResetsAt ? new Date(k.quotaResetsAt) : null;
  const resetText = resets && !Number.isNaN(resets.getTime()) ? `Resets ${fullFmt.format(resets)}.` : '';
  const pct = q.requests > 0 ? Math.min(100, Math.round((used / q.requests) * 100)) : 0;
  return h('div', { class: 'quota', title: resetText || null },
    h('p', { class: 'quota-text' },
      h('span', { class: 'quota-used', 'aria-hidden': 'true', text: `${numFmt.format(used)} / ${numFmt.format(q.requests)} ${when}` }),
      h('span', { class: 'visually-hidden', text: `Quota: ${numFmt.format(used)} of ${plural(q.requests, 'request', 'requests')} used ${when} (${pct}%). ${resetText}` })),
    // The text above says the same, so the bar is hidden from screen readers.
    h('meter', {
      class: 'quota-bar', 'aria-hidden': 'true', min: 0, max: q.requests, value: Math.min(used, q.requests),
      low: Math.round(q.requests * 0.75), high: Math.round(q.requests * 0.9), optimum: 0,
    }));
}

function ownerLine(k) {
  return h('span', { class: 'owner' }, k.serviceAccountId ? 'Service account ' : 'Owner ', h('span', { class: 'owner-id', text: k.ownerId ?? '' }));
}

// -------------------------------------------------------------- row menu

function rowMenu(name, k) {
  const status = statusOf(k);
  const base = `${name}-${k.id}`;
  // Without a write capability a key's own keys are read-only.
  if (name === 'personal' && !canWriteOwn()) return h('span', { class: 'muted small', text: 'View only' });
  const items = [['edit', 'Edit']];
  if (status === 'active') items.push(['deactivate', 'Deactivate']);
  else if (status === 'deactivated') items.push(['activate', 'Activate']);
  // Rotating hands out the new secret: only the owner rotates a user's key.
  if (!state.me || k.serviceAccountId || k.ownerId === state.me.ownerId) items.push(['rotate', 'Rotate']);
  items.push(['delete', 'Delete']);
  return h('div', { class: 'menu' },
    h('button', {
      type: 'button', class: 'btn btn-menu', id: `menubtn-${base}`, 'aria-haspopup': 'menu', 'aria-expanded': 'false',
      'aria-controls': `menu-${base}`, dataset: { menuFor: k.id, list: name },
    }, 'Actions', h('span', { class: 'visually-hidden', text: ` for ${k.label || k.id}` }), h('span', { 'aria-hidden': 'true', class: 'caret', text: ' ▾' })),
    h('ul', { role: 'menu', id: `menu-${base}`, 'aria-labelledby': `menubtn-${base}`, class: 'menu-list', hidden: true },
      items.map(([op, label]) => h('li', { role: 'none' },
        h('button', { type: 'button', role: 'menuitem', tabindex: '-1', class: op === 'delete' ? 'danger' : null, dataset: { op } }, label)))));
}

function menuItems(menu) {
  return $$('[role="menuitem"]', menu);
}

function openMenu(button, which = 'first') {
  closeMenus();
  const menu = document.getElementById(button.getAttribute('aria-controls'));
  button.setAttribute('aria-expanded', 'true');
  menu.hidden = false;
  const items = menuItems(menu);
  (which === 'last' ? items[items.length - 1] : items[0]).focus();
}

function closeMenus({ returnTo = null } = {}) {
  for (const b of $$('[aria-haspopup="menu"][aria-expanded="true"]')) {
    b.setAttribute('aria-expanded', 'false');
    document.getElementById(b.getAttribute('aria-controls')).hidden = true;
  }
  if (returnTo) returnTo.focus();
}

document.addEventListener('click', (ev) => {
  if (!ev.target.closest('.menu')) closeMenus();
});

for (const box of $$('[data-list]')) {
  box.addEventListener('click', (ev) => {
    const sortButton = ev.target.closest('button.sort');
    if (sortButton) {
      changeSort(box.dataset.list, sortButton.dataset.sort);
      return;
    }
    const menuButton = ev.target.closest('[aria-haspopup="menu"]');
    if (menuButton) {
      if (menuButton.getAttribute('aria-expanded') === 'true') closeMenus();
      else openMenu(menuButton);
      return;
    }
    const item = ev.target.closest('[role="menuitem"]');
    if (item) {
      const button = document.getElementById(item.closest('[role="menu"]').getAttribute('aria-labelledby'));
      closeMenus();
      runOp(button.dataset.list, button.dataset.menuFor, item.dataset.op, button);
    }
  });
  box.addEventListener('keydown', (ev) => {
    const menuButton = ev.target.closest('[aria-haspopup="menu"]');
    if (menuButton && (ev.key === 'ArrowDown' || ev.key === 'ArrowUp')) {
      ev.preventDefault();
      openMenu(menuButton, ev.key === 'ArrowUp' ? 'last' : 'first');
      return;
    }
    const menu = ev.target.closest('[role="menu"]');
    if (!menu) return;
    const button = document.getElementById(menu.getAttribute('aria-labelledby'));
    const items = menuItems(menu);
    const i = items.indexOf(document.activeElement);
    switch (ev.key) {
      case 'ArrowDown':
        ev.preventDefault();
        items[(i + 1) % items.length].focus();
        break;
      case 'ArrowUp':
        ev.preventDefault();
        items[(i - 1 + items.length) % items.length].focus();
        break;
      case 'Home':
        ev.preventDefault();
        items[0].focus();
        break;
      case 'End':
        ev.preventDefault();
        items[items.length - 1].focus();
        break;
      case 'Escape':
        ev.preventDefault();
        ev.stopPropagation();
        closeMenus({ returnTo: button });
        break;
      case 'Tab':
        closeMenus({ returnTo: button });
        break;
      default:
        if (ev.key.length === 1 && /\S/.test(ev.key)) {
          const k = ev.key.toLowerCase();
          const order = items.slice(i + 1).concat(items.slice(0, i + 1));
          const hit = order.find((el) => el.textContent.trim().toLowerCase().startsWith(k));
          if (hit) hit.focus();
        }
    }
  });
}

function changeSort(name, key) {
  const list = state.lists[name];
  if (list.sort.key === key) list.sort.dir = list.sort.dir === 'asc' ? 'desc' : 'asc';
  else list.sort = { key, dir: 'asc' };
  renderList(name);
  const button = $(`button.sort[data-sort="${key}"]`, listContainer(name));
  if (button) button.focus();
  announce(`Sorted by ${sortable[key].label}, ${list.sort.dir === 'asc' ? 'ascending' : 'descending'}.`);
}

function findKey(name, id) {
  return state.lists[name].keys.find((k) => k.id === id);
}

/** Focus target after a list re-render: a row's menu button or a heading. */
function rowFocus(name, id) {
  return () => document.getElementById(`menubtn-${name}-${id}`) ?? $(`#${name}-title`);
}

function restoreFocus(target) {
  const el = typeof target === 'function' ? target() : target;
  if (el && el.isConnected && !el.closest('[hidden]')) el.focus();
  else $(`#${state.tab}-title`)?.focus();
}

function announce(message) {
  statusRegion.textContent = message;
}

function invalidateLists() {
  state.lists.personal.loaded = false;
  state.lists.org.loaded = false;
}

async function refreshAfterChange(name, focusTarget) {
  const other = name === 'personal' ? 'org' : 'personal';
  state.lists[other].loaded = false;
  await loadList(name, { keepFocus: focusTarget });
}

async function runOp(name, id, op, button) {
  const k = findKey(name, id);
  if (!k) return;
  clearError(appError);
  const mine = state.creds && k.id === state.creds.accessId;
  const label = k.label || k.id;
  switch (op) {
    case 'edit':
      openEdit(name, k, button);
      break;
    case 'deactivate':
      if (mine) {
        confirmAction({
          title: 'Deactivate the key you are signed in with?',
          text: `"${label}" is the key this console uses. Once it is deactivated you are signed out, and only another key can activate it again.`,
          ok: 'Deactivate',
          returnFocus: button,
          run: () => setDisabled(name, k, true),
        });
      } else {
        await withErrors(() => setDisabled(name, k, true), 'Deactivating the key failed.');
      }
      break;
    case 'activate':
      await withErrors(() => setDisabled(name, k, false), 'Activating the key failed.');
      break;
    case 'rotate':
      confirmAction({
        title: `Rotate "${label}"?`,
        text: 'A new Access ID and Access Key replace this pair, with the same name, scopes and allowlist. The current pair keeps working for a short grace period (5 minutes unless configured otherwise), then stops.',
        ok: 'Rotate key',
        danger: false,
        returnFocus: button,
        run: () => rotate(name, k),
      });
      break;
    case 'delete':
      confirmAction({
        title: `Delete "${label}"?`,
        text: mine
          ? 'This is the key you are signed in with: deleting it signs you out. Anything using this key stops working at once. This cannot be undone.'
          : 'Anything using this key stops working at once. This cannot be undone.',
        ok: 'Delete key',
        danger: true,
        returnFocus: () => $(`#${name}-title`),
        run: () => remove(name, k),
      });
      break;
    default:
  }
}

async function withErrors(fn, what) {
  try {
    await fn();
  } catch (err) {
    if (!handleAuthLost(err)) showError(appError, err, what);
  }
}

async function setDisabled(name, k, disabled) {
  await api('PUT', `accessKeys/${encodeURIComponent(k.id)}`, { disabled, corsHeaders: k.corsHeaders ?? [] });
  announce(`Access key "${k.label || k.id}" ${disabled ? 'deactivated' : 'activated'}.`);
  if (disabled && state.creds && k.id === state.creds.accessId) {
    showSignin(null);
    announce('You deactivated the key you were signed in with, so you were signed out.');
    return;
  }
  await refreshAfterChange(name, rowFocus(name, k.id));
}

async function rotate(name, k) {
  const res = await api('PUT', `accessKeys/${encodeURIComponent(k.id)}/rotate`);
  let note = '';
  if (state.creds && k.id === state.creds.accessId && res?.id && res?.key) {
    saveCreds({ accessId: res.id, accessKey: res.key });
    renderSession();
    note = 'This console now uses the new key.';
  }
  announce(`Access key "${k.label || k.id}" rotated.`);
  showSecret(res, 'Access Key rotated', note, rowFocus(name, res?.id ?? k.id), k);
  refreshAfterChange(name, null);
}

async function remove(name, k) {
  await api('DELETE', `accessKeys/${encodeURIComponent(k.id)}`);
  if (state.creds && k.id === state.creds.accessId) {
    showSignin(null);
    announce('You deleted the key you were signed in with, so you were signed out.');
    return;
  }
  announce(`Access key "${k.label || k.id}" deleted.`);
  await refreshAfterChange(name, () => $(`#${name}-title`));
}

// ---------------------------------------------------------------- dialogs

const FOCUSABLE = 'a[href], button:not([disabled]), input:not([disabled]):not([type="hidden"]), select:not([disabled]), textarea:not([disabled]), summary, [tabindex]:not([tabindex="-1"])';

function focusables(dialog) {
  return $$(FOCUSABLE, dialog).filter((el) => !el.closest('[hidden]') && el.getClientRects().length > 0);
}

/** Opens a modal dialog; focus returns to returnFocus when it closes. */
function openDialog(dialog, { returnFocus = document.activeElement, initial = null } = {}) {
  dialog.returnFocus = returnFocus;
  if (!dialog.open) dialog.showModal();
  const target = initial ?? focusables(dialog)[0];
  target?.focus();
}

function closeAllDialogs() {
  for (const d of $$('dialog[open]')) {
    d.returnFocus = null;
    d.close();
  }
}

for (const dialog of $$('dialog')) {
  // Tab and Shift+Tab cycle within the dialog.
  dialog.addEventListener('keydown', (ev) => {
    if (ev.key !== 'Tab') return;
    const items = focusables(dialog);
    if (items.length === 0) {
      ev.preventDefault();
      return;
    }
    const first = items[0];
    const last = items[items.length - 1];
    if (ev.shiftKey && (document.activeElement === first || !dialog.contains(document.activeElement))) {
      ev.preventDefault();
      last.focus();
    } else if (!ev.shiftKey && (document.activeElement === last || !dialog.contains(document.activeElement))) {
      ev.preventDefault();
      first.focus();
    }
  });
  dialog.addEventListener('click', (ev) => {
    if (ev.target.closest('[data-close]')) dialog.close('cancel');
  });
  dialog.addEventListener('close', () => {
    const back = dialog.returnFocus;
    dialog.returnFocus = null;
    if (back) restoreFocus(back);
    dialog.onclosed?.();
    dialog.onclosed = null;
  });
}

// Confirmation.
const confirmDialog = $('#confirm-dialog');
const confirmForm = $('#confirm-form');
let confirmRun = null;

function confirmAction({ title, text, ok, danger = true, returnFocus, run }) {
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  const okButton = $('#confirm-ok');
  okButton.textContent = ok;
  okButton.className = `btn ${danger ? 'btn-danger' : 'btn-primary'}`;
  okButton.disabled = false;
  clearError($('[data-role="error"]', confirmDialog));
  confirmRun = run;
  openDialog(confirmDialog, { returnFocus, initial: $('[data-close]', confirmDialog) });
}

confirmForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const okButton = $('#confirm-ok');
  okButton.disabled = true;
  const run = confirmRun;
  try {
    const returnFocus = confirmDialog.returnFocus;
    confirmDialog.returnFocus = null;
    // Close first so that a dialog the action opens (the one-time secret)
    // is not stacked on this one.
    confirmDialog.close('ok');
    confirmDialog.returnFocus = null;
    try {
      await run();
      const lost = document.activeElement === document.body || !document.activeElement;
      if (lost && !$('dialog[open]') && !appView.hidden) restoreFocus(returnFocus);
    } catch (err) {
      if (handleAuthLost(err)) return;
      openDialog(confirmDialog, { returnFocus, initial: $('[data-close]', confirmDialog) });
      showError($('[data-role="error"]', confirmDialog), err, 'The change failed.');
    }
  } finally {
    okButton.disabled = false;
  }
});

// One-time secret.
const secretDialog = $('#secret-dialog');

/** The key a rotation replaced, which works during its grace unless deactivated. */
let previousKey = null;

function showSecret(k, title, note, returnFocus, previous = null) {
  $('#secret-title').textContent = title;
  $('#secret-id').value = k?.id ?? '';
  $('#secret-key').value = k?.key ?? '';
  $('#secret-copy-status').textContent = note ?? '';
  previousKey = previous;
  const box = $('#secret-previous');
  box.hidden = !previous;
  clearError($('[data-role="error"]', box));
  $('#secret-previous-stop').hidden = false;
  if (previous) {
    $('#secret-previous-text').textContent = `The previous Access ID ${previous.id} keeps working for a short grace period (5 minutes unless configured otherwise). If it may have leaked, deactivate it now.`;
  }
  openDialog(secretDialog, { returnFocus, initial: $('[data-copy="secret-key"]', secretDialog) });
}

$('#secret-previous-stop').addEventListener('click', async () => {
  const prev = previousKey;
  if (!prev) return;
  const box = $('#secret-previous');
  const button = $('#secret-previous-stop');
  clearError($('[data-role="error"]', box));
  button.disabled = true;
  try {
    await api('PUT', `accessKeys/${encodeURIComponent(prev.id)}`, { disabled: true });
    $('#secret-previous-text').textContent = `The previous Access ID ${prev.id} is deactivated: it no longer works.`;
    button.hidden = true;
    $('[data-close]', secretDialog).focus();
  } catch (err) {
    if (!handleAuthLost(err)) showError($('[data-role="error"]', box), err, 'Deactivating the previous key failed.');
  } finally {
    button.disabled = false;
  }
});

secretDialog.addEventListener('close', () => {
  // The secret leaves the page once the dialog is closed.
  $('#secret-key').value = '';
  $('#secret-id').value = '';
  previousKey = null;
});

secretDialog.addEventListener('click', async (ev) => {
  const button = ev.target.closest('[data-copy]');
  if (!button) return;
  const input = document.getElementById(button.dataset.copy);
  const what = input.labels?.[0]?.textContent ?? 'Value';
  const out = $('#secret-copy-status');
  try {
    await navigator.clipboard.writeText(input.value);
    out.textContent = `${what} copied to the clipboard.`;
  } catch {
    input.focus();
    input.select();
    out.textContent = `Copying is not available here: ${what} is selected, press Ctrl+C (or ⌘C) to copy it.`;
  }
});

// Create.
const createDialog = $('#create-dialog');
const createForm = $('#create-form');
let scopeCatalogue = null;

for (const button of $$('[data-action="create"]')) {
  button.addEventListener('click', () => openCreate(button));
}

function openCreate(button) {
  createForm.reset();
  clearError($('[data-role="error"]', createDialog));
  setFieldError($('#create-label'), '');
  $('#create-scopes').hidden = true;
  $('#create-submit').disabled = false;
  openDialog(createDialog, { returnFocus: button, initial: $('#create-label') });
}

for (const radio of $$('input[name="scopeMode"]', createForm)) {
  radio.addEventListener('change', () => {
    const custom = $('#create-scope-custom').checked;
    $('#create-scopes').hidden = !custom;
    if (custom) loadScopeCatalogue($('#create-scopes'));
  });
}

/** Fills a scope picker (in the create or edit dialog) from the catalogue. */
async function loadScopeCatalogue(box, initial = null) {
  if (scopeCatalogue) {
    renderScopePicker(box, initial);
    return;
  }
  box.replaceChildren(h('p', { class: 'muted', text: 'Loading scopes…' }));
  try {
    const res = await api('GET', 'accessKeys/scopes');
    scopeCatalogue = res?.data ?? [];
    renderScopePicker(box, initial);
  } catch (err) {
    if (handleAuthLost(err)) return;
    box.replaceChildren();
    showError($('[data-role="error"]', box.closest('dialog')), err, 'The list of scopes could not be loaded.');
  }
}

function renderScopePicker(box, initial = null) {
  const prefix = box.id.replace(/-scopes$/, '');
  const groups = new Map();
  for (const s of scopeCatalogue) {
    const g = s.group?.label ?? 'Other';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g).push(s);
  }
  const checked = new Set(initial ?? $$('input[name="scope"]:checked', box).map((i) => i.value));
  // Scopes a key lists that the catalogue does not know stay choosable.
  const known = new Set(scopeCatalogue.map((s) => s.id));
  for (const id of checked) {
    if (!known.has(id)) groups.set('Other', (groups.get('Other') ?? []).concat({ id, label: id }));
  }
  box.replaceChildren(h('p', { class: 'hint', id: `${prefix}-scopes-hint`, text: 'Scopes your account lacks are marked; a key cannot use them until you have them.' }));
  for (const [group, scopes] of groups) {
    box.append(h('fieldset', { class: 'scope-group' },
      h('legend', { text: group }),
      scopes.map((s) => {
        const id = `${prefix}-scopeopt-${s.id}`;
        const lacking = state.caps !== null && !state.caps.has(s.id);
        return h('div', { class: 'check' },
          h('input', { type: 'checkbox', id, name: 'scope', value: s.id, checked: checked.has(s.id) }),
          h('label', { for: id }, s.label || s.id, ' ', h('code', { class: 'small', text: s.id }),
            lacking ? h('span', { class: 'chip chip-missing small', text: 'you lack this' }) : null));
      })));
  }
}

createForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const banner = $('[data-role="error"]', createDialog);
  clearError(banner);
  const labelInput = $('#create-label');
  const label = labelInput.value.trim();
  if (!label) {
    setFieldError(labelInput, 'Enter a name for the key.');
    labelInput.focus();
    return;
  }
  if (label.length > MAX_LABEL) {
    setFieldError(labelInput, `The name can have at most ${MAX_LABEL} characters.`);
    labelInput.focus();
    return;
  }
  setFieldError(labelInput, '');
  const corsHeaders = parseOrigins($('#create-cors').value);
  if (corsHeaders.length > MAX_ORIGINS) {
    showError(banner, new APIError(0, [{ code: '', message: `At most ${MAX_ORIGINS} origins can be allowlisted; ${corsHeaders.length} were given.` }], ''), 'The key was not created.');
    $('#create-cors').focus();
    return;
  }
  const body = { label, corsHeaders };
  if ($('#create-scope-custom').checked) {
    const scopes = $$('input[name="scope"]:checked', createDialog).map((i) => i.value);
    if (scopes.length === 0) {
      showError(banner, new APIError(0, [{ code: '', message: 'Choose at least one scope, or use the Default scope.' }], ''), 'The key was not created.');
      return;
    }
    body.scopes = scopes;
  }
  const submit = $('#create-submit');
  submit.disabled = true;
  try {
    const created = await api('POST', 'accessKeys', body);
    const back = createDialog.returnFocus;
    createDialog.returnFocus = null;
    createDialog.close('ok');
    announce(`Access key "${label}" created.`);
    showSecret(created, 'Access Key created', '', back);
    invalidateLists();
    loadList(state.tab === 'org' ? 'org' : 'personal');
  } catch (err) {
    if (handleAuthLost(err)) return;
    showError(banner, err, 'The key was not created.');
  } finally {
    submit.disabled = false;
  }
});

// Edit: allowlist, scopes and limits. The API takes no new label on PUT, so
// the name is shown but not editable.
const editDialog = $('#edit-dialog');
const editForm = $('#edit-form');
let editTarget = null;

function openEdit(name, k, button) {
  editTarget = { name, k };
  editForm.reset();
  clearError($('[data-role="error"]', editDialog));
  $('#edit-title').textContent = `Edit "${k.label || k.id}"`;
  $('#edit-key').textContent = `Access ID ${k.id}`;
  $('#edit-cors').value = (k.corsHeaders ?? []).join('\n');
  const custom = (k.scopes ?? []).length > 0;
  $('#edit-scope-default').checked = !custom;
  $('#edit-scope-custom').checked = custom;
  const box = $('#edit-scopes');
  box.replaceChildren();
  box.hidden = !custom;
  if (custom) loadScopeCatalogue(box, k.scopes);
  fillLimits(k);
  $('#edit-submit').disabled = false;
  openDialog(editDialog, { returnFocus: button, initial: $('#edit-cors') });
}

// The inputs of the Limits section, by the API field they set.
const limitInputs = {
  rateLimit: () => $('#edit-rate-requests'),
  concurrencyLimit: () => $('#edit-concurrency'),
  quota: () => $('#edit-quota-requests'),
};

// The field each code of a refused limit belongs to.
const limitErrorCodes = {
  'accessKey:invalid_rate_limit': 'rateLimit',
  'accessKey:invalid_concurrency_limit': 'concurrencyLimit',
  'accessKey:invalid_quota': 'quota',
};

/**
 * Fills the Limits section from a key. Only holders of manageAccessKeys
 * may change limits, so for any other key the section shows the limits but
 * is disabled, says why, and the dialog leaves them out of what it sends.
 */
function fillLimits(k) {
  for (const input of [...Object.values(limitInputs).map((f) => f()), $('#edit-rate-burst')]) setFieldError(input, '');
  const r = k.rateLimit;
  $('#edit-rate-requests').value = r ? String(r.requests) : '';
  $('#edit-rate-period').value = String(r && ratePeriods[r.periodSeconds] ? r.periodSeconds : 60);
  // A burst equal to the rate is the default: the field stays empty.
  $('#edit-rate-burst').value = r && burstOf(r) !== r.requests ? String(burstOf(r)) : '';
  $('#edit-concurrency').value = k.concurrencyLimit != null ? String(k.concurrencyLimit) : '';
  const q = k.quota;
  $('#edit-quota-requests').value = q ? String(q.requests) : '';
  $('#edit-quota-period').value = q?.period === 'month' ? 'month' : 'day';
  const usage = $('#edit-quota-usage');
  if (q) {
    const used = Math.max(0, Number(k.quotaUsed ?? 0) || 0);
    const resets = k.quotaResetsAt ? new Date(k.quotaResetsAt) : null;
    usage.textContent = `Used ${numFmt.format(used)} of ${numFmt.format(q.requests)} ${q.period === 'month' ? 'this month' : 'today'}`
      + (resets && !Number.isNaN(resets.getTime()) ? `; resets ${fullFmt.format(resets)}.` : '.');
  } else {
    usage.textContent = 'Empty: no quota of the key\'s own.';
  }
  const locked = !canManageKeys();
  $('#edit-limits').disabled = locked;
  $('#edit-limits-locked').hidden = !locked;
}

// Changing a limit clears what was said about it; a rate clears the
// message that a burst needs one.
$('#edit-limits').addEventListener('input', (ev) => {
  const input = ev.target;
  if (!input.id || !document.getElementById(`${input.id}-error`)) return;
  setFieldError(input, '');
  if (input.id === 'edit-rate-requests') setFieldError($('#edit-rate-burst'), '');
});

/**
 * Reads a whole number from a limit input: null when it is empty, NaN
 * when it is not a whole number from min to max.
 */
function readCount(input, min, max) {
  const text = input.value.trim();
  if (text === '' && !input.validity.badInput) return null;
  if (!/^\d+$/.test(text)) return Number.NaN;
  const n = Number(text);
  return Number.isSafeInteger(n) && n >= min && n <= max ? n : Number.NaN;
}

/**
 * Reads the Limits section. It returns {values, problems}: values holds
 * rateLimit, concurrencyLimit and quota as the API takes them (null for
 * "the default"), problems the inputs whose values are refused, with a
 * message for each.
 */
function readLimits() {
  const problems = [];
  const values = {};
  const reqInput = $('#edit-rate-requests');
  const burstInput = $('#edit-rate-burst');
  const requests = readCount(reqInput, 1, MAX_RATE_REQUESTS);
  const burst = readCount(burstInput, 1, MAX_RATE_REQUESTS);
  if (Number.isNaN(requests)) {
    problems.push([reqInput, `Enter a whole number of requests from 1 to ${numFmt.format(MAX_RATE_REQUESTS)}, or leave it empty for the default rate.`]);
  }
  if (Number.isNaN(burst)) {
    problems.push([burstInput, `Enter a burst from 1 to ${numFmt.format(MAX_RATE_REQUESTS)}, or leave it empty for a burst equal to the rate.`]);
  } else if (burst !== null && requests === null) {
    problems.push([burstInput, 'A burst needs a rate: enter the requests, or clear the burst.']);
  }
  if (requests === null) {
    values.rateLimit = null;
  } else if (!Number.isNaN(requests)) {
    values.rateLimit = { requests, periodSeconds: Number($('#edit-rate-period').value) };
    if (burst !== null && !Number.isNaN(burst)) values.rateLimit.burst = burst;
  }
  const concInput = $('#edit-concurrency');
  const conc = readCount(concInput, 1, MAX_CONCURRENCY);
  if (Number.isNaN(conc)) {
    problems.push([concInput, `Enter a whole number from 1 to ${numFmt.format(MAX_CONCURRENCY)}, or leave it empty for the default.`]);
  } else {
    values.concurrencyLimit = conc;
  }
  const quotaInput = $('#edit-quota-requests');
  const quota = readCount(quotaInput, 1, MAX_QUOTA);
  if (Number.isNaN(quota)) {
    problems.push([quotaInput, `Enter a whole number of requests from 1 to ${numFmt.format(MAX_QUOTA)}, or leave it empty for the default quota.`]);
  } else {
    values.quota = quota === null ? null : { requests: quota, period: $('#edit-quota-period').value };
  }
  return { values, problems };
}

/** Reports whether two limits (rates, counts or quotas; null = default) are the same. */
function sameLimit(field, a, b) {
  if (a == null || b == null) return a == null && b == null;
  if (field === 'rateLimit') return a.requests === b.requests && a.periodSeconds === b.periodSeconds && burstOf(a) === burstOf(b);
  if (field === 'quota') return a.requests === b.requests && a.period === b.period;
  return a === b;
}

/** Says what a limit became, for the status message. */
function describeLimit(field, v) {
  if (field === 'rateLimit') return v ? `rate ${rateShort(v)}` : 'default rate';
  if (field === 'concurrencyLimit') return v != null ? `${numFmt.format(v)} in flight` : 'default concurrency';
  return v ? `quota ${numFmt.format(v.requests)} per ${v.period}` : 'default quota';
}

for (const radio of $$('input[name="editScopeMode"]', editForm)) {
  radio.addEventListener('change', () => {
    const custom = $('#edit-scope-custom').checked;
    const box = $('#edit-scopes');
    box.hidden = !custom;
    if (custom) loadScopeCatalogue(box, editTarget?.k.scopes ?? []);
  });
}

function sameList(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

editForm.addEventListener('submit', async (ev) => {
  ev.preventDefault();
  const banner = $('[data-role="error"]', editDialog);
  clearError(banner);
  const { name, k } = editTarget;
  const corsHeaders = parseOrigins($('#edit-cors').value);
  if (corsHeaders.length > MAX_ORIGINS) {
    showError(banner, new APIError(0, [{ code: '', message: `At most ${MAX_ORIGINS} origins can be allowlisted; ${corsHeaders.length} were given.` }], ''), 'The changes were not saved.');
    $('#edit-cors').focus();
    return;
  }
  const body = { disabled: Boolean(k.disabled), corsHeaders };
  // Limits are sent only when they change (null puts a limit back to the
  // default), and never by a key that may not change them.
  const limitsChanged = [];
  if (!$('#edit-limits').disabled) {
    for (const input of [...Object.values(limitInputs).map((f) => f()), $('#edit-rate-burst')]) setFieldError(input, '');
    const { values, problems } = readLimits();
    if (problems.length) {
      for (const [input, message] of problems) setFieldError(input, message);
      showError(banner, new APIError(0, problems.map(([, message]) => ({ code: '', message })), ''), 'The changes were not saved.');
      problems[0][0].focus();
      return;
    }
    for (const field of Object.keys(limitInputs)) {
      if (field in values && !sameLimit(field, values[field], k[field] ?? null)) {
        body[field] = values[field];
        limitsChanged.push(describeLimit(field, values[field]));
      }
    }
  }
  let scopes = [];
  if ($('#edit-scope-custom').checked) {
    scopes = $$('input[name="scope"]:checked', editDialog).map((i) => i.value);
    if (scopes.length === 0) {
      showError(banner, new APIError(0, [{ code: '', message: 'Choose at least one scope, or use the Default scope.' }], ''), 'The changes were not saved.');
      return;
    }
  }
  // Scopes are sent only when they change, so that editing the allowlist of
  // a key with scopes beyond the caller's is not refused.
  const scopesChanged = !sameList(scopes, k.scopes ?? []);
  if (scopesChanged) body.scopes = scopes;
  const submit = $('#edit-submit');
  submit.disabled = true;
  try {
    await api('PUT', `accessKeys/${encodeURIComponent(k.id)}`, body);
    editDialog.returnFocus = null;
    editDialog.close('ok');
    const what = [`${plural(corsHeaders.length, 'origin', 'origins')} allowlisted`];
    if (scopesChanged) what.push(scopes.length ? `scopes ${scopes.join(', ')}` : 'Default scope');
    what.push(...limitsChanged);
    announce(`Access key "${k.label || k.id}" saved: ${what.join('; ')}.`);
    await refreshAfterChange(name, rowFocus(name, k.id));
  } catch (err) {
    if (handleAuthLost(err)) return;
    showError(banner, err, 'The changes were not saved.');
    // A refused limit is also marked at its field.
    let first = null;
    for (const p of err instanceof APIError ? err.problems : []) {
      const field = limitErrorCodes[p.code];
      if (!field) continue;
      const input = limitInputs[field]();
      setFieldError(input, p.message);
      first ??= input;
    }
    if (first && !first.matches(':disabled')) first.focus();
  } finally {
    submit.disabled = false;
  }
});

// --------------------------------------------------------------- policies

const policies = [
  { form: '#policy-lifetime', path: 'policies/accessKeysLifetime', field: 'accessKeysLifetimeInDays', input: '#policy-lifetime-days', name: 'Key lifetime' },
  { form: '#policy-unused', path: 'policies/disableUnusedAccessKeys', field: 'unusedAccessKeysDisableAfterInDays', input: '#policy-unused-days', name: 'Deactivation of unused keys' },
];

async function loadPolicies() {
  for (const p of policies) $(p.input).disabled = !state.policiesLoaded;
  try {
    const answers = await Promise.all(policies.map((p) => api('GET', p.path)));
    answers.forEach((res, i) => {
      const p = policies[i];
      setFieldError($(p.input), '');
      $(p.input).value = String(res?.[p.field] ?? '');
    });
    state.policiesLoaded = true;
  } catch (err) {
    if (!handleAuthLost(err)) showError(appError, err, 'Loading the policies failed.');
  } finally {
    for (const p of policies) $(p.input).disabled = false;
  }
}

for (const p of policies) {
  $(p.form).addEventListener('submit', async (ev) => {
    ev.preventDefault();
    clearError(appError);
    const input = $(p.input);
    // A number input's value is '' when what was typed is not a number.
    const text = input.value.trim();
    const days = Number(text);
    const bad = input.validity.badInput || text === '' || !/^\d+$/.test(text) || !Number.isInteger(days) || days > MAX_POLICY_DAYS;
    if (bad) {
      announce('');
      setFieldError(input, `${p.name} was not saved: enter a whole number of days from 0 to ${MAX_POLICY_DAYS} (0 means never).`);
      input.focus();
      return;
    }
    setFieldError(input, '');
    const submit = $('button[type="submit"]', ev.currentTarget);
    submit.disabled = true;
    try {
      const res = await api('PUT', p.path, { [p.field]: days });
      setFieldError(input, '');
      const saved = res?.[p.field] ?? days;
      input.value = String(saved);
      announce(`${p.name} saved: ${saved === 0 ? 'never' : plural(saved, 'day', 'days')}.`);
      invalidateLists();
    } catch (err) {
      if (!handleAuthLost(err)) {
        announce('');
        const msg = err instanceof APIError ? err.message : String(err?.message ?? err);
        setFieldError(input, `${p.name} was not saved: ${msg}`);
        showError(appError, err, `${p.name} was not saved.`);
      }
    } finally {
      submit.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ start

function start() {
  const creds = loadCreds();
  if (!creds) {
    showSignin(null);
    return;
  }
  state.creds = creds;
  enterApp(false);
  if (!state.lists.personal.loaded && state.tab !== 'personal') {
    // Learn what the key may do, for the tabs.
    api('GET', 'accessKeys/personal').then((res) => {
      learnCaps(res?.data ?? []);
      renderSession();
      updateTabs();
    }).catch((err) => {
      if (handleAuthLost(err)) return;
      if (isCapabilityRefusal(err)) {
        state.keysRefused = true;
        updateTabs();
      }
    });
  }
}

// ------------------------------------------------------------------ usage

// Usage analytics (requests per key and outcome). Charts are SVG built
// with DOM calls; every chart carries what it plots in data attributes
// (data-from, data-to, data-granularity, data-step, data-series…) and a
// table, so that it can be read without seeing it.

const SVG_NS = 'http://www.w3.org/2000/svg';
const MINUTE = 60e3;
const HOUR = 3600e3;
const DAY = 86400e3;
const GRANULARITY_MS = { minute: MINUTE, hour: HOUR, day: DAY };

// The ranges of the usage charts: how far back, and the bucket size.
const USAGE_RANGES = {
  '2h': { label: '2 h', words: 'the last 2 hours', ms: 2 * HOUR, granularity: 'minute' },
  '24h': { label: '24 h', words: 'the last 24 hours', ms: DAY, granularity: 'hour' },
  '14d': { label: '14 d', words: 'the last 14 days', ms: 14 * DAY, granularity: 'hour' },
  '90d': { label: '90 d', words: 'the last 90 days', ms: 90 * DAY, granularity: 'day' },
};

// The outcomes a chart stacks, bottom first: allowed requests by the status
// class the client got, then the rejections.
const OUTCOMES = [
  ['status2xx', 'Allowed, 2xx'],
  ['status3xx', 'Allowed, 3xx'],
  ['status4xx', 'Allowed, 4xx'],
  ['status5xx', 'Allowed, 5xx'],
  ['unauthorized', 'Unauthorized'],
  ['forbidden', 'Forbidden'],
  ['rateLimited', 'Rate limited'],
];

// At most this many sparklines load at once.
const SPARK_CONCURRENCY = 6;

/** Creates an SVG element with attributes. */
function svg(tag, attrs = {}, ...children) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null) continue;
    if (k === 'class') el.setAttribute('class', v);
    else if (k === 'text') el.textContent = v;
    else el.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) el.append(c);
  return el;
}

/**
 * The buckets of a range ending now: n slots of the granularity's size,
 * the last one holding now. from is the start of the first slot, to is now.
 */
function usageWindow(rangeKey, now = Date.now()) {
  const r = USAGE_RANGES[rangeKey];
  const step = GRANULARITY_MS[r.granularity];
  const n = Math.round(r.ms / step);
  const last = Math.floor(now / step) * step;
  const first = last - (n - 1) * step;
  return { range: rangeKey, granularity: r.granularity, step, n, first, from: new Date(first).toISOString(), to: new Date(now).toISOString() };
}

/** The query string of a usage request for a window. */
function usageQuery(w) {
  return `from=${encodeURIComponent(w.from)}&to=${encodeURIComponent(w.to)}&granularity=${w.granularity}`;
}

/**
 * Lays the API's buckets (only non-empty ones) on the window's slots:
 * one array per field, 0 where the API has no bucket.
 */
function fillSeries(w, data) {
  const fields = ['requests', 'allowed', ...OUTCOMES.map(([f]) => f)];
  const series = Object.fromEntries(fields.map((f) => [f, new Array(w.n).fill(0)]));
  for (const b of data ?? []) {
    const t = Date.parse(b?.start);
    if (Number.isNaN(t)) continue;
    const i = Math.floor((t - w.first) / w.step);
    if (i < 0 || i >= w.n) continue;
    for (const f of fields) series[f][i] += Math.max(0, Number(b[f]) || 0);
  }
  return series;
}

const sum = (xs) => xs.reduce((a, b) => a + b, 0);

// A small queue that runs at most SPARK_CONCURRENCY requests at once.
const sparkQueue = [];
let sparkActive = 0;

function limited(fn) {
  return new Promise((resolve, reject) => {
    sparkQueue.push({ fn, resolve, reject });
    pumpSparks();
  });
}

function pumpSparks() {
  while (sparkActive < SPARK_CONCURRENCY && sparkQueue.length) {
    const { fn, resolve, reject } = sparkQueue.shift();
    sparkActive += 1;
    fn().then(resolve, reject).finally(() => {
      sparkActive -= 1;
      pumpSparks();
    });
  }
}

// Sparkline data by Access ID, kept for a minute so that sorting or
// switching tabs does not ask again.
const sparkCache = new Map();
const SPARK_TTL = 60e3;

function sparkData(id) {
  const hit = sparkCache.get(id);
  if (hit && Date.now() - hit.at < SPARK_TTL) return hit.promise;
  const w = usageWindow('24h');
  const promise = limited(() => api('GET', `accessKeys/${encodeURIComponent(id)}/usage?${usageQuery(w)}`))
    .then((res) => ({ w, series: fillSeries(w, res?.data) }));
  sparkCache.set(id, { at: Date.now(), promise });
  promise.catch(() => sparkCache.delete(id));
  return promise;
}

/** The Requests (24 h) cell: a button holding the key's sparkline, filled once loaded. */
function usageCell(name, k) {
  const box = h('span', { class: 'spark-box', 'aria-busy': 'true' }, h('span', { class: 'spark-loading muted', text: '…' }));
  const button = h('button', {
    type: 'button', class: 'spark-btn', dataset: { usageFor: k.id, list: name },
    'aria-label': `Usage of ${k.label || k.id}: loading`,
  }, box);
  sparkData(k.id).then(({ w, series }) => {
    const total = sum(series.requests);
    const words = `${plural(total, 'request', 'requests')} in the last 24 hours`;
    box.replaceChildren(sparkline(w, series.requests, words), h('span', { class: 'spark-total', 'aria-hidden': 'true', text: numFmt.format(total) }));
    box.removeAttribute('aria-busy');
    button.setAttribute('aria-label', `Usage of ${k.label || k.id}: ${words}. Show the chart.`);
  }, (err) => {
    if (handleAuthLost(err)) return;
    box.removeAttribute('aria-busy');
    const why = err instanceof APIError ? err.message : 'not available';
    box.replaceChildren(h('span', { class: 'muted spark-none', title: `Usage could not be loaded: ${why}`, text: '–' }));
    button.setAttribute('aria-label', `Usage of ${k.label || k.id}: could not be loaded. Show the chart.`);
  });
  return button;
}

/** A sparkline of values: a line over its area, scaled to its maximum. */
function sparkline(w, values, words) {
  const W = 96;
  const H = 24;
  const max = Math.max(1, ...values);
  const x = (i) => (values.length === 1 ? W / 2 : (i / (values.length - 1)) * W);
  const y = (v) => H - 1 - (v / max) * (H - 2);
  const pts = values.map((v, i) => `${x(i).toFixed(1)},${y(v).toFixed(1)}`);
  return svg('svg', {
    class: 'sparkline', viewBox: `0 0 ${W} ${H}`, width: W, height: H, role: 'img', 'aria-label': words,
    'data-series': values.join(','), 'data-total': sum(values), 'data-from': w.from, 'data-to': w.to,
    'data-granularity': w.granularity, 'data-step': w.step, 'data-first': new Date(w.first).toISOString(),
  },
  svg('title', { text: words }),
  svg('path', { class: 'spark-area', d: `M0,${H} L${pts.join(' L')} L${W},${H} Z` }),
  svg('polyline', { class: 'spark-line', points: pts.join(' ') }));
}

/** A round number at or above v for the top of an axis. */
function niceMax(v) {
  if (v <= 4) return 4;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

const axisTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const axisDate = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric' });
const axisFull = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', hour: '2-digit', minute: '2-digit' });

/** Formats the start of a slot for the axis of a range. */
function slotLabel(w, t) {
  const d = new Date(t);
  if (w.range === '2h' || w.range === '24h') return axisTime.format(d);
  return axisDate.format(d);
}

/**
 * A stacked bar chart of a window's series by outcome, with axes, a
 * legend and a table of the non-empty buckets.
 */
function usageChart(w, series, caption) {
  const W = 760;
  const H = 260;
  const m = { l: 52, r: 12, t: 12, b: 30 };
  const iw = W - m.l - m.r;
  const ih = H - m.t - m.b;
  const totals = series.requests;
  const stackTop = totals.map((_, i) => sum(OUTCOMES.map(([f]) => series[f][i])));
  const top = niceMax(Math.max(...stackTop, ...totals));
  const bw = iw / w.n;
  const y = (v) => m.t + ih - (v / top) * ih;
  const total = sum(totals);
  const words = `${caption}: ${plural(total, 'request', 'requests')} in ${USAGE_RANGES[w.range].words}, by ${w.granularity}`;
  const attrs = {
    class: 'usage-chart', viewBox: `0 0 ${W} ${H}`, role: 'img', 'aria-label': words, preserveAspectRatio: 'none',
    'data-from': w.from, 'data-to': w.to, 'data-granularity': w.granularity, 'data-step': w.step,
    'data-first': new Date(w.first).toISOString(), 'data-total': total, 'data-series-requests': totals.join(','),
  };
  for (const [f] of OUTCOMES) attrs[`data-series-${f.toLowerCase()}`] = series[f].join(',');
  const grid = [];
  for (let k = 0; k <= 4; k += 1) {
    const v = (top / 4) * k;
    grid.push(svg('line', { class: 'grid', x1: m.l, x2: W - m.r, y1: y(v), y2: y(v) }));
    grid.push(svg('text', { class: 'axis-label', x: m.l - 6, y: y(v) + 4, 'text-anchor': 'end', text: numFmt.format(v) }));
  }
  const ticks = [];
  const every = Math.max(1, Math.ceil(w.n / 6));
  for (let i = 0; i < w.n; i += every) {
    const x = m.l + i * bw;
    ticks.push(svg('line', { class: 'tick', x1: x, x2: x, y1: m.t + ih, y2: m.t + ih + 4 }));
    ticks.push(svg('text', { class: 'axis-label', x, y: H - 10, 'text-anchor': 'middle', text: slotLabel(w, w.first + i * w.step) }));
  }
  const bars = [];
  for (let i = 0; i < w.n; i += 1) {
    if (stackTop[i] === 0) continue;
    const g = svg('g', { class: 'bar' });
    let acc = 0;
    for (const [f] of OUTCOMES) {
      const v = series[f][i];
      if (!v) continue;
      g.append(svg('rect', { class: `s-${f}`, x: m.l + i * bw + bw * 0.1, width: Math.max(bw * 0.8, 0.8), y: y(acc + v), height: Math.max(y(acc) - y(acc + v), 0.5) }));
      acc += v;
    }
    const parts = OUTCOMES.filter(([f]) => series[f][i]).map(([f, label]) => `${label} ${numFmt.format(series[f][i])}`);
    g.prepend(svg('title', { text: `${axisFull.format(new Date(w.first + i * w.step))}: ${plural(totals[i], 'request', 'requests')} (${parts.join(', ')})` }));
    bars.push(g);
  }
  const chart = svg('svg', attrs,
    svg('title', { text: words }),
    grid,
    svg('line', { class: 'axis', x1: m.l, x2: W - m.r, y1: m.t + ih, y2: m.t + ih }),
    ticks,
    bars);
  const legend = h('ul', { class: 'legend', 'aria-label': 'Legend' },
    OUTCOMES.map(([f, label]) => h('li', { dataset: { outcome: f } },
      h('span', { class: `swatch s-${f}`, 'aria-hidden': 'true' }),
      `${label} `, h('span', { class: 'legend-count', text: numFmt.format(sum(series[f])) }))));
  const rows = [];
  for (let i = 0; i < w.n; i += 1) {
    if (!totals[i] && !stackTop[i]) continue;
    const t = new Date(w.first + i * w.step);
    rows.push(h('tr', { dataset: { start: t.toISOString() } },
      h('th', { scope: 'row' }, h('time', { datetime: t.toISOString(), text: axisFull.format(t) })),
      h('td', { dataset: { field: 'requests' }, text: numFmt.format(totals[i]) }),
      OUTCOMES.map(([f]) => h('td', { dataset: { field: f }, text: numFmt.format(series[f][i]) }))));
  }
  const table = h('details', { class: 'usage-table' },
    h('summary', { text: `Table (${plural(rows.length, 'bucket', 'buckets')} with requests)` }),
    rows.length
      ? h('div', { class: 'table-scroll' }, h('table', {},
        h('caption', { class: 'visually-hidden', text: words }),
        h('thead', {}, h('tr', {}, h('th', { scope: 'col', text: 'Start' }), h('th', { scope: 'col', text: 'Requests' }),
          OUTCOMES.map(([, label]) => h('th', { scope: 'col', text: label })))),
        h('tbody', {}, rows)))
      : h('p', { class: 'muted', text: 'No requests in this range.' }));
  return h('figure', { class: 'chart' },
    h('div', { class: 'chart-frame' }, chart),
    h('figcaption', {}, h('span', { class: 'chart-total', text: `${plural(total, 'request', 'requests')} in ${USAGE_RANGES[w.range].words}` }), legend),
    table);
}

/** Range buttons (2 h, 24 h, 14 d, 90 d) that call onPick with a range key. */
function rangeButtons(current, onPick, labelledBy) {
  const group = h('div', { class: 'ranges', role: 'group', 'aria-labelledby': labelledBy });
  for (const [key, r] of Object.entries(USAGE_RANGES)) {
    group.append(h('button', {
      type: 'button', class: 'btn btn-range', 'aria-pressed': String(key === current), dataset: { range: key },
      onclick: () => {
        for (const b of $$('button', group)) b.setAttribute('aria-pressed', String(b.dataset.range === key));
        onPick(key);
      },
    }, r.label));
  }
  return group;
}

// Per-key usage dialog.
const usageDialog = $('#usage-dialog');
let usageKey = null;
let usageSeq = 0;

function openUsage(k, button) {
  usageKey = k;
  $('#usage-title').textContent = `Usage of "${k.label || k.id}"`;
  $('#usage-key').textContent = `Access ID ${k.id}`;
  const ranges = $('#usage-ranges');
  ranges.replaceChildren(rangeButtons('24h', (r) => loadKeyUsage(r), 'usage-ranges-label'));
  openDialog(usageDialog, { returnFocus: button, initial: $('[data-range="24h"]', ranges) });
  loadKeyUsage('24h');
}

async function loadKeyUsage(rangeKey) {
  const k = usageKey;
  const seq = ++usageSeq;
  const box = $('#usage-chart');
  const banner = $('[data-role="error"]', usageDialog);
  clearError(banner);
  box.setAttribute('aria-busy', 'true');
  const w = usageWindow(rangeKey);
  try {
    const res = await api('GET', `accessKeys/${encodeURIComponent(k.id)}/usage?${usageQuery(w)}`);
    if (seq !== usageSeq) return;
    box.replaceChildren(usageChart(w, fillSeries(w, res?.data), k.label || k.id));
  } catch (err) {
    if (seq !== usageSeq || handleAuthLost(err)) return;
    box.replaceChildren();
    showError(banner, err, 'The usage could not be loaded.');
  } finally {
    if (seq === usageSeq) box.removeAttribute('aria-busy');
  }
}

for (const box of $$('[data-list]')) {
  box.addEventListener('click', (ev) => {
    const b = ev.target.closest('[data-usage-for]');
    if (!b) return;
    const k = findKey(b.dataset.list, b.dataset.usageFor);
    if (k) openUsage(k, b);
  });
}

$('#edit-usage').addEventListener('click', () => {
  if (!editTarget) return;
  const { name, k } = editTarget;
  editDialog.returnFocus = null;
  editDialog.close('cancel');
  openUsage(k, rowFocus(name, k.id));
});

// The organisation's Usage page.
const orgUsage = { range: '24h', top: 10, seq: 0 };

function initUsagePage() {
  const ranges = $('#org-usage-ranges');
  if (!ranges.childElementCount) {
    ranges.append(rangeButtons(orgUsage.range, (r) => {
      orgUsage.range = r;
      loadOrgUsage();
    }, 'org-usage-ranges-label'));
  }
  loadOrgUsage();
}

$('#org-usage-top').addEventListener('change', (ev) => {
  orgUsage.top = Number(ev.target.value) || 10;
  loadOrgUsage();
});

async function loadOrgUsage() {
  const seq = ++orgUsage.seq;
  const chartBox = $('#org-usage-chart');
  const topBox = $('#org-usage-topkeys');
  chartBox.setAttribute('aria-busy', 'true');
  topBox.setAttribute('aria-busy', 'true');
  if (!chartBox.childElementCount) chartBox.replaceChildren(h('p', { class: 'muted loading', text: 'Loading usage…' }));
  const w = usageWindow(orgUsage.range);
  const top = orgUsage.top;
  try {
    const res = await api('GET', `usage?${usageQuery(w)}&top=${top}`);
    if (seq !== orgUsage.seq) return;
    chartBox.replaceChildren(usageChart(w, fillSeries(w, res?.data), 'All access keys'));
    topBox.replaceChildren(topKeysTable(res?.topKeys ?? [], w, top));
  } catch (err) {
    if (seq !== orgUsage.seq || handleAuthLost(err)) return;
    chartBox.replaceChildren(h('p', { class: 'muted', text: 'The usage could not be loaded.' }));
    topBox.replaceChildren();
    showError(appError, err, 'Loading the usage failed.');
  } finally {
    if (seq === orgUsage.seq) {
      chartBox.removeAttribute('aria-busy');
      topBox.removeAttribute('aria-busy');
    }
  }
}

function topKeysTable(keys, w, top) {
  if (keys.length === 0) return h('p', { class: 'empty', text: `No key made requests in ${USAGE_RANGES[w.range].words}.` });
  return h('table', { class: 'top-keys', dataset: { top: String(top), from: w.from, to: w.to } },
    h('caption', { text: `Top ${plural(keys.length, 'key', 'keys')} by requests in ${USAGE_RANGES[w.range].words}` }),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col', text: '#' }),
      h('th', { scope: 'col', text: 'Access ID' }),
      h('th', { scope: 'col', text: 'Name' }),
      h('th', { scope: 'col', text: 'Owner' }),
      h('th', { scope: 'col', class: 'num', text: 'Requests' }),
      h('th', { scope: 'col', class: 'num', text: 'Rejected' }))),
    h('tbody', {}, keys.map((k, i) => h('tr', { dataset: { id: String(k.accessId ?? ''), requests: String(k.requests ?? 0), rejected: String(k.rejected ?? 0) } },
      h('td', { text: String(i + 1) }),
      h('td', {}, h('code', { class: 'access-id', text: String(k.accessId ?? '') })),
      h('td', { dataset: { field: 'label' }, text: k.label || '(no name)' }),
      h('td', { dataset: { field: 'owner' }, text: String(k.ownerId ?? '') }),
      h('td', { class: 'num', dataset: { field: 'requests' }, text: numFmt.format(Number(k.requests) || 0) }),
      h('td', { class: 'num', dataset: { field: 'rejected' }, text: numFmt.format(Number(k.rejected) || 0) })))));
}

// ------------------------------------------------------------------ start

start();

// mmbot web dashboard: plain ES2020, no dependencies, no build step. Reads the
// control API (bearer token) and the /api/stream WebSocket (docs/control.md).
'use strict';
(() => {
  const TOKEN_KEY = 'mmbot-token';
  const WINDOW_S = 600;        // charts keep the last 10 minutes,
  const MAX_POINTS = 6000;     // at most this many points per series,
  const MIN_STEP_S = 0.1;      // a point closer than this to the last replaces it
  const MAX_EVENTS = 200;
  const MAX_ALERTS = 50;
  const MAX_DOTS = 2000;
  const LEVELS = 10;           // book levels shown per side
  const POLL_MS = 2000;
  const STAGES = ['tick_to_quote', 'parse', 'book', 'strategy', 'quote'];
  const STAGE_COLORS = { tick_to_quote: '#f2cc60', parse: '#58a6ff', book: '#3fb950', strategy: '#d67cff', quote: '#ff7b72' };

  const $ = (id) => document.getElementById(id);
  const isNum = (v) => typeof v === 'number' && Number.isFinite(v);
  const isObj = (v) => v !== null && typeof v === 'object';
  const nowS = () => Date.now() / 1000;

  const state = {
    token: null, status: null, book: null, quote: null, latency: null, advice: null, adviceAt: 0,
    ws: null, wsOpen: false, backoff: 1000, nextTry: 0, reconnectTimer: null, pollTimer: null, polling: false,
    events: [], eventKeys: new Set(), lastSeq: -1,      // events newest first; the last entry seen
    alerts: [],                                        // newest first
    timeOffset: null,                                  // wall seconds at the session's start
    renderKeys: {},
  };

  // ---------- number formatting ----------
  // `s` (a toFixed string) without trailing zeros, keeping minDec decimals.
  function trimDec(s, minDec) {
    const dot = s.indexOf('.');
    let int = dot < 0 ? s : s.slice(0, dot);
    let dec = dot < 0 ? '' : s.slice(dot + 1).replace(/0+$/, '');
    while (dec.length < minDec) dec += '0';
    if (/^-0*$/.test(int) && /^0*$/.test(dec)) int = '0';
    return dec.length ? int + '.' + dec : int;
  }
  const fmtPrice = (v) => (isNum(v) ? trimDec(v.toFixed(8), 2) : '-');
  const fmtQty = (v) => (isNum(v) ? trimDec(v.toFixed(8), 0) : '-');
  const fmtPnl = (v) => (isNum(v) ? trimDec(v.toFixed(4), 2) : '-');
  const fmtInt = (v) => (isNum(v) ? String(Math.round(v)) : '-');
  function fmtNs(ns) {
    if (!isNum(ns)) return '-';
    const unit = (x, u) => (x < 100 ? x.toFixed(1) : x.toFixed(0)) + ' ' + u;
    if (ns < 1e3) return Math.round(ns) + ' ns';
    if (ns < 1e6) return unit(ns / 1e3, 'µs');
    return ns < 1e9 ? unit(ns / 1e6, 'ms') : unit(ns / 1e9, 's');
  }
  const fmtNsAxis = (ns) => fmtNs(ns).replace('.0 ', ' ').replace(' ', '');
  function fmtDuration(s) {
    if (!isNum(s) || s < 0) return '-';
    const t = Math.floor(s);
    const p = (n) => String(n).padStart(2, '0');
    return `${p(Math.floor(t / 3600))}:${p(Math.floor(t / 60) % 60)}:${p(t % 60)}`;
  }
  const fmtAge = (s) => (!isNum(s) ? '-' : s < 120 ? s.toFixed(1) + ' s' : fmtDuration(s));
  const fmtClock = (t) => new Date(t * 1000).toTimeString().slice(0, 8);
  const fmtBps = (mid, spread) => (isNum(mid) && isNum(spread) && mid > 0 ? (spread / mid * 1e4).toFixed(3) + ' bps' : '');
  // A [price, qty] pair (or {price, qty}) as {price, qty}, or null.
  function pair(v) {
    if (Array.isArray(v) && isNum(v[0])) return { price: v[0], qty: isNum(v[1]) ? v[1] : null };
    if (isObj(v) && isNum(v.price)) return { price: v.price, qty: isNum(v.qty) ? v.qty : null };
    return null;
  }
  const samePrice = (a, b) => Math.abs(a - b) <= 1e-9 * Math.max(1, Math.abs(a));
  const str = (v) => (v === undefined || v === null ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));

  // ---------- DOM helpers ----------

  function setText(el, text) {
    if (typeof el === 'string') el = $(el);
    if (el && el.textContent !== text) el.textContent = text;
  }
  // An element with a class and children (strings become text nodes).
  function h(tag, cls, ...kids) {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    for (const k of kids) if (k !== null && k !== undefined && k !== false) e.append(k instanceof Node ? k : String(k));
    return e;
  }
  function signed(id, v) {
    const el = $(id);
    el.classList.toggle('pos-val', isNum(v) && v > 0);
    el.classList.toggle('neg-val', isNum(v) && v < 0);
  }
  // True when the JSON of `value` changed since the last call for `key`.
  function changed(key, value) {
    let s;
    try { s = JSON.stringify(value === undefined ? null : value); } catch (e) { s = String(Math.random()); }
    if (state.renderKeys[key] === s) return false;
    state.renderKeys[key] = s;
    return true;
  }
  const bumpData = (name) => { document.body.dataset[name] = String((parseInt(document.body.dataset[name], 10) || 0) + 1); };

  // ---------- token ----------
  function readToken() {
    const m = /(?:^#|[#&])token=([^&]*)/.exec(location.hash || '');
    if (m) {
      let t = m[1];
      try { t = decodeURIComponent(t); } catch (e) { /* keep it raw */ }
      try { history.replaceState(null, '', location.pathname + location.search); } catch (e) { location.hash = ''; }
      if (t) { storeToken(t); return t; }
    }
    try { return sessionStorage.getItem(TOKEN_KEY) || null; } catch (e) { return null; }
  }
  function storeToken(t) {
    try { if (t) sessionStorage.setItem(TOKEN_KEY, t); else sessionStorage.removeItem(TOKEN_KEY); } catch (e) { /* private mode */ }
  }
  function showTokenForm(text, isError) {
    setText('token-message', text);
    $('token-message').classList.toggle('error', !!isError);
    $('token-overlay').hidden = false;
    $('token-input').value = '';
    setTimeout(() => $('token-input').focus(), 0);
  }
  function unauthorized() {
    if (!state.token) return;
    state.token = null;
    storeToken(null);
    stopStream();
    showTokenForm('The token was refused (401 Unauthorized): enter the control token again.', true);
  }

  // ---------- API ----------

  // {ok, status, data}; never throws. A 401 clears the token and asks again.
  async function api(method, path, body) {
    if (!state.token) return { ok: false, status: 401, data: { error: 'no token' } };
    const headers = { Authorization: 'Bearer ' + state.token, Accept: 'application/json' };
    const init = { method, headers, cache: 'no-store' };
    if (body !== undefined) [headers['Content-Type'], init.body] = ['application/json', JSON.stringify(body)];
    let res;
    try { res = await fetch(path, init); } catch (e) {
      return { ok: false, status: 0, data: { error: 'network error: ' + ((e && e.message) || e) } };
    }
    let data;
    let text = '';
    try { text = await res.text(); data = text ? JSON.parse(text) : {}; } catch (e) {
      data = { error: text || res.statusText || 'HTTP ' + res.status };
    }
    if (!isObj(data)) data = { value: data };
    if (res.status === 401) unauthorized();
    return { ok: res.ok, status: res.status, data };
  }
  const errorText = (r) => (r.data && typeof r.data.error === 'string' && r.data.error) || `HTTP ${r.status}`;

  function setMessage(text, ok) {
    Object.assign($('message'), { textContent: text, className: ok ? 'ok' : 'error', title: new Date().toLocaleTimeString() });
  }

  // ---------- stream ----------
  function connect() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    if (!state.token || state.ws) return;
    const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
    let ws;
    try { ws = new WebSocket(`${proto}//${location.host}/api/stream?token=${encodeURIComponent(state.token)}`); } catch (e) {
      return scheduleReconnect();
    }
    state.ws = ws;
    ws.onopen = () => {
      if (state.ws !== ws) return;
      state.wsOpen = true;
      state.backoff = 1000;
      renderConn();
      fetchEvents(); // what happened while it was down
    };
    ws.onmessage = (ev) => { if (state.ws === ws) onMessage(ev.data); };
    ws.onerror = () => { /* a close follows */ };
    ws.onclose = () => {
      if (state.ws !== ws) return;
      state.ws = null;
      state.wsOpen = false;
      renderConn();
      scheduleReconnect();
      poll(); // also finds out about a refused token (401)
    };
  }

  // 1 s, doubling to 10 s; reset when a connection opens.
  function scheduleReconnect() {
    if (!state.token) return;
    const delay = state.backoff;
    state.backoff = Math.min(delay * 2, 10000);
    state.nextTry = Date.now() + delay;
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = setTimeout(connect, delay);
    renderConn();
  }

  function stopStream() {
    clearTimeout(state.reconnectTimer);
    clearInterval(state.pollTimer);
    state.reconnectTimer = state.pollTimer = null;
    const ws = state.ws;
    [state.ws, state.wsOpen] = [null, false];
    try { if (ws) ws.close(); } catch (e) { /* already closed */ }
    renderConn();
  }

  function onMessage(raw) {
    let m = null;
    try { m = JSON.parse(raw); } catch (e) { /* not JSON: ignored */ }
    if (!isObj(m)) return;
    const d = isObj(m.data) ? m.data : null;
    // The latest-wins kinds carry the run's time now (events: their own time).
    if (['status', 'book', 'quote', 'latency', 'advice'].includes(m.kind) && isNum(m.t_s)) state.timeOffset = nowS() - m.t_s;
    try {
      switch (m.kind) {
        case 'status': if (!d) return; applyStatus(d); break;
        case 'book': if (!d) return; state.book = d; recordMid(); renderBook(); renderMarket(); break;
        case 'quote': state.quote = d; recordQuote(); renderQuote(); break;
        case 'latency': state.latency = d; recordLatency(); renderLatency(); break;
        case 'advice': state.advice = d; state.adviceAt = nowS(); renderAdvice(); break;
        case 'event': if (!d) return; addEvents([d], true); break;
        case 'alert': if (!d) return; addAlerts([Object.assign({ seq: m.seq, t_s: m.t_s }, d)]); break;
        default: return;
      }
    } catch (e) {
      console.warn('mmbot: could not apply a', m.kind, 'message:', e);
    }
    bumpData('updates');
    scheduleCharts();
  }

  // The fallback while the stream is down: GET /api/status (and new events).
  async function poll() {
    if (!state.token || state.wsOpen || state.polling) return;
    state.polling = true;
    try {
      const r = await api('GET', '/api/status');
      if (r.ok && !state.wsOpen) { applyStatus(r.data); bumpData('polls'); scheduleCharts(); }
      if (state.token && !state.wsOpen) await fetchEvents();
    } finally {
      state.polling = false;
    }
  }

  // GET /api/events: {oldest, next, entries: [{seq, t_s, kind: "event" | "alert", data}]}
  // (at most 1000 an answer: when more are waiting, the newest 1000 are read).
  async function fetchEvents() {
    let since = Math.max(0, state.lastSeq);
    let r = await api('GET', '/api/events?since=' + since);
    if (r.ok && isNum(r.data.next) && r.data.next - 1 - since > 1000) {
      since = r.data.next - 1 - 1000;
      r = await api('GET', '/api/events?since=' + since);
    }
    if (!r.ok) return;
    const list = Array.isArray(r.data) ? r.data : Array.isArray(r.data.entries) ? r.data.entries : [];
    const lines = (kind) => list.filter((x) => isObj(x) && (x.kind === kind) && isObj(x.data))
      .map((x) => Object.assign({ seq: x.seq, t_s: x.t_s }, x.data));
    addEvents(lines('event'), false);
    addAlerts(lines('alert'));
  }

  // ---------- state ----------
  function applyStatus(s) {
    if (!isObj(s)) return;
    state.status = s;
    if (isObj(s.book)) state.book = s.book;
    if ('quote' in s) state.quote = isObj(s.quote) ? s.quote : null;
    if (isObj(s.latency)) state.latency = s.latency;
    if ('advice' in s) [state.advice, state.adviceAt] = [isObj(s.advice) ? s.advice : null, nowS()];
    if (isNum(s.uptime_s)) state.timeOffset = nowS() - s.uptime_s;
    recordMid(); recordQuote(); recordLatency();
    const p = isObj(s.pnl) ? s.pnl : {};
    pnlS.push(nowS(), [orNaN(p.total), orNaN(s.position)]);
    renderAll();
  }

  // The book's mid and spread, or computed from its best levels.
  function bookNum(key) {
    const b = state.book || {};
    if (isNum(b[key])) return b[key];
    const bid = Array.isArray(b.bids) ? pair(b.bids[0]) : null;
    const ask = Array.isArray(b.asks) ? pair(b.asks[0]) : null;
    if (!bid || !ask) return NaN;
    return key === 'mid' ? (bid.price + ask.price) / 2 : ask.price - bid.price;
  }
  const currentMid = () => bookNum('mid');
  const currentSpread = () => bookNum('spread');

  const eventKey = (e) => (isNum(e.seq) ? 's' + e.seq : `t${e.t_s}|${e.kind}|${e.side}|${e.text}`);
  const eventOrder = (a, b) => (isNum(a.seq) && isNum(b.seq) ? b.seq - a.seq : (+b.t_s || 0) - (+a.t_s || 0));
  function addEvents(list, live) {
    let added = false;
    for (const e of list) {
      if (!isObj(e)) continue;
      const key = eventKey(e);
      if (state.eventKeys.has(key)) continue;
      state.eventKeys.add(key);
      if (isNum(e.seq)) state.lastSeq = Math.max(state.lastSeq, e.seq);
      state.events.push(e);
      added = true;
      if (e.kind === 'fill') addFillDot(e, live);
    }
    if (!added) return;
    state.events.sort(eventOrder);
    if (state.events.length > MAX_EVENTS) {
      state.events.length = MAX_EVENTS;
      state.eventKeys = new Set(state.events.map(eventKey));
    }
    renderEvents();
  }
  // Alerts share the events' numbering; shown with their wall-clock time.
  function addAlerts(list) {
    const seen = new Set(state.alerts.map((a) => a.seq).filter(isNum));
    const fresh = list.filter((a) => !isNum(a.seq) || !seen.has(a.seq));
    if (!fresh.length) return;
    for (const a of fresh) {
      if (isNum(a.seq)) state.lastSeq = Math.max(state.lastSeq, a.seq);
      const t = state.timeOffset !== null && isNum(a.t_s) ? state.timeOffset + a.t_s : nowS();
      state.alerts.push({ seq: a.seq, t, kind: a.kind, text: a.text });
    }
    state.alerts.sort((a, b) => b.t - a.t);
    if (state.alerts.length > MAX_ALERTS) state.alerts.length = MAX_ALERTS;
    renderAlerts();
  }

  // ---------- chart data ----------
  // Columns of values over time (wall seconds), the last WINDOW_S only.
  class Series {
    constructor(n) { this.t = []; this.v = Array.from({ length: n }, () => []); }
    push(t, vals) {
      const last = this.t.length - 1;
      if (last >= 0 && t - this.t[last] < MIN_STEP_S) {
        vals.forEach((x, i) => { this.v[i][last] = x; });
        return;
      }
      this.t.push(t);
      vals.forEach((x, i) => this.v[i].push(x));
      let k = 0;
      while (k < this.t.length && this.t[k] < t - WINDOW_S) k++;
      k = Math.max(k, this.t.length - MAX_POINTS);
      if (k > 0) { this.t.splice(0, k); this.v.forEach((a) => a.splice(0, k)); }
    }
    // Column i's value at t: the last one at or before t, else the first after.
    at(t, i) {
      const ts = this.t;
      let [lo, hi] = [0, ts.length - 1];
      if (hi < 0) return NaN;
      while (lo < hi) {
        const m = (lo + hi + 1) >> 1;
        if (ts[m] <= t) lo = m; else hi = m - 1;
      }
      for (let j = lo; j >= 0; j--) if (isNum(this.v[i][j])) return this.v[i][j];
      for (let j = lo + 1; j < ts.length; j++) if (isNum(this.v[i][j])) return this.v[i][j];
      return NaN;
    }
  }
  const midS = new Series(1);
  const quoteS = new Series(2);
  const pnlS = new Series(2);
  const latS = new Series(STAGES.length * 2);
  const dots = []; // fills: {t, y, side}

  const orNaN = (v) => (isNum(v) ? v : NaN);
  function recordMid() { if (isNum(currentMid())) midS.push(nowS(), [currentMid()]); }
  function recordQuote() { quoteS.push(nowS(), [orNaN((state.quote || {}).bid), orNaN((state.quote || {}).ask)]); }
  function recordLatency() {
    const l = state.latency || {};
    const ok = (v) => (isNum(v) && v > 0 ? v : NaN);
    latS.push(nowS(), STAGES.flatMap((st) => [ok(isObj(l[st]) && l[st].p50_ns), ok(isObj(l[st]) && l[st].p99_ns)]));
  }
  // A fill's dot sits at the mid of its time: the run's start plus its t_s
  // (now, for a streamed one, while that start is not known yet).
  function addFillDot(e, live) {
    const now = nowS();
    const known = state.timeOffset !== null && isNum(e.t_s);
    if (!known && !live) return;
    const t = known ? Math.min(state.timeOffset + e.t_s, now) : now;
    if (t < now - WINDOW_S) return;
    let y = midS.at(t, 0);
    if (!isNum(y)) {
      const m = /@\s*(-?\d+(?:\.\d+)?)/.exec(str(e.text));
      y = m ? parseFloat(m[1]) : NaN;
    }
    if (!isNum(y)) return;
    dots.push({ t, y, side: e.side === 'buy' ? 'buy' : 'sell' });
    while (dots.length > MAX_DOTS || (dots.length && dots[0].t < now - WINDOW_S)) dots.shift();
  }

  // ---------- rendering ----------
  function renderAll() {
    for (const f of [renderHeader, renderMarket, renderBook, renderQuote, renderLatency, renderAdvice, renderScript]) f();
  }

  function renderConn() {
    const live = state.wsOpen;
    setText('conn', live ? 'live' : 'offline');
    $('conn').className = 'badge conn ' + (live ? 'live' : 'offline');
    const secs = Math.max(0, Math.ceil((state.nextTry - Date.now()) / 1000));
    setText('conn-detail', live || !state.token ? '' : (state.reconnectTimer ? `retry in ${secs} s` : 'connecting') + ' · polling /api/status');
  }

  function renderHeader() {
    const s = state.status;
    if (!s) return;
    const title = typeof s.title === 'string' && s.title ? s.title : 'mmbot';
    setText('title', title);
    if (document.title !== title) document.title = title;
    const mode = typeof s.mode === 'string' && s.mode ? s.mode : '-';
    setText('mode', mode);
    $('mode').className = 'badge mode' + (/LIVE ORDERS|MAINNET/.test(mode) ? ' danger' : /TESTNET/.test(mode) ? ' warn' : '');
    const q = s.stopping ? 'stopping' : s.paused ? 'paused' : 'quoting';
    setText('quoting', q);
    $('quoting').className = 'badge quoting ' + (q === 'quoting' ? 'on' : q === 'paused' ? 'off' : 'stop');
    setText('uptime', fmtDuration(s.uptime_s));
    const f = s.feed;
    if (isObj(f) && changed('feed', f)) {
      const info = [];
      if (isNum(f.book_age_ms)) info.push(`book age ${Math.round(f.book_age_ms)} ms`);
      if (isNum(f.update_id)) info.push(`id ${f.update_id}`);
      if (isNum(f.connects)) info.push(`conns ${f.connects}`);
      if (isNum(f.disconnects) && f.disconnects > 0) info.push(`drops ${f.disconnects}`);
      $('feed').replaceChildren(
        h('span', f.connected ? 'good' : 'bad', f.connected ? 'feed connected' : 'feed RECONNECTING'), ' ',
        h('span', f.synced ? 'good' : 'bad', f.synced ? 'synced' : 'unsynced' + (f.unsynced_cause ? ` (${str(f.unsynced_cause)})` : '')), ' ',
        h('span', 'dim num', info.join(' · ')));
    }
  }

  function renderMarket() {
    const mid = currentMid();
    const spread = currentSpread();
    setText('mid', fmtPrice(mid));
    setText('spread', fmtPrice(spread));
    setText('spread-bps', fmtBps(mid, spread));
    const s = state.status;
    if (!s) return;
    setText('position', fmtQty(s.position));
    signed('position', s.position);
    const max = isObj(s.limits) && isNum(s.limits.max_position) ? s.limits.max_position : null;
    setText('max-position', max !== null ? 'of max ' + fmtQty(max) : '');
    const share = max && isNum(s.position) ? Math.max(-1, Math.min(1, s.position / max)) : 0;
    const fill = $('gauge-fill');
    fill.style.width = (Math.abs(share) * 50).toFixed(2) + '%';
    fill.style.left = share >= 0 ? '50%' : (50 + share * 50).toFixed(2) + '%';
    fill.classList.toggle('full', Math.abs(share) >= 0.999);
    const p = isObj(s.pnl) ? s.pnl : {};
    setText('pnl', fmtPnl(p.total));
    signed('pnl', p.total);
    setText('fees', fmtPnl(p.fees));
    setText('realized', fmtPnl(p.realized));
    signed('realized', p.realized);
    setText('volume', fmtPrice(p.volume));
    const c = isObj(s.counters) ? s.counters : {};
    for (const k of ['frames', 'quotes', 'fills', 'orders', 'cancels', 'pulled']) setText(k, fmtInt(c[k]));
    const more = [
      ['pulled stale', c.pulled_stale], ['pulled on sync loss', c.pulled_on_sync_loss], ['rejected', c.rejected],
      ['gaps', c.gaps], ['resyncs', c.resyncs], ['malformed', c.malformed], ['refused', c.refused],
      ['exchange rejects', c.exchange_rejects], ['unknown fates', c.unknown_fates],
    ].filter(([, v]) => isNum(v) && v !== 0).map(([k, v]) => `${k} ${v}`);
    setText('counters-more', more.length ? more.join(' · ') : 'no gaps, resyncs, rejects, refusals or unknown fates');
  }

  function renderQuote() {
    const q = state.quote;
    const o = (state.status && isObj(state.status.orders) && state.status.orders) || {};
    if (!changed('quote', [q, o])) return;
    const side = (cls, name, price, qty) =>
      h('div', 'line', h('span', cls, name + ' '), isNum(price) ? `${fmtQty(qty)} @ ${fmtPrice(price)}` : '-');
    const rows = [];
    if (q) {
      rows.push(side('side-bid', 'quote bid', q.bid, q.bid_qty), side('side-ask', 'quote ask', q.ask, q.ask_qty));
      if (isNum(q.bid) && isNum(q.ask)) rows.push(h('div', 'line dim', `quoted spread ${fmtPrice(q.ask - q.bid)}`));
    } else {
      rows.push(h('div', 'line dim', 'no quote out'));
    }
    const ob = pair(o.bid) || {};
    const oa = pair(o.ask) || {};
    rows.push(side('side-bid', 'working bid', ob.price, ob.qty), side('side-ask', 'working ask', oa.price, oa.qty));
    $('quote').replaceChildren(...rows);
  }

  // Up to LEVELS levels of a side, best first, with the own order merged in:
  // its level marked, or a row of its own (in price order) where no shown
  // level has its price. better(a, b): price a is nearer the mid.
  function sideRows(levels, own, better) {
    const shown = (Array.isArray(levels) ? levels : []).map(pair).filter(Boolean).slice(0, LEVELS);
    const out = shown.map((l) => ({ price: l.price, qty: l.qty, own: own && samePrice(own.price, l.price) ? own.qty : null }));
    if (own && !shown.some((l) => samePrice(l.price, own.price))) {
      if (out.length >= LEVELS) out.pop();
      let at = out.findIndex((l) => better(own.price, l.price));
      if (at < 0) at = out.length;
      out.splice(at, 0, { price: own.price, qty: null, own: own.qty, ownOnly: true });
    }
    return out;
  }

  function renderBook() {
    const b = state.book || {};
    const o = (state.status && isObj(state.status.orders) && state.status.orders) || {};
    const mid = currentMid();
    const spread = currentSpread();
    if (!changed('book', [b.bids, b.asks, mid, spread, o])) return;
    const asks = sideRows(b.asks, pair(o.ask), (a, l) => a < l);
    const bids = sideRows(b.bids, pair(o.bid), (a, l) => a > l);
    const maxQty = Math.max(1e-12, ...asks.concat(bids).map((l) => (isNum(l.qty) ? l.qty : 0)));
    const row = (l, cls) => {
      const mine = l.own !== null && l.own !== undefined;
      const q = h('td', 'qty', isNum(l.qty) ? fmtQty(l.qty) : '');
      if (isNum(l.qty)) q.style.setProperty('--w', (l.qty / maxQty * 100).toFixed(1) + '%');
      const tr = h('tr', cls + (mine ? ' own' : '') + (l.ownOnly ? ' own-only' : ''),
        h('td', null, fmtPrice(l.price)), q, h('td', null, mine ? `◀ own ${fmtQty(l.own)}` : ''));
      if (l.ownOnly) tr.title = 'own order at a price with no book level shown';
      return tr;
    };
    const rows = asks.slice().reverse().map((l) => row(l, 'ask'));
    rows.push(h('tr', 'midrow', h('td', null, 'mid ' + fmtPrice(mid)), h('td', null, 'spread ' + fmtPrice(spread)),
      h('td', null, fmtBps(mid, spread))));
    for (const l of bids) rows.push(row(l, 'bid'));
    if (!asks.length && !bids.length) {
      const td = h('td', null, 'no book yet');
      td.colSpan = 3;
      rows.push(h('tr', 'empty', td));
    }
    $('book').tBodies[0].replaceChildren(...rows);
    setText('book-depth', `top ${Math.max(asks.length, bids.length)} a side`);
  }

  function renderLatency() {
    const l = state.latency;
    if (!changed('latency', l)) return;
    const names = l ? STAGES.concat(Object.keys(l).filter((k) => !STAGES.includes(k))).filter((n) => isObj(l[n])) : [];
    $('latency').tBodies[0].replaceChildren(...names.map((n) => {
      const x = l[n];
      return h('tr', null, h('td', null, n), h('td', null, fmtInt(x.count)), h('td', null, fmtNs(x.p50_ns)),
        h('td', null, fmtNs(x.p99_ns)), h('td', null, fmtNs(x.p999_ns)));
    }));
    const t = (l && isObj(l.tick_to_quote) && l.tick_to_quote) || {};
    const samples = !isNum(t.count) || t.count > 0;
    setText('t2q-p50', samples ? fmtNs(t.p50_ns) : '-');
    setText('t2q-p99', samples ? fmtNs(t.p99_ns) : '-');
  }

  function renderAdvice() {
    const a = state.advice;
    if (changed('advice', a ? Object.assign({}, a, { age_s: null }) : null)) {
      if (!a) {
        $('advice').replaceChildren(h('div', 'dim', 'no advice (neutral)'));
      } else {
        const tags = h('div', 'tags', ...['spread', 'volatility', 'direction'].map((k) =>
          h('span', 'tag', h('b', null, k), str(a[k]) || '-')));
        const age = h('span', null, '-');
        age.id = 'advice-age';
        const parts = [tags, h('div', 'line num', `confidence ${isNum(a.confidence) ? a.confidence : '-'} · multiplier ×${
          isNum(a.multiplier) ? a.multiplier.toFixed(2) : '-'} · source ${str(a.source) || '-'} · age `, age)];
        const adv = a.advisor;
        if (isObj(adv)) {
          // Why: the model's reason and risk signals, or the offline rules' readings.
          if (typeof adv.last_reason === 'string' && adv.last_reason) {
            const reason = h('div', 'line', 'why: ' + adv.last_reason);
            reason.id = 'advice-reason';
            parts.push(reason);
          }
          if (Array.isArray(adv.last_risk_signals) && adv.last_risk_signals.length) {
            parts.push(h('div', 'line', 'risk signals: ' + adv.last_risk_signals.map(str).join(', ')));
          }
          const kv = Object.entries(adv).filter(([, v]) => v !== null && typeof v !== 'object').slice(0, 12)
            .map(([k, v]) => `${k} ${isNum(v) && !Number.isInteger(v) ? +v.toFixed(4) : v}`);
          if (kv.length) parts.push(h('div', 'line dim', 'advisor: ' + kv.join(' · ')));
          if (typeof adv.last_error === 'string' && adv.last_error) parts.push(h('div', 'error-box', 'advisor error: ' + adv.last_error));
        }
        $('advice').replaceChildren(...parts);
      }
    }
    updateAdviceAge();
  }
  function updateAdviceAge() {
    const a = state.advice;
    const el = $('advice-age');
    if (el && a) setText(el, isNum(a.age_s) ? fmtAge(a.age_s + Math.max(0, nowS() - state.adviceAt)) : '-');
  }

  function renderScript() {
    const sc = state.status ? state.status.script : null;
    if (!changed('script', sc)) return;
    if (!isObj(sc) || !sc.active) {
      $('script').replaceChildren(h('div', 'dim', 'native strategy (no script)'));
      return;
    }
    const hash = typeof sc.hash === 'number' ? sc.hash.toString(16) : str(sc.hash);
    const stat = (name, v, bad) => h('span', bad && isNum(v) && v > 0 ? 'neg-val' : '', `${name} ${fmtInt(v)}`);
    // replaceChildren would print a null as text: leave absent parts out.
    $('script').replaceChildren(...[
      h('div', 'line', h('b', null, str(sc.file) || '(script)'), ' ', hash && h('span', 'dim num', 'fnv1a ' + hash.slice(0, 8)), ' · ',
        h('span', sc.compiled ? 'ok-text' : '', sc.compiled ? 'compiled' : 'interpreted')),
      h('div', 'line num', stat('calls', sc.calls), ' · ', stat('errors', sc.errors, true), ' · ',
        stat('bad outputs', sc.bad_outputs, true), ' · ', stat('reverts', sc.reverts, true)),
      sc.last_error && h('div', 'error-box', 'last error: ' + str(sc.last_error)),
      sc.last_event && h('div', 'line dim', 'last: ' + str(sc.last_event))].filter(Boolean));
  }

  function renderEvents() {
    $('events').replaceChildren(...state.events.map((e) => {
      const kind = str(e.kind) || 'event';
      const cls = kind === 'fill' ? (e.side === 'buy' ? 'ev-buy' : 'ev-sell') : 'ev-' + kind.replace(/[^a-z0-9_-]/gi, '');
      return h('li', cls, h('span', 't', isNum(e.t_s) ? e.t_s.toFixed(1) + ' s' : ''),
        h('span', 'k', kind === 'fill' && e.side ? `fill ${str(e.side)}` : kind), str(e.text));
    }));
    const fills = state.events.filter((e) => e.kind === 'fill');
    const buys = fills.filter((e) => e.side === 'buy').length;
    setText('events-summary', `newest first · ${state.events.length} shown · ${buys} buys, ${fills.length - buys} sells`);
  }

  function renderAlerts() {
    $('alerts').replaceChildren(...state.alerts.map((a) =>
      h('li', null, h('span', 't', fmtClock(a.t)), h('span', 'k', str(a.kind) || 'alert'), str(a.text))));
  }

  // ---------- charts ----------
  function linTicks(lo, hi, count) {
    const raw = (hi - lo) / Math.max(1, count);
    const mag = Math.pow(10, Math.floor(Math.log10(raw)));
    const n = raw / mag;
    const step = (n <= 1 ? 1 : n <= 2 ? 2 : n <= 2.5 ? 2.5 : n <= 5 ? 5 : 10) * mag;
    const ticks = [];
    for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) ticks.push(v);
    const dec = Math.min(8, Math.max(0, -Math.floor(Math.log10(step) + 1e-9) + (n > 2 && n <= 2.5 ? 1 : 0)));
    return { ticks, fmt: (v) => (Math.abs(v) < step / 1e6 ? 0 : v).toFixed(dec) };
  }
  // [lo, hi] of the finite values (log10 of the positive ones when log).
  function range(vals, log) {
    let [lo, hi] = [Infinity, -Infinity];
    for (const v of vals) {
      if (!isNum(v) || (log && v <= 0)) continue;
      const x = log ? Math.log10(v) : v;
      if (x < lo) lo = x;
      if (x > hi) hi = x;
    }
    if (lo === Infinity) return null;
    if (log) return [Math.floor(lo), Math.max(Math.ceil(hi), Math.floor(lo) + 1)];
    const pad = hi - lo < 1e-12 ? (hi !== 0 ? Math.abs(hi) * 1e-3 : 1) : (hi - lo) * 0.08;
    return [lo - pad, hi + pad];
  }
  // Sizes the canvas for its CSS box and devicePixelRatio; a cleared context.
  function setupCanvas(c) {
    const r = c.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, Math.round(r.width * dpr));
    const hh = Math.max(1, Math.round(r.height * dpr));
    if (c.width !== w || c.height !== hh) { c.width = w; c.height = hh; }
    const ctx = c.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, r.width, r.height);
    return { ctx, w: r.width, h: r.height };
  }
  function hline(ctx, x0, x1, y, color) {
    ctx.strokeStyle = color;
    ctx.beginPath(); ctx.moveTo(x0, y); ctx.lineTo(x1, y); ctx.stroke();
  }

  // opt.lines: [{s: Series, i: column, color, axis: 'l' | 'r', dash, width}];
  // opt.dots: fills; opt.log: log10 y axis in ns; opt.zero: a zero line.
  function drawChart(canvas, opt) {
    if (!canvas || canvas.offsetParent === null) return;
    const { ctx, w, h: H } = setupCanvas(canvas);
    if (w < 40 || H < 30) return;
    ctx.font = '10px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.textBaseline = 'middle';
    const tMax = nowS();
    const tFirst = Math.min(...opt.lines.map((l) => (l.s.t.length ? l.s.t[0] : Infinity)));
    if (tFirst === Infinity) {
      Object.assign(ctx, { fillStyle: '#7d8896', textAlign: 'center' });
      return ctx.fillText('waiting for data', w / 2, H / 2);
    }
    const tMin = Math.min(Math.max(tFirst, tMax - WINDOW_S), tMax - 30);
    const axes = {};
    for (const side of ['l', 'r']) {
      const ls = opt.lines.filter((l) => (l.axis || 'l') === side);
      let vals = ls.flatMap((l) => l.s.v[l.i].filter((_, k) => l.s.t[k] >= tMin));
      if (side === 'l' && opt.dots) vals = vals.concat(opt.dots.filter((d) => d.t >= tMin).map((d) => d.y));
      const r = range(vals, opt.log);
      if (r) axes[side] = r;
    }
    const [padL, padR, padT, padB] = [62, opt.lines.some((l) => l.axis === 'r') ? 58 : 10, 6, 16];
    const [pw, ph] = [w - padL - padR, H - padT - padB];
    const X = (t) => padL + (t - tMin) / (tMax - tMin) * pw;
    const Y = (side, v) => {
      const [lo, hi] = axes[side];
      return padT + (1 - ((opt.log ? Math.log10(v) : v) - lo) / (hi - lo)) * ph;
    };
    ctx.lineWidth = 1;
    for (const side of Object.keys(axes)) {
      const [lo, hi] = axes[side];
      let ticks, fmt;
      if (opt.log) {
        ticks = [];
        for (let e = Math.ceil(lo); e <= Math.floor(hi); e++) ticks.push(Math.pow(10, e));
        fmt = fmtNsAxis;
      } else {
        ({ ticks, fmt } = linTicks(lo, hi, Math.max(2, Math.floor(ph / 28))));
      }
      ctx.textAlign = side === 'l' ? 'right' : 'left';
      for (const v of ticks) {
        const y = Math.round(Y(side, v)) + 0.5;
        if (side === 'l') hline(ctx, padL, w - padR, y, '#232a33');
        ctx.fillStyle = side === 'l' ? '#7d8896' : opt.colorR || '#7d8896';
        ctx.fillText(fmt(v), side === 'l' ? padL - 4 : w - padR + 4, y);
      }
      if (opt.zero && side === 'l' && lo < 0 && hi > 0) hline(ctx, padL, w - padR, Math.round(Y(side, 0)) + 0.5, '#4a525e');
    }
    // The time axis: wall-clock labels.
    const span = tMax - tMin;
    const step = [5, 10, 15, 30, 60, 120, 300, 600].find((s) => span / s <= Math.max(2, pw / 80)) || 600;
    ctx.textAlign = 'center';
    for (let t = Math.ceil(tMin / step) * step; t <= tMax; t += step) {
      const x = Math.round(X(t)) + 0.5;
      ctx.strokeStyle = '#1d232b';
      ctx.beginPath(); ctx.moveTo(x, padT); ctx.lineTo(x, padT + ph); ctx.stroke();
      ctx.fillStyle = '#7d8896';
      ctx.fillText(fmtClock(t), Math.min(Math.max(x, padL + 24), w - padR - 24), H - padB / 2);
    }
    ctx.strokeStyle = '#2a313c';
    ctx.strokeRect(padL + 0.5, padT + 0.5, pw, ph);
    ctx.save();
    ctx.beginPath(); ctx.rect(padL, padT, pw, ph); ctx.clip();
    ctx.lineJoin = 'round';
    for (const l of opt.lines) {
      const side = l.axis || 'l';
      if (!axes[side]) continue;
      const [ts, vs] = [l.s.t, l.s.v[l.i]];
      Object.assign(ctx, { strokeStyle: l.color, lineWidth: l.width || 1.5 });
      ctx.setLineDash(l.dash ? [4, 3] : []);
      ctx.beginPath();
      let pen = false; // a gap (NaN: no quote on that side) lifts the pen
      for (let k = 0; k < ts.length; k++) {
        const v = vs[k];
        if (ts[k] < tMin - 1 || !isNum(v) || (opt.log && v <= 0)) { pen = false; continue; }
        if (pen) ctx.lineTo(X(ts[k]), Y(side, v)); else ctx.moveTo(X(ts[k]), Y(side, v));
        pen = true;
      }
      ctx.stroke();
    }
    ctx.setLineDash([]);
    if (opt.dots && axes.l) {
      ctx.strokeStyle = '#0e1116';
      for (const d of opt.dots) {
        if (d.t < tMin) continue;
        ctx.fillStyle = d.side === 'buy' ? '#3fb950' : '#f85149';
        ctx.beginPath(); ctx.arc(X(d.t), Y('l', d.y), 4, 0, Math.PI * 2); ctx.fill(); ctx.stroke();
      }
    }
    ctx.restore();
  }

  function drawCharts() {
    drawChart($('chart-mid'), { dots, lines: [{ s: midS, i: 0, color: '#e6edf3' },
      { s: quoteS, i: 0, color: '#3fb950', width: 1.2 }, { s: quoteS, i: 1, color: '#f85149', width: 1.2 }] });
    drawChart($('chart-pnl'), { zero: true, colorR: '#a371f7',
      lines: [{ s: pnlS, i: 1, color: '#a371f7', axis: 'r' }, { s: pnlS, i: 0, color: '#f2cc60' }] }); // pnl on top
    drawChart($('chart-latency'), {
      lines: STAGES.flatMap((st, k) => [
        { s: latS, i: 2 * k, color: STAGE_COLORS[st], width: 1.4 },
        { s: latS, i: 2 * k + 1, color: STAGE_COLORS[st], width: 1, dash: true },
      ]),
      log: true,
    });
  }

  // One redraw per frame at most (and a timer, where frames do not come).
  let chartsPending = false;
  function scheduleCharts() {
    if (chartsPending) return;
    chartsPending = true;
    const run = () => {
      if (!chartsPending) return;
      chartsPending = false;
      try { drawCharts(); } catch (e) { console.warn('mmbot: chart', e); }
    };
    requestAnimationFrame(run);
    setTimeout(run, 300);
  }

  // ---------- controls ----------
  // What an accepted action changed, shown before the next status says so.
  function setLocally(paused, stopping) {
    if (!state.status) return;
    if (typeof paused === 'boolean') state.status.paused = paused;
    if (stopping) state.status.stopping = true;
    renderHeader();
  }

  // Runs fn with the button disabled meanwhile.
  function onClick(id, fn) {
    const btn = $(id);
    btn.addEventListener('click', async () => {
      btn.disabled = true;
      try { await fn(); } finally { btn.disabled = false; }
    });
  }

  // POST path {"who": "web"}; only stop passes confirmText (pause, resume
  // and cancel-all never open a dialog).
  function bindAction(id, path, ok, confirmText) {
    onClick(id, async () => {
      if (confirmText && !window.confirm(confirmText)) return;
      const r = await api('POST', path, { who: 'web' });
      if (r.ok) setMessage(ok(r.data), true);
      else if (r.status !== 401) setMessage(errorText(r), false);
    });
  }

  function bindControls() {
    bindAction('btn-pause', '/api/pause', (d) => (setLocally(d.paused !== false), 'paused: quotes pulled, none made until resumed'));
    bindAction('btn-resume', '/api/resume', (d) => (setLocally(d.paused === true), 'resumed: quoting'));
    bindAction('btn-cancel', '/api/cancel-all', (d) =>
      (setLocally(true), `cancel all: paused, ${isNum(d.working) ? d.working : '?'} orders still working`));
    bindAction('btn-stop', '/api/stop', () => (setLocally(undefined, true), 'stopping: quotes pulled, orders cancelled, the report written'), 'Stop the run? Quotes are pulled, orders cancelled and the report written; it cannot be resumed from here.');
    onClick('script-reload', async () => {
      const r = await api('POST', '/api/script/reload', { who: 'web' });
      if (r.ok) setMessage('script reload requested: the outcome comes as an event', true);
      else if (r.status !== 401) setMessage(errorText(r), false);
    });
    onClick('script-save', async () => {
      const src = $('script-source').value;
      const box = $('script-save-error');
      if (!src.trim()) return setMessage('the script source is empty: nothing saved', false);
      const r = await api('PUT', '/api/script', { source: src });
      if (r.ok) {
        box.hidden = true;
        setMessage('script saved: it passed the reload check; the watcher loads it', true);
      } else if (r.status !== 401) {
        box.textContent = (r.status === 422 ? 'refused (422): ' : `HTTP ${r.status}: `) + errorText(r);
        box.hidden = false;
        setMessage(errorText(r), false);
      }
    });
  }

  // ---------- params ----------
  function paramField(id, name, value, hint, text) {
    const input = h('input');
    Object.assign(input, { id, name }, text ? { type: 'text', inputMode: 'decimal' } : { type: 'number', step: 'any' });
    input.value = str(value);
    input.dataset.orig = input.value;
    const label = h('label', null, name);
    label.htmlFor = id;
    const f = h('div', 'field', label, input, hint && h('span', 'hint', hint));
    input.addEventListener('input', () => f.classList.toggle('changed', input.value.trim() !== input.dataset.orig));
    return f;
  }

  async function loadParams() {
    const r = await api('GET', '/api/params');
    if (!r.ok) {
      if (r.status !== 401) $('params-fields').replaceChildren(h('span', 'neg-val small', 'could not load the parameters: ' + errorText(r)));
      return;
    }
    const d = r.data;
    const params = isObj(d.params) ? d.params : {};
    const bounds = isObj(d.bounds) ? d.bounds : {};
    const hint = (k, dflt) => (Array.isArray(bounds[k]) && bounds[k].length === 2 ? `bounds [${bounds[k][0]}, ${bounds[k][1]}]` : dflt);
    const fields = Object.keys(params).sort().map((k) => paramField('param-' + k, k, isNum(params[k]) ? params[k] : '', hint(k, '')));
    fields.push(paramField('target_spread_pct', 'target_spread_pct', d.target_spread_pct, hint('target_spread_pct', '0 to 50 (% of mid)')));
    fields.push(paramField('min_order_size', 'min_order_size', d.min_order_size, hint('min_order_size', 'a decimal above 0'), true));
    $('params-fields').replaceChildren(...fields);
  }

  // The body of POST /api/params: the changed values only; {bad} when one is not a number.
  function paramsBody() {
    const [body, params, bad] = [{}, {}, []];
    for (const input of $('params-fields').querySelectorAll('input')) {
      const v = input.value.trim();
      const orig = input.dataset.orig.trim();
      if (v === orig) continue;
      if (input.id === 'min_order_size') {
        if (v === '') bad.push('min_order_size: empty'); else body.min_order_size = v;
        continue;
      }
      const x = Number(v);
      if (v === '' || !Number.isFinite(x)) bad.push(`${input.name}: not a number`);
      else if (orig !== '' && x === Number(orig)) continue;
      else if (input.id === 'target_spread_pct') body.target_spread_pct = x;
      else params[input.name] = x;
    }
    if (Object.keys(params).length) body.params = params;
    return { body, bad };
  }

  function bindParams() {
    $('params-reset').addEventListener('click', () => $('params-fields').querySelectorAll('input').forEach((input) => {
      input.value = input.dataset.orig;
      input.parentElement.classList.remove('changed');
    }));
    const result = (cls, lines) => $('params-result').replaceChildren(...lines.map((l) => h('li', cls, l)));
    $('params-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const { body, bad } = paramsBody();
      if (bad.length) return result('error', bad), setMessage(bad.join('; '), false);
      if (!Object.keys(body).length) return result(null, ['nothing changed']), setMessage('params: nothing changed', true);
      body.who = 'web';
      const btn = $('params-apply');
      btn.disabled = true;
      try {
        const r = await api('POST', '/api/params', body);
        if (r.ok) {
          const applied = Array.isArray(r.data.applied) ? r.data.applied.map(str) : [];
          result('ok', applied.length ? applied : ['applied (no change reported)']);
          setMessage(applied.length ? 'applied: ' + applied.join('; ') : 'params applied', true);
          await loadParams();
        } else if (r.status !== 401) {
          result('error', [errorText(r)]);
          setMessage(errorText(r), false);
        }
      } finally {
        btn.disabled = false;
      }
    });
  }

  // ---------- start ----------
  function start() {
    $('token-overlay').hidden = true;
    stopStream();
    state.backoff = 1000;
    connect();
    poll();
    loadParams();
    fetchEvents();
    state.pollTimer = setInterval(poll, POLL_MS);
    renderConn();
  }

  function init() {
    document.body.dataset.updates = '0';
    for (const f of [bindControls, bindParams, renderBook, renderEvents, renderAlerts]) f();
    $('token-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const t = $('token-input').value.trim();
      if (!t) return;
      state.token = t;
      storeToken(t);
      start();
    });
    window.addEventListener('resize', scheduleCharts);
    if (window.ResizeObserver) {
      const ro = new ResizeObserver(scheduleCharts);
      for (const id of ['chart-mid', 'chart-pnl', 'chart-latency']) ro.observe($(id));
    }
    setInterval(() => { renderConn(); updateAdviceAge(); scheduleCharts(); }, 1000);
    state.token = readToken();
    if (state.token) start();
    else showTokenForm('Enter the control token (mmbot prints it at start, or it is in $MMBOT_CONTROL_TOKEN).', false);
    renderConn();
    scheduleCharts();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();

// fieldmesh web UI: plain JavaScript, no framework, no build step, no network
// beyond this node. The API is specified in proto/http.md.
//
// Rules kept here: message text only ever goes into textContent (never HTML);
// the document title carries counts at most, never text; when the node is
// locked every message element is removed, not hidden.
"use strict";

const TOKEN_KEY = "fieldmesh-token";
// Without keyboard or pointer use for this long, the page hides its messages
// (a laptop left open in a tent); `#…&idle_ms=N` in the URL overrides it.
const IDLE_MS = 5 * 60 * 1000;
const SEEN_KEY = "fieldmesh-seen";

// The token arrives in the URL fragment once; keep it for this tab only and
// take it out of the address bar so it is not on screen or in bookmarks.
function takeToken() {
  const m = /(?:^#|&)token=([0-9a-f]{64})/.exec(location.hash);
  if (m) {
    sessionStorage.setItem(TOKEN_KEY, m[1]);
    history.replaceState(null, "", location.pathname);
  }
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

function idleLimit() {
  const m = /(?:^#|&)idle_ms=(\d+)/.exec(location.hash);
  return m ? Number(m[1]) : IDLE_MS;
}

const IDLE_LIMIT = idleLimit();
const state = {
  token: takeToken(),
  me: "",
  channel: null, // the channel shown
  channels: new Map(), // name -> {messages, unread, p1}
  seen: JSON.parse(sessionStorage.getItem(SEEN_KEY) || "{}"), // name -> sent_at_ms
  defaults: null,
  locked: false,
  idle: false,
  loaded: false, // start() has finished once
  alerts: false, // browser notifications for P1s from others
  lastUse: Date.now(),
  pending: null, // message id awaiting transcribe confirmation
  events: null,
};

const $ = (id) => document.getElementById(id);
const NO_TOKEN =
  "This page has no valid access token (the node may have restarted): open the URL that `fieldmesh up` printed.";

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

async function api(method, path, body) {
  const opts = { method, headers: { Authorization: "Bearer " + state.token } };
  if (body !== undefined) {
    opts.headers["Content-Type"] = "application/json";
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(path, opts);
  const data = await res.json().catch(() => ({}));
  if (!res.ok) {
    const e = data.error || { code: "internal", message: res.statusText };
    if (e.code === "locked") showLocked(true);
    if (e.code === "unauthorized") alertUser(NO_TOKEN);
    throw new ApiError(res.status, e.code, e.message);
  }
  return { data, res };
}

function alertUser(text) {
  const a = $("alert");
  a.textContent = text;
  a.hidden = !text;
}

function announce(text) {
  $("announce").textContent = text;
}

// ---- formatting -----------------------------------------------------------

function shortId(peer) {
  return peer === state.me ? "you" : "…" + peer.slice(-6);
}

function duration(ms) {
  if (ms <= 0) return "expired";
  const s = Math.floor(ms / 1000);
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d > 0) return `${d}d ${h}h`;
  if (h > 0) return `${h}h ${String(m).padStart(2, "0")}m`;
  return `${m}m ${String(s % 60).padStart(2, "0")}s`;
}

function el(tag, cls, text) {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
}

// ---- title and counts -------------------------------------------------------

function updateTitle() {
  let unread = 0;
  for (const c of state.channels.values()) unread += c.unread;
  // Counts only: the title shows on task bars and lock screens.
  document.title = unread > 0 ? `(${unread}) fieldmesh` : "fieldmesh";
}

function renderChannels() {
  const list = $("channel-list");
  // Redrawn on every new message: keep keyboard focus on the same channel.
  const focused = list.contains(document.activeElement) ? document.activeElement.dataset.channel : null;
  list.replaceChildren();
  for (const [name, c] of state.channels) {
    const b = el("button");
    b.type = "button";
    b.dataset.channel = name;
    if (name === state.channel) b.setAttribute("aria-current", "true");
    b.append(el("span", "name", "#" + name));
    if (c.p1 > 0) {
      const p1 = el("span", "badge p1", `P1 ${c.p1}`);
      p1.title = `${c.p1} P1 messages`;
      b.append(p1);
    }
    if (c.unread > 0 && name !== state.channel) {
      const u = el("span", "unread", String(c.unread));
      u.title = `${c.unread} unread`;
      b.append(u);
    }
    let label = `#${name}, ${c.messages} messages`;
    if (c.unread > 0 && name !== state.channel) label += `, ${c.unread} unread`;
    if (c.p1 > 0) label += `, ${c.p1} P1`;
    b.setAttribute("aria-label", label);
    b.addEventListener("click", () => openChannel(name));
    const li = el("li");
    li.append(b);
    list.append(li);
    if (name === focused) b.focus();
  }
  updateTitle();
}

async function loadChannels() {
  const seen = Object.entries(state.seen).map(([c, ms]) => `${c}:${ms}`).join(",");
  const { data } = await api("GET", "/api/channels?seen=" + seen);
  state.channels = new Map(data.map((c) => [c.name, c]));
  renderChannels();
  if (!state.channel && data.length > 0) {
    const first = data.find((c) => c.name === "triage") || data[0];
    await openChannel(first.name);
  }
}

function markSeen(sentAt) {
  const prev = state.seen[state.channel] || 0;
  if (sentAt > prev) {
    state.seen[state.channel] = sentAt;
    sessionStorage.setItem(SEEN_KEY, JSON.stringify(state.seen));
  }
  const c = state.channels.get(state.channel);
  if (c) c.unread = 0;
}

// ---- messages ---------------------------------------------------------------

function messageItem(m) {
  const li = el("li", "message " + m.priority);
  li.dataset.id = m.id;
  li.dataset.sent = m.sent_at_ms;
  li.dataset.expires = Date.now() + m.remaining_ms;
  const ex = m.exercise ? "EXERCISE " : "";
  li.setAttribute("aria-label", `${ex}${m.priority.toUpperCase()} message from ${shortId(m.author)}`);
  const meta = el("div", "meta");
  if (m.exercise) meta.append(el("span", "badge exercise", "EXERCISE"));
  meta.append(el("span", "badge " + m.priority, m.priority.toUpperCase()));
  const author = el("span", "author", shortId(m.author));
  author.title = m.author;
  meta.append(author);
  const sent = el("time", "sent", new Date(m.sent_at_ms).toLocaleTimeString());
  sent.dateTime = m.sent_at;
  meta.append(sent);
  meta.append(el("span", "ttl", "expires in " + duration(m.remaining_ms)));
  meta.append(el("span", "held", `held by ${m.held_by.length}`));
  const actions = el("span", "actions");
  const t = el("button", "secondary transcribe", "Transcribe…");
  t.type = "button";
  t.setAttribute("aria-label", `Transcribe and delete this ${m.priority.toUpperCase()} message`);
  t.addEventListener("click", () => askTranscribe(m.id));
  actions.append(t);
  meta.append(actions);
  li.append(meta, el("p", "body", m.text));
  return li;
}

function insertMessage(m) {
  const list = $("messages");
  if (list.querySelector(`[data-id="${m.id}"]`)) return;
  const item = messageItem(m);
  const after = [...list.children].find((c) => Number(c.dataset.sent) > m.sent_at_ms);
  list.insertBefore(item, after || null);
  $("empty").hidden = true;
  if (!after) item.scrollIntoView({ block: "nearest" });
}

function removeMessages(ids) {
  let removed = false;
  for (const id of ids) {
    const item = $("messages").querySelector(`[data-id="${id}"]`);
    if (item) {
      if (item.contains(document.activeElement)) $("main").focus();
      item.remove();
      removed = true;
    }
  }
  $("empty").hidden = $("messages").children.length > 0;
  return removed;
}

async function openChannel(name) {
  state.channel = name;
  $("channel-title").textContent = "#" + name;
  showView("channels");
  // Every unexpired message (up to the API's cap), so no P1 is left out.
  const { data } = await api("GET", `/api/channels/${encodeURIComponent(name)}/messages?limit=10000`);
  if (state.channel !== name) return; // another channel was opened meanwhile
  $("messages").replaceChildren(...data.map(messageItem));
  $("empty").hidden = data.length > 0;
  markSeen(data.length ? data[data.length - 1].sent_at_ms : 0);
  fillTtl();
  renderChannels();
  const last = $("messages").lastElementChild;
  if (last) last.scrollIntoView({ block: "nearest" });
}

function tick() {
  const now = Date.now();
  // A copy: expired items are removed while walking.
  for (const item of [...$("messages").children]) {
    const left = Number(item.dataset.expires) - now;
    if (left <= 0) {
      removeMessages([item.dataset.id]);
    } else {
      const ttl = item.querySelector(".ttl");
      const text = "expires in " + duration(left);
      if (ttl.textContent !== text) ttl.textContent = text; // most change once a minute
    }
  }
}

// ---- compose ----------------------------------------------------------------

function fillTtl() {
  const d = state.defaults;
  if (!d) return;
  const ms = d.channels[state.channel] || d.default_ttl_ms;
  $("ttl").value = Math.max(1, Math.round(ms / 60000));
  $("ttl").max = Math.floor(d.max_ttl_ms / 60000);
  $("ttl-max").textContent = `team maximum ${duration(d.max_ttl_ms)}`;
}

async function send(ev) {
  ev.preventDefault();
  const text = $("text").value;
  if (!text.trim() || !state.channel) return;
  $("send").disabled = true;
  try {
    const { data } = await api("POST", `/api/channels/${encodeURIComponent(state.channel)}/messages`, {
      text,
      priority: $("priority").value,
      ttl_ms: Math.round(Number($("ttl").value) * 60000),
    });
    addMessage(data.message);
    $("text").value = "";
    // Back to the default, so a follow-up is not raised to P1 by accident.
    $("priority").value = state.defaults ? state.defaults.default_priority : "p3";
    alertUser("");
    announce(`Sent ${data.message.priority.toUpperCase()} message to #${state.channel}`);
  } catch (e) {
    alertUser("Not sent: " + e.message);
  } finally {
    $("send").disabled = false;
    $("text").focus();
  }
}

// ---- transcribe ---------------------------------------------------------------

function askTranscribe(id) {
  state.pending = id;
  $("confirm").returnValue = "";
  $("confirm").showModal();
}

async function transcribe(id, format) {
  try {
    const { data, res } = await api("POST", `/api/messages/${id}/transcribe`, { format });
    const disp = res.headers.get("Content-Disposition") || "";
    const name = (/filename="([^"]+)"/.exec(disp) || [])[1] || `fieldmesh-${id.slice(0, 12)}.json`;
    const url = URL.createObjectURL(new Blob([JSON.stringify(data, null, 2)], { type: "application/json" }));
    const a = el("a");
    a.href = url;
    a.download = name;
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
    removeMessages([id]);
    announce("Transcribed; the message is being deleted everywhere");
    loadChannels().catch(() => {});
  } catch (e) {
    alertUser("Not transcribed: " + e.message);
  }
}

// ---- peers, status, lock --------------------------------------------------------

async function loadPeers() {
  const { data } = await api("GET", "/api/peers");
  $("peer-count").textContent = String(data.length);
  const rows = data.map((p) => {
    const tr = el("tr");
    const id = el("td", "", shortId(p.peer_id));
    id.title = p.peer_id;
    tr.append(id, el("td", "", p.agent || "—"), el("td", "", p.transports.join(", ").toUpperCase()), el("td", "", p.addrs.join(" ")));
    return tr;
  });
  $("peer-rows").replaceChildren(...rows);
  $("no-peers").hidden = data.length > 0;
}

async function loadStatus() {
  const { data } = await api("GET", "/api/status");
  state.me = data.peer_id;
  const name = data.name ? `${data.name} · ` : "";
  const peers = data.peers === 1 ? "1 peer" : `${data.peers} peers`;
  const line = `${name}node …${data.peer_id.slice(-6)} · team ${data.team} · ${peers}`;
  if ($("node").textContent !== line) $("node").textContent = line;
  $("peer-count").textContent = String(data.peers);
  const wasLocked = state.locked;
  showLocked(data.locked);
  // Unlocked elsewhere (the CLI, another tab): load everything again.
  if (wasLocked && !data.locked) setTimeout(() => start().catch(() => {}), 0);
  return data;
}

function showView(which) {
  const peers = which === "peers";
  $("peers-view").hidden = !peers;
  $("channel-view").hidden = peers;
  $("show-peers").setAttribute("aria-pressed", String(peers));
  $("show-channels").setAttribute("aria-pressed", String(!peers));
}

function showLocked(locked) {
  if (locked && !state.locked) {
    if ($("confirm").open) $("confirm").close("cancel");
    // Remove, not hide: nothing of the messages stays in the page.
    $("messages").replaceChildren();
    $("text").value = ""; // a draft can hold patient details too
    $("channel-list").replaceChildren();
    $("peer-rows").replaceChildren();
    state.channels = new Map();
    state.channel = null;
    updateTitle();
    setTimeout(() => $("passphrase").focus(), 0); // once the form is shown
  }
  state.locked = locked;
  $("locked").hidden = !locked;
  showContent();
  $("lock").hidden = locked;
  $("show-channels").disabled = locked;
  $("show-peers").disabled = locked;
}

// The messages are shown only when the node is unlocked and the page in use.
function showContent() {
  $("app").hidden = state.locked || state.idle;
  $("idle").hidden = state.locked || !state.idle;
}

function used() {
  state.lastUse = Date.now();
  if (state.idle) {
    state.idle = false;
    showContent();
  }
}

function checkIdle() {
  if (!state.idle && Date.now() - state.lastUse >= IDLE_LIMIT) {
    if ($("confirm").open) $("confirm").close("cancel");
    state.idle = true;
    showContent();
  }
}

async function unlock(ev) {
  ev.preventDefault();
  try {
    await api("POST", "/api/unlock", { passphrase: $("passphrase").value });
    $("passphrase").value = "";
    alertUser("");
    showLocked(false);
    await start();
  } catch (e) {
    alertUser(e.code === "wrong_passphrase" ? "Wrong passphrase." : "Not unlocked: " + e.message);
  }
}

// ---- live events ------------------------------------------------------------------

// Shows a new message (from the stream or our own send's answer, whichever
// comes first) and counts it once. Returns whether it was new to the page.
function addMessage(m) {
  const c = state.channels.get(m.channel);
  if (m.channel === state.channel) {
    if ($("messages").querySelector(`[data-id="${m.id}"]`)) return false;
    insertMessage(m);
    markSeen(m.sent_at_ms);
  } else if (c) {
    c.unread += 1;
  }
  if (c) {
    c.messages += 1;
    if (m.priority === "p1") c.p1 += 1;
  }
  renderChannels();
  return true;
}

function onMessage(m) {
  if (state.locked) return;
  if (addMessage(m) && m.author !== state.me) {
    announce(`New ${m.priority.toUpperCase()} message in #${m.channel}`);
    if (m.priority === "p1") notifyP1(m.channel, m.exercise);
  }
}

// A notification shows on lock screens and in notification centres: it says
// only the priority and the channel, never text, author or id.
function notifyP1(channel, exercise) {
  if (!state.alerts) return;
  if (document.visibilityState === "visible" && document.hasFocus()) return;
  new Notification(`${exercise ? "EXERCISE: " : ""}P1 message in #${channel}`, { tag: "fieldmesh-p1" });
}

async function toggleAlerts() {
  const b = $("alerts");
  if (!state.alerts) {
    if (!("Notification" in window)) return alertUser("This browser cannot show notifications.");
    const permission = await Notification.requestPermission();
    if (permission !== "granted") return alertUser("Notifications are blocked for this page.");
  }
  state.alerts = !state.alerts;
  b.setAttribute("aria-pressed", String(state.alerts));
  b.textContent = state.alerts ? "P1 alerts on" : "P1 alerts off";
}

let refreshTimer = null;
function refreshSoon() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => loadChannels().catch(() => {}), 100);
}

function connectEvents() {
  if (state.events) state.events.close();
  const es = new EventSource("/api/events?token=" + state.token);
  state.events = es;
  es.addEventListener("ready", () => {
    document.body.dataset.live = "true";
    alertUser("");
    // Whatever arrived before this stream was subscribed (first load racing
    // the stream, or a reconnect) is fetched again; later events follow.
    if (state.loaded) start().catch(() => {});
  });
  es.addEventListener("message", (e) => onMessage(JSON.parse(e.data)));
  const gone = (e) => {
    removeMessages(JSON.parse(e.data).ids);
    refreshSoon();
  };
  es.addEventListener("deleted", gone);
  es.addEventListener("expired", gone);
  es.addEventListener("held", (e) => {
    for (const [id, n] of Object.entries(JSON.parse(e.data).held_by)) {
      const item = $("messages").querySelector(`[data-id="${id}"] .held`);
      if (item) item.textContent = `held by ${n}`;
    }
  });
  es.addEventListener("peers", () => loadStatus().then(() => !$("peers-view").hidden && loadPeers()).catch(() => {}));
  es.addEventListener("lagged", () => start().catch(() => {}));
  es.onerror = () => {
    document.body.dataset.live = "false";
    if (es.readyState !== EventSource.CLOSED) {
      alertUser("Connection to the node lost; retrying…");
      return;
    }
    // Refused (not just cut off): the browser does not retry. Find out why
    // (a wrong token shows its own message), then try again later.
    loadStatus()
      .then(() => setTimeout(connectEvents, 3000))
      .catch((e) => {
        if (e.code !== "unauthorized") {
          alertUser("Connection to the node lost; retrying…");
          setTimeout(connectEvents, 3000);
        }
      });
  };
}

async function start() {
  const status = await loadStatus();
  if (status.locked) return;
  state.defaults = (await api("GET", "/api/defaults")).data;
  await loadChannels();
  if (state.channel) await openChannel(state.channel);
  state.loaded = true;
}

function init() {
  if (!state.token) {
    showView("channels");
    alertUser(NO_TOKEN);
    return;
  }
  $("compose").addEventListener("submit", send);
  $("text").addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) $("compose").requestSubmit();
  });
  $("show-channels").addEventListener("click", () => showView("channels"));
  $("show-peers").addEventListener("click", () => {
    showView("peers");
    loadPeers().catch((e) => alertUser(e.message));
  });
  $("alerts").addEventListener("click", () => toggleAlerts().catch((e) => alertUser(e.message)));
  $("lock").addEventListener("click", async () => {
    try {
      await api("POST", "/api/lock");
      showLocked(true);
    } catch (e) {
      alertUser("Not locked: " + e.message);
    }
  });
  $("unlock-form").addEventListener("submit", unlock);
  $("confirm").addEventListener("close", () => {
    const id = state.pending;
    state.pending = null;
    if ($("confirm").returnValue === "ok" && id) transcribe(id, $("format").value);
  });
  for (const ev of ["keydown", "pointerdown", "pointermove", "wheel", "touchstart"]) {
    document.addEventListener(ev, used, { passive: true });
  }
  setInterval(tick, 1000);
  setInterval(checkIdle, Math.min(1000, IDLE_LIMIT));
  // A lock from the command line shows here within a few seconds.
  setInterval(() => loadStatus().catch(() => {}), 5000);
  connectEvents();
  start().catch((e) => alertUser(e.message));
}

init();

// The dashboard: one user's world at a time, through the emulator's own API.
// The token lives in this page's memory (and the tab's sessionStorage when typed in): no
// cookie carries authority, so other pages cannot act through this one.

const PAGE = 50;
const ACTIVITY_KEPT = 100;
const COUNTS_EVERY_MS = 3000;
const STATES = ["pending", "delayed", "retrying", "in_flight", "queued"];
const VIEWS = [
  ["activity", "Activity"],
  ["messages", "Messages"],
  ["publish", "Publish"],
  ["dlq", "Dead letters"],
  ["schedules", "Schedules"],
  ["queues", "Queues"],
  ["groups", "URL groups"],
  ["flow", "Flow control"],
  ["keys", "Signing keys"],
  ["workflows", "Workflow runs"],
];

const state = {
  users: null, // [{userId, token}] on a loopback bind, else null
  token: null,
  userId: null,
  readonly: false,
  view: "activity",
  rows: [], // live log rows, newest first
  seen: { DELIVERED: 0, FAILED: 0, RETRY: 0, CREATED: 0 },
  stream: null,
  detail: null, // {kind: "message" | "dlq", id}
  messages: { states: [], offset: 0 },
  dlq: { cursors: [null], page: 0, filters: {}, selected: new Set() },
  runs: { cursors: [null], page: 0 },
  dirty: false,
  refreshing: false,
  clockOffset: 0, // the emulator's clock minus this browser's (a virtual clock runs ahead)
};

// DOM ------------------------------------------------------------------------------------

function h(tag, props, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else el.setAttribute(key, value === true ? "" : value);
  }
  for (const child of children.flat()) {
    if (child === undefined || child === null || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

const $ = (selector) => document.querySelector(selector);

function toast(text, error = false) {
  const el = $("#toast");
  el.textContent = text;
  el.className = "show" + (error ? " error" : "");
  clearTimeout(toast.timer);
  toast.timer = setTimeout(() => (el.className = ""), error ? 6000 : 2500);
}

// One vocabulary: every state the API names, as the page words it and how it looks. A message's
// state reads the same in the list, its detail and its log rows; the API's own name is the
// badge's title (and data-state).
const WORDS = {
  // a message that is not final (/_emulator/messages)
  pending: ["pending", "info"],
  delayed: ["delayed", ""],
  retrying: ["retrying", "warn"],
  in_flight: ["in flight", "info"],
  queued: ["queued", ""],
  // log rows (/v2/logs)
  CREATED: ["created", "info"],
  ACTIVE: ["in flight", "info"],
  ERROR: ["attempt failed", "warn"],
  RETRY: ["retrying", "warn"],
  DELIVERED: ["delivered", "ok"],
  FAILED: ["failed", "bad"],
  CANCEL_REQUESTED: ["cancel requested", "warn"],
  CANCELED: ["canceled", "warn"],
  CANCELLED: ["canceled", "warn"],
  // an attempt's outcome (/_emulator/attempts)
  delivered: ["delivered", "ok"],
  retry: ["will retry", "warn"],
  failed: ["failed", "bad"],
  // workflow runs and their steps
  RUN_STARTED: ["running", "info"],
  RUN_SUCCESS: ["succeeded", "ok"],
  RUN_FAILED: ["failed", "bad"],
  RUN_CANCELED: ["canceled", "warn"],
  STEP_PROGRESS: ["in progress", "info"],
  STEP_SUCCESS: ["succeeded", "ok"],
  STEP_RETRY: ["retrying", "warn"],
  STEP_FAILED: ["failed", "bad"],
  STEP_CANCELED: ["canceled", "warn"],
  // a schedule's last runs
  IN_PROGRESS: ["in progress", "info"],
  SUCCESS: ["succeeded", "ok"],
  FAIL: ["failed", "bad"],
  // queues, schedules and flow-control keys
  paused: ["paused", "warn"],
  running: ["running", "ok"],
};

const word = (code) => (WORDS[code] || [String(code).toLowerCase().replaceAll("_", " ")])[0];

function badge(code) {
  const kind = (WORDS[code] || [])[1] || "";
  const said = word(code);
  return h("span", { class: `badge ${kind}`, title: said === code ? null : code, dataset: { state: code } }, said);
}

// A badge for free text (a status code, a signature check).
function tag(text, kind) {
  return h("span", { class: `badge ${kind}` }, text);
}

function time(ms) {
  if (ms === null || ms === undefined) return "–";
  const d = new Date(ms);
  const pad = (n, w = 2) => String(n).padStart(w, "0");
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function span(ms) {
  const s = Math.round(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${s % 60} s`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ${Math.floor((s % 3600) / 60)} min`;
  return `${Math.floor(s / 86400)} d ${Math.floor((s % 86400) / 3600)} h`;
}

function when(ms) {
  if (ms === null || ms === undefined) return "–";
  const delta = ms - (Date.now() + state.clockOffset); // due times are on the emulator's clock
  const rel = Math.abs(delta) < 1000 ? "now" : delta > 0 ? `in ${span(delta)}` : `${span(delta)} ago`;
  return h("span", { class: "when" }, rel, " ", h("span", { class: "at" }, `(${time(ms)})`));
}

function table(headers, rows, empty = "Nothing here.") {
  if (!rows.length) return h("div", { class: "empty" }, empty);
  return h(
    "table",
    {},
    h("thead", {}, h("tr", {}, headers.map((x) => h("th", {}, x)))),
    h("tbody", {}, rows),
  );
}

// "POST http://host:port/a/b?c=d" with a break opportunity before each path segment and query
// part: a narrow column wraps it where a reader expects, never inside "http".
function destination(method, url) {
  url = url || "";
  const path = url.indexOf("/", url.indexOf("//") >= 0 ? url.indexOf("//") + 2 : 0);
  const head = path < 0 ? url : url.slice(0, path);
  const parts = path < 0 ? [] : url.slice(path).split(/(?=[/?&])/);
  return [method ? `${method} ` : "", head, ...parts.flatMap((part) => [h("wbr"), part])];
}

// A row's buttons: side by side while the column is wide enough, else one under the other.
function actionsCell(...buttons) {
  return h("td", { class: "actions", onclick: (e) => e.stopPropagation() }, h("div", { class: "actions" }, ...buttons));
}

function kv(entries) {
  const dl = h("dl", { class: "kv" });
  for (const [k, v] of entries) dl.append(h("dt", {}, k), h("dd", {}, v));
  return dl;
}

function headerList(headers) {
  const entries = Object.entries(headers || {}).map(([k, v]) => [k, Array.isArray(v) ? v.join(", ") : v]);
  return entries.length ? kv(entries) : h("p", { class: "muted" }, "no headers");
}

function bodyOf(obj, text = "body", b64 = "bodyBase64") {
  if (obj[`${text}Dropped`]) return h("p", { class: "muted" }, "body dropped: over the server's --body-budget (oldest bodies go first)");
  if (obj[text] !== undefined && obj[text] !== "") return h("pre", {}, obj[text]);
  if (obj[b64]) return h("pre", {}, `(base64) ${obj[b64]}`);
  return h("p", { class: "muted" }, "empty body");
}

// API ------------------------------------------------------------------------------------

async function api(method, path, { query, body, headers } = {}) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query || {})) {
    if (v === undefined || v === null || v === "") continue;
    for (const one of Array.isArray(v) ? v : [v]) url.searchParams.append(k, one);
  }
  const init = { method, headers: { Authorization: `Bearer ${state.token}`, ...(headers || {}) } };
  if (body !== undefined) {
    init.body = typeof body === "string" ? body : JSON.stringify(body);
    if (typeof body !== "string") init.headers["Content-Type"] = "application/json";
  }
  const response = await fetch(url, init);
  const text = await response.text();
  let data = text;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    // not JSON: keep the text
  }
  if (!response.ok) throw new Error((data && data.error) || `${response.status} ${response.statusText}`);
  return data;
}

async function act(label, fn) {
  try {
    await fn();
    state.counts = null;
    toast(label);
    refreshSoon(true);
  } catch (error) {
    toast(`${label} failed: ${error.message}`, true);
  }
}

// Who: a picker on loopback, a token otherwise --------------------------------------------

async function start() {
  const response = await fetch("/_dashboard/api/users");
  const data = await response.json();
  state.users = data.users;
  const wanted = new URLSearchParams(location.hash.slice(1));
  state.view = VIEWS.some(([v]) => v === wanted.get("view")) ? wanted.get("view") : "activity";
  renderTabs();
  if (state.users) {
    const select = h(
      "select",
      { id: "user", "aria-label": "user", onchange: (e) => chooseUser(e.target.value) },
      state.users.map((u) => h("option", { value: u.userId }, u.userId)),
    );
    $("#who").replaceChildren(h("span", {}, "User"), select);
    const user = state.users.find((u) => u.userId === wanted.get("user")) || state.users[0];
    select.value = user.userId;
    await chooseUser(user.userId);
  } else {
    renderTokenForm(data.message);
    const kept = sessionStorage.getItem("qstash-token");
    if (kept) await useToken(kept);
  }
}

function renderTokenForm(message) {
  const input = h("input", { id: "token", type: "password", placeholder: "QSTASH_TOKEN", autocomplete: "off" });
  const form = h(
    "form",
    {
      onsubmit: async (e) => {
        e.preventDefault();
        await useToken(input.value.trim());
      },
    },
    input,
    " ",
    h("button", { type: "submit" }, "Use token"),
  );
  $("#who").replaceChildren(form);
  $("#view").replaceChildren(h("div", { class: "empty" }, message || "Enter a token to see its user's messages."));
}

async function useToken(token) {
  state.token = token;
  try {
    const me = await api("GET", "/_dashboard/api/me");
    sessionStorage.setItem("qstash-token", token);
    state.userId = me.userId;
    state.readonly = me.readonly;
    $("#who").replaceChildren(
      h("span", { id: "user-name" }, me.userId + (me.readonly ? " (read-only)" : "")),
      h("button", { onclick: () => { sessionStorage.removeItem("qstash-token"); location.reload(); } }, "Forget token"),
    );
    switchedUser();
  } catch (error) {
    state.token = null;
    toast(`That token does not work: ${error.message}`, true);
  }
}

async function chooseUser(userId) {
  const user = state.users.find((u) => u.userId === userId);
  state.token = user.token;
  state.userId = user.userId;
  state.readonly = false;
  switchedUser();
}

function switchedUser() {
  state.rows = [];
  state.counts = null;
  state.seen = { DELIVERED: 0, FAILED: 0, RETRY: 0, CREATED: 0 };
  state.detail = null;
  state.messages = { states: [], offset: 0 };
  state.dlq = { cursors: [null], page: 0, filters: {}, selected: new Set() };
  state.runs = { cursors: [null], page: 0 };
  state.waits = null;
  closeDetail();
  connect();
  show(state.view);
}

// Live rows ------------------------------------------------------------------------------

function connect() {
  if (state.stream) state.stream.abort();
  const controller = new AbortController();
  state.stream = controller;
  const live = $("#live");
  (async () => {
    try {
      const response = await fetch("/_dashboard/api/stream", {
        headers: { Authorization: `Bearer ${state.token}` },
        signal: controller.signal,
      });
      if (!response.ok) throw new Error(`stream answered ${response.status}`);
      live.textContent = "live";
      live.className = "live on";
      const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
      let buffer = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buffer += value;
        let end;
        while ((end = buffer.indexOf("\n\n")) >= 0) {
          const event = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          if (event.startsWith("data: ")) received(JSON.parse(event.slice(6)));
        }
      }
    } catch (error) {
      if (controller.signal.aborted) return;
    }
    if (controller.signal.aborted) return;
    live.textContent = "offline";
    live.className = "live off";
    setTimeout(() => state.stream === controller && connect(), 1000);
  })();
}

function received(batch) {
  if (!batch.rows.length && !batch.missed) return;
  for (const row of batch.rows) {
    if (row.state in state.seen) state.seen[row.state] += 1;
    state.rows.unshift(row);
  }
  state.rows.length = Math.min(state.rows.length, ACTIVITY_KEPT);
  if (batch.missed) state.missedRows = (state.missedRows || 0) + batch.missed;
  // A run's detail follows every row: its steps are messages with ids of their own.
  const detailHit =
    state.detail && (state.detail.kind === "run" || batch.rows.some((r) => r.messageId === state.detail.id));
  refreshSoon(detailHit);
}

// Refresh the open view at most once a second while events come in.
function refreshSoon(detailToo = false) {
  state.dirty = true;
  state.detailDirty = state.detailDirty || detailToo;
  if (state.refreshing) return;
  state.refreshing = true;
  setTimeout(async () => {
    while (state.dirty) {
      state.dirty = false;
      const detail = state.detailDirty;
      state.detailDirty = false;
      const started = performance.now();
      try {
        await show(state.view, true);
        if (detail && state.detail) await openDetail(state.detail.kind, state.detail.id, true);
      } catch (error) {
        toast(error.message, true);
      }
      // A view that is costly to build (10,000 messages) is rebuilt less often, so that
      // watching never takes more than about a fifth of the server's time.
      const took = performance.now() - started;
      await new Promise((r) => setTimeout(r, Math.max(1000, 5 * took)));
    }
    state.refreshing = false;
  }, 150);
}

// Views ----------------------------------------------------------------------------------

function renderTabs() {
  $("#tabs").replaceChildren(
    ...VIEWS.map(([view, label]) =>
      h("button", { dataset: { view }, onclick: () => show(view) }, label),
    ),
  );
}

async function show(view, quiet = false) {
  if (!state.token) return;
  state.view = view;
  for (const b of document.querySelectorAll("#tabs button")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  const hash = new URLSearchParams({ view });
  if (state.users) hash.set("user", state.userId);
  history.replaceState(null, "", `#${hash}`);
  if (quiet && view === "publish") return; // keep what is being typed
  const typing = document.activeElement && document.activeElement.closest("#view input, #view textarea, #view select");
  if (quiet && typing) {
    state.dirty = true; // not under someone's cursor: once they leave the field
    return;
  }
  const main = $("#view");
  try {
    const clock = await api("GET", "/_emulator/clock");
    state.clockOffset = clock.virtual ? clock.now - Date.now() : 0;
    const content = await RENDER[view]();
    if (state.view !== view) return;
    const scroll = main.scrollTop;
    main.replaceChildren(...[content].flat().filter((x) => x !== null && x !== undefined));
    main.scrollTop = scroll;
  } catch (error) {
    main.replaceChildren(h("div", { class: "empty" }, `Could not load: ${error.message}`));
  }
}

const RENDER = {
  async activity() {
    // The rows come from the stream; the counts cost the server a look at every waiting
    // message, so while events flow they are asked for at most every few seconds.
    if (!state.counts || performance.now() - state.countsAt > COUNTS_EVERY_MS) {
      state.counts = (await api("GET", "/_emulator/messages", { query: { count: 1 } })).counts;
      state.countsAt = performance.now();
    }
    const page = { counts: state.counts };
    if (!state.rows.length) {
      const logs = await api("GET", "/v2/logs", { query: { count: 50 } });
      state.rows = logs.events;
    }
    const cards = [
      ...STATES.map((s) => [s, word(s), page.counts[s]]),
      ["delivered", "delivered since opened", state.seen.DELIVERED],
      ["failed", "failed since opened", state.seen.FAILED],
    ];
    return [
      h("h2", {}, "Activity"),
      h(
        "div",
        { class: "cards", id: "counts" },
        cards.map(([code, label, n]) => h("div", { class: "card", dataset: { state: code } }, h("div", { class: "n" }, n), h("div", { class: "l" }, label))),
      ),
      state.missedRows ? h("p", { class: "muted" }, `${state.missedRows} rows went by too fast to show.`) : null,
      table(
        ["Time", "State", "Message", "Destination", "Result"],
        state.rows.map((row) =>
          h(
            "tr",
            { class: "clickable", dataset: { id: row.messageId }, onclick: () => openDetail("message", row.messageId) },
            h("td", { class: "mono" }, time(row.time)),
            h("td", {}, badge(row.state)),
            h("td", { class: "id" }, row.messageId),
            h("td", { class: "url" }, destination(row.method, row.url)),
            h("td", {}, resultOf(row)),
          ),
        ),
        "No events yet: publish a message and it shows up here.",
      ),
    ];
  },

  async messages() {
    const m = state.messages;
    const page = await api("GET", "/_emulator/messages", {
      query: { count: PAGE, offset: m.offset, state: m.states.join(",") },
    });
    if (page.total && m.offset >= page.total) {
      m.offset = Math.max(0, Math.floor((page.total - 1) / PAGE) * PAGE);
      return RENDER.messages();
    }
    const chip = (s, label) =>
      h(
        "button",
        {
          "aria-pressed": String(s === null ? !m.states.length : m.states.includes(s)),
          dataset: { state: s || "all" },
          onclick: () => {
            m.states = s === null ? [] : m.states.includes(s) ? m.states.filter((x) => x !== s) : [...m.states, s];
            m.offset = 0;
            show("messages");
          },
        },
        label,
      );
    const total = Object.values(page.counts).reduce((a, b) => a + b, 0);
    const go = (offset) => {
      m.offset = offset;
      show("messages");
    };
    const rows = page.messages.map((msg) =>
      h(
        "tr",
        {
          class: "clickable" + (state.detail && state.detail.id === msg.messageId ? " selected" : ""),
          dataset: { id: msg.messageId },
          onclick: () => openDetail("message", msg.messageId),
        },
        h("td", { class: "id" }, msg.messageId, msg.kind !== "message" ? h("div", { class: "muted" }, `${msg.kind.replace("_", " ")} of ${msg.sourceMessageId}`) : null),
        h("td", {}, badge(msg.state)),
        h("td", { class: "url" }, destination(msg.method, msg.url), msg.queueName ? h("div", { class: "muted" }, `queue ${msg.queueName}`) : null),
        h("td", {}, `${msg.retried} / ${msg.maxRetries}`),
        h("td", { class: "due" }, when(msg.nextDeliveryTime)),
        actionsCell(messageActions(msg.messageId, msg.state)),
      ),
    );
    return [
      h("h2", {}, "Messages"),
      h(
        "div",
        { class: "toolbar chips" },
        chip(null, `all ${total}`),
        STATES.map((s) => chip(s, `${word(s)} ${page.counts[s]}`)),
      ),
      table(["Message", "State", "Destination", "Retried", "Next delivery", ""], rows, "No message is waiting."),
      pager(
        `${m.offset + 1}–${Math.min(m.offset + PAGE, page.total)} of ${page.total}`,
        m.offset > 0 && (() => go(Math.max(0, m.offset - PAGE))),
        m.offset + PAGE < page.total && (() => go(m.offset + PAGE)),
      ),
    ];
  },

  async publish() {
    return [h("h2", {}, "Publish"), publishForm()];
  },

  async dlq() {
    const d = state.dlq;
    const result = await api("GET", "/v2/dlq", { query: { count: PAGE, cursor: d.cursors[d.page], ...d.filters } });
    const messages = result.messages || [];
    const filter = (name, placeholder) =>
      h("input", { name, placeholder, value: d.filters[name] || "", "aria-label": placeholder });
    const filters = h(
      "form",
      {
        class: "toolbar",
        id: "dlq-filters",
        onsubmit: (e) => {
          e.preventDefault();
          d.filters = Object.fromEntries([...new FormData(e.target)].filter(([, v]) => v));
          d.cursors = [null];
          d.page = 0;
          show("dlq");
        },
      },
      filter("url", "URL"),
      filter("responseStatus", "response status"),
      filter("queueName", "queue"),
      filter("scheduleId", "schedule"),
      filter("messageId", "message id"),
      h("button", { type: "submit" }, "Filter"),
    );
    const selected = [...d.selected].filter((id) => messages.some((m) => m.dlqId === id));
    d.selected = new Set(selected);
    const bulk = h(
      "div",
      { class: "toolbar" },
      h("button", { disabled: !selected.length, "data-action": "retry-selected", onclick: () => act(`Retried ${selected.length}`, async () => { await api("POST", "/v2/dlq/retry", { body: { dlqIds: selected } }); d.selected.clear(); }) }, `Retry selected (${selected.length})`),
      h("button", { class: "danger", disabled: !selected.length, "data-action": "delete-selected", onclick: () => act(`Deleted ${selected.length}`, async () => { await api("DELETE", "/v2/dlq", { body: { dlqIds: selected } }); d.selected.clear(); }) }, `Delete selected (${selected.length})`),
    );
    const rows = messages.map((m) =>
      h(
        "tr",
        { class: "clickable" + (state.detail && state.detail.id === m.dlqId ? " selected" : ""), dataset: { dlq: m.dlqId, id: m.messageId }, onclick: () => openDetail("dlq", m.dlqId) },
        h("td", { onclick: (e) => e.stopPropagation() }, h("input", { type: "checkbox", "aria-label": "select", checked: d.selected.has(m.dlqId), onchange: (e) => { if (e.target.checked) d.selected.add(m.dlqId); else d.selected.delete(m.dlqId); show("dlq"); } })),
        h("td", { class: "id" }, m.messageId),
        h("td", { class: "url" }, destination(m.method, m.url)),
        h("td", {}, m.responseStatus ? tag(String(m.responseStatus), m.responseStatus >= 500 ? "bad" : "warn") : tag("no answer", "bad")),
        h("td", {}, time(m.createdAt)),
        actionsCell(dlqActions(m.dlqId)),
      ),
    );
    const pages = pager(
      `page ${d.page + 1}`,
      d.page > 0 && (() => { d.page -= 1; show("dlq"); }),
      !!result.cursor && (() => { d.cursors[d.page + 1] = result.cursor; d.page += 1; show("dlq"); }),
      ["← Newer", "Older →"],
    );
    return [h("h2", {}, "Dead letters"), filters, bulk, table(["", "Message", "Destination", "Status", "Created", ""], rows, "The dead-letter queue is empty."), pages];
  },

  async schedules() {
    const schedules = await api("GET", "/v2/schedules");
    const times = await Promise.all(
      schedules.map((s) => (s.isPaused ? { times: [] } : api("GET", `/_emulator/schedules/${encodeURIComponent(s.scheduleId)}/times`, { query: { count: 3 } }))),
    );
    const rows = schedules.map((s, i) =>
      h(
        "tr",
        { dataset: { id: s.scheduleId } },
        h("td", { class: "id" }, s.scheduleId),
        h("td", { class: "mono nowrap" }, s.cron),
        h("td", { class: "url" }, destination(s.method, s.destination)),
        h("td", {}, s.isPaused ? badge("paused") : times[i].times.map((t) => h("div", {}, when(t)))),
        h("td", {}, lastRun(s), s.error ? h("div", { class: "muted" }, s.error) : null),
        actionsCell(
          s.isPaused
            ? h("button", { "data-action": "resume", onclick: () => act("Resumed", () => api("POST", `/v2/schedules/${encodeURIComponent(s.scheduleId)}/resume`)) }, "Resume")
            : h("button", { "data-action": "pause", onclick: () => act("Paused", () => api("POST", `/v2/schedules/${encodeURIComponent(s.scheduleId)}/pause`)) }, "Pause"),
          h("button", { "data-action": "run", disabled: s.isPaused, onclick: () => act("Ran now", () => api("POST", `/_emulator/run-now/${encodeURIComponent(s.scheduleId)}`)) }, "Run now"),
          h("button", { class: "danger", "data-action": "delete", onclick: () => confirm(`Delete schedule ${s.scheduleId}?`) && act("Deleted", () => api("DELETE", `/v2/schedules/${encodeURIComponent(s.scheduleId)}`)) }, "Delete"),
        ),
      ),
    );
    return [h("h2", {}, "Schedules"), table(["Schedule", "Cron", "Destination", "Next runs", "Last run", ""], rows, "No schedules.")];
  },

  async queues() {
    const queues = await api("GET", "/v2/queues");
    const rows = queues.map((q) =>
      h(
        "tr",
        { dataset: { id: q.name } },
        h("td", { class: "mono" }, q.name),
        h("td", {}, q.lag),
        h("td", {}, q.parallelism),
        h("td", {}, q.paused ? badge("paused") : badge("running")),
        actionsCell(
          q.paused
            ? h("button", { "data-action": "resume", onclick: () => act("Resumed", () => api("POST", `/v2/queues/${encodeURIComponent(q.name)}/resume`)) }, "Resume")
            : h("button", { "data-action": "pause", onclick: () => act("Paused", () => api("POST", `/v2/queues/${encodeURIComponent(q.name)}/pause`)) }, "Pause"),
        ),
      ),
    );
    return [h("h2", {}, "Queues"), table(["Queue", "Lag", "Parallelism", "State", ""], rows, "No queues.")];
  },

  async groups() {
    const groups = await api("GET", "/v2/topics");
    const rows = groups.map((g) =>
      h(
        "tr",
        { dataset: { id: g.name } },
        h("td", { class: "mono" }, g.name),
        h("td", {}, g.endpoints.map((e) => h("div", { class: "url" }, e.name ? `${e.name}: ` : "", destination("", e.url)))),
        h("td", {}, time(g.updatedAt)),
      ),
    );
    return [h("h2", {}, "URL groups"), table(["URL group", "Endpoints", "Updated"], rows, "No URL groups.")];
  },

  async flow() {
    const [keys, global] = await Promise.all([api("GET", "/v2/flowControl"), api("GET", "/v2/globalParallelism")]);
    const path = (k, action) => `/v2/flowControl/${encodeURIComponent(k.flowControlKey)}/${action}`;
    const rows = keys.map((k) =>
      h(
        "tr",
        { dataset: { id: k.flowControlKey } },
        h("td", { class: "mono" }, k.flowControlKey),
        h("td", {}, k.waitListSize),
        h("td", {}, `${k.parallelismCount} / ${k.parallelismMax || "∞"}`, k.isPinnedParallelism ? h("span", { class: "muted" }, " pinned") : null),
        h("td", {}, `${k.rateCount} / ${k.rateMax || "∞"} per ${k.ratePeriod} s`, k.isPinnedRate ? h("span", { class: "muted" }, " pinned") : null),
        h("td", {}, k.isPaused ? badge("paused") : badge("running")),
        actionsCell(
          k.isPaused
            ? h("button", { "data-action": "resume", onclick: () => act("Resumed", () => api("POST", path(k, "resume"))) }, "Resume")
            : h("button", { "data-action": "pause", onclick: () => act("Paused", () => api("POST", path(k, "pause"))) }, "Pause"),
          k.isPinnedParallelism || k.isPinnedRate
            ? h("button", { "data-action": "unpin", onclick: () => act("Unpinned", () => api("POST", path(k, "unpin"), { query: { parallelism: "true", rate: "true" } })) }, "Unpin")
            : h("button", { "data-action": "pin", onclick: () => act("Pinned", () => api("POST", path(k, "pin"))) }, "Pin"),
          h("button", { "data-action": "reset", onclick: () => act("Rate reset", () => api("POST", path(k, "resetRate"))) }, "Reset rate"),
        ),
      ),
    );
    return [
      h("h2", {}, "Flow control"),
      h("p", { class: "muted" }, `Plan parallelism in use: ${global.parallelismCount} of ${global.parallelismMax}`),
      table(["Key", "Waiting", "Parallelism", "Rate", "State", ""], rows, "No flow-control keys."),
    ];
  },

  async keys() {
    const keys = await api("GET", "/v2/keys");
    return [
      h("h2", {}, "Signing keys"),
      kv([
        ["current", keys.current],
        ["next", keys.next],
      ]),
      h("p", { class: "muted" }, "Rotating makes the next key current and creates a new next key; receivers that check both keep working."),
      h("button", { "data-action": "rotate", onclick: () => confirm("Rotate the signing keys?") && act("Rotated", () => api("POST", "/v2/keys/rotate")) }, "Rotate keys"),
    ];
  },
};

RENDER.workflows = async () => {
  const r = state.runs;
  const result = await api("GET", "/v2/workflows/logs", { query: { cursor: r.cursors[r.page], trimBody: 200 } });
  const rows = result.runs.map((run) =>
    h(
      "tr",
      {
        class: "clickable" + (state.detail && state.detail.id === run.workflowRunId ? " selected" : ""),
        dataset: { id: run.workflowRunId },
        onclick: () => openDetail("run", run.workflowRunId),
      },
      h("td", { class: "id" }, run.workflowRunId),
      h("td", { class: "url" }, destination("", run.workflowUrl)),
      h("td", {}, badge(run.workflowState)),
      h("td", {}, String(stepCount(run))),
      h("td", {}, time(run.workflowRunCreatedAt)),
      h("td", {}, run.workflowRunCompletedAt ? time(run.workflowRunCompletedAt) : "–"),
    ),
  );
  const pages = pager(
    `page ${r.page + 1}`,
    r.page > 0 && (() => { r.page -= 1; show("workflows"); }),
    !!result.cursor && (() => { r.cursors[r.page + 1] = result.cursor; r.page += 1; show("workflows"); }),
    ["← Newer", "Older →"],
  );
  return [h("h2", {}, "Workflow runs"), table(["Run", "Workflow", "State", "Steps", "Started", "Ended"], rows, "No workflow runs."), pages, waitersBox()];
};

// Waits: the runs waiting for an event id, and notifying them (what a notify call does).
function waitersBox() {
  const w = state.waits || (state.waits = { eventId: "", found: null, answer: null });
  const eventId = h("input", { id: "w-event", placeholder: "event id", value: w.eventId, "aria-label": "event id", oninput: (e) => (w.eventId = e.target.value) });
  const data = h("textarea", { id: "w-data", placeholder: "event data (the notify body)", "aria-label": "event data", oninput: (e) => (w.data = e.target.value) });
  data.value = w.data || "";
  const find = async () => {
    w.eventId = eventId.value.trim();
    if (!w.eventId) return;
    try {
      w.found = await api("GET", `/v2/waiters/${encodeURIComponent(w.eventId)}`);
      w.answer = null;
      show("workflows");
    } catch (error) {
      toast(error.message, true);
    }
  };
  const notify = async () => {
    w.eventId = eventId.value.trim();
    if (!w.eventId) return;
    try {
      const answers = await api("POST", `/v2/notify/${encodeURIComponent(w.eventId)}`, { body: data.value });
      w.answer = answers.length;
      w.found = await api("GET", `/v2/waiters/${encodeURIComponent(w.eventId)}`);
      toast(`Notified ${answers.length} waiter${answers.length === 1 ? "" : "s"}`);
      refreshSoon(true);
    } catch (error) {
      toast(`Notify failed: ${error.message}`, true);
    }
  };
  const runOf = (waiter) => ((waiter.headers || {})["Upstash-Workflow-Runid"] || [])[0] || "";
  const found = w.found
    ? table(
        ["Run", "Workflow", "Times out"],
        w.found.map((waiter) =>
          h(
            "tr",
            { class: "clickable", dataset: { waiter: runOf(waiter) }, onclick: () => runOf(waiter) && openDetail("run", runOf(waiter)) },
            h("td", { class: "id" }, runOf(waiter)),
            h("td", { class: "url" }, destination("", waiter.url)),
            h("td", { class: "due" }, waiter.deadline ? when(waiter.deadline * 1000) : "–"),
          ),
        ),
        `No run waits for ${w.eventId}.`,
      )
    : null;
  return h(
    "section",
    { id: "waits" },
    h("h2", {}, "Waiting for events"),
    h(
      "form",
      { class: "toolbar", onsubmit: (e) => { e.preventDefault(); find(); } },
      eventId,
      h("button", { type: "submit", "data-action": "find-waiters" }, "Find waiters"),
    ),
    found,
    h("div", { class: "toolbar" }, data, h("button", { "data-action": "notify", onclick: notify }, "Notify"), w.answer !== null ? h("span", { id: "w-answer", class: "muted" }, `notified ${w.answer}`) : null),
  );
}

async function runDetail(runId) {
  const result = await api("GET", "/v2/workflows/logs", { query: { workflowRunId: runId, trimBody: 2000 } });
  const run = result.runs[0];
  if (!run) return [h("p", { class: "muted" }, `Run ${runId} is not known.`)];
  const running = run.workflowState === "RUN_STARTED";
  const out = [
    h("div", { class: "toolbar" }, h("h3", {}, run.workflowRunId), h("button", { onclick: closeDetail, "aria-label": "close" }, "Close")),
    h("p", {}, badge(run.workflowState), " ", h("span", { class: "url" }, destination("", run.workflowUrl))),
    running
      ? h("div", { class: "actions" }, h("button", { class: "danger", "data-action": "cancel-run", onclick: () => act("Run cancelled", () => api("DELETE", `/v2/workflows/runs/${encodeURIComponent(runId)}`)) }, "Cancel run"))
      : null,
    kv([
      ["started", time(run.workflowRunCreatedAt)],
      ["ended", run.workflowRunCompletedAt ? time(run.workflowRunCompletedAt) : "–"],
      ...(run.workflowRunResponse !== undefined ? [["result", String(run.workflowRunResponse)]] : []),
      ...(run.dlqId ? [["dead letter", run.dlqId]] : []),
      ...(run.failureFunction ? [["failure function", run.failureFunction.state || JSON.stringify(run.failureFunction)]] : []),
    ]),
    h("h4", {}, `Steps (${stepCount(run)})`),
  ];
  const timeline = h("div", { class: "timeline", id: "run-steps" });
  for (const group of run.steps) {
    const label = group.type === "next" ? "next (not delivered yet)" : group.type === "parallel" ? "in parallel" : null;
    const box = h("div", { class: "step", dataset: { group: group.type } }, label ? h("div", { class: "muted" }, label) : null);
    for (const step of group.steps) {
      const name = step.stepName || step.callType || "step";
      const extra = [];
      if (step.sleepFor !== undefined) extra.push(`sleep ${step.sleepFor} s`);
      if (step.sleepUntil !== undefined) extra.push(`sleep until ${time(step.sleepUntil * 1000)}`);
      if (step.waitEventId) extra.push(`waits for ${step.waitEventId}`);
      box.append(
        h(
          "div",
          { class: "attempt", dataset: { step: name, state: step.state } },
          h("div", { class: "head" }, h("strong", {}, name), step.stepType ? h("span", { class: "muted" }, step.stepType) : null, badge(step.state), h("span", { class: "mono" }, time(step.createdAt)), extra.length ? h("span", { class: "muted" }, extra.join(", ")) : null),
          step.out !== undefined && step.out !== null ? h("pre", {}, typeof step.out === "string" ? step.out : JSON.stringify(step.out)) : null,
          ...(step.errors || []).map((e) => h("div", { class: "muted" }, `${time(e.time)} ${e.status || e.error || ""}`)),
          step.messageId ? h("div", { class: "muted mono" }, step.messageId) : null,
        ),
      );
    }
    timeline.append(box);
  }
  out.push(run.steps.length ? timeline : h("p", { class: "muted" }, "No step yet."));
  return out;
}

// What a log row's attempt came to, said once: the status when the destination answered, else
// why it did not; a final failure's row says why no retry follows; a retry row says when.
function resultOf(row) {
  if (row.state === "FAILED" && row.error) return h("span", { class: "muted" }, row.error);
  if (row.responseStatus) return String(row.responseStatus);
  if (row.error) return h("span", { class: "muted" }, row.error);
  if (row.state === "RETRY" && row.nextDeliveryTime) {
    const ahead = row.nextDeliveryTime - (Date.now() + state.clockOffset);
    return ahead >= 1000 ? ["retry ", when(row.nextDeliveryTime)] : `retry at ${time(row.nextDeliveryTime)}`;
  }
  return "";
}

// Paging buttons, only when there is another page to go to. ``back`` and ``forward`` are what
// a click does, or false where there is no page that way.
function pager(info, back, forward, labels = ["← Previous", "Next →"]) {
  if (!back && !forward) return null;
  return h(
    "div",
    { class: "pager" },
    h("button", { disabled: !back, onclick: back || undefined }, labels[0]),
    h("span", { class: "muted", id: "page-info" }, info),
    h("button", { disabled: !forward, onclick: forward || undefined }, labels[1]),
  );
}

// A schedule's last run: when, and how each message it sent fared (click one for its detail).
function lastRun(s) {
  if (!s.lastScheduleTime) return h("span", { class: "muted" }, "never ran");
  const sent = Object.entries(s.lastScheduleStates || {});
  return [
    h("div", { class: "mono" }, time(s.lastScheduleTime)),
    h("div", { class: "chips" }, sent.map(([id, st]) => h("span", { class: "clickable", title: id, dataset: { id }, onclick: () => openDetail("message", id) }, badge(st)))),
  ];
}

// A run's steps: every one its timeline shows, those not delivered yet included.
function stepCount(run) {
  return run.steps.reduce((n, group) => n + group.steps.length, 0);
}

function messageActions(id, msgState) {
  return [
    h("button", { "data-action": "deliver-now", disabled: msgState === "in_flight" || msgState === "queued", onclick: () => act("Due now", () => api("POST", `/_emulator/run-now/${id}`)) }, "Deliver now"),
    h("button", { class: "danger", "data-action": "cancel", onclick: () => act("Cancelled", () => api("DELETE", `/v2/messages/${id}`)) }, "Cancel"),
  ];
}

function dlqActions(dlqId) {
  // Both end the entry: its detail closes rather than ask for what is gone.
  const done = (label, method, path) => () => {
    if (state.detail && state.detail.id === dlqId) closeDetail();
    act(label, () => api(method, path));
  };
  return [
    h("button", { "data-action": "retry", onclick: done("Retried", "POST", `/v2/dlq/retry/${dlqId}`) }, "Retry"),
    h("button", { class: "danger", "data-action": "delete", onclick: done("Deleted", "DELETE", `/v2/dlq/${dlqId}`) }, "Delete"),
  ];
}

// Publish --------------------------------------------------------------------------------

function publishForm() {
  const field = (label, input) => [h("label", { for: input.id }, label), input];
  const kind = h(
    "select",
    { id: "p-kind", name: "kind" },
    h("option", { value: "url" }, "URL"),
    h("option", { value: "group" }, "URL group"),
    h("option", { value: "queue" }, "Queue (then URL or URL group)"),
  );
  const queue = h("input", { id: "p-queue", name: "queue", placeholder: "queue name (for a queue)" });
  const form = h(
    "form",
    { class: "grid", id: "publish", onsubmit: (e) => { e.preventDefault(); send(form); } },
    field("Send to", h("div", { class: "row" }, kind, queue)),
    field("Destination", h("input", { id: "p-destination", name: "destination", required: true, placeholder: "http://127.0.0.1:3000/api/job or a URL group name" })),
    field("Method", h("select", { id: "p-method", name: "method" }, ["POST", "PUT", "PATCH", "GET", "DELETE"].map((m) => h("option", {}, m)))),
    field("Headers", h("textarea", { id: "p-headers", name: "headers", placeholder: "Content-Type: application/json\nX-Custom: value (forwarded to the destination)" })),
    field("Body", h("textarea", { id: "p-body", name: "body", placeholder: '{"hello": "world"}' })),
    field("Delay", h("input", { id: "p-delay", name: "delay", placeholder: "e.g. 10s, 5m (empty: now)" })),
    field("Retries", h("input", { id: "p-retries", name: "retries", type: "number", min: "0", placeholder: "default" })),
    field("Callback", h("input", { id: "p-callback", name: "callback", placeholder: "URL called with the response" })),
    field("Failure callback", h("input", { id: "p-failure-callback", name: "failureCallback", placeholder: "URL called when it fails for good" })),
    h("span"),
    h("div", { class: "actions" }, h("button", { class: "primary", type: "submit", id: "p-send" }, "Send"), h("span", { id: "p-result", class: "muted" })),
  );
  return form;
}

async function send(form) {
  const f = Object.fromEntries(new FormData(form));
  const headers = {};
  for (const line of f.headers.split("\n")) {
    const at = line.indexOf(":");
    if (at <= 0) continue;
    // As the SDKs do: Upstash-* are options, Content-Type goes as is, the rest is forwarded.
    const name = line.slice(0, at).trim();
    const lower = name.toLowerCase();
    const wire = lower.startsWith("upstash-") || lower === "content-type" ? name : `Upstash-Forward-${name}`;
    headers[wire] = line.slice(at + 1).trim();
  }
  if (f.method) headers["Upstash-Method"] = f.method;
  if (f.delay) headers["Upstash-Delay"] = f.delay;
  if (f.retries !== "") headers["Upstash-Retries"] = f.retries;
  if (f.callback) headers["Upstash-Callback"] = f.callback;
  if (f.failureCallback) headers["Upstash-Failure-Callback"] = f.failureCallback;
  const destination = f.destination.trim();
  let path = `/v2/publish/${destination}`;
  if (f.kind === "queue") path = `/v2/enqueue/${encodeURIComponent(f.queue.trim())}/${destination}`;
  const out = $("#p-result");
  try {
    const result = await api("POST", path, { body: f.body, headers });
    const sent = [result].flat();
    out.replaceChildren(
      "Sent: ",
      ...sent.map((r) => h("a", { href: "#", class: "mono", dataset: { id: r.messageId }, onclick: (e) => { e.preventDefault(); openDetail("message", r.messageId); } }, r.messageId, " ")),
    );
    toast(`Published ${sent.length} message${sent.length > 1 ? "s" : ""}`);
    openDetail("message", sent[0].messageId);
  } catch (error) {
    out.textContent = "";
    toast(`Publish failed: ${error.message}`, true);
  }
}

// Detail ---------------------------------------------------------------------------------

function closeDetail() {
  state.detail = null;
  const aside = $("#detail");
  aside.hidden = true;
  aside.replaceChildren();
}

async function openDetail(kind, id, quiet = false) {
  state.detail = { kind, id };
  const aside = $("#detail");
  const content = kind === "dlq" ? await dlqDetail(id) : kind === "run" ? await runDetail(id) : await messageDetail(id);
  if (!state.detail || state.detail.id !== id) return;
  const scroll = aside.scrollTop;
  aside.replaceChildren(...content.filter((x) => x !== null && x !== undefined));
  aside.hidden = false;
  if (quiet) aside.scrollTop = scroll;
  for (const tr of document.querySelectorAll("tr.selected")) tr.classList.remove("selected");
}

async function optional(promise) {
  try {
    return await promise;
  } catch {
    return null;
  }
}

async function messageDetail(id) {
  const [msg, waits, attempts, logs] = await Promise.all([
    optional(api("GET", `/v2/messages/${id}`)),
    api("GET", "/_emulator/messages", { query: { messageId: id } }),
    api("GET", "/_emulator/attempts", { query: { messageId: id } }),
    api("GET", "/v2/logs", { query: { messageId: id, count: 100 } }),
  ]);
  const rows = logs.events.slice().reverse();
  // While it waits, its state as the list says it; once final, its final log row's.
  const waiting = waits.messages[0];
  const final = rows.find((r) => ["DELIVERED", "FAILED", "CANCELED", "CANCELLED"].includes(r.state));
  const now = waiting ? waiting.state : final ? final.state : null;
  const out = [
    h("div", { class: "toolbar" }, h("h3", {}, id), h("button", { onclick: closeDetail, "aria-label": "close" }, "Close")),
    now ? h("p", { id: "detail-state" }, badge(now)) : null,
    waiting ? h("div", { class: "actions" }, messageActions(id, waiting.state)) : null,
  ];
  if (msg) {
    out.push(
      h("h4", {}, "Request"),
      kv([
        ["method", msg.method],
        ["url", destination("", msg.url)],
        ["created", time(msg.createdAt)],
        ["not before", time(msg.notBefore)],
        ["max retries", String(msg.maxRetries)],
        ...(msg.queueName ? [["queue", msg.queueName]] : []),
        ...(msg.topicName ? [["URL group", msg.topicName]] : []),
        ...(msg.scheduleId ? [["schedule", msg.scheduleId]] : []),
        ...(msg.callback ? [["callback", msg.callback]] : []),
        ...(msg.failureCallback ? [["failure callback", msg.failureCallback]] : []),
      ]),
      h("h4", {}, "Forwarded headers"),
      h("div", { id: "forwarded-headers" }, headerList(msg.header)),
      h("h4", {}, "Body"),
      bodyOf(msg),
    );
  } else {
    out.push(h("p", { class: "muted" }, "The message itself is no longer kept (its grace period is over); its attempts and log rows follow."));
  }
  // Its own attempts and those of its callbacks, each numbered on its own, in the order they began.
  const began = (a, b) => a.startedAt - b.startedAt || a.wallStartedAt - b.wallStartedAt;
  const own = attempts.attempts.filter((a) => a.messageId === id).sort(began);
  const callbacks = attempts.attempts.filter((a) => a.messageId !== id).sort(began);
  out.push(h("h4", {}, `Attempts (${own.length})`));
  if (!own.length) out.push(h("p", { class: "muted" }, "No attempt yet."));
  own.forEach((a, n) => out.push(attemptView(a, n)));
  if (callbacks.length) {
    out.push(h("h4", {}, `Callbacks (${callbacks.length})`));
    callbacks.forEach((a, n) => out.push(attemptView(a, n)));
  }
  out.push(
    h("h4", {}, "Log"),
    table(
      ["Time", "State", "Result"],
      rows.map((r) => h("tr", {}, h("td", { class: "mono" }, time(r.time)), h("td", {}, badge(r.state)), h("td", {}, resultOf(r)))),
      "No log rows.",
    ),
  );
  return out;
}

function attemptView(a, n) {
  const sig = a.signature;
  const signature = !sig
    ? null
    : sig.valid
      ? tag(`signature valid (${sig.key} key)`, "ok")
      : tag(`signature invalid: ${sig.reason}`, "bad");
  const decision =
    a.outcome === "retry"
      ? `retry in ${span(a.nextDelayMs)} (${a.delaySource})`
      : a.outcome === "failed"
        ? `failed: ${a.reason}`
        : a.outcome === "cancelled"
          ? `cancelled: ${a.reason}`
          : `delivered (${a.reason})`;
  return h(
    "div",
    { class: "attempt", dataset: { outcome: a.outcome, kind: a.kind } },
    h(
      "div",
      { class: "head" },
      h("strong", {}, `#${n + 1}`),
      a.kind !== "message" ? h("span", { class: "muted" }, `${a.kind.replace("_", " ")} ${a.messageId}`) : null,
      badge(a.outcome),
      h("span", { class: "mono" }, time(a.wallStartedAt)),
      h("span", { class: "muted" }, `${a.wallFinishedAt - a.wallStartedAt} ms`),
      signature,
    ),
    h("div", {}, h("span", { class: "muted" }, "decision: "), decision),
    h("details", {}, h("summary", {}, "Request as the destination saw it"), kv([["", `${a.request.method} ${a.request.url}`]]), headerList(a.request.headers), bodyOf(a.request)),
    a.response
      ? h("details", {}, h("summary", {}, `Response ${a.response.status}`), headerList(a.response.headers), bodyOf(a.response))
      : h("div", { class: "muted" }, `no answer: ${a.error}`),
  );
}

async function dlqDetail(dlqId) {
  const m = await api("GET", `/v2/dlq/${dlqId}`);
  return [
    h("div", { class: "toolbar" }, h("h3", {}, `Dead letter ${m.messageId}`), h("button", { onclick: closeDetail, "aria-label": "close" }, "Close")),
    h("div", { class: "actions" }, dlqActions(dlqId), h("button", { onclick: () => openDetail("message", m.messageId) }, "Attempts and log")),
    h("h4", {}, "Last response"),
    kv([["status", String(m.responseStatus)], ...(m.error ? [["error", m.error]] : [])]),
    headerList(m.responseHeader),
    bodyOf(m, "responseBody", "responseBodyBase64"),
    h("h4", {}, "Request"),
    kv([
      ["method", m.method],
      ["url", destination("", m.url)],
      ["created", time(m.createdAt)],
      ["dlq id", m.dlqId],
    ]),
    headerList(m.header),
    bodyOf(m),
  ];
}

// A link or the address bar naming another view or user (#view=...&user=...).
window.addEventListener("hashchange", () => {
  const wanted = new URLSearchParams(location.hash.slice(1));
  const user = state.users && state.users.find((u) => u.userId === wanted.get("user"));
  const view = VIEWS.some(([v]) => v === wanted.get("view")) ? wanted.get("view") : state.view;
  state.view = view;
  if (user && user.userId !== state.userId) {
    $("#user").value = user.userId;
    chooseUser(user.userId);
  } else {
    show(view);
  }
});

start().catch((error) => toast(`Could not start: ${error.message}`, true));

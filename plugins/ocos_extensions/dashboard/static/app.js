// The OCOS Hub dashboard: wires the protocol client (connection.js) to the views (views.js).
//
// Settings come from the JSON block the hub put in the page. Credentials, when the hub
// needs them, go in the page's fragment (`/#token=...` or `/#api_key=...`): the fragment is
// never sent to the server, so they stay out of its access logs; they are passed to the
// socket as the protocol's `?token=` / `?api_key=`, which browsers need (they cannot set
// headers on a WebSocket).

import { HubConnection } from "./connection.js";
import { Fields, el, markDirty } from "./dom.js";
import * as fmt from "./format.js";
import { AnalyticsView, ChainView, DaoView, GovernanceView, LiquidityView, NftView, OtherView } from "./views.js";

const settings = JSON.parse(document.getElementById("ocos-settings").textContent);
fmt.setTokenDecimals(settings.tokenDecimals);
const STORE_KEY = `ocos-dashboard:${location.pathname}`;
const KEEP_OFFSETS = 50000;  // offsets remembered per topic for the debug hook

// -- views --------------------------------------------------------------------------------

const daoView = new DaoView(settings);
const views = {
  blocks: new ChainView(settings),
  governance: new GovernanceView(settings),
  dao: daoView,
  liquidity: new LiquidityView(settings),
  nft: new NftView(settings),
  analytics: new AnalyticsView(settings, daoView),
};
const other = new OtherView(settings);
const header = new Fields();

function clearTopicViews(topic) {
  if (views[topic]) views[topic].clear();
  else other.clearTopic(topic);
}

// -- what the user picked, kept across reloads ----------------------------------------------

function loadChoices() {
  try {
    return JSON.parse(localStorage.getItem(STORE_KEY)) || {};
  } catch {
    return {};  // storage disabled or unreadable: start from the defaults
  }
}

const choices = loadChoices();

function saveChoices() {
  try {
    localStorage.setItem(STORE_KEY, JSON.stringify(choices));
  } catch { /* storage full or disabled: the choice lasts for this page only */ }
}

function choiceOf(topic) {
  if (!choices[topic]) {
    const on = settings.topics ? settings.topics.includes(topic) : true;
    choices[topic] = { on, filter: "", where: "" };
  }
  return choices[topic];
}

function parseBox(text, name) {
  const trimmed = text.trim();
  if (!trimmed) return null;
  let value;
  try {
    value = JSON.parse(trimmed);
  } catch (err) {
    throw new Error(`${name} is not valid JSON: ${err.message}`);
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    throw new Error(`${name} must be a JSON object`);
  }
  return value;
}

function optionsOf(choice) {
  return { filter: parseBox(choice.filter, "filter"), where: parseBox(choice.where, "where") };
}

// -- debug hook: what the page has shown, for tests and for people at the console --------

const received = new Map();  // topic -> offsets of the events handed to the views, in order

function remember(frame) {
  let list = received.get(frame.topic);
  if (!list) received.set(frame.topic, (list = []));
  list.push(frame.offset);
  if (list.length > KEEP_OFFSETS) list.splice(0, list.length - KEEP_OFFSETS);
}

// -- the connection -----------------------------------------------------------------------

function socketUrl() {
  const scheme = location.protocol === "https:" ? "wss:" : "ws:";
  const url = new URL(`${scheme}//${location.host}${settings.wsPath}`);
  const fragment = new URLSearchParams(location.hash.slice(1));
  for (const name of ["token", "api_key"]) {
    if (fragment.get(name)) url.searchParams.set(name, fragment.get(name));
  }
  return url.toString();
}

let connState = "connecting";
let reconnectAt = null;
let lastClose = null;
let rxCount = 0;
const failedRecoveries = new Map();  // topic -> text

const conn = new HubConnection(socketUrl(), {
  rewind: settings.rewind,
  onState: showState,
  onWelcome: showWelcome,
  onEvent: (frame) => {
    rxCount += 1;
    remember(frame);
    topicPanel.touch(frame.topic);
    const view = views[frame.topic];
    if (view) view.take(frame);
    else other.take(frame);
  },
  onTopic: (topic) => {
    topicPanel.touch(topic.name);
    if (connState === "open") updateDetail();
  },
  onRecovery: showRecoveryFailure,
  onNotice: (frame) => showNotice(`${frame.code}: ${frame.message}`),
  onLatency: (ms) => header.set("latency", `${Math.round(ms)} ms`),
});

function showState(state, info) {
  connState = state;
  const pill = document.getElementById("conn-state");
  pill.dataset.state = state;
  pill.textContent = state === "open" ? "connected" : state;
  reconnectAt = state === "reconnecting" ? info.at : null;
  if (info && info.code !== undefined) {
    lastClose = `closed ${info.code}${info.reason ? " " + info.reason : ""}`;
  }
  updateDetail();
}

function updateDetail() {
  let text = "";
  if (connState === "reconnecting" && reconnectAt !== null) {
    const wait = Math.max(0, (reconnectAt - Date.now()) / 1000);
    text = `retrying in ${wait.toFixed(1)} s · ${lastClose || ""}`;
  } else if (connState === "connecting") {
    text = "opening the socket…";
  } else if (connState === "open") {
    text = resumeSummary();
  } else if (connState === "failed" || connState === "closed") {
    text = lastClose || "";
  }
  header.set("conn-detail", text);
}

function resumeSummary() {
  const topics = [...conn.topics.values()].filter((t) => t.resumed && t.state === "live");
  if (!topics.length) return "";
  const lost = topics.filter((t) => t.recovered === false).length;
  return lost ? `resumed, ${lost} topic(s) not recovered` : `resumed ${topics.length} topic(s), nothing missed`;
}

function showWelcome(welcome) {
  const p = welcome.principal;
  const principal = document.getElementById("principal");
  principal.textContent = p ? `${p.id} (${p.method})` : "anonymous";
  principal.title = p ? `scopes: ${(p.scopes || []).join(" ")}${p.expires_at ? "\nexpires " + p.expires_at : ""}` : "no credentials";
  header.set("session", welcome.session);
  header.set("server", `${welcome.server} · ${welcome.protocol}`);
  buildTopicRows(welcome.topics || []);
}

function showRecoveryFailure(topic, { from, epochChanged }) {
  const why = epochChanged
    ? "the hub's history was reset (new epoch)"
    : "the hub no longer holds every event since then";
  failedRecoveries.set(topic.name, `${topic.name} (after offset ${from}): ${why}`);
  document.getElementById("recovery-text").textContent =
    `Recovery failed — events may be missing for ${[...failedRecoveries.values()].join("; ")}.`;
  document.getElementById("recovery-banner").hidden = false;
}

document.getElementById("recovery-dismiss").addEventListener("click", () => {
  failedRecoveries.clear();
  document.getElementById("recovery-banner").hidden = true;
});

let noticeTimer = null;
function showNotice(text) {
  const box = document.getElementById("notice");
  box.textContent = text;
  box.hidden = false;
  clearTimeout(noticeTimer);
  noticeTimer = setTimeout(() => { box.hidden = true; }, 15000);
}

// -- the topic list: a checkbox, a state and a filter box per topic -----------------------

const topicRows = new Map();  // name -> TopicRow

// Topic states change with every event (the offset): drawn once per frame, like the views.
const topicPanel = {
  touched: new Set(),
  touch(name) {
    this.touched.add(name);
    markDirty(this);
  },
  render() {
    for (const name of this.touched) {
      const row = topicRows.get(name);
      if (row) row.show(conn.topics.get(name) || null);
    }
    this.touched.clear();
  },
};

class TopicRow {
  constructor(name) {
    this.name = name;
    const choice = choiceOf(name);
    this.toggle = el("input", { type: "checkbox", "data-testid": `topic-toggle-${name}`, checked: choice.on });
    this.status = el("span", { class: "tstatus", "data-testid": `topic-status-${name}`, "data-state": "off" }, choice.on ? "waiting" : "off");
    this.filter = el("input", { type: "text", spellcheck: "false", "data-testid": `filter-${name}`, placeholder: "{}" });
    this.where = el("input", { type: "text", spellcheck: "false", "data-testid": `where-${name}`, placeholder: '{"data.field": {"gte": 1}}' });
    this.filter.value = choice.filter;
    this.where.value = choice.where;
    this.error = el("div", { class: "terror", "data-testid": `topic-error-${name}` });
    this.apply = el("button", { type: "button", "data-testid": `apply-${name}` }, "apply");
    this.summary = el("summary", {}, "filter");
    this.details = el("details", { "data-testid": `topic-filters-${name}` }, this.summary,
      el("label", {}, el("span", {}, "filter"), this.filter),
      el("label", {}, el("span", {}, "where"), this.where),
      el("div", { class: "actions" }, this.apply), this.error);
    this.node = el("div", { class: "topic", "data-testid": `topic-row-${name}`, "data-topic": name },
      el("div", { class: "thead" }, el("label", {}, this.toggle, el("b", {}, name)), this.status),
      this.details);
    this.toggle.addEventListener("change", () => this.changed());
    this.apply.addEventListener("click", () => this.changed(true));
    for (const box of [this.filter, this.where]) {
      box.addEventListener("keydown", (ev) => { if (ev.key === "Enter") this.changed(true); });
    }
    this.showSummary();
  }

  showSummary() {
    const active = [this.filter.value.trim() && "filter", this.where.value.trim() && "where"].filter(Boolean);
    this.summary.textContent = active.length ? `filtered by ${active.join(" + ")}` : "filter";
    this.summary.classList.toggle("active", active.length > 0);
  }

  // The user changed the checkbox or applied a filter: a new stream for this topic.
  changed(applied = false) {
    const choice = choiceOf(this.name);
    let options;
    try {
      options = optionsOf({ filter: this.filter.value, where: this.where.value });
    } catch (err) {
      this.error.textContent = err.message;
      return;
    }
    this.error.textContent = "";
    choice.on = this.toggle.checked;
    choice.filter = this.filter.value;
    choice.where = this.where.value;
    saveChoices();
    this.showSummary();
    if (choice.on) {
      if (applied || !conn.topics.has(this.name)) {
        clearTopicViews(this.name);
        received.delete(this.name);
        conn.follow(this.name, options);
      }
    } else {
      conn.unfollow(this.name);
      topicPanel.touch(this.name);
    }
  }

  show(topic) {
    const s = this.status;
    if (!topic) {
      s.dataset.state = "off";
      s.textContent = "off";
      delete s.dataset.offset;
      delete s.dataset.recovered;
      return;
    }
    s.dataset.state = topic.state;
    if (topic.offset !== null) s.dataset.offset = topic.offset;
    if (topic.epoch !== null) s.dataset.epoch = topic.epoch;
    if (topic.recovered !== null) s.dataset.recovered = String(topic.recovered);
    let text = topic.state;
    if (topic.state === "live") {
      text = topic.offset !== null ? `live · #${topic.offset}` : "live";
      if (topic.recovered === true) text += " · recovered";
      if (topic.recovered === false) text += " · NOT recovered";
    }
    s.textContent = text;
    s.title = topic.epoch ? `epoch ${topic.epoch}` : "";
    s.classList.toggle("lost", topic.recovered === false);
    this.error.textContent = topic.error ? `${topic.error.code}: ${topic.error.message}` : "";
    if (topic.error) this.details.open = true;
  }

  hint(schema) {
    // Placeholders from the topic's filter schema: the fields a user can write.
    const props = schema && schema.filter && schema.filter.properties;
    if (props) {
      const example = Object.keys(props).map((name) => `"${name}": …`).join(", ");
      this.filter.placeholder = `{${example}}`;
      this.filter.title = Object.entries(props).map(([name, p]) => `${name}: ${p.description || ""}`).join("\n");
    }
  }
}

function buildTopicRows(names) {
  const list = document.getElementById("topic-list");
  const wanted = new Set(names);
  for (const [name, row] of topicRows) {
    row.node.classList.toggle("unavailable", !wanted.has(name));
  }
  let added = false;
  for (const name of names) {
    if (topicRows.has(name)) continue;
    const row = new TopicRow(name);
    topicRows.set(name, row);
    if (choiceOf(name).on) {
      try {
        conn.follow(name, optionsOf(choiceOf(name)));
      } catch (err) {  // a stored filter that no longer parses: show it, follow unfiltered
        row.error.textContent = err.message;
        conn.follow(name, {});
      }
    }
    added = true;
  }
  if (added) {
    list.replaceChildren(...[...topicRows.values()].map((row) => row.node));
    fetchSchemas();
  }
}

let schemasFetched = false;
async function fetchSchemas() {
  if (schemasFetched) return;
  schemasFetched = true;
  try {
    const response = await fetch("/api/v1/topics", { headers: { Accept: "application/json" } });
    if (!response.ok) return;
    const { topics } = await response.json();
    for (const schema of topics) topicRows.get(schema.name)?.hint(schema);
  } catch { /* hints only: the page works without them */ }
}

// -- the inspector: the raw JSON of a clicked row -------------------------------------------

let selected = null;
document.addEventListener("click", (ev) => {
  let node = ev.target;
  while (node && !node.ocosEvent) node = node.parentElement;
  if (!node) return;
  const frame = node.ocosEvent;
  if (selected) selected.classList.remove("selected");
  selected = node;
  node.classList.add("selected");
  document.getElementById("inspector-title").textContent = `${frame.topic} · ${frame.event} · #${frame.offset}`;
  document.getElementById("inspector").textContent = JSON.stringify(frame, null, 2);
});

// -- once a second: the receive rate and the reconnect countdown ----------------------------

setInterval(() => {
  header.set("rx-rate", rxCount);
  rxCount = 0;
  if (connState === "reconnecting") updateDetail();
}, 1000);

// Tests and curious people: `ocosDashboard.offsets("blocks")` lists the offsets shown.
window.ocosDashboard = {
  settings,
  state: () => connState,
  offsets: (topic) => [...(received.get(topic) || [])],
  topics: () => Object.fromEntries([...conn.topics.values()].map((t) => [t.name, {
    state: t.state, offset: t.offset, epoch: t.epoch, recovered: t.recovered, error: t.error,
  }])),
};

document.title = settings.title;
markDirty(header);
conn.start();

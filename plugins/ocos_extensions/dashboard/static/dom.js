// DOM helpers and the render scheduler shared by the views.
//
// Events may arrive at 50 per second and more; the page must not touch the DOM for each.
// Views collect what changed and `markDirty` themselves; every dirty view then renders in
// one animation frame, writing only (nothing here reads layout), so a burst costs one
// style, layout and paint pass. Frames with changes are at least FRAME_GAP ms apart: a
// feed scrolling ten times a second is as readable as at sixty, and repainting a page of
// text sixty times a second would keep a slow machine busy for nothing.

const FRAME_GAP = 100;
const dirty = new Set();
let scheduled = false;
let lastRender = 0;

export function markDirty(view) {
  dirty.add(view);
  if (scheduled) return;
  scheduled = true;
  const wait = lastRender + FRAME_GAP - performance.now();
  if (wait > 0) setTimeout(() => requestAnimationFrame(renderDirty), wait);
  else requestAnimationFrame(renderDirty);
}

function renderDirty(now) {
  scheduled = false;
  lastRender = now;
  const views = [...dirty];
  dirty.clear();
  for (const view of views) {
    try {
      view.render();
    } catch (err) {
      console.error("dashboard: a view failed to render", err);
    }
  }
}

// el("td", {class: "num", "data-testid": "x"}, "text", child, ...): text is never parsed
// as HTML, so event data (titles, names, URIs) cannot inject markup.
export function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name === "class") node.className = value;
    else node.setAttribute(name, value === true ? "" : String(value));
  }
  for (const child of children) {
    if (child === null || child === undefined) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

// Rows remember the event they show, for the inspector.
export function withEvent(row, event) {
  row.ocosEvent = event;
  row.classList.add("clickable");
  return row;
}

// A bounded list, newest first. New rows are built in a fragment and inserted at once;
// the oldest rows beyond `max` are dropped. Events that arrive while the page is hidden
// (no animation frames) are kept up to `max`, never more.
export class Feed {
  constructor(tbody, max, build) {
    this.tbody = tbody;
    this.max = max;
    this.build = build;
    this.pending = [];
    this.jobs = [];  // work on the rows already shown, done before new ones are added
  }

  push(item) {
    this.pending.push(item);
    if (this.pending.length > this.max * 2) this.pending.splice(0, this.pending.length - this.max);
    markDirty(this);
  }

  // Run `job(row)` on every row already in the list, at the next render.
  touchShown(job) {
    this.jobs.push(job);
    markDirty(this);
  }

  render() {
    if (this.jobs.length) {
      const jobs = this.jobs;
      this.jobs = [];
      for (const row of [...this.tbody.children]) for (const job of jobs) job(row);
    }
    if (!this.pending.length) return;
    const items = this.pending.length > this.max ? this.pending.slice(-this.max) : this.pending;
    this.pending = [];
    const fragment = document.createDocumentFragment();
    for (let i = items.length - 1; i >= 0; i -= 1) fragment.append(this.build(items[i]));
    this.tbody.prepend(fragment);
    let extra = this.tbody.childElementCount - this.max;
    while (extra-- > 0) this.tbody.lastElementChild.remove();
  }

  clear() {
    this.pending = [];
    this.jobs = [];
    this.tbody.replaceChildren();
  }
}

// A bounded table of things that change (proposals, pools, auctions): one row per key,
// created once and updated in place. The least recently created rows go beyond `max`.
export class KeyedTable {
  constructor(tbody, max, { create, update }) {
    this.tbody = tbody;
    this.max = max;
    this.create = create;
    this.update = update;
    this.items = new Map();  // key -> model, in creation order
    this.rows = new Map();   // key -> row
    this.changed = new Set();
  }

  get(key) {
    return this.items.get(key);
  }

  // Store or refresh `model` under `key`; it is drawn at the next frame.
  set(key, model) {
    if (!this.items.has(key)) {
      this.items.set(key, model);
      while (this.items.size > this.max) {
        const oldest = this.items.keys().next().value;
        this.items.delete(oldest);
        this.changed.delete(oldest);
        const row = this.rows.get(oldest);
        if (row) row.remove();
        this.rows.delete(oldest);
      }
    }
    this.changed.add(key);
    markDirty(this);
  }

  render() {
    const fresh = [];
    for (const key of this.changed) {
      const model = this.items.get(key);
      if (!model) continue;
      let row = this.rows.get(key);
      if (!row) {
        row = this.create(key, model);
        this.rows.set(key, row);
        fresh.push(row);
      }
      this.update(row, model);
    }
    this.changed.clear();
    if (fresh.length) this.tbody.prepend(...fresh.reverse());
  }

  clear() {
    this.items.clear();
    this.rows.clear();
    this.changed.clear();
    this.tbody.replaceChildren();
  }
}

// A block of text fields updated together: `set("id", text)` writes at the next frame,
// and only when the text differs.
export class Fields {
  constructor() {
    this.values = new Map();
  }

  set(id, text, attrs) {
    this.values.set(id, { text: String(text), attrs });
    markDirty(this);
  }

  render() {
    for (const [id, { text, attrs }] of this.values) {
      const node = document.getElementById(id);
      if (!node) continue;
      if (node.textContent !== text) node.textContent = text;
      if (attrs) for (const [name, value] of Object.entries(attrs)) node.setAttribute(name, value);
    }
    this.values.clear();
  }
}

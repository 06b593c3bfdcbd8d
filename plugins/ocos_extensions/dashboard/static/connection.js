// A protocol v1 (`ocos.v1`) client for the browser that never loses its place.
//
// It reconnects with exponential backoff and, for every topic it follows, resubscribes
// with `since: {offset, epoch}` (the last event it delivered), so events arrive once each
// and in order across disconnects and hub restarts. When the hub could not recover
// (`recovered: false`) it says so through `onRecovery`.
//
// It knows nothing about the page: callers pass callbacks.

export const PROTOCOL = "ocos.v1";

// One topic the page follows.
class Topic {
  constructor(name, options) {
    this.name = name;
    this.options = options;      // {filter, where} as the user gave them (or null)
    this.offset = null;          // last offset delivered (or covered), null: none yet
    this.epoch = null;
    this.state = "waiting";      // waiting | subscribing | live | error | forbidden
    this.recovered = null;       // the last resume's answer: true, false, or null (no resume)
    this.error = null;           // the hub's refusal, {code, message}
    this.accepting = false;      // events are taken only between our ack and a change
    this.rewound = false;        // the current subscription started with `rewind`
  }
}

export class HubConnection {
  constructor(url, {
    rewind = 0, minBackoff = 500, maxBackoff = 15000, pingEvery = 20000, pongWithin = 10000,
    onState = () => {}, onWelcome = () => {}, onEvent = () => {}, onTopic = () => {},
    onRecovery = () => {}, onNotice = () => {}, onLatency = () => {},
  } = {}) {
    this.url = url;
    this.rewind = rewind;
    this.minBackoff = minBackoff;
    this.maxBackoff = maxBackoff;
    this.pingEvery = pingEvery;
    this.pongWithin = pongWithin;
    this.cb = { onState, onWelcome, onEvent, onTopic, onRecovery, onNotice, onLatency };
    this.topics = new Map();     // name -> Topic, the ones the user wants
    this.allowed = null;         // welcome.topics of the current connection
    this.ws = null;
    this.welcome = null;
    this.attempt = 0;            // failed attempts since the last welcome
    this.nextId = 1;
    this.pending = new Map();    // request id -> {op, topic}
    this.timer = null;           // reconnect or ping timer
    this.pongTimer = null;
    this.stopped = false;
  }

  // -- what the page asks for ---------------------------------------------------------

  start() {
    this.stopped = false;
    this._connect();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
    clearTimeout(this.pongTimer);
    if (this.ws) this.ws.close(1000, "bye");
  }

  // Follow a topic; `options` = {filter, where}. Changing the options of a followed topic
  // starts it over (its views are the caller's to clear): a new filter means a new stream.
  follow(name, options = {}) {
    const old = this.topics.get(name);
    const topic = new Topic(name, options);
    this.topics.set(name, topic);
    if (!this._isOpen()) return;
    if (old && old.state !== "error" && old.state !== "forbidden" && old.state !== "waiting") {
      // Replies come in request order: the unsubscribe's ack, then the new subscribe's ack,
      // then its replay. Events of the old subscription before that are dropped, since
      // `accepting` is false on the new Topic until its ack.
      this._send({ type: "unsubscribe", topic: name });
    }
    this._subscribe(topic);
  }

  unfollow(name) {
    const topic = this.topics.get(name);
    if (!topic) return;
    this.topics.delete(name);
    if (this._isOpen() && (topic.state === "live" || topic.state === "subscribing")) {
      this._send({ type: "unsubscribe", topic: name });
    }
  }

  // -- the socket ---------------------------------------------------------------------

  _isOpen() {
    return this.ws !== null && this.ws.readyState === WebSocket.OPEN && this.welcome !== null;
  }

  _connect() {
    this.welcome = null;
    this.pending.clear();
    this.cb.onState("connecting", { attempt: this.attempt });
    let ws;
    try {
      ws = new WebSocket(this.url, [PROTOCOL]);
    } catch (err) {  // a malformed URL: nothing to retry
      this.cb.onState("failed", { reason: String(err) });
      return;
    }
    this.ws = ws;
    ws.onmessage = (msg) => this._frame(msg.data);
    ws.onclose = (ev) => this._closed(ws, ev);
    // `error` is always followed by `close`, which does the work.
  }

  _closed(ws, ev) {
    if (ws !== this.ws) return;  // an old socket, already replaced
    clearTimeout(this.pongTimer);
    clearTimeout(this.timer);
    this.ws = null;
    this.welcome = null;
    for (const topic of this.topics.values()) {
      topic.accepting = false;
      if (topic.state !== "error") topic.state = "waiting";
      this.cb.onTopic(topic);
    }
    if (this.stopped) {
      this.cb.onState("closed", { code: ev.code, reason: ev.reason });
      return;
    }
    // Exponential backoff with jitter, so that a restarted hub is not hit by every page
    // at the same instant.
    const base = Math.min(this.maxBackoff, this.minBackoff * 2 ** this.attempt);
    const delay = Math.round(base * (0.5 + Math.random() / 2));
    this.attempt += 1;
    this.cb.onState("reconnecting", { code: ev.code, reason: ev.reason, delay,
                                      at: Date.now() + delay, attempt: this.attempt });
    this.timer = setTimeout(() => this._connect(), delay);
  }

  _send(request) {
    const id = this.nextId++;
    this.pending.set(id, { op: request.type, topic: request.topic });
    this.ws.send(JSON.stringify({ ...request, id }));
    return id;
  }

  _subscribe(topic) {
    if (this.allowed && !this.allowed.includes(topic.name)) {
      topic.state = "forbidden";
      topic.error = { code: "forbidden", message: "this connection may not see this topic" };
      this.cb.onTopic(topic);
      return;
    }
    const request = { type: "subscribe", topic: topic.name };
    const { filter, where } = topic.options;
    if (filter) request.filter = filter;
    if (where) request.where = where;
    if (topic.offset !== null && topic.epoch !== null) {
      request.since = { offset: topic.offset, epoch: topic.epoch };
    } else if (this.rewind > 0) {
      request.rewind = this.rewind;
    }
    topic.rewound = "rewind" in request;
    topic.state = "subscribing";
    topic.error = null;
    topic.accepting = false;
    topic.requestId = this._send(request);
    topic.resumed = "since" in request;
    this.cb.onTopic(topic);
  }

  // -- frames from the hub --------------------------------------------------------------

  _frame(text) {
    let frame;
    try {
      frame = JSON.parse(text);
    } catch {
      return;  // the hub sends JSON only; ignore anything else rather than stop
    }
    switch (frame.type) {
      case "event": return this._event(frame);
      case "welcome": return this._welcome(frame);
      case "ack": return this._ack(frame);
      case "pong": return this._pong(frame);
      case "error": return this._error(frame);
      default: return undefined;
    }
  }

  _event(frame) {
    const topic = this.topics.get(frame.topic);
    if (!topic || !topic.accepting) return;
    // Offsets grow by one per retained event; anything at or below what we have is a
    // replay of something already shown (a resume racing a live event).
    if (topic.offset !== null && frame.offset <= topic.offset) return;
    topic.offset = frame.offset;
    this.cb.onEvent(frame, topic);
  }

  _welcome(frame) {
    this.welcome = frame;
    this.allowed = Array.isArray(frame.topics) ? frame.topics : [];
    this.attempt = 0;
    this.cb.onState("open", { welcome: frame });
    // Resume what we followed before the page hears of the welcome: topics it follows
    // from its callback are subscribed there, once.
    for (const topic of this.topics.values()) this._subscribe(topic);
    this.cb.onWelcome(frame);
    this._schedulePing(frame.heartbeat);
  }

  _ack(frame) {
    const request = this.pending.get(frame.id);
    this.pending.delete(frame.id);
    if (!request || frame.op !== "subscribe") return;
    const topic = this.topics.get(frame.topic);
    if (!topic || topic.requestId !== frame.id) return;  // superseded by a newer follow()
    if (topic.resumed) {
      topic.recovered = frame.recovered === true;
      if (!topic.recovered) {
        const epochChanged = frame.epoch !== topic.epoch;
        this.cb.onRecovery(topic, { from: topic.offset, epochChanged, ack: frame });
        // A new lineage: its offsets start over, so what we hold says nothing any more.
        // Live events follow the ack's offset.
        if (epochChanged) topic.offset = frame.offset;
      }
    } else if (!topic.rewound) {
      topic.offset = frame.offset;  // live from here on; nothing before it is wanted
    }
    // After a rewind the replay carries the offsets; none until the first event arrives.
    topic.epoch = frame.epoch;
    topic.state = "live";
    topic.accepting = true;
    this.cb.onTopic(topic);
  }

  _error(frame) {
    const request = frame.id === null || frame.id === undefined ? null : this.pending.get(frame.id);
    if (request) this.pending.delete(frame.id);
    if (request && request.op === "unsubscribe") return;  // not_subscribed: already gone
    if (request && request.op === "subscribe") {
      const topic = this.topics.get(request.topic);
      if (topic && topic.requestId === frame.id) {
        topic.state = "error";
        topic.error = { code: frame.code, message: frame.message, details: frame.details };
        this.cb.onTopic(topic);
      }
      return;
    }
    // Notices not tied to a request: slow_consumer, token_expired, rate_limited ...
    this.cb.onNotice(frame);
  }

  // -- liveness -------------------------------------------------------------------------
  // Browsers answer the hub's WebSocket pings without telling the page, so a dead link
  // (a laptop waking up, a proxy dropping the flow) is found with protocol pings.

  _schedulePing(heartbeat) {
    const every = Math.min(this.pingEvery, Math.max(1000, (heartbeat || 30) * 1000));
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this._ping(every), Math.min(every, 2000));
  }

  _ping(every) {
    if (!this._isOpen()) return;
    this.pingSent = performance.now();
    this._send({ type: "ping" });
    clearTimeout(this.pongTimer);
    this.pongTimer = setTimeout(() => {
      const ws = this.ws;
      if (!ws) return;
      // A dead link may take long to report its close: give up on it now (its own close
      // event, when it comes, is ignored) and reconnect.
      ws.close(4000, "no pong");
      this._closed(ws, { code: 4000, reason: "no answer to ping" });
    }, this.pongWithin);
    this.timer = setTimeout(() => this._ping(every), every);
  }

  _pong(frame) {
    this.pending.delete(frame.id);
    clearTimeout(this.pongTimer);
    this.cb.onLatency(performance.now() - this.pingSent, frame.ts);
  }
}

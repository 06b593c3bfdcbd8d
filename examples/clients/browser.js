// OCOS Hub browser client: subscribe with a filter, show every event once, in order,
// across disconnects. Plain JavaScript for browser.html, no build step.
//
// The algorithm: connect offering the `ocos.v1` subprotocol; the first frame is `welcome`;
// subscribe, and keep the ack's `offset` and `epoch`; skip events at or below the last
// offset processed; when the connection drops, reconnect with backoff and subscribe with
// `since: {offset, epoch}`, and the hub sends what was missed, then live events.
// Browsers answer the hub's WebSocket pings by themselves.
"use strict";

(function () {
  const PROTOCOL = "ocos.v1";
  const MIN_BACKOFF = 200;
  const MAX_BACKOFF = 10000;
  const MAX_ROWS = 1000;

  const $ = (id) => document.getElementById(id);
  let current = null; // the running follower, replaced on each Connect

  function log(kind, text, attributes) {
    const item = document.createElement("li");
    item.dataset.kind = kind;
    for (const [name, value] of Object.entries(attributes || {})) item.dataset[name] = value;
    item.textContent = `${new Date().toISOString().slice(11, 23)} ${text}`;
    $("log").appendChild(item);
  }

  function status(text) {
    $("status").textContent = text;
  }

  function show(frame) {
    const list = $("events");
    const item = document.createElement("li");
    item.value = frame.offset;
    item.dataset.offset = String(frame.offset);
    item.dataset.event = frame.event;
    item.textContent = `${frame.event} ${JSON.stringify(frame.data)}`;
    list.appendChild(item);
    while (list.children.length > MAX_ROWS) list.removeChild(list.firstChild);
  }

  function follow(settings) {
    let offset = null; // the last offset processed, in `epoch`
    let epoch = null;
    let backoff = MIN_BACKOFF;
    let socket = null;
    let stopped = false;

    function connect() {
      const url = new URL(settings.hub);
      if (settings.token) url.searchParams.set("token", settings.token);
      status(`Connecting to ${settings.hub} ...`);
      socket = new WebSocket(url.toString(), PROTOCOL);

      socket.onmessage = (message) => {
        const frame = JSON.parse(message.data);
        if (frame.type === "welcome") {
          const request = { type: "subscribe", id: "sub", topic: settings.topic };
          if (settings.filter !== undefined) request.filter = settings.filter;
          if (settings.events.length) request.events = settings.events;
          if (offset !== null) request.since = { offset, epoch };
          socket.send(JSON.stringify(request));
        } else if (frame.type === "ack" && frame.op === "subscribe") {
          backoff = MIN_BACKOFF;
          if (offset === null || frame.epoch !== epoch) {
            // first subscribe, or a new lineage whose offsets start over
            offset = frame.offset;
            epoch = frame.epoch;
          }
          const recovered = frame.recovered === undefined ? "" : String(frame.recovered);
          log("ack", `subscribed to ${frame.topic} after offset ${frame.offset}` +
              (recovered ? ` (recovered: ${recovered})` : ""), { offset: frame.offset, recovered });
          status(`Subscribed to ${frame.topic}.`);
        } else if (frame.type === "event") {
          if (offset !== null && frame.offset <= offset) return; // already shown
          offset = frame.offset;
          show(frame);
        } else if (frame.type === "error" && frame.id === "sub") {
          stopped = true;
          log("refused", `subscription refused: ${frame.code}: ${frame.message}`);
          status(`Refused: ${frame.message}`);
          socket.close();
        } else if (frame.type === "error") {
          log("notice", `${frame.code}: ${frame.message}`);
        }
      };

      socket.onclose = (event) => {
        if (stopped) return;
        const delay = backoff * (0.5 + Math.random());
        backoff = Math.min(MAX_BACKOFF, backoff * 2);
        log("closed", `connection closed (${event.code}); reconnecting in ` +
            `${(delay / 1000).toFixed(1)}s after offset ${offset}`, { code: event.code });
        status("Disconnected; reconnecting ...");
        setTimeout(connect, delay);
      };
    }

    connect();
    return {
      stop() {
        stopped = true;
        if (socket) socket.close();
      },
    };
  }

  function settingsFromForm() {
    const filter = $("filter").value.trim();
    return {
      hub: $("hub").value.trim(),
      topic: $("topic").value.trim(),
      filter: filter ? JSON.parse(filter) : undefined,
      events: $("events").value.split(",").map((s) => s.trim()).filter(Boolean),
      token: $("token").value.trim(),
    };
  }

  $("settings").addEventListener("submit", (event) => {
    event.preventDefault();
    if (current) current.stop();
    $("events").replaceChildren();
    try {
      current = follow(settingsFromForm());
    } catch (error) {
      status(`Cannot connect: ${error.message}`);
    }
  });

  // Query parameters fill the form; a `topic` among them connects at once.
  const query = new URLSearchParams(location.search);
  for (const name of ["hub", "topic", "filter", "events", "token"]) {
    if (query.has(name)) $(name).value = query.get(name);
  }
  if (query.has("topic")) $("settings").requestSubmit();
})();

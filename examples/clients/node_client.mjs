#!/usr/bin/env node
// Follow an OCOS Hub topic with a filter: every event once, in order, across disconnects.
//
//   cd examples/clients && npm ci
//   node node_client.mjs ws://127.0.0.1:8765/ws blocks --filter '{"min_height": 1000}' \
//     --events block.new,tx.new
//
// Prints one JSON object per line on stdout: the `ack` of each subscribe (with `recovered`
// after a reconnect) and each `event`. Connection notes go to stderr.
//
// The algorithm: connect offering the `ocos.v1` subprotocol; the first frame is `welcome`;
// subscribe, and keep the ack's `offset` and `epoch`; skip events at or below the last
// offset processed; when the connection drops, reconnect with backoff and subscribe with
// `since: {offset, epoch}`, and the hub sends what was missed, then live events.
// `ws` answers the hub's WebSocket pings by itself.

import WebSocket from "ws";

const PROTOCOL = "ocos.v1";
const MIN_BACKOFF = 200;
const MAX_BACKOFF = 10000;

function parseArgs(argv) {
  const args = { url: null, topic: null, filter: undefined, events: [], token: null };
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--filter") args.filter = JSON.parse(argv[++i]);
    else if (arg === "--events") args.events = argv[++i].split(",").filter(Boolean);
    else if (arg === "--token") args.token = argv[++i];
    else rest.push(arg);
  }
  [args.url, args.topic] = rest;
  if (!args.url || !args.topic) {
    console.error("usage: node node_client.mjs URL TOPIC [--filter JSON] [--events a,b] " +
                  "[--token TOKEN]");
    process.exit(2);
  }
  return args;
}

const args = parseArgs(process.argv.slice(2));
const note = (text) => console.error(text);
const emit = (frame) => process.stdout.write(JSON.stringify(frame) + "\n");

let offset = null; // the last offset processed, in `epoch`
let epoch = null;
let backoff = MIN_BACKOFF;

function connect() {
  const headers = args.token ? { Authorization: `Bearer ${args.token}` } : {};
  const ws = new WebSocket(args.url, PROTOCOL, { headers });

  ws.on("message", (data, isBinary) => {
    if (isBinary) return;
    const frame = JSON.parse(data.toString("utf8"));
    if (frame.type === "welcome") {
      const request = { type: "subscribe", id: "sub", topic: args.topic };
      if (args.filter !== undefined) request.filter = args.filter;
      if (args.events.length) request.events = args.events;
      if (offset !== null) request.since = { offset, epoch };
      ws.send(JSON.stringify(request));
    } else if (frame.type === "ack" && frame.op === "subscribe") {
      backoff = MIN_BACKOFF;
      if (offset === null || frame.epoch !== epoch) {
        // first subscribe, or a new lineage whose offsets start over
        offset = frame.offset;
        epoch = frame.epoch;
      }
      emit(frame);
    } else if (frame.type === "event") {
      if (offset !== null && frame.offset <= offset) return; // already processed
      offset = frame.offset;
      emit(frame);
    } else if (frame.type === "error" && frame.id === "sub") {
      note(`subscription refused: ${frame.code}: ${frame.message}`);
      process.exit(1);
    } else if (frame.type === "error") {
      note(`notice: ${frame.code}: ${frame.message}`);
    }
  });

  ws.on("error", (err) => note(`connection error: ${err.message}`));

  ws.on("close", (code) => {
    const delay = backoff * (0.5 + Math.random());
    backoff = Math.min(MAX_BACKOFF, backoff * 2);
    note(`connection closed (${code}); reconnecting in ${(delay / 1000).toFixed(1)}s, ` +
         `resuming after offset ${offset}`);
    setTimeout(connect, delay);
  });
}

connect();

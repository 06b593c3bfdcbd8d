// The views of the page, one per topic of the catalog, plus a generic one for the others.
// Each takes events as they come (`take(frame)`: cheap, no DOM) and draws at the next
// animation frame through the helpers of dom.js.

import { LineChart } from "./chart.js";
import { Feed, Fields, KeyedTable, el, markDirty, withEvent } from "./dom.js";
import * as fmt from "./format.js";

function kindBadge(kind) {
  return el("span", { class: `kind kind-${kind.replace(/[^a-z]/g, "-")}` }, kind);
}

function cells(...values) {
  return values.map((v) => el("td", {}, v));
}

// -- blocks ------------------------------------------------------------------------------

export class ChainView {
  constructor(settings) {
    this.native = settings.nativeToken;
    this.fields = new Fields();
    this.parentTimes = new Map();  // block hash -> timestamp (ms), for time between blocks
    this.finalized = null;
    this.reorgs = 0;
    this.blocks = new Feed(document.getElementById("blocks-feed"), settings.maxItems, (item) => this.blockRow(item));
    this.txs = new Feed(document.getElementById("tx-feed"), settings.maxItems, (frame) => this.txRow(frame));
  }

  take(frame) {
    const d = frame.data;
    switch (frame.event) {
      case "block.new": {
        const t = fmt.millis(d.timestamp);
        const parent = this.parentTimes.get(d.parent_hash);
        const gap = parent !== undefined && t !== null ? (t - parent) / 1000 : null;
        this.parentTimes.set(d.hash, t);
        if (this.parentTimes.size > 512) this.parentTimes.delete(this.parentTimes.keys().next().value);
        this.blocks.push({ frame, gap });
        this.fields.set("head-height", `#${d.height}`);
        this.fields.set("head-txs", d.tx_count);
        this.fields.set("head-blocktime", fmt.seconds(gap));
        break;
      }
      case "tx.new":
        this.txs.push(frame);
        break;
      case "block.finalized": {
        this.finalized = d.height;
        this.fields.set("finalized-height", `#${d.height}`);
        const height = d.height;
        this.blocks.touchShown((row) => {
          if (row.dataset.height && Number(row.dataset.height) <= height) row.classList.add("final");
        });
        break;
      }
      case "chain.reorg": {
        this.reorgs += 1;
        this.fields.set("reorgs", this.reorgs);
        const fork = d.fork_height;
        // Blocks above the fork were replaced: strike them through, shown or not yet shown.
        for (const item of this.blocks.pending) {
          if (item.frame && item.frame.event === "block.new" && item.frame.data.height > fork) item.orphaned = true;
        }
        this.blocks.touchShown((row) => {
          if (row.dataset.height && Number(row.dataset.height) > fork) row.classList.add("orphaned");
        });
        this.blocks.push({ frame, reorg: true });
        break;
      }
      default:
        break;
    }
  }

  blockRow({ frame, gap, reorg, orphaned }) {
    const d = frame.data;
    if (reorg) {
      const row = el("tr", { class: "reorg" },
        el("td", { colspan: 5 }, `reorg: ${d.depth} block(s) above #${d.fork_height} replaced`));
      return withEvent(row, frame);
    }
    const row = el("tr", { "data-height": d.height, "data-offset": frame.offset },
      ...cells(el("b", {}, `#${d.height}`), d.tx_count, fmt.seconds(gap), fmt.short(d.proposer), fmt.clock(d.timestamp)));
    if (orphaned) row.classList.add("orphaned");
    if (this.finalized !== null && d.height <= this.finalized) row.classList.add("final");
    return withEvent(row, frame);
  }

  txRow(frame) {
    const d = frame.data;
    const ok = d.status === "success";
    const row = el("tr", { "data-offset": frame.offset, class: ok ? "" : "failed" },
      ...cells(`#${d.block_height}`, fmt.short(d.hash), `${fmt.short(d.from, 4)} → ${fmt.short(d.to, 4)}`,
        fmt.amount(d.value, this.native), el("span", { class: ok ? "ok" : "bad", title: d.status }, ok ? "✓" : "✗")));
    return withEvent(row, frame);
  }

  clear() {
    this.blocks.clear();
    this.txs.clear();
    this.parentTimes.clear();
  }
}

// -- governance ---------------------------------------------------------------------------

const CHOICES = ["yes", "no", "abstain"];

export class GovernanceView {
  constructor(settings) {
    this.native = settings.nativeToken;
    this.table = new KeyedTable(document.getElementById("proposals"), settings.maxItems, {
      create: (id) => this.createRow(id),
      update: (row, p) => this.updateRow(row, p),
    });
  }

  proposal(id) {
    let p = this.table.get(id);
    if (!p) {
      p = { id, title: null, status: "unknown", dao: null, last: null,
            tally: { yes: [0, 0n], no: [0, 0n], abstain: [0, 0n] } };
    }
    return p;
  }

  take(frame) {
    const d = frame.data;
    const p = this.proposal(d.proposal_id);
    p.last = frame;
    switch (frame.event) {
      case "proposal.created":
        p.title = d.title;
        p.dao = d.dao_id || null;
        if (p.status === "unknown") p.status = "pending";
        break;
      case "vote.cast": {
        const t = p.tally[d.choice];
        if (t) {
          t[0] += 1;
          try { t[1] += BigInt(d.weight); } catch { /* a weight that is not an integer */ }
        }
        break;
      }
      case "proposal.status":
        p.status = d.status;
        break;
      case "proposal.executed":
        p.status = d.success ? "executed" : "failed";
        break;
      default:
        break;
    }
    this.table.set(d.proposal_id, p);
  }

  createRow(id) {
    const bar = el("div", { class: "bar" }, ...CHOICES.map((c) => el("i", { class: c })));
    const tallies = el("div", { class: "tallies" }, ...CHOICES.map((c) =>
      el("span", { class: c, "data-testid": `tally-${id}-${c}` })));
    return el("tr", { "data-testid": `proposal-${id}`, "data-proposal": id },
      el("td", {}, el("b", { class: "pid" }, id), el("div", { class: "ptitle" })),
      el("td", {}, el("span", { class: "status", "data-testid": `status-${id}` })),
      el("td", {}, bar, tallies));
  }

  updateRow(row, p) {
    withEvent(row, p.last);
    const [idCell, statusCell, votesCell] = row.children;
    idCell.lastChild.textContent = p.title || "(created before this page opened)";
    if (p.dao) idCell.lastChild.title = `DAO ${p.dao}`;
    const status = statusCell.firstChild;
    status.textContent = p.status;
    status.className = `status status-${p.status}`;
    const total = CHOICES.reduce((sum, c) => sum + p.tally[c][1], 0n);
    const bars = votesCell.firstChild.children;
    const spans = votesCell.lastChild.children;
    CHOICES.forEach((c, i) => {
      const [votes, weight] = p.tally[c];
      // Shares of the total weight in tenths of a percent, in BigInt: weights are 256-bit.
      const share = total > 0n ? Number((weight * 1000n) / total) / 10 : 0;
      bars[i].style.width = `${share}%`;
      spans[i].textContent = `${c} ${votes} · ${fmt.amount(weight.toString(), this.native)}`;
      spans[i].dataset.votes = votes;
      spans[i].dataset.weight = weight.toString();
    });
  }

  clear() {
    this.table.clear();
  }
}

// -- DAOs ---------------------------------------------------------------------------------

export class DaoView {
  constructor(settings) {
    this.feed = new Feed(document.getElementById("dao-feed"), settings.maxItems, (frame) => this.row(frame));
    this.table = new KeyedTable(document.getElementById("daos"), 50, {
      create: (id) => el("tr", { "data-testid": `dao-${id}` }, ...cells("", "–", "–", "–")),
      update: (row, dao) => {
        const [name, members, active, rate] = row.children;
        name.textContent = dao.name ? `${dao.name} (${dao.id})` : dao.id;
        members.textContent = dao.members ?? "–";
        active.textContent = dao.active ?? "–";
        rate.textContent = fmt.percent(dao.participation);
        if (dao.last) withEvent(row, dao.last);
      },
    });
  }

  dao(id) {
    return this.table.get(id) || { id, name: null, members: null, active: null, participation: null, last: null };
  }

  take(frame) {
    const d = frame.data;
    const dao = this.dao(d.dao_id);
    if (frame.event === "dao.created") dao.name = d.name;
    dao.last = frame;
    this.table.set(d.dao_id, dao);
    this.feed.push(frame);
  }

  // dao.metrics from the analytics topic: members and participation as the hub counts them.
  metrics(frame) {
    const d = frame.data;
    const dao = this.dao(d.dao_id);
    dao.members = d.members;
    dao.active = d.proposals_active;
    dao.participation = d.participation_rate;
    if (!dao.last) dao.last = frame;
    this.table.set(d.dao_id, dao);
  }

  row(frame) {
    const d = frame.data;
    let what;
    switch (frame.event) {
      case "member.joined": what = `${fmt.short(d.member)} joined as ${d.role}`; break;
      case "member.left": what = `${fmt.short(d.member)} left`; break;
      case "member.role_changed": what = `${fmt.short(d.member)}: ${d.old_role ? d.old_role + " → " : ""}${d.role}`; break;
      case "dao.created": what = `created “${d.name}” by ${fmt.short(d.creator)}`; break;
      case "decision.recorded": what = `decision ${d.decision_id}: ${d.outcome}`; break;
      default: what = frame.event;
    }
    return withEvent(el("tr", { "data-offset": frame.offset },
      ...cells(kindBadge(frame.event), d.dao_id, what, fmt.clock(frame.ts))), frame);
  }

  clear() {
    this.feed.clear();
    this.table.clear();
  }
}

// -- liquidity ----------------------------------------------------------------------------

export class LiquidityView {
  constructor(settings) {
    this.native = settings.nativeToken;
    this.feed = new Feed(document.getElementById("swaps-feed"), settings.maxItems, (frame) => this.row(frame));
    this.pools = new KeyedTable(document.getElementById("pools"), 50, {
      create: (id) => el("tr", { "data-testid": `pool-${id}` }, ...cells("", "–", "0", "0 · 0", "–")),
      update: (row, pool) => {
        const [pair, fee, swaps, changes, last] = row.children;
        pair.textContent = pool.pair ? `${pool.pair} (${pool.id})` : pool.id;
        fee.textContent = pool.fee === null ? "–" : `${(pool.fee / 100).toFixed(2)}%`;
        swaps.textContent = pool.swaps;
        changes.textContent = `${pool.adds} · ${pool.removes}`;
        last.textContent = pool.lastText;
        withEvent(row, pool.last);
      },
    });
    this.prices = new Map();  // feed -> text
    this.pricesBox = document.getElementById("prices");
  }

  pool(id) {
    return this.pools.get(id) || { id, pair: null, fee: null, swaps: 0, adds: 0, removes: 0, last: null, lastText: "–" };
  }

  take(frame) {
    const d = frame.data;
    if (frame.event === "oracle.price") {
      const value = Number(d.price) / 10 ** d.decimals;
      this.prices.set(d.feed, { text: `${d.feed} ${fmt.number(value)}`, frame });
      markDirty(this);
      return;
    }
    if (d.pool_id) {
      const pool = this.pool(d.pool_id);
      if (frame.event === "pool.created") {
        pool.pair = `${d.token_a}/${d.token_b}`;
        pool.tokens = [d.token_a, d.token_b];
        pool.fee = d.fee_bps;
      } else if (frame.event === "swap") {
        pool.swaps += 1;
        if (!pool.pair) pool.pair = [d.token_in, d.token_out].sort().join("/");
        pool.lastText = `swap ${fmt.amount(d.amount_in, d.token_in)} → ${d.token_out}`;
      } else if (frame.event === "liquidity.added") {
        pool.adds += 1;
        pool.lastText = "liquidity added";
      } else if (frame.event === "liquidity.removed") {
        pool.removes += 1;
        pool.lastText = "liquidity removed";
      }
      pool.last = frame;
      this.pools.set(d.pool_id, pool);
    }
    this.feed.push(frame);
  }

  render() {
    const chips = [...this.prices.entries()].map(([feed, { text, frame }]) =>
      withEvent(el("span", { class: "chip", "data-testid": `price-${feed}` }, text), frame));
    this.pricesBox.replaceChildren(...chips);
  }

  row(frame) {
    const d = frame.data;
    let what;
    switch (frame.event) {
      case "swap":
        what = `${fmt.amount(d.amount_in, d.token_in)} → ${fmt.amount(d.amount_out, d.token_out)} by ${fmt.short(d.trader, 4)}`;
        break;
      case "liquidity.added":
      case "liquidity.removed": {
        const [a, b] = (this.pools.get(d.pool_id) || {}).tokens || [];
        what = `${fmt.short(d.provider, 4)}: ${fmt.amount(d.amount_a, a)} + ${fmt.amount(d.amount_b, b)}`;
        break;
      }
      case "pool.created": what = `${d.token_a}/${d.token_b}, fee ${d.fee_bps} bps`; break;
      case "farm.reward": what = `${d.farm_id}: ${fmt.amount(d.amount, d.token)} to ${fmt.short(d.account, 4)}`; break;
      case "stake":
      case "unstake": what = `${fmt.short(d.account, 4)} ${frame.event}s ${fmt.amount(d.amount, this.native)}`; break;
      case "bridge.transfer": what = `${d.direction} ${d.remote_chain}: ${fmt.amount(d.amount, d.token)} (${d.status})`; break;
      default: what = frame.event;
    }
    const pool = d.pool_id || d.farm_id || d.transfer_id || (d.validator && fmt.short(d.validator, 4)) || "";
    return withEvent(el("tr", { "data-offset": frame.offset },
      ...cells(kindBadge(frame.event), pool, what, fmt.clock(frame.ts))), frame);
  }

  clear() {
    this.feed.clear();
    this.pools.clear();
    this.prices.clear();
    markDirty(this);
  }
}

// -- NFTs ---------------------------------------------------------------------------------

export class NftView {
  constructor(settings) {
    this.symbols = new Map();  // collection address -> symbol or name
    this.feed = new Feed(document.getElementById("nft-feed"), settings.maxItems, (frame) => this.row(frame));
    this.auctions = new KeyedTable(document.getElementById("auctions"), 30, {
      create: (id) => el("tr", { "data-testid": `auction-${id}` }, ...cells(id, "–", "–", "0", "–")),
      update: (row, a) => {
        const [, token, top, bids, status] = row.children;
        token.textContent = a.token;
        top.textContent = a.top === null ? `reserve ${fmt.amount(a.reserve, a.currency)}` : fmt.amount(a.top, a.currency);
        bids.textContent = a.bids;
        status.textContent = a.status;
        status.className = a.settled ? "ok" : "";
        withEvent(row, a.last);
      },
    });
  }

  token(collection, tokenId) {
    const name = this.symbols.get(collection) || fmt.short(collection, 4);
    return tokenId === undefined || tokenId === null ? name : `${name} #${tokenId}`;
  }

  take(frame) {
    const d = frame.data;
    if (frame.event === "collection.created") this.symbols.set(d.collection, d.symbol || d.name);
    if (frame.event.startsWith("auction.")) {
      const a = this.auctions.get(d.auction_id) || { token: "–", reserve: null, currency: null, top: null, bids: 0, status: "running", settled: false, last: null };
      if (frame.event === "auction.started") {
        a.token = this.token(d.collection, d.token_id);
        a.reserve = d.reserve;
        a.currency = d.currency || "OCOS";
        a.status = `ends ${fmt.clock(d.ends_at)}`;
      } else if (frame.event === "auction.bid") {
        a.bids += 1;
        a.top = d.amount;
        if (a.token === "–" && d.collection) a.token = this.token(d.collection, d.token_id);
      } else if (frame.event === "auction.settled") {
        a.settled = true;
        a.top = d.amount;
        a.status = d.winner ? `won by ${fmt.short(d.winner, 4)}` : "no sale";
      }
      a.last = frame;
      this.auctions.set(d.auction_id, a);
      return;
    }
    this.feed.push(frame);
  }

  row(frame) {
    const d = frame.data;
    let what;
    switch (frame.event) {
      case "nft.minted": what = `${this.token(d.collection, d.token_id)} minted to ${fmt.short(d.owner, 4)}`; break;
      case "nft.transferred": what = `${this.token(d.collection, d.token_id)} ${fmt.short(d.from, 4)} → ${fmt.short(d.to, 4)}`; break;
      case "listing.created": what = `${this.token(d.collection, d.token_id)} listed at ${fmt.amount(d.price, d.currency)}`; break;
      case "listing.cancelled": what = `listing ${d.listing_id} cancelled`; break;
      case "sale": what = `${this.token(d.collection, d.token_id)} sold for ${fmt.amount(d.price, d.currency)}`; break;
      case "collection.created": what = `collection ${d.name}${d.symbol ? " (" + d.symbol + ")" : ""}`; break;
      default: what = frame.event;
    }
    return withEvent(el("tr", { "data-offset": frame.offset, class: frame.event === "sale" ? "sale" : "" },
      ...cells(kindBadge(frame.event), what, fmt.clock(frame.ts))), frame);
  }

  clear() {
    this.feed.clear();
    this.auctions.clear();
  }
}

// -- analytics ----------------------------------------------------------------------------

export class AnalyticsView {
  constructor(settings, daoView) {
    this.daoView = daoView;
    this.fields = new Fields();
    const windowMs = settings.chartWindow * 1000;
    const redraw = () => markDirty(this);
    this.tps = new LineChart(document.getElementById("chart-tps"), { color: "#4cc2ff", windowMs, onResize: redraw });
    this.blockTime = new LineChart(document.getElementById("chart-blocktime"), { color: "#f5b94c", windowMs, digits: 2, onResize: redraw });
    this.hubRate = new LineChart(document.getElementById("chart-hub"), { color: "#7ee08a", windowMs, onResize: redraw });
  }

  take(frame) {
    const d = frame.data;
    const t = fmt.millis(frame.ts);
    switch (frame.event) {
      case "chain.stats":
        this.tps.add(t, d.tps);
        this.blockTime.add(t, d.block_time_avg);
        this.fields.set("tps", fmt.twoDecimals(d.tps));
        this.fields.set("block-time-avg", fmt.seconds(d.block_time_avg));
        this.fields.set("active-addresses", d.active_addresses);
        this.fields.set("analytics-window", `every ${d.window_s} s`);
        markDirty(this);
        break;
      case "hub.stats":
        this.hubRate.add(t, d.events_per_s);
        this.fields.set("hub-connections", d.connections);
        this.fields.set("hub-subscriptions", d.subscriptions);
        this.fields.set("hub-events-per-s", fmt.oneDecimal(d.events_per_s));
        this.fields.set("hub-deliveries-per-s", fmt.oneDecimal(d.deliveries_per_s));
        this.fields.set("hub-dropped", d.dropped_connections);
        markDirty(this);
        break;
      case "dao.metrics":
        this.daoView.metrics(frame);
        break;
      default:
        break;
    }
  }

  render() {
    this.tps.draw();
    this.blockTime.draw();
    this.hubRate.draw();
  }

  clear() {
    this.tps.clear();
    this.blockTime.clear();
    this.hubRate.clear();
    markDirty(this);
  }
}

// -- anything else ------------------------------------------------------------------------

export class OtherView {
  constructor(settings) {
    this.feed = new Feed(document.getElementById("other-feed"), settings.maxItems, (frame) => {
      const text = JSON.stringify(frame.data);
      return withEvent(el("tr", { "data-offset": frame.offset, "data-topic": frame.topic },
        ...cells(frame.topic, kindBadge(frame.event), text.length > 140 ? text.slice(0, 139) + "…" : text,
          fmt.clock(frame.ts))), frame);
    });
  }

  take(frame) {
    this.feed.push(frame);
  }

  // Only this topic's rows go: other topics share the list.
  clearTopic(topic) {
    this.feed.pending = this.feed.pending.filter((frame) => frame.topic !== topic);
    this.feed.touchShown((row) => { if (row.dataset.topic === topic) row.remove(); });
  }
}

// Formatting of the catalog's values for people: amounts are decimal strings in base units
// (256-bit safe), so they are scaled with BigInt and only the shown digits become a Number.

const compact = new Intl.NumberFormat("en", { notation: "compact", maximumFractionDigits: 2 });
const plain = new Intl.NumberFormat("en", { maximumFractionDigits: 4 });
const fixed1 = new Intl.NumberFormat("en", { minimumFractionDigits: 1, maximumFractionDigits: 1 });
const fixed2 = new Intl.NumberFormat("en", { minimumFractionDigits: 2, maximumFractionDigits: 2 });

let decimalsOf = {};

export function setTokenDecimals(table) {
  decimalsOf = table || {};
}

// "1500000000000000000000", 18 -> 1500 (a Number, good enough to show).
function scaled(raw, decimals) {
  let big;
  try {
    big = BigInt(String(raw).split(".")[0]);
  } catch {
    return Number(raw);
  }
  if (!decimals) return Number(big);
  const unit = 10n ** BigInt(decimals);
  return Number(big / unit) + Number(big % unit) / Number(unit);
}

export function number(value) {
  if (value === null || value === undefined || Number.isNaN(value)) return "–";
  return Math.abs(value) >= 100000 ? compact.format(value) : plain.format(value);
}

// An amount of `token` in base units, with its symbol; raw when the decimals are unknown.
export function amount(raw, token) {
  if (raw === null || raw === undefined) return "–";
  const decimals = decimalsOf[token];
  // Unknown decimals: the count of base units, which is at least exact in its digits.
  if (decimals === undefined) return `${number(scaled(raw, 0))} ${token || ""}`.trim();
  return `${number(scaled(raw, decimals))} ${token}`;
}

export function oneDecimal(value) {
  return value === null || value === undefined ? "–" : fixed1.format(value);
}

export function twoDecimals(value) {
  return value === null || value === undefined ? "–" : fixed2.format(value);
}

export function percent(share) {
  return share === null || share === undefined ? "–" : `${Math.round(share * 100)}%`;
}

export function seconds(value) {
  return value === null || value === undefined ? "–" : `${fixed2.format(value)} s`;
}

// An address or hash shortened to its ends: enough to tell them apart on a screen.
export function short(text, keep = 6) {
  if (!text) return "–";
  const s = String(text);
  return s.length <= keep * 2 + 1 ? s : `${s.slice(0, keep)}…${s.slice(-4)}`;
}

export function clock(ts) {
  if (!ts) return "–";
  const date = new Date(ts);
  return Number.isNaN(date.getTime()) ? String(ts) : date.toLocaleTimeString("en-GB");
}

export function millis(ts) {
  const t = Date.parse(ts);
  return Number.isNaN(t) ? null : t;
}

// A small time-series line chart on a canvas: no library, drawn only when its data changed.
//
// The canvas size is learnt from a ResizeObserver rather than read while drawing, so a
// redraw never forces the browser to lay the page out.

const AXIS = "#8b95a7";
const GRID = "rgba(139, 149, 167, 0.18)";

function niceCeiling(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

export class LineChart {
  constructor(canvas, { color = "#4cc2ff", windowMs = 300000, digits = 1, onResize = () => {} } = {}) {
    this.canvas = canvas;
    this.ctx = canvas.getContext("2d");
    this.color = color;
    this.windowMs = windowMs;
    this.digits = digits;
    this.points = [];  // [{t, v}] in time order; v may be null (a gap)
    this.width = 0;
    this.height = 0;
    this.dirty = true;
    new ResizeObserver((entries) => {
      const box = entries[entries.length - 1].contentRect;
      this.width = Math.max(0, Math.floor(box.width));
      this.height = Math.max(0, Math.floor(box.height));
      this.dirty = true;
      onResize();
    }).observe(canvas);
  }

  add(t, v) {
    if (t === null) return;
    // Replays and live events come in order; a point from the past (another lineage after
    // a hub lost its history) restarts the series instead of drawing backwards.
    const last = this.points[this.points.length - 1];
    if (last && t < last.t) this.points = [];
    this.points.push({ t, v });
    const horizon = t - this.windowMs;
    let drop = 0;
    while (drop < this.points.length && this.points[drop].t < horizon) drop += 1;
    if (drop) this.points.splice(0, drop);
    this.dirty = true;
  }

  clear() {
    this.points = [];
    this.dirty = true;
  }

  draw() {
    if (!this.dirty || this.width === 0) return;
    this.dirty = false;
    const ratio = window.devicePixelRatio || 1;
    const { canvas, ctx, width, height } = this;
    if (canvas.width !== width * ratio || canvas.height !== height * ratio) {
      canvas.width = width * ratio;
      canvas.height = height * ratio;
    }
    canvas.dataset.points = String(this.points.length);
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, height);
    ctx.font = "11px system-ui, sans-serif";
    const left = 40, right = 8, top = 8, bottom = 18;
    const plotW = width - left - right, plotH = height - top - bottom;
    if (plotW <= 10 || plotH <= 10) return;

    const values = this.points.map((p) => p.v).filter((v) => v !== null && Number.isFinite(v));
    const max = niceCeiling(values.length ? Math.max(...values) * 1.1 : 1);
    const end = this.points.length ? this.points[this.points.length - 1].t : Date.now();
    // Until the data covers the whole window, the chart spans what there is, so a page
    // opened a minute ago does not squeeze its points into the right edge.
    const first = this.points.length > 1 ? this.points[0].t : end - this.windowMs;
    const span = Math.max(1000, Math.min(this.windowMs, end - first));
    const start = end - span;
    const x = (t) => left + ((t - start) / span) * plotW;
    const y = (v) => top + plotH - (v / max) * plotH;

    // grid and labels
    ctx.strokeStyle = GRID;
    ctx.fillStyle = AXIS;
    ctx.lineWidth = 1;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let i = 0; i <= 4; i += 1) {
      const v = (max * i) / 4;
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(left, yy);
      ctx.lineTo(left + plotW, yy);
      ctx.stroke();
      ctx.fillText(v.toFixed(max < 4 ? this.digits : 0), left - 6, yy);
    }
    ctx.textBaseline = "alphabetic";
    const minutes = span / 60000;
    ctx.textAlign = "left";
    ctx.fillText(minutes >= 1 ? `-${Math.round(minutes)} min` : `-${Math.round(span / 1000)} s`,
      left, height - 4);
    ctx.textAlign = "right";
    ctx.fillText("latest", left + plotW, height - 4);

    if (!values.length) {
      ctx.textAlign = "center";
      ctx.fillText("waiting for data…", left + plotW / 2, top + plotH / 2);
      return;
    }

    // the series: a line and a faint area under it, broken where a value is missing
    ctx.lineWidth = 2;
    ctx.strokeStyle = this.color;
    ctx.fillStyle = this.color + "22";
    let run = [];
    const flush = () => {
      if (!run.length) return;
      ctx.beginPath();
      run.forEach(([px, py], i) => (i ? ctx.lineTo(px, py) : ctx.moveTo(px, py)));
      ctx.stroke();
      ctx.lineTo(run[run.length - 1][0], y(0));
      ctx.lineTo(run[0][0], y(0));
      ctx.closePath();
      ctx.fill();
      if (run.length === 1) {
        ctx.beginPath();
        ctx.arc(run[0][0], run[0][1], 2.5, 0, 2 * Math.PI);
        ctx.fillStyle = this.color;
        ctx.fill();
        ctx.fillStyle = this.color + "22";
      }
      run = [];
    };
    for (const p of this.points) {
      if (p.v === null || !Number.isFinite(p.v)) flush();
      else run.push([x(p.t), y(p.v)]);
    }
    flush();
  }
}

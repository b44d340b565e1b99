// Hand-written SVG charts: multi-series line chart, signed horizontal bars, confusion matrix.

import { h } from "./dom.js";
import { fmtNumber } from "./format.js";

const SVG = "http://www.w3.org/2000/svg";
export const PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];

function s(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, String(v));
  for (const c of children) if (c) node.append(c);
  return node;
}

/** About ``count`` round tick values covering [lo, hi]. */
export function ticks(lo, hi, count = 5) {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((st) => st >= raw) || raw;
  const out = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12));
  return out;
}

/** A tick label with just enough decimals to tell neighbouring ticks apart. */
export function tickLabel(value, step) {
  if (!Number.isFinite(step) || step <= 0) return fmtNumber(value, 4);
  const abs = Math.abs(value);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e5)) return value.toExponential(Math.max(1, Math.min(4, Math.ceil(Math.log10(abs / step)))));
  // Enough decimals for the step itself: 0.0025 needs four, not three.
  let digits = Math.max(0, Math.min(8, Math.ceil(-Math.log10(step))));
  while (digits < 8 && Math.abs(Number(step.toFixed(digits)) - step) > step * 1e-6) digits += 1;
  return value.toFixed(digits);
}

function extent(values, pad) {
  let lo = Math.min(...values);
  let hi = Math.max(...values);
  if (lo === hi) {
    const d = Math.abs(lo) * 0.05 || 1;
    lo -= d;
    hi += d;
  }
  const m = (hi - lo) * pad;
  return [lo - m, hi + m];
}

/**
 * series: [{name, color, dashed, points: [[x, y], ...]}]. Returns a figure with the SVG and a legend.
 * Each series path carries data-series and data-count so tests (and people) can read what is drawn.
 */
export function lineChart({ series, xLabel = "epoch", yLabel = "", height = 240, title = "" }) {
  const width = 560;
  const m = { top: 12, right: 16, bottom: 36, left: 58 };
  const drawn = series.filter((se) => se.points.length);
  const svg = s("svg", { class: "chart", viewBox: `0 0 ${width} ${height}`, role: "img", "aria-label": title || yLabel });
  if (!drawn.length) {
    svg.append(s("text", { x: width / 2, y: height / 2, "text-anchor": "middle", class: "axis-title" }, document.createTextNode("No data yet")));
    return h("figure", { class: "chart-figure", style: { margin: 0 } }, svg);
  }
  const xs = drawn.flatMap((se) => se.points.map((p) => p[0]));
  const ys = drawn.flatMap((se) => se.points.map((p) => p[1]));
  const [x0, x1] = xs.length > 1 && Math.min(...xs) !== Math.max(...xs) ? [Math.min(...xs), Math.max(...xs)] : extent(xs, 0);
  const [y0, y1] = extent(ys, 0.06);
  const px = (x) => m.left + ((x - x0) / (x1 - x0)) * (width - m.left - m.right);
  const py = (y) => m.top + (1 - (y - y0) / (y1 - y0)) * (height - m.top - m.bottom);
  const grid = s("g", { class: "grid" });
  const axis = s("g", { class: "axis" });
  const yt = ticks(y0, y1, 5);
  for (const t of yt) {
    grid.append(s("line", { x1: m.left, x2: width - m.right, y1: py(t), y2: py(t) }));
    axis.append(s("text", { x: m.left - 6, y: py(t) + 4, "text-anchor": "end" }, document.createTextNode(tickLabel(t, yt[1] - yt[0]))));
  }
  const xt = ticks(x0, x1, 8).filter((t) => Number.isInteger(t) || x1 - x0 < 4);
  for (const t of xt) {
    axis.append(s("text", { x: px(t), y: height - m.bottom + 16, "text-anchor": "middle" }, document.createTextNode(fmtNumber(t, 2))));
  }
  axis.append(s("line", { x1: m.left, x2: width - m.right, y1: height - m.bottom, y2: height - m.bottom }));
  axis.append(s("text", { class: "axis-title", x: (width + m.left) / 2, y: height - 4, "text-anchor": "middle" }, document.createTextNode(xLabel)));
  svg.append(grid, axis);
  drawn.forEach((se, i) => {
    const color = se.color || PALETTE[i % PALETTE.length];
    const d = se.points.map((p, j) => `${j ? "L" : "M"}${px(p[0]).toFixed(1)},${py(p[1]).toFixed(1)}`).join("");
    // A scatter keeps the path (invisible) so its data-series / data-count stay readable.
    svg.append(s("path", { class: "series", d, stroke: se.scatter ? "none" : color, "stroke-dasharray": se.dashed ? "5 4" : null, "data-series": se.name, "data-count": se.points.length }));
    if (se.points.length <= 60 || se.scatter) {
      for (const p of se.points) svg.append(s("circle", { class: "dot", cx: px(p[0]), cy: py(p[1]), r: 2.6, fill: color }));
    }
  });
  const legend = h(
    "div",
    { class: "legend" },
    drawn.map((se, i) => h("span", { class: se.dashed ? "dashed" : "", style: { "--swatch": se.color || PALETTE[i % PALETTE.length] }, text: se.name })),
  );
  return h("figure", { class: "chart-figure", style: { margin: 0 } }, svg, legend);
}

/** items: [{label, value}] drawn as bars from a zero line (negative values go left). */
export function barChart(items, { max = 20 } = {}) {
  const top = items.slice(0, max);
  if (!top.length) return h("p", { class: "muted", text: "Nothing to show." });
  const lo = Math.min(0, ...top.map((i) => i.value));
  const hi = Math.max(0, ...top.map((i) => i.value));
  const span = hi - lo || 1;
  const zero = ((0 - lo) / span) * 100;
  return h(
    "div",
    { class: "bars", role: "list" },
    top.map((item) => {
      const left = item.value >= 0 ? zero : zero - (Math.abs(item.value) / span) * 100;
      const width = (Math.abs(item.value) / span) * 100;
      return h(
        "div",
        { class: "bar-row", role: "listitem", "aria-label": `${item.label}: ${fmtNumber(item.value)}` },
        h("span", { class: "bar-label", title: item.label, text: item.label }),
        h(
          "span",
          { class: "bar-track" },
          h("span", { class: `bar-fill${item.value < 0 ? " negative" : ""}`, style: { left: `${left}%`, width: `${Math.max(width, 0.5)}%` } }),
          h("span", { class: "bar-zero", style: { left: `${zero}%` } }),
        ),
        h("span", { class: "bar-value", text: fmtNumber(item.value, 4) }),
      );
    }),
  );
}

/** Rows are the true class, columns the predicted one; cells shaded by their share of the row. */
export function confusionMatrix(matrix, names) {
  const labels = names && names.length ? names : matrix.map((_, i) => String(i));
  return h(
    "div",
    { class: "table-wrap" },
    h(
      "table",
      { class: "confusion" },
      h("caption", { class: "sr-only", text: "Confusion matrix: rows are true classes, columns predicted classes" }),
      h("thead", {}, h("tr", {}, h("th", { scope: "col", text: "true \\ predicted" }), labels.map((n) => h("th", { scope: "col", text: n })))),
      h(
        "tbody",
        {},
        matrix.map((row, r) => {
          const total = row.reduce((a, b) => a + b, 0) || 1;
          return h(
            "tr",
            {},
            h("th", { scope: "row", text: labels[r] }),
            row.map((v, c) => {
              const share = v / total;
              const bg = r === c ? `rgba(21, 128, 61, ${0.12 + share * 0.7})` : `rgba(37, 99, 235, ${share * 0.55})`;
              return h("td", { style: { background: bg, color: share > 0.55 ? "#fff" : "inherit" }, title: `${(share * 100).toFixed(1)}% of ${labels[r]}`, text: String(v) });
            }),
          );
        }),
      ),
    ),
  );
}

// Line charts drawn by uPlot (vendored under ../vendor/uplot; index.html loads it as the global
// ``uPlot`` before this module runs). Drag across a chart to zoom its x range, double-click to reset;
// hovering shows each series' value at that x in the legend.
//
// The live pages re-render a chart whenever metrics arrive (``clear(box, lineChart(...))``). The new
// figure adopts the uPlot instance the old figure left in the same box and calls setData on it, so
// the canvas is not rebuilt (no flicker) and a zoomed range survives the update. A chart whose
// figure leaves the page is destroyed (one ResizeObserver watches every plot; it also keeps the
// width responsive).

import { h } from "./dom.js";
import { fmtNumber } from "./format.js";

export const PALETTE = ["#2563eb", "#db2777", "#059669", "#d97706", "#7c3aed", "#0891b2", "#dc2626", "#4b5563"];
const MAX_DOTS = 60;
const AXIS_STROKE = "#5c6b7e";
const GRID_STROKE = "#dde3ea";
// Whole-number tick steps for an x of epochs or steps: zoomed in, ticks never fall between two epochs.
const WHOLE_INCRS = [1, 2, 5].flatMap((m) => [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8].map((mag) => m * mag)).sort((a, b) => a - b);

const states = new WeakMap(); // plot element -> chart state
const owners = new WeakMap(); // uPlot instance -> the state whose figure shows it now
const hosted = new WeakMap(); // element a figure was put in -> the state last shown there
const live = new Set();
let observer = null;

/** How many uPlot instances exist now (a chart whose figure left the page must not stay alive). */
export function liveCharts() {
  return live.size;
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

/** uPlot's aligned data: the union of every series' x, each series' y at those x or null. */
export function alignSeries(series) {
  const xs = [...new Set(series.flatMap((se) => se.points.map((p) => p[0])))].sort((a, b) => a - b);
  const index = new Map(xs.map((x, i) => [x, i]));
  const columns = series.map((se) => {
    const column = new Array(xs.length).fill(null);
    for (const [x, y] of se.points) column[index.get(x)] = Number.isFinite(y) ? y : null;
    return column;
  });
  return [xs, ...columns];
}

/**
 * series: [{name, color, dashed, scatter, points: [[x, y], ...]}]. Returns a figure: the plot, the x label
 * (``.axis-title``) and a legend whose ``.series[data-series][data-count]`` entries say what is drawn.
 */
export function lineChart({ series, xLabel = "epoch", yLabel = "", height = 240, title = "" }) {
  const drawn = series
    .map((se, i) => ({ ...se, color: se.color || PALETTE[i % PALETTE.length] }))
    .filter((se) => se.points.some((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])));
  const label = title || yLabel;
  if (!drawn.length) {
    const empty = h("div", { class: "chart-plot chart-empty", role: "img", "aria-label": label, style: { height: `${height}px` } }, h("p", { text: "No data yet" }));
    return h("figure", { class: "chart-figure" }, empty);
  }
  const points = drawn.map((se) => se.points.filter((p) => Number.isFinite(p[0]) && Number.isFinite(p[1])));
  const data = alignSeries(drawn.map((se, i) => ({ points: points[i] })));
  const plot = h("div", { class: "chart-plot", role: "img", "aria-label": label, style: { height: `${height}px` } });
  const hoverX = h("span", { class: "legend-x", "aria-live": "off" });
  const entries = drawn.map((se, i) => h(
    "span",
    { class: se.dashed ? "series dashed" : "series", "data-series": se.name, "data-count": points[i].length, style: { "--swatch": se.color } },
    h("span", { class: "series-name", text: se.name }),
    h("output", { class: "series-value" }),
  ));
  const figure = h("figure", { class: "chart-figure" }, plot, h("div", { class: "axis-title", text: xLabel }), h("div", { class: "legend" }, hoverX, entries));
  const shape = JSON.stringify([xLabel, yLabel, height, drawn.map((se, i) => [se.name, se.color, !!se.dashed, !!se.scatter, points[i].length <= MAX_DOTS])]);
  const state = { figure, plot, hoverX, entries, data, drawn, points, xLabel, yLabel, height, shape, chart: null };
  states.set(plot, state);
  observer ??= new ResizeObserver(onResize);
  observer.observe(plot);
  return figure;
}

function onResize(entries) {
  const gone = [];
  for (const entry of entries) {
    const state = states.get(entry.target);
    if (!state) continue;
    if (!state.figure.isConnected) {
      // Not yet shown (built before being put on the page) is not gone: wait for it.
      if (state.chart) gone.push(state);
      continue;
    }
    const width = Math.floor(entry.contentRect.width);
    if (width <= 0) continue; // hidden: draw once it is shown
    if (!state.chart) show(state, width);
    else if (state.chart.width !== width) state.chart.setSize({ width, height: state.height });
  }
  for (const state of gone) release(state);
}

function show(state, width) {
  const parent = state.figure.parentElement;
  const previous = parent ? hosted.get(parent) : undefined;
  if (parent) hosted.set(parent, state);
  if (previous && previous.chart && !previous.figure.isConnected && previous.shape === state.shape) {
    // The same chart re-rendered with new data: keep the canvas and the zoom.
    const chart = previous.chart;
    previous.chart = null;
    states.delete(previous.plot);
    observer.unobserve(previous.plot);
    state.chart = chart;
    owners.set(chart, state);
    state.plot.append(chart.root);
    if (chart.width !== width) chart.setSize({ width, height: state.height });
    update(chart, state.data);
    showCursor(chart);
    showRange(chart);
    return;
  }
  if (typeof globalThis.uPlot !== "function") {
    state.plot.replaceChildren(h("p", { class: "chart-empty", text: "The chart library did not load; reload the page." }));
    return;
  }
  const chart = new globalThis.uPlot(options(state, width), state.data, state.plot);
  state.chart = chart;
  owners.set(chart, state);
  live.add(chart);
  showRange(chart);
}

function release(state) {
  states.delete(state.plot);
  observer.unobserve(state.plot);
  if (!state.chart) return;
  live.delete(state.chart);
  state.chart.destroy();
  state.chart = null;
}

/** New data on a live chart; a zoomed x range stays zoomed (double-click still resets it). */
function update(chart, data) {
  const before = chart.data[0];
  const { min, max } = chart.scales.x;
  const zoomed = before.length > 0 && (min > before[0] || max < before[before.length - 1]);
  chart.setData(data);
  if (zoomed) chart.setScale("x", { min, max });
}

function options(state, width) {
  const wholeX = state.data[0].every(Number.isInteger);
  const values = (u, splits, axis, space, incr) => splits.map((v) => tickLabel(v, incr));
  const axis = { stroke: AXIS_STROKE, grid: { stroke: GRID_STROKE, width: 1 }, ticks: { stroke: GRID_STROKE, width: 1 }, values };
  return {
    width,
    height: state.height,
    legend: { show: false },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false } },
    axes: [
      { ...axis, size: 36, incrs: wholeX ? WHOLE_INCRS : undefined },
      { ...axis, label: state.yLabel || undefined, size: 64 },
    ],
    series: [
      { label: state.xLabel },
      ...state.drawn.map((se, i) => ({
        label: se.name,
        stroke: se.color,
        width: 2,
        dash: se.dashed ? [5, 4] : undefined,
        spanGaps: !se.scatter,
        // A scatter ({scatter: true}, e.g. a sweep's parameter vs objective) draws its points only.
        paths: se.scatter ? () => null : undefined,
        points: { show: !!se.scatter || state.points[i].length <= MAX_DOTS, size: 6, width: 1, fill: se.color, stroke: "#fff" },
      })),
    ],
    hooks: {
      setCursor: [showCursor],
      setScale: [(u, key) => { if (key === "x") showRange(u); }],
    },
  };
}

/** The hovered x and each series' value there, in the legend; blank when the cursor is away. */
function showCursor(chart) {
  const state = owners.get(chart);
  if (!state) return;
  const idx = chart.cursor.idx;
  const at = idx === null || idx === undefined ? null : idx;
  state.hoverX.textContent = at === null ? "" : `${state.xLabel} ${fmtNumber(chart.data[0][at], 4)}`;
  state.entries.forEach((entry, i) => {
    const value = at === null ? null : chart.data[i + 1][at];
    entry.querySelector(".series-value").textContent = at === null ? "" : value === null || value === undefined ? "—" : fmtNumber(value, 4);
  });
}

/** The x range shown now, on the figure (``data-x-min``/``data-x-max``), for people's tools and tests. */
function showRange(chart) {
  const state = owners.get(chart);
  if (!state) return;
  const { min, max } = chart.scales.x;
  if (min === null || max === null || min === undefined || max === undefined) return;
  state.figure.dataset.xMin = String(min);
  state.figure.dataset.xMax = String(max);
}

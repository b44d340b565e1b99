// Charts: line charts (uPlot, in line_chart.js), signed horizontal bars, confusion matrix.

import { h } from "./dom.js";
import { fmtNumber } from "./format.js";

export { PALETTE, lineChart, liveCharts, tickLabel } from "./line_chart.js";

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

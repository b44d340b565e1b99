// Chart series from a metric history: rows keyed by epoch (strategy, tabular, plugin runs) or by step
// (command runs, whose rows need not carry every metric).

/** "epoch" when the rows carry epochs, else "step". */
export function xKey(history) {
  return history.some((r) => typeof r.epoch === "number") ? "epoch" : history.some((r) => typeof r.step === "number") ? "step" : "epoch";
}

/** [x, y] of every row holding a number for ``key``, in x order. */
export function points(history, key, x = xKey(history)) {
  return history.filter((r) => typeof r[key] === "number" && typeof r[x] === "number").map((r) => [r[x], r[key]]).sort((a, b) => a[0] - b[0]);
}

/** Train loss is "train_loss" in epoch rows and "loss" in step rows. */
export function trainLossKey(history) {
  return history.some((r) => typeof r.train_loss === "number") ? "train_loss" : "loss";
}

export function lossSeries(history, suffix = "") {
  const x = xKey(history);
  return [
    { name: `train loss${suffix}`, points: points(history, trainLossKey(history), x) },
    { name: `validation loss${suffix}`, points: points(history, "val_loss", x), dashed: true },
  ];
}

/** The last row's value of ``key`` that has one (step rows carry some metrics only now and then). */
export function lastValue(history, key) {
  for (let i = history.length - 1; i >= 0; i -= 1) if (typeof history[i][key] === "number") return history[i][key];
  return undefined;
}

"""Test-set evaluation and permutation feature importance for the built-in workloads."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from shared.trainkit.cancellation import CancelToken

Predict = Callable[[np.ndarray], np.ndarray]


def make_predictor(module: torch.nn.Module, device: torch.device, batch_size: int = 4096) -> Predict:
    """A numpy-in, numpy-out forward pass in eval mode without gradients."""

    def predict(x: np.ndarray) -> np.ndarray:
        module.eval()
        outs: list[np.ndarray] = []
        with torch.inference_mode():
            for start in range(0, len(x), batch_size):
                chunk = torch.from_numpy(
                    np.ascontiguousarray(x[start : start + batch_size], dtype=np.float32)
                )
                outs.append(module(chunk.to(device)).float().cpu().numpy())
        return np.concatenate(outs) if outs else np.empty((0,), dtype=np.float32)

    return predict


def classification_report(
    y_true: np.ndarray, y_pred: np.ndarray, class_names: Sequence[str]
) -> dict[str, Any]:
    """Accuracy, per-class precision/recall/F1/support, macro F1 and the confusion matrix (rows = truth)."""
    k = len(class_names)
    matrix = np.zeros((k, k), dtype=np.int64)
    np.add.at(matrix, (y_true.astype(np.int64), y_pred.astype(np.int64)), 1)
    per_class: dict[str, dict[str, float]] = {}
    for i, name in enumerate(class_names):
        tp = float(matrix[i, i])
        predicted, actual = float(matrix[:, i].sum()), float(matrix[i, :].sum())
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[name] = {"precision": precision, "recall": recall, "f1": f1, "support": actual}
    total = int(matrix.sum())
    return {
        "accuracy": float(np.trace(matrix)) / total if total else 0.0,
        "macro_f1": float(np.mean([c["f1"] for c in per_class.values()])) if per_class else 0.0,
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "class_names": list(class_names),
        "samples": total,
    }


def regression_report(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, Any]:
    err = y_pred.astype(np.float64) - y_true.astype(np.float64)
    variance = float(np.var(y_true)) if len(y_true) else 0.0
    mse = float(np.mean(err**2)) if len(err) else 0.0
    return {
        "mse": mse,
        "rmse": mse**0.5,
        "mae": float(np.mean(np.abs(err))) if len(err) else 0.0,
        "r2": 1.0 - mse / variance if variance > 0 else 0.0,
        "samples": len(y_true),
    }


def score(predict: Predict, x: np.ndarray, y: np.ndarray, task: str) -> float:
    """Higher is better: accuracy for classification, negative MSE for regression."""
    out = predict(x)
    if task == "classification":
        return float(np.mean(out.argmax(axis=1) == y)) if len(y) else 0.0
    return -float(np.mean((out - y) ** 2)) if len(y) else 0.0


def permutation_importance(
    predict: Predict,
    x: np.ndarray,
    y: np.ndarray,
    feature_names: Sequence[str],
    *,
    task: str,
    seed: int,
    repeats: int = 3,
    cancel: CancelToken | None = None,
    on_feature: Callable[[int, int], None] | None = None,
) -> dict[str, float]:
    """Mean drop in score when one feature's column is shuffled; sorted, most important first."""
    rng = np.random.default_rng(seed)
    baseline = score(predict, x, y, task)
    drops: dict[str, float] = {}
    work = x.copy()
    for j, name in enumerate(feature_names):
        if cancel is not None:
            cancel.raise_if_cancelled("feature importance")
        original = work[:, j].copy()
        total = 0.0
        for _ in range(repeats):
            work[:, j] = original[rng.permutation(len(original))]
            total += baseline - score(predict, work, y, task)
        work[:, j] = original
        drops[name] = total / repeats
        if on_feature is not None:
            on_feature(j + 1, len(feature_names))
    return dict(sorted(drops.items(), key=lambda item: item[1], reverse=True))

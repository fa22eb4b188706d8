"""Test-set metrics and the per-review predictions behind DVC's ROC and confusion plots."""

from __future__ import annotations

import csv
from pathlib import Path

import keras
import numpy as np
from sklearn import metrics as skm

from elmo_imdb.atomic import atomic_output, write_json
from elmo_imdb.sequence import ReviewSequence


def predict(model: keras.Model, sequence: ReviewSequence) -> np.ndarray:
    """P(positive) for every row of an unshuffled ``sequence``, in row order."""
    if sequence.shuffle:
        raise ValueError("predict needs an unshuffled sequence, or scores would not align with rows")
    return model.predict(sequence, verbose=0).reshape(-1)


def binary_metrics(labels: np.ndarray, scores: np.ndarray) -> dict[str, float]:
    predicted = scores >= 0.5
    eps = 1e-7
    p = np.clip(scores, eps, 1 - eps)
    return {
        "accuracy": float(np.mean(predicted == labels)),
        "loss": float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p))),
        "roc_auc": float(skm.roc_auc_score(labels, scores)),
        "f1": float(skm.f1_score(labels, predicted)),
    }


def write_reports(out_dir: str | Path, labels: np.ndarray, scores: np.ndarray, names: list[str]) -> dict[str, float]:
    """Write ``metrics.json``, ``roc.csv`` (fpr, tpr) and ``predictions.csv`` (review, actual,
    predicted, p_positive: each review's name in the archive, for `elmo-imdb predict` to be
    checked against)."""
    out_dir = Path(out_dir)
    results = binary_metrics(labels, scores)
    write_json(out_dir / "metrics.json", results)
    fpr, tpr, _ = skm.roc_curve(labels, scores)
    _write_csv(out_dir / "roc.csv", ["fpr", "tpr"], zip(fpr.round(5), tpr.round(5)))
    classes = np.array(["negative", "positive"])
    rows = zip(names, classes[labels.astype(int)], classes[(scores >= 0.5).astype(int)], scores.round(6))
    _write_csv(out_dir / "predictions.csv", ["review", "actual", "predicted", "p_positive"], rows)
    return results


def _write_csv(path: Path, header: list[str], rows) -> None:
    with atomic_output(path) as tmp, tmp.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)

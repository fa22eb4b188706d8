"""The comparison of all runs: test accuracy and epoch time per classifier, with and without ELMo.

``dvc metrics show`` lists every number; this answers the question the cached features are
for at a glance: what ELMo buys each classifier, and what it costs per epoch. A run is a
folder ``<results>/<classifier>-<variant>/`` holding ``train.json`` and ``test/metrics.json``,
as the train and evaluate stages write them.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no display, no global figure state

from elmo_imdb.atomic import atomic_output
from elmo_imdb.errors import PipelineError


class NoRunsError(PipelineError):
    """There is nothing to summarise yet."""


def collect_runs(results_dir: str | Path) -> dict[str, dict]:
    """``{run: {classifier, variant, test_accuracy, test_roc_auc, mean_epoch_time_s, epochs}}``
    for every run folder under ``results_dir`` that has been trained and evaluated."""
    runs = {}
    for train_json in sorted(Path(results_dir).glob("*/train.json")):
        metrics_json = train_json.parent / "test" / "metrics.json"
        if not metrics_json.is_file():
            continue
        trained = json.loads(train_json.read_text())
        tested = json.loads(metrics_json.read_text())
        classifier, _, variant = train_json.parent.name.rpartition("-")
        runs[train_json.parent.name] = {
            "classifier": classifier,
            "variant": variant,
            "test_accuracy": tested["accuracy"],
            "test_roc_auc": tested["roc_auc"],
            "mean_epoch_time_s": trained["mean_epoch_time_s"],
            "epochs": trained["epochs"],
        }
    return runs


def plot_summary(runs: dict[str, dict], path: str | Path) -> None:
    """Two panels of grouped bars, one group per classifier, one bar per variant: test
    accuracy, and mean epoch time (log scale: the classifiers differ by orders of magnitude)."""
    classifiers = sorted({r["classifier"] for r in runs.values()})
    variants = sorted({r["variant"] for r in runs.values()})
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(classifiers))
    fig = Figure(figsize=(10, 4))
    axes = fig.subplots(1, 2)
    for ax, key, title in (
        (axes[0], "test_accuracy", "test accuracy"),
        (axes[1], "mean_epoch_time_s", "mean epoch time (s, log scale)"),
    ):
        for i, variant in enumerate(variants):
            values = [runs.get(f"{c}-{variant}", {}).get(key, np.nan) for c in classifiers]
            bars = ax.bar(x + (i - (len(variants) - 1) / 2) * width, values, width, label=variant)
            ax.bar_label(bars, fmt="%.3g", fontsize=8)
        ax.set_xticks(x, classifiers)
        ax.set_title(title)
    axes[0].set_ylim(0, 1)
    axes[1].set_yscale("log")
    axes[0].legend(title="features", loc="lower right")
    fig.tight_layout()
    with atomic_output(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)


def write_summary(results_dir: str | Path, out_dir: str | Path) -> dict[str, dict]:
    """Write ``summary.json`` (the numbers) and ``summary.png`` (the figure) to ``out_dir``."""
    runs = collect_runs(results_dir)
    if not runs:
        raise NoRunsError(f"no trained and evaluated runs under {results_dir}; run `dvc repro` first")
    out_dir = Path(out_dir)
    with atomic_output(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(runs, indent=2) + "\n")
    plot_summary(runs, out_dir / "summary.png")
    return runs

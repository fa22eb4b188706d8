"""The comparison of all runs: what ELMo buys each classifier, over several seeds, and what it costs.

``dvc metrics show`` lists every number of every run; this answers the question the cached
features are for: per classifier and variant, the test accuracy's mean and spread between
seeds (one run is an anecdote), the gain over the same classifier without ELMo, seed by seed,
and the epoch time. A run is a folder ``<results>/<classifier>-<variant>-<seed>/`` holding
``train.json`` and ``test/metrics.json``, as the train and evaluate stages write them.

:func:`write_summary` writes three views of the same numbers: ``summary.json`` (every run and
every group), ``results.md`` (the table README.md shows, copied there by
``benchmarks/publish_results.py``) and ``summary.png``.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure  # not pyplot: no display, no global figure state

from elmo_imdb.atomic import atomic_output, write_json
from elmo_imdb.errors import PipelineError

BASE = "base"


class NoRunsError(PipelineError):
    """There is nothing to summarise yet."""


def collect_runs(results_dir: str | Path, names: set[str] | None = None) -> dict[str, dict]:
    """``{run: {classifier, variant, seed, test_accuracy, test_roc_auc, mean_epoch_time_s,
    epochs, best_epoch}}`` for every run folder under ``results_dir`` that has been trained and
    evaluated and, when ``names`` is given, is one of them (DVC leaves the folders of runs no
    longer in params.yaml behind: they must not count)."""
    runs = {}
    for train_json in sorted(Path(results_dir).glob("*/train.json")):
        metrics_json = train_json.parent / "test" / "metrics.json"
        if not metrics_json.is_file() or (names is not None and train_json.parent.name not in names):
            continue
        trained = json.loads(train_json.read_text())
        tested = json.loads(metrics_json.read_text())
        classifier, variant, seed = train_json.parent.name.rsplit("-", 2)
        runs[train_json.parent.name] = {
            "classifier": classifier,
            "variant": variant,
            "seed": int(seed),
            "test_accuracy": tested["accuracy"],
            "test_roc_auc": tested["roc_auc"],
            "mean_epoch_time_s": trained["mean_epoch_time_s"],
            "epochs": trained["epochs"],
            "best_epoch": trained["best_epoch"],
        }
    return runs


def spread(values: list[float], digits: int) -> dict:
    """Mean, sample standard deviation (None for one value), min and max, rounded."""
    return {
        "mean": round(statistics.mean(values), digits),
        "sd": round(statistics.stdev(values), digits) if len(values) > 1 else None,
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def group_runs(runs: dict[str, dict]) -> dict[str, dict]:
    """``{<classifier>-<variant>: group}``: the runs of each classifier and variant over
    their seeds. A group holds its seeds, the test accuracy per seed and its spread
    (:func:`spread`), the mean epoch time, and for an ELMo variant the gain over the same
    classifier's ``base`` in points, seed by seed (only seeds both have) and its spread."""
    groups: dict[str, dict] = {}
    for run in sorted(runs.values(), key=lambda r: (r["classifier"], r["variant"], r["seed"])):
        group = groups.setdefault(f"{run['classifier']}-{run['variant']}", {
            "classifier": run["classifier"], "variant": run["variant"], "accuracy_per_seed": {}, "epoch_times_s": []
        })
        group["accuracy_per_seed"][run["seed"]] = run["test_accuracy"]
        group["epoch_times_s"].append(run["mean_epoch_time_s"])
    for group in groups.values():
        accuracy = group["accuracy_per_seed"]
        group["seeds"] = sorted(accuracy)
        group["test_accuracy"] = spread(list(accuracy.values()), 4)
        group["mean_epoch_time_s"] = round(statistics.mean(group.pop("epoch_times_s")), 2)
        base = groups.get(f"{group['classifier']}-{BASE}")
        if group["variant"] != BASE and base is not None:
            paired = {seed: 100 * (a - base["accuracy_per_seed"][seed]) for seed, a in accuracy.items() if seed in base["accuracy_per_seed"]}
            if paired:
                group["gain_over_base_points"] = {"per_seed": {s: round(g, 2) for s, g in paired.items()}, **spread(list(paired.values()), 2)}
    return groups


def results_table(groups: dict[str, dict]) -> str:
    """The Markdown table of the groups: accuracy mean ± sd and per seed, gain over base, epoch time."""
    rows = [
        "| classifier | variant | test accuracy, mean ± sd | per seed | gain over `base`, points (per seed) | epoch, s |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, g in groups.items():
        accuracy = g["test_accuracy"]
        sd = "" if accuracy["sd"] is None else f" ± {accuracy['sd']:.4f}"
        per_seed = ", ".join(f"{g['accuracy_per_seed'][s]:.4f}" for s in g["seeds"])
        gain = g.get("gain_over_base_points")
        gain_text = "" if gain is None else (
            f"**{gain['mean']:+.2f}**" + ("" if gain["sd"] is None else f" ± {gain['sd']:.2f}")
            + f" ({', '.join(f'{v:+.2f}' for v in gain['per_seed'].values())})"
        )
        rows.append(f"| {g['classifier']} | `{g['variant']}` | {accuracy['mean']:.4f}{sd} | {per_seed} | {gain_text} | {g['mean_epoch_time_s']} |")
    seeds = sorted({s for g in groups.values() for s in g["seeds"]})
    return "\n".join(rows) + f"\n\nSeeds: {', '.join(map(str, seeds))}; sd: the sample standard deviation between seeds.\n"


def summary_figure(groups: dict[str, dict]) -> Figure:
    """Three panels, one group of marks per classifier, one colour per variant: test
    accuracy (each seed a dot, the mean ± sd a bar, on an axis fitted to the data so a point
    is visible), the gain over ``base`` in points, and the mean epoch time (log scale)."""
    classifiers = sorted({g["classifier"] for g in groups.values()})
    variants = sorted({g["variant"] for g in groups.values()}, key=lambda v: (v != BASE, v))
    width = 0.8 / max(len(variants), 1)
    x = np.arange(len(classifiers))
    fig = Figure(figsize=(14, 4.5))
    accuracy_ax, gain_ax, time_ax = fig.subplots(1, 3)
    for i, variant in enumerate(variants):
        offset = x + (i - (len(variants) - 1) / 2) * width
        colour = f"C{i}"
        for position, classifier in zip(offset, classifiers):
            g = groups.get(f"{classifier}-{variant}")
            if g is None:
                continue
            accuracy = g["test_accuracy"]
            accuracy_ax.errorbar(position, accuracy["mean"], yerr=accuracy["sd"] or 0, fmt="o", color=colour, capsize=4)
            accuracy_ax.scatter([position] * len(g["seeds"]), list(g["accuracy_per_seed"].values()), s=12, color=colour, alpha=0.5)
            gain = g.get("gain_over_base_points")
            if gain is not None:
                gain_ax.bar(position, gain["mean"], width, yerr=gain["sd"] or 0, color=colour, capsize=4)
                gain_ax.scatter([position] * len(gain["per_seed"]), list(gain["per_seed"].values()), s=12, color="black", zorder=3)
            time_ax.bar(position, g["mean_epoch_time_s"], width, color=colour)
        accuracy_ax.plot([], [], "o", color=colour, label=variant)
    for ax, title in ((accuracy_ax, "test accuracy: mean ± sd, dots: seeds"),
                      (gain_ax, "gain over base, points: mean ± sd, dots: seeds"),
                      (time_ax, "mean epoch time (s, log scale)")):
        ax.set_xticks(x, classifiers)
        ax.set_title(title, fontsize=10)
    gain_ax.axhline(0, color="grey", linewidth=0.8)
    time_ax.set_yscale("log")
    accuracy_ax.legend(title="variant", fontsize=8)
    fig.tight_layout()
    return fig


def run_names(classifiers, variants, seeds) -> set[str]:
    """The run folders params.yaml asks for: ``<classifier>-<variant>-<seed>`` (dvc.yaml's matrix)."""
    return {f"{c}-{v}-{s}" for c in classifiers for v in variants for s in seeds}


def write_summary(results_dir: str | Path, out_dir: str | Path, names: set[str] | None = None) -> dict[str, dict]:
    """Write ``summary.json`` (``{"runs": ..., "groups": ...}``), ``results.md`` and
    ``summary.png`` to ``out_dir`` for the runs of ``names`` (all when None); return the groups."""
    runs = collect_runs(results_dir, names)
    if not runs:
        raise NoRunsError(f"no trained and evaluated runs under {results_dir}; run `dvc repro` first")
    groups = group_runs(runs)
    out_dir = Path(out_dir)
    write_json(out_dir / "summary.json", {"runs": runs, "groups": groups})
    with atomic_output(out_dir / "results.md") as tmp:
        tmp.write_text(results_table(groups))
    with atomic_output(out_dir / "summary.png") as tmp:
        summary_figure(groups).savefig(tmp, format="png", dpi=100)
    return groups

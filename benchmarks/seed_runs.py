"""Every classifier x variant x seed on the real data, through the train and evaluate stages:
the numbers behind the README's results table (docs/results/pretrained_elmo.json).

One run is an anecdote: early stopping picks an early epoch for the BiLSTM, so test accuracy
moves by half a point with the seed. This trains each (classifier, variant) with several
values of `train.seed` (the stages themselves, each with a copy of params.yaml differing only
in the seed), scores each on test, and collects per run: test accuracy, ROC AUC, epochs, best
epoch, mean epoch time; plus the pretrained biLM's held-out perplexity and training tokens.

Resumable: a run whose test metrics exist is not run again, so the script can be stopped
and restarted (or continued in another session) at any time.

Example (in a repository where `dvc repro embed_imdb encode` has run on the real archive):
    python benchmarks/seed_runs.py --seeds 42 1 2 --out runs.json

With --out naming an existing file, the runs are merged into it (per run and seed), so runs
made by several invocations (other seeds, other work folders, another session) end up in one
file (its `date` and `machine` are the last invocation's); --section puts them under a named
part of it instead of the top level. How
docs/results/pretrained_elmo.json was made, each line with the --params, --data, --work and
--bilm-metrics of its biLM and runs (the README's results section says which):
    seed_runs.py --variants base --out F
    seed_runs.py --variants elmo_imdb --out F
    seed_runs.py --variants elmo_imdb --out F --section tries.tokens_6M --what "..."
    seed_runs.py --classifiers bilstm --variants elmo_imdb --out F \\
        --section tries.tokens_6M_layers_scalar_mix --what "..."
    seed_runs.py --classifiers bilstm --variants base --out F --section window.maxlen_90 --what "..."
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
from datetime import date
from pathlib import Path

import yaml
from results import publish

REPO = Path(__file__).resolve().parents[1]


def run(stage: str, *args: str) -> None:
    subprocess.run([sys.executable, str(REPO / "stages" / f"{stage}.py"), *args], check=True)


def one_run(args, classifier: str, variant: str, seed: int) -> dict:
    """Train and evaluate one run (unless done before); return its numbers."""
    folder = args.work / f"{classifier}-{variant}-seed{seed}"
    metrics = folder / "results" / "test" / "metrics.json"
    if not metrics.exists():
        params = yaml.safe_load(args.params.read_text())
        params["train"]["seed"] = seed
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        data = ["--prepared", str(args.data / "prepared"), "--base", str(args.data / "base")]
        if variant != "base":
            data += ["--elmo", str(args.data / variant)]
        common = [*data, "--model", str(folder / "model.keras"), "--params", str(folder / "params.yaml")]
        run("train", classifier, variant, *common, "--results", str(folder / "results"))
        run("evaluate", variant, *common, "--results", str(folder / "results" / "test"))
    trained = json.loads((folder / "results" / "train.json").read_text())
    tested = json.loads(metrics.read_text())
    return {
        "seed": seed,
        "test_accuracy": tested["accuracy"],
        "test_roc_auc": tested["roc_auc"],
        "epochs": trained["epochs"],
        "best_epoch": trained["best_epoch"],
        "mean_epoch_time_s": trained["mean_epoch_time_s"],
    }


def summary(runs: list[dict]) -> dict:
    accuracies = [r["test_accuracy"] for r in runs]
    return {
        "mean_test_accuracy": round(statistics.mean(accuracies), 4),
        "stdev_test_accuracy": round(statistics.stdev(accuracies), 4) if len(accuracies) > 1 else None,
        "min_test_accuracy": min(accuracies),
        "max_test_accuracy": max(accuracies),
        "mean_epoch_time_s": round(statistics.mean(r["mean_epoch_time_s"] for r in runs), 2),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=Path, default=REPO / "params.yaml", help="params.yaml the runs start from")
    parser.add_argument("--data", type=Path, default=REPO / "data", help="folder holding prepared/, base/ and the variants' features")
    parser.add_argument("--work", type=Path, default=REPO / "data" / "seed_runs", help="one folder per run (kept: resumable)")
    parser.add_argument("--bilm-metrics", type=Path, default=REPO / "results" / "pretrain" / "metrics.json",
                        help="the pretrain stage's metrics (perplexity, tokens)")
    parser.add_argument("--classifiers", nargs="+", default=["bilstm", "cnn", "pooled"])
    parser.add_argument("--variants", nargs="+", default=["base", "elmo_imdb"])
    parser.add_argument("--seeds", nargs="+", type=int, default=[42, 1, 2])
    parser.add_argument("--out", type=Path, help="write the results here as JSON, merged into the file if it exists")
    parser.add_argument("--section", help="dotted key of --out to put the runs under (default: the top level)")
    parser.add_argument("--what", help="what the section's runs differ in (kept with them)")
    args = parser.parse_args()

    everything = json.loads(args.out.read_text()) if args.out and args.out.exists() else {}
    everything.update(machine={"cpu": _cpu_name(), "cores": _cores(), "python": platform.python_version()},
                      date=date.today().isoformat())
    everything.setdefault("seeds", args.seeds)
    results = everything
    for key in args.section.split(".") if args.section else []:
        results = results.setdefault(key, {})
    if args.what:
        results["what"] = args.what
    if args.bilm_metrics.exists():
        results["bilm"] = {"options": yaml.safe_load(args.params.read_text())["pretrain"]["options"],
                           **json.loads(args.bilm_metrics.read_text())}
    runs = results.setdefault("runs", {})
    for classifier in args.classifiers:
        for seed in args.seeds:  # seed by seed, so that an unfinished session leaves paired variants
            for variant in args.variants:
                key = f"{classifier}-{variant}"
                by_seed = {r["seed"]: r for r in runs.get(key, {"per_seed": []})["per_seed"]}
                by_seed[seed] = one_run(args, classifier, variant, seed)
                order = everything["seeds"] + sorted(set(by_seed) - set(everything["seeds"]))
                per_seed = [by_seed[s] for s in order if s in by_seed]
                runs[key] = {"per_seed": per_seed, **summary(per_seed)}
                publish(everything, args.out)


def _cpu_name() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor()


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    main()

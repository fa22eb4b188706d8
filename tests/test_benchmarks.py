"""The benchmark scripts still run: they are not part of CI's measurements, but a script that
broke with the code it measures would publish nothing. Tiny inputs, so the numbers mean nothing."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from conftest import REPO, store_features

SCRIPTS = sorted(p.stem for p in (REPO / "benchmarks").glob("*.py") if p.stem != "results")


def run_benchmark(name, *args, cwd=REPO):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, str(REPO / "benchmarks" / f"{name}.py"), *args], cwd=cwd, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-3000:]
    return result


@pytest.mark.parametrize("name", SCRIPTS)
def test_every_benchmark_has_help(name):
    assert "usage:" in run_benchmark(name, "--help").stdout


@pytest.mark.slow
def test_epoch_costs_times_every_mode(tiny_store, tiny_splits, tmp_path):
    from elmo_imdb.bilm import TINY_HUB_OPTIONS

    options = tmp_path / "options.json"
    options.write_text(json.dumps(TINY_HUB_OPTIONS))
    out = tmp_path / "epoch_costs.json"
    run_benchmark(
        "epoch_costs", "--reviews", "12", "--repeats", "1", "--min-seconds", "0", "--options", str(options),
        "--params", str(REPO / "params.yaml"), "--out", str(out), cwd=tiny_store,
    )
    results = json.loads(out.read_text())
    assert set(results["epoch_s"]) == {"bilstm", "cnn", "pooled"}
    assert set(results["epoch_s"]["bilstm"]) >= {"online", "cached", "in_memory", "base"}
    assert all(v > 0 for v in results["per_review_ms"].values())
    vector_bytes = tiny_splits["train"].maxlen * 1024 * 2  # float16 vectors of one review
    # the file's size over 12 reviews: two chunks of 10 rows, plus HDF5's metadata
    assert 20 / 12 * vector_bytes <= results["disk_bytes_per_review"] < 2 * vector_bytes
    assert {"online_over_cached", "bilstm_cached_over_in_memory", "sequence_cold_over_disk_read"} <= set(results["ratios"])


@pytest.mark.slow
def test_store_layouts_reads_every_layout(tmp_path):
    from elmo_imdb.features import FeatureIdentity

    rows = np.random.default_rng(0).normal(size=(200, 4, 8)).astype(np.float16)
    path = store_features(tmp_path / "train.h5", rows, FeatureIdentity("test", "elmo", "float16", 4, [8], "f"))
    out = tmp_path / "layouts.json"
    run_benchmark("store_layouts", str(path), "--reviews", "200", "--repeats", "1", "--out", str(out))
    results = json.loads(out.read_text())
    assert set(results["layouts"]) == {"chunk1", "chunk10", "chunk100", "chunk10-lzf", "chunk10-gzip"}
    assert all(layout["sequence_cold_mb_s"] > 0 for layout in results["layouts"].values())
    assert results["fancy_against_slices"]["slices_ms"] > 0 and "two_processes" in results["parallel_reads"]["chunk10"]


def test_seed_runs_merges_invocations_into_one_file_and_sections(tmp_path):
    """Runs whose metrics exist are read, not run again; a second invocation adds its seeds to
    the same runs, a --section one puts its runs under its own key, nothing else is lost."""

    def finished_run(work, name, seed, accuracy):
        folder = work / f"{name}-seed{seed}" / "results"
        (folder / "test").mkdir(parents=True)
        (folder / "train.json").write_text(json.dumps({"epochs": 3, "best_epoch": 1, "mean_epoch_time_s": 10.0 + seed}))
        (folder / "test" / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "roc_auc": 0.9}))

    work, out = tmp_path / "runs", tmp_path / "results.json"
    finished_run(work, "bilstm-base", 42, 0.80)
    finished_run(work, "bilstm-base", 1, 0.84)
    finished_run(work, "bilstm-base", 2, 0.82)
    common = ["--work", str(work), "--classifiers", "bilstm", "--variants", "base", "--out", str(out),
              "--bilm-metrics", str(tmp_path / "none.json")]
    run_benchmark("seed_runs", *common, "--seeds", "42", "1")
    run_benchmark("seed_runs", *common, "--seeds", "2")
    run_benchmark("seed_runs", *common, "--seeds", "1", "--section", "window.other", "--what", "a try")

    results = json.loads(out.read_text())
    top = results["runs"]["bilstm-base"]
    assert [r["seed"] for r in top["per_seed"]] == [42, 1, 2]  # the first invocation's order, then the rest
    assert [r["test_accuracy"] for r in top["per_seed"]] == [0.80, 0.84, 0.82]
    assert top["mean_test_accuracy"] == 0.82 and top["stdev_test_accuracy"] == 0.02 and top["max_test_accuracy"] == 0.84
    assert results["window"]["other"]["what"] == "a try"
    assert [r["seed"] for r in results["window"]["other"]["runs"]["bilstm-base"]["per_seed"]] == [1]
    assert results["seeds"] == [42, 1] and "bilm" not in results


@pytest.mark.slow
def test_embed_scaling_times_every_way_and_the_writer(tiny_splits, tmp_path):
    tiny_splits["train"].save(tmp_path / "train.h5")
    out = tmp_path / "scaling.json"
    run_benchmark("embed_scaling", str(tmp_path / "train.h5"), "--options", "imdb_tiny", "--rounds", "1",
                  "--writer-dims", "32", "--writer-blocks", "1", "--out", str(out))
    results = json.loads(out.read_text())
    ways = ("in_process", "ray_1", "ray_2_pinned", "ray_1_pinned")
    assert results["reviews"] == len(tiny_splits["train"]) and results["elmo"] == "imdb_tiny (random weights)"
    assert all(results["tokens_s"][way]["mean"] > 0 for way in ways)
    assert results["files_compared_to_in_process_round_1"] == {way: [{"identical": True}] for way in ways}
    assert results["writer_mb_s"]["32"]["mean"] > 0 and results["workers_the_writer_feeds"]["32"] > 0

import json

import pytest

from elmo_imdb.report import NoRunsError, collect_runs, write_summary


def fake_run(results, run, accuracy, epoch_time, evaluated=True):
    folder = results / run
    (folder / "test").mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps({"epochs": 3, "best_epoch": 2, "mean_epoch_time_s": epoch_time}))
    if evaluated:
        (folder / "test" / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "roc_auc": 0.9}))


def test_summary_has_every_run_and_per_group_the_spread_over_seeds_and_the_gain_over_base(tmp_path):
    results = tmp_path / "results"
    for seed, base, elmo in ((42, 0.80, 0.83), (1, 0.82, 0.83), (2, 0.81, 0.845)):
        fake_run(results, f"bilstm-base-{seed}", base, 12.0)
        fake_run(results, f"bilstm-elmo_imdb-{seed}", elmo, 30.0 + seed % 3)
    fake_run(results, "pooled-elmo_imdb-42", 0.78, 0.4)  # no base run: no gain
    fake_run(results, "cnn-base-42", 0.7, 2.0, evaluated=False)  # trained, not yet scored: left out

    groups = write_summary(results, tmp_path / "reports")
    summary = json.loads((tmp_path / "reports/summary.json").read_text())
    assert set(summary["runs"]) == {f"bilstm-{v}-{s}" for v in ("base", "elmo_imdb") for s in (42, 1, 2)} | {"pooled-elmo_imdb-42"}
    assert summary["runs"]["pooled-elmo_imdb-42"] == {
        "classifier": "pooled", "variant": "elmo_imdb", "seed": 42, "test_accuracy": 0.78, "test_roc_auc": 0.9,
        "mean_epoch_time_s": 0.4, "epochs": 3, "best_epoch": 2,
    }
    elmo = groups["bilstm-elmo_imdb"]
    assert elmo["seeds"] == [1, 2, 42] and elmo["mean_epoch_time_s"] == 31.0
    assert elmo["test_accuracy"] == {"mean": 0.835, "sd": 0.0087, "min": 0.83, "max": 0.845}
    assert elmo["gain_over_base_points"] == {"per_seed": {1: 1.0, 2: 3.5, 42: 3.0}, "mean": 2.5, "sd": 1.32, "min": 1.0, "max": 3.5}
    assert groups["bilstm-base"]["test_accuracy"]["sd"] == 0.01 and "gain_over_base_points" not in groups["bilstm-base"]
    assert groups["pooled-elmo_imdb"]["test_accuracy"]["sd"] is None and "gain_over_base_points" not in groups["pooled-elmo_imdb"]
    table = (tmp_path / "reports/results.md").read_text().splitlines()
    assert "| bilstm | `elmo_imdb` | 0.8350 ± 0.0087 | 0.8300, 0.8450, 0.8300 | **+2.50** ± 1.32 (+1.00, +3.50, +3.00) | 31.0 |" in table
    assert "| pooled | `elmo_imdb` | 0.7800 | 0.7800 |  | 0.4 |" in table
    assert (tmp_path / "reports/summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_only_the_runs_params_asks_for_are_summarised(tmp_path):
    from elmo_imdb.report import run_names

    results = tmp_path / "results"
    for run in ("cnn-base-1", "cnn-base-2", "cnn-base-3", "cnn-base"):  # seed 3 dropped from params; a folder of old code
        fake_run(results, run, 0.8, 1.0)
    names = run_names(["cnn"], ["base"], [1, 2])
    assert names == {"cnn-base-1", "cnn-base-2"}
    assert set(collect_runs(results, names)) == names
    assert write_summary(results, tmp_path / "reports", names)["cnn-base"]["seeds"] == [1, 2]


def test_no_runs_is_a_clear_error(tmp_path):
    assert collect_runs(tmp_path) == {}
    with pytest.raises(NoRunsError, match="run `dvc repro` first"):
        write_summary(tmp_path, tmp_path / "reports")

import json

import pytest

from elmo_imdb.report import NoRunsError, collect_runs, summary_figure, write_summary


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


def test_the_figure_shows_a_point_of_accuracy_every_seed_and_the_gain_in_points(tmp_path):
    results = tmp_path / "results"
    for seed, base, elmo in ((42, 0.80, 0.83), (1, 0.82, 0.83), (2, 0.81, 0.845)):
        fake_run(results, f"cnn-base-{seed}", base, 2.0)
        fake_run(results, f"cnn-elmo_imdb-{seed}", elmo, 5.0)
    accuracy_ax, gain_ax, time_ax = summary_figure(write_summary(results, tmp_path / "reports")).axes

    low, high = accuracy_ax.get_ylim()
    assert 0.75 < low < 0.80 and 0.845 < high < 0.90  # fitted to the data, not 0 to 1: a point is over 6 % of its height
    dots = sorted(y for c in accuracy_ax.collections if c.get_offsets().shape[0] == 3 for _, y in c.get_offsets())
    assert dots == pytest.approx(sorted([0.80, 0.82, 0.81, 0.83, 0.83, 0.845]))
    assert [bar.get_height() for bar in gain_ax.patches] == pytest.approx([2.5])  # base has no gain bar
    gain_dots = [y for c in gain_ax.collections if c.get_offsets().shape[0] == 3 for _, y in c.get_offsets()]
    assert sorted(gain_dots) == pytest.approx([1.0, 3.0, 3.5])
    assert time_ax.get_yscale() == "log" and [bar.get_height() for bar in time_ax.patches] == [2.0, 5.0]


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

import json

import pytest

from elmo_imdb.report import NoRunsError, collect_runs, write_summary


def fake_run(results, run, accuracy, epoch_time, evaluated=True):
    folder = results / run
    (folder / "test").mkdir(parents=True)
    (folder / "train.json").write_text(json.dumps({"epochs": 3, "mean_epoch_time_s": epoch_time}))
    if evaluated:
        (folder / "test" / "metrics.json").write_text(json.dumps({"accuracy": accuracy, "roc_auc": 0.9}))


def test_summary_has_every_evaluated_run_and_a_png(tmp_path):
    results = tmp_path / "results"
    fake_run(results, "bilstm-base", 0.80, 12.0)
    fake_run(results, "bilstm-elmo", 0.85, 30.0)
    fake_run(results, "pooled-elmo", 0.78, 0.4)
    fake_run(results, "cnn-base", 0.7, 2.0, evaluated=False)  # trained, not yet scored: left out

    runs = write_summary(results, tmp_path / "reports")
    assert set(runs) == {"bilstm-base", "bilstm-elmo", "pooled-elmo"}
    assert runs["pooled-elmo"] == {
        "classifier": "pooled", "variant": "elmo", "test_accuracy": 0.78, "test_roc_auc": 0.9,
        "mean_epoch_time_s": 0.4, "epochs": 3,
    }
    assert json.loads((tmp_path / "reports/summary.json").read_text()) == runs
    assert (tmp_path / "reports/summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_no_runs_is_a_clear_error(tmp_path):
    assert collect_runs(tmp_path) == {}
    with pytest.raises(NoRunsError, match="run `dvc repro` first"):
        write_summary(tmp_path, tmp_path / "reports")

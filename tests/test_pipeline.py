"""End to end: `dvc repro` on the tiny archive, the tiny ELMo hub module and the tiny biLM preset, in a copy of the repo."""

import csv
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import REPO
from elmo_imdb.bilm import load_bilm
from elmo_imdb.classifiers import CLASSIFIERS
from elmo_imdb.params import VARIANTS
from elmo_imdb.prepared import PreparedSplit

pytestmark = pytest.mark.slow


def dvc(workdir, *args):
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["dvc", *args], cwd=workdir, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"dvc {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def set_params(workdir, **sections):
    """Update params.yaml section by section; a nested mapping updates the subsection, a list replaces it."""
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
        if isinstance(values, list):
            params[section] = values
            continue
        for key, value in values.items():
            if isinstance(value, dict):
                params[section][key].update(value)
            else:
                params[section][key] = value
    path.write_text(yaml.safe_dump(params, sort_keys=False))


def stages_run(repro_output):
    return set(re.findall(r"Running stage '([^']+)'", repro_output))


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory, tiny_archive, tiny_hub_module):
    """A copy of the repo, configured for the tiny data, after a first `dvc repro`."""
    work = tmp_path_factory.mktemp("pipeline") / "repo"
    work.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", "Makefile"):
        if (REPO / name).exists():
            shutil.copy(REPO / name, work / name)
    for folder in ("stages", "elmo_imdb"):
        shutil.copytree(REPO / folder, work / folder, ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run(["git", "init", "-q"], cwd=work, check=True)
    dvc(work, "init", "-q")
    set_params(
        work,
        fetch={"local": str(tiny_archive)},
        prepare={"maxlen": 16, "val_size": 8},
        pretrain={"options": "imdb_tiny", "vocab_size": 20, "n_samples": 8, "heldout_reviews": 5, "tokens": 1500,
                  "eval_every": 500, "batch_size": 8},
        embed={"published": str(tiny_hub_module), "batch_size": 7},
        train={"embedding_dim": 8, "batch_size": 8, "epochs": 2},
        seeds=SEEDS,
        classifiers={"bilstm": {"lstm_units": 4}, "cnn": {"filters": 4, "hidden_units": 4}},
    )
    first = dvc(work, "repro")
    return work, first


SEEDS = [1, 2]


def runs(stage, variants=VARIANTS):
    return {f"{stage}@{classifier}-{variant}-{seed}" for classifier in CLASSIFIERS for variant in variants for seed in SEEDS}


def test_first_repro_runs_every_stage_and_reports_every_run(pipeline):
    work, first = pipeline
    elmo = {"pretrain", "embed_published", "embed_imdb"}
    assert stages_run(first) == {"fetch", "prepare", "encode", "summarize"} | elmo | runs("train") | runs("evaluate")
    metrics = dvc(work, "metrics", "show")
    for run in (r.split("@")[1] for r in runs("train")):
        assert f"results/{run}/test/metrics.json" in metrics and f"results/{run}/train.json" in metrics
    assert "roc_auc" in metrics and "mean_epoch_time_s" in metrics
    plots = json.loads(dvc(work, "plots", "show", "--json"))
    assert not plots.get("errors") and "reports/summary.png" in plots["data"]
    for run in (r.split("@")[1] for r in runs("train")):  # learning curve, ROC and confusion of every run
        for plot in ("history.csv", "test/roc.csv", "test/predictions.csv"):
            assert f"results/{run}/{plot}" in plots["data"] and (work / "results" / run / plot).stat().st_size > 0
    summary = json.loads((work / "reports/summary.json").read_text())
    assert set(summary["runs"]) == {run.split("@")[1] for run in runs("train")}
    for name, group in summary["groups"].items():  # every classifier and variant over both seeds, ELMo against base
        assert group["seeds"] == SEEDS and len(group["accuracy_per_seed"]) == 2, name
        assert ("gain_over_base_points" in group) == (group["variant"] != "base"), name
    table = (work / "reports/results.md").read_text()
    assert all(f"| {c} | `{v}` |" in table for c in CLASSIFIERS for v in VARIANTS)


def test_runs_without_elmo_do_not_depend_on_the_features(pipeline):
    work, _ = pipeline
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    for stage in runs("train") | runs("evaluate"):
        deps = {dep["path"] for dep in lock[stage]["deps"]}
        for source in ("elmo_published", "elmo_imdb"):
            assert (f"data/{source}" in deps) == (f"-{source}-" in stage), stage
    assert "data/bilm" not in {dep["path"] for dep in lock["embed_published"]["deps"]}  # google/elmo/3 never waits for pretraining
    assert "data/prepared/train.h5" in {dep["path"] for dep in lock["pretrain"]["deps"]}


def test_a_classifier_param_reruns_only_that_classifier(pipeline):
    work, _ = pipeline
    set_params(work, classifiers={"bilstm": {"lstm_units": 6}})
    again = dvc(work, "repro")
    assert stages_run(again) == {f"{stage}@bilstm-{variant}-{seed}" for stage in ("train", "evaluate") for variant in VARIANTS
                                 for seed in SEEDS} | {"summarize"}
    # speed only: must not invalidate the features (nothing runs, so no cluster is needed at `auto`)
    set_params(work, embed={"workers": 4, "cluster": "auto", "gpus_per_worker": 0.5})
    assert stages_run(dvc(work, "repro")) == set()
    set_params(work, embed={"workers": 1, "cluster": None, "gpus_per_worker": 0})  # the later tests embed in the stage itself


def test_changing_max_features_does_not_rerun_elmo(pipeline):
    work, _ = pipeline
    set_params(work, encode={"max_features": 30})
    assert not {"pretrain", "embed_published", "embed_imdb"} & stages_run(dvc(work, "repro"))


def test_a_new_biLM_reruns_its_embed_and_runs_only(pipeline):
    work, _ = pipeline
    set_params(work, pretrain={"tokens": 2000})  # a longer budget: continues from the last checkpoint
    again = dvc(work, "repro")
    assert stages_run(again) == {"pretrain", "embed_imdb", "summarize"} | runs("train", ["elmo_imdb"]) | runs("evaluate", ["elmo_imdb"])
    assert "resuming at step" in again
    metrics = json.loads((work / "reports/pretrain/metrics.json").read_text())
    assert metrics["tokens"] >= 2000 and metrics["heldout_perplexity_forward"] > 1


def test_the_pretrained_biLM_is_in_the_published_format_and_is_what_embed_imdb_ran(pipeline):
    work, _ = pipeline
    bilm = load_bilm(work / "data/bilm/options.json", work / "data/bilm/weights.hdf5")
    split = PreparedSplit.load(work / "data/prepared/val.h5")
    with h5py.File(work / "data/elmo_imdb/val.h5") as f:
        assert f["features"].shape == (len(split), 16, 32)  # imdb_tiny: 2 x 16-dim projections
        i = int(np.argmax(split.lengths))
        n = int(split.lengths[i])
        expected = bilm(tf.constant([split.tokens[i]]), tf.constant([n]))["elmo"][0].numpy()
        np.testing.assert_allclose(f["features"][i, 16 - n :], expected, rtol=2e-3, atol=2e-3)  # float16 storage
    curve = (work / "reports/pretrain/curve.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["tokens", "step"] and len(curve) == 1 + 4  # 500, 1000, 1500, 2000 tokens
    assert [int(row.split("\t")[0]) // 500 for row in curve[1:]] == [1, 2, 3, 4]


def test_a_features_row_is_the_module_output_at_the_left_padded_positions(pipeline, tiny_hub_module):
    import tensorflow_hub as hub

    work, _ = pipeline
    split = PreparedSplit.load(work / "data/prepared/test.h5")
    with h5py.File(work / "data/elmo_published/test.h5") as f:
        features = f["features"]
        assert features.shape == (len(split), 16, 1024) and features.dtype == np.float16
        assert f.attrs["prepared_fingerprint"] == split.fingerprint
        assert f.attrs["elmo"] == f"hub:{tiny_hub_module}"
        module = hub.load(str(tiny_hub_module)).signatures["tokens"]
        checked = 0
        for i in np.argsort(-split.lengths)[:3].tolist() + [int(np.argmin(split.lengths))]:
            n = int(split.lengths[i])
            row = features[i]
            assert not row[: 16 - n].any()  # exact zeros at padding
            if n == 0:
                continue
            expected = module(tokens=tf.constant([split.tokens[i]]), sequence_len=tf.constant([n]))["elmo"][0].numpy()
            np.testing.assert_allclose(row[16 - n :], expected, rtol=2e-3, atol=2e-3)  # float16 storage
            assert np.abs(row[16 - n :]).max() > 0
            checked += 1
        assert checked == 3


def test_the_main_command_builds_only_the_listed_variants(pipeline):
    """`make repro` offline with variants [base, elmo_imdb]: nothing asks for google/elmo/3."""
    work, _ = pipeline
    recipe = subprocess.run(["make", "--no-print-directory", "-n", "repro", "INSTALLED="], cwd=work,  # no "Entering/Leaving"
                            capture_output=True, text=True, check=True)                               # lines under `make test`
    command = recipe.stdout.strip().splitlines()[-1].split()
    assert command[:2] == ["dvc", "repro"]
    planned = {}
    try:
        for variants in (["base", "elmo_imdb"], ["base"]):
            set_params(work, variants=variants)
            planned[len(variants)] = stages_run(dvc(work, *command[1:], "--dry", "--force"))
    finally:
        set_params(work, variants=list(VARIANTS))
    assert "embed_published" not in planned[2] and not any("-elmo_published-" in stage for stage in planned[2])
    assert {"pretrain", "embed_imdb", "summarize"} | runs("train", ["base", "elmo_imdb"]) <= planned[2]
    assert planned[1] == {"fetch", "prepare", "encode", "summarize"} | runs("train", ["base"]) | runs("evaluate", ["base"])


def test_repro_force_of_a_finished_pretrain_gives_the_same_outputs(pipeline):
    """DVC deletes a stage's outputs, metrics included, before running it again on its kept checkpoint."""
    work, _ = pipeline

    def outputs():
        with h5py.File(work / "data/bilm/weights.hdf5") as f:
            weights = {}
            f.visititems(lambda name, obj: weights.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
        texts = {name: (work / name).read_text() for name in ("reports/pretrain/metrics.json", "reports/pretrain/curve.tsv",
                                                              "data/bilm/options.json", "data/bilm/vocab.txt")}
        return weights, texts

    weights, texts = outputs()
    again = dvc(work, "repro", "--force", "--single-item", "pretrain")
    assert stages_run(again) == {"pretrain"} and "resuming at step" in again
    new_weights, new_texts = outputs()
    assert new_texts == texts and new_weights.keys() == weights.keys()
    for name, value in weights.items():
        np.testing.assert_array_equal(new_weights[name], value, err_msg=name)


def predict_command(work, *args, stdin=None):
    return subprocess.run([sys.executable, "-m", "elmo_imdb", "predict", *args, "--root", str(work)], cwd=work,
                          input=stdin, capture_output=True)


@pytest.mark.parametrize("run", ["bilstm-base-1", "bilstm-elmo_imdb-1", "cnn-elmo_published-2"])
def test_predict_on_the_raw_test_reviews_gives_what_evaluate_wrote(pipeline, tiny_archive, run):
    """The same cleaning, tokeniser, tail cut, vocabulary and ELMo as training, computed on the fly."""
    from elmo_imdb import load_classifier
    from elmo_imdb.imdb import read_reviews

    work, _ = pipeline
    texts = {review.name: review.text for review in read_reviews(tiny_archive)[0]}
    with open(work / "results" / run / "test/predictions.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 20 and {row["review"] for row in rows} <= texts.keys()
    scores = load_classifier(run, work).predict([texts[row["review"]] for row in rows])
    expected = np.array([float(row["p_positive"]) for row in rows])
    assert scores.shape == (20,) and scores.std() > 0  # the reviews get different scores
    np.testing.assert_allclose(scores, expected, atol=1e-4)  # evaluate's are rounded to 6 places; embed's batches differ


def test_the_predict_command_prints_one_line_a_review(pipeline):
    from elmo_imdb import load_classifier

    work, _ = pipeline
    reviews = ["A wonderful film.", "", "   "]
    done = predict_command(work, "bilstm-elmo_imdb-1", *reviews)
    assert done.returncode == 0, done.stderr.decode()
    lines = done.stdout.decode().splitlines()
    clf = load_classifier("bilstm-elmo_imdb-1", work)
    expected = clf.predict(reviews)
    assert len(lines) == 3 and expected[1] == expected[2]  # whitespace is an empty review
    for line, p in zip(lines, expected):
        score, label = line.split("\t")
        assert abs(float(score) - p) < 1e-4 and label == ("positive" if p >= 0.5 else "negative")
    long_review = "bad " * 100_000  # longer than an argument may be: through stdin
    as_json = predict_command(work, "bilstm-elmo_imdb-1", "--json", stdin=f"A wonderful film.\n\n{long_review}\n".encode())
    assert as_json.returncode == 0, as_json.stderr.decode()
    records = [json.loads(line) for line in as_json.stdout.decode().splitlines()]
    assert [r["text"] for r in records] == ["A wonderful film.", "", long_review]
    assert abs(records[0]["p_positive"] - expected[0]) < 1e-4
    assert abs(records[2]["p_positive"] - clf.predict(["bad " * 16])[0]) < 1e-4  # only the last maxlen tokens count


def test_predict_reads_jsonl_and_refuses_what_it_cannot_read_in_one_line(pipeline, tmp_path):
    work, _ = pipeline
    reviews = tmp_path / "reviews.jsonl"
    reviews.write_text('{"text": "great"}\n{"text": "awful", "id": 2}\n')
    done = predict_command(work, "cnn-base-1", "--input", str(reviews), "--json")
    assert done.returncode == 0 and len(done.stdout.decode().splitlines()) == 2
    reviews.write_text('{"text": "great"}\n{"review": "awful"}\n')
    refusals = {
        "a jsonl line without text": (("cnn-base-1", "--input", str(reviews)), None, f'{reviews} line 2 has no "text" string field'),
        "non-UTF-8 stdin": (("cnn-base-1",), b"good\n\xff\xfe bad\n", "stdin is not UTF-8 text (line 2, byte 5)"),
        "an unknown run": (("lstm-base-9", "good"), None, "no trained run 'lstm-base-9' in"),
        "ELMo files for a base run": (("cnn-base-1", "good", "--elmo", "data/bilm"), None, "cnn-base-1 is a base run: it uses no ELMo"),
    }
    for case, (args, stdin, message) in refusals.items():
        done = predict_command(work, *args, stdin=stdin)
        err = done.stderr.decode()
        assert done.returncode == 1 and err.startswith("error: ") and message in err and "Traceback" not in err, case
    assert "bilstm-base-1, bilstm-base-2" in predict_command(work, "lstm-base-9", "good").stderr.decode()  # the runs there are


def test_predict_refuses_a_biLM_or_vocabulary_other_than_the_run_was_trained_with(pipeline, tmp_path):
    work, _ = pipeline
    retrained = tmp_path / "bilm"
    shutil.copytree(work / "data/bilm", retrained)
    with h5py.File(retrained / "weights.hdf5", "r+") as f:
        f["char_embed"][0, 0] += 1.0
    done = predict_command(work, "bilstm-elmo_imdb-1", "good", "--elmo", str(retrained))
    assert done.returncode == 1
    assert f"error: {retrained} is not the ELMo bilstm-elmo_imdb-1 was trained with: weights.hdf5 changed since" in done.stderr.decode()
    record = json.loads((work / "models/cnn-base-2.json").read_text())
    shutil.copytree(work / "models", tmp_path / "models")
    (tmp_path / "data/base").mkdir(parents=True)
    (tmp_path / "data/base/vocab.txt").write_text("other\nwords\n")
    done = predict_command(tmp_path, "cnn-base-2", "good")
    assert record["vocabulary"]["path"] == "data/base/vocab.txt"
    assert "is not the vocabulary cnn-base-2 was trained with" in done.stderr.decode() and done.returncode == 1

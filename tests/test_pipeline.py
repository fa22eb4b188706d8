"""End to end: `dvc repro` on the tiny archive, the tiny ELMo hub module and the tiny biLM preset, in a copy of the repo."""

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
    """Update params.yaml section by section; a nested mapping updates the subsection."""
    path = workdir / "params.yaml"
    params = yaml.safe_load(path.read_text())
    for section, values in sections.items():
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
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
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
        embed={"google": str(tiny_hub_module), "batch_size": 7},
        train={"embedding_dim": 8, "batch_size": 8, "epochs": 2},
        classifiers={"bilstm": {"lstm_units": 4}, "cnn": {"filters": 4, "hidden_units": 4}},
    )
    first = dvc(work, "repro")
    return work, first


def runs(stage):
    return {f"{stage}@{classifier}-{variant}" for classifier in CLASSIFIERS for variant in VARIANTS}


def test_first_repro_runs_every_stage_and_reports_every_run(pipeline):
    work, first = pipeline
    elmo = {"pretrain", "embed_google", "embed_imdb"}
    assert stages_run(first) == {"fetch", "prepare", "encode", "summarize"} | elmo | runs("train") | runs("evaluate")
    metrics = dvc(work, "metrics", "show")
    for classifier in CLASSIFIERS:
        for variant in VARIANTS:
            assert f"results/{classifier}-{variant}/test/metrics.json" in metrics
            assert f"results/{classifier}-{variant}/train.json" in metrics
    assert "roc_auc" in metrics and "mean_epoch_time_s" in metrics
    plots = json.loads(dvc(work, "plots", "show", "--json"))
    assert not plots.get("errors") and "reports/summary.png" in plots["data"]
    for run in (r.split("@")[1] for r in runs("train")):  # learning curve, ROC and confusion of every run
        for plot in ("history.csv", "test/roc.csv", "test/predictions.csv"):
            assert f"results/{run}/{plot}" in plots["data"] and (work / "results" / run / plot).stat().st_size > 0
    summary = json.loads((work / "reports/summary.json").read_text())
    assert set(summary) == {run.split("@")[1] for run in runs("train")}


def test_runs_without_elmo_do_not_depend_on_the_features(pipeline):
    work, _ = pipeline
    lock = yaml.safe_load((work / "dvc.lock").read_text())["stages"]
    for stage in runs("train") | runs("evaluate"):
        deps = {dep["path"] for dep in lock[stage]["deps"]}
        for source in ("elmo_google", "elmo_imdb"):
            assert (f"data/{source}" in deps) == stage.endswith(f"-{source}"), stage
    assert "data/bilm" not in {dep["path"] for dep in lock["embed_google"]["deps"]}  # google/elmo/3 never waits for pretraining
    assert "data/prepared/train.h5" in {dep["path"] for dep in lock["pretrain"]["deps"]}


def test_a_classifier_param_reruns_only_that_classifier(pipeline):
    work, _ = pipeline
    set_params(work, classifiers={"bilstm": {"lstm_units": 6}})
    again = dvc(work, "repro")
    assert stages_run(again) == {f"{stage}@bilstm-{variant}" for stage in ("train", "evaluate") for variant in VARIANTS} | {"summarize"}
    # speed only: must not invalidate the features (nothing runs, so no cluster is needed at `auto`)
    set_params(work, embed={"batch_size": 3, "workers": 4, "cluster": "auto", "gpus_per_worker": 0.5})
    assert stages_run(dvc(work, "repro")) == set()
    set_params(work, embed={"workers": 1, "cluster": None, "gpus_per_worker": 0})  # the later tests embed in the stage itself


def test_changing_max_features_does_not_rerun_elmo(pipeline):
    work, _ = pipeline
    set_params(work, encode={"max_features": 30})
    assert not {"pretrain", "embed_google", "embed_imdb"} & stages_run(dvc(work, "repro"))


def test_a_new_biLM_reruns_its_embed_and_runs_only(pipeline):
    work, _ = pipeline
    set_params(work, pretrain={"tokens": 2000})  # a longer budget: continues from the last checkpoint
    again = dvc(work, "repro")
    assert stages_run(again) == {"pretrain", "embed_imdb", "summarize"} | {
        f"{stage}@{classifier}-elmo_imdb" for stage in ("train", "evaluate") for classifier in CLASSIFIERS
    }
    assert "resuming at step" in again
    metrics = json.loads((work / "results/pretrain/metrics.json").read_text())
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
    curve = (work / "results/pretrain/curve.tsv").read_text().splitlines()
    assert curve[0].split("\t")[:2] == ["tokens", "step"] and len(curve) == 1 + 4  # 500, 1000, 1500, 2000 tokens
    assert [int(row.split("\t")[0]) // 500 for row in curve[1:]] == [1, 2, 3, 4]


def test_a_features_row_is_the_module_output_at_the_left_padded_positions(pipeline, tiny_hub_module):
    import tensorflow_hub as hub

    work, _ = pipeline
    split = PreparedSplit.load(work / "data/prepared/test.h5")
    with h5py.File(work / "data/elmo_google/test.h5") as f:
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

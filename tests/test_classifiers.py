"""Every classifier, with and without ELMo, trains through the HDF5-backed Sequence; the
registry, params.yaml and dvc.yaml agree on which classifiers exist."""

import dataclasses
import math
import re

import keras
import numpy as np
import pytest
import yaml

from conftest import REPO
from elmo_imdb.classifiers import CLASSIFIERS, VARIANTS, build_classifier
from elmo_imdb.params import ClassifiersParams, load_params
from elmo_imdb.sequence import as_dataset, open_sequence
from elmo_imdb.vocabulary import Vocabulary


def tiny_params():
    """The repo's params.yaml shrunk to models that train in a second."""
    params = load_params(REPO / "params.yaml")
    c = params.classifiers
    return dataclasses.replace(
        params,
        train=dataclasses.replace(params.train, embedding_dim=4, batch_size=8, epochs=1),
        classifiers=dataclasses.replace(
            c,
            bilstm=dataclasses.replace(c.bilstm, lstm_units=3),
            cnn=dataclasses.replace(c.cnn, filters=3, hidden_units=4),
        ),
    )


def sequences(store, variant):
    data = store / "data"
    features = data / "features" if VARIANTS[variant] else None
    train = open_sequence("train", data / "prepared", data / "encoded", features, batch_size=8, shuffle=True)
    val = open_sequence("val", data / "prepared", data / "encoded", features, batch_size=8)
    return train, val


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_trains_an_epoch_through_the_sequence(name, variant, tiny_store, tmp_path):
    keras.utils.set_random_seed(0)
    train, val = sequences(tiny_store, variant)
    vocab_size = Vocabulary.load(tiny_store / "data/encoded/vocab.txt").size
    elmo_dim = None if train.features is None else train.features.shape[-1]
    model = build_classifier(name, tiny_params(), maxlen=train.ids.shape[1], vocab_size=vocab_size, elmo_dim=elmo_dim)

    history = model.fit(train, validation_data=val, epochs=1, verbose=0).history
    assert math.isfinite(history["loss"][0]) and math.isfinite(history["val_loss"][0])
    inputs = val[0][0]
    scores = model.predict(inputs, verbose=0)
    assert scores.shape == (len(val[0][1]), 1) and np.all((scores >= 0) & (scores <= 1))

    model.save(tmp_path / "m.keras")  # the evaluate stage loads it back
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), scores, rtol=1e-5)


def test_as_dataset_yields_the_sequence_batches(tiny_store):
    train, _ = sequences(tiny_store, "elmo")
    train.shuffle = False
    batches = list(as_dataset(train))
    assert len(batches) == len(train)
    (ids, elmo), labels = batches[1]
    (expected_ids, expected_elmo), expected_labels = train[1]
    assert np.array_equal(ids.numpy(), expected_ids) and np.array_equal(elmo.numpy(), expected_elmo)
    assert np.array_equal(labels.numpy(), expected_labels) and elmo.dtype == "float16"


def test_registry_params_and_pipeline_name_the_same_classifiers():
    assert list(CLASSIFIERS) == [f.name for f in dataclasses.fields(ClassifiersParams)]
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())
    runs = pipeline["vars"][0]["runs"]
    assert {(r["classifier"], r["features"]) for r in runs.values()} == {(c, v) for c in CLASSIFIERS for v in VARIANTS}
    for run, r in runs.items():
        assert run == f"{r['classifier']}-{r['features']}"
        assert r["inputs"] == ("data/features" if VARIANTS[r["features"]] else "data/encoded")
    for plot in pipeline["plots"][:3]:
        (definition,) = plot.values()
        assert {path.split("/")[1] for path in definition["y"]} == set(runs)


def test_the_bring_your_own_model_example_in_the_docs_runs(tiny_store, monkeypatch):
    text = (REPO / "docs" / "classifiers.md").read_text()
    (example,) = re.findall(r"```python\n(.*?)```", text, flags=re.S)
    monkeypatch.chdir(tiny_store)  # the example's paths are relative to the repository root
    keras.utils.set_random_seed(0)
    exec(compile(example, "docs/classifiers.md", "exec"), {})

"""Every classifier, with and without ELMo, trains through the HDF5-backed Sequence; the
registry, params.yaml and dvc.yaml agree on which classifiers exist."""

import dataclasses
import math
import re
import textwrap

import keras
import numpy as np
import pytest
import yaml

from conftest import REPO
from elmo_imdb.classifiers import CLASSIFIERS, build_classifier, hyperparameters
from elmo_imdb.layers import ScalarMix
from elmo_imdb.params import ParamsError, load_params
from elmo_imdb.sequence import as_dataset, open_sequence
from elmo_imdb.vocabulary import Vocabulary

TINY = {"bilstm": {"lstm_units": 3}, "cnn": {"filters": 3, "hidden_units": 4}}  # models that train in a second


def tiny_model(name, maxlen, vocab_size, elmo_shape):
    params = load_params(REPO / "params.yaml")
    hyper = {**hyperparameters(name, params.classifiers), **TINY.get(name, {})}
    train = dataclasses.replace(params.train, embedding_dim=4, batch_size=8, epochs=1)
    return build_classifier(name, hyper, train, maxlen, vocab_size, elmo_shape)


def sequences(store, variant, elmo="elmo_imdb"):
    data = store / "data"
    features = None if variant == "base" else data / elmo
    train = open_sequence("train", data / "prepared", data / "base", features, batch_size=8, shuffle=True)
    val = open_sequence("val", data / "prepared", data / "base", features, batch_size=8)
    return train, val


@pytest.mark.parametrize("variant", ["base", "elmo"])
@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_trains_an_epoch_through_the_sequence(name, variant, tiny_store, tmp_path):
    keras.utils.set_random_seed(0)
    train, val = sequences(tiny_store, variant)
    vocab_size = Vocabulary.load(tiny_store / "data/base/vocab.txt").size
    elmo_shape = None if train.features is None else train.features.shape[2:]
    model = tiny_model(name, train.ids.shape[1], vocab_size, elmo_shape)

    history = model.fit(train, validation_data=val, epochs=1, verbose=0).history
    assert math.isfinite(history["loss"][0]) and math.isfinite(history["val_loss"][0])
    inputs = val[0][0]
    scores = model.predict(inputs, verbose=0)
    assert scores.shape == (len(val[0][1]), 1) and np.all((scores >= 0) & (scores <= 1))

    model.save(tmp_path / "m.keras")  # the evaluate stage loads it back
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    np.testing.assert_allclose(reloaded.predict(inputs, verbose=0), scores, rtol=1e-5)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_each_classifier_learns_its_mix_of_three_cached_elmo_layers(name, tiny_store, tmp_path):
    keras.utils.set_random_seed(0)
    train, val = sequences(tiny_store, "elmo", elmo="elmo_layers")
    assert train.features.shape[2:] == (3, 8)
    model = tiny_model(name, train.ids.shape[1], 50, train.features.shape[2:])
    mix = model.get_layer("elmo_scalar_mix")
    before = keras.ops.convert_to_numpy(mix.layer_weights).copy()
    model.fit(train, validation_data=val, epochs=1, verbose=0)
    assert not np.allclose(keras.ops.convert_to_numpy(mix.layer_weights), before)  # the mix is trained
    model.save(tmp_path / "m.keras")
    reloaded = keras.models.load_model(tmp_path / "m.keras")
    assert isinstance(reloaded.get_layer("elmo_scalar_mix"), ScalarMix)
    np.testing.assert_allclose(reloaded.predict(val[0][0], verbose=0), model.predict(val[0][0], verbose=0), rtol=1e-5)


def test_as_dataset_yields_the_sequence_batches(tiny_store):
    train, _ = sequences(tiny_store, "elmo")
    train.shuffle = False
    batches = list(as_dataset(train))
    assert len(batches) == len(train)
    (ids, elmo), labels = batches[1]
    (expected_ids, expected_elmo), expected_labels = train[1]
    assert np.array_equal(ids.numpy(), expected_ids) and np.array_equal(elmo.numpy(), expected_elmo)
    assert np.array_equal(labels.numpy(), expected_labels) and elmo.dtype == "float16"


def test_every_registered_classifier_has_a_valid_line_in_params_and_vice_versa():
    params = load_params(REPO / "params.yaml")
    assert list(params.classifiers) == list(CLASSIFIERS)
    for name in CLASSIFIERS:
        hyperparameters(name, params.classifiers)
    assert hyperparameters("bilstm", params.classifiers) == {"lstm_units": 128, "dropout": 0.2, "recurrent_dropout": 0.2}


@pytest.mark.parametrize(
    "line, message",
    [
        ({"lstm_unit": 64, "dropout": 0.2, "recurrent_dropout": 0.2}, "unknown parameter classifiers.bilstm.lstm_unit"),
        ({"lstm_units": 64, "dropout": 0.2}, "missing parameter classifiers.bilstm.recurrent_dropout"),
        ({"lstm_units": 0, "dropout": 0.2, "recurrent_dropout": 0.2}, "classifiers.bilstm.lstm_units must be >= 1, got 0"),
        ({"lstm_units": 64, "dropout": 1.5, "recurrent_dropout": 0.2}, "classifiers.bilstm.dropout must be <= 0.99, got 1.5"),
        ({"lstm_units": "64", "dropout": 0.2, "recurrent_dropout": 0.2}, "classifiers.bilstm.lstm_units must be int, got str"),
        ([64], "classifiers.bilstm: expected a mapping"),
    ],
)
def test_a_bad_classifier_line_names_the_key(line, message):
    with pytest.raises(ParamsError, match=re.escape(message)):
        hyperparameters("bilstm", {"bilstm": line})


def test_a_classifier_without_a_builder_or_without_a_line_is_refused():
    with pytest.raises(ParamsError, match=re.escape("classifiers.rnn: elmo_imdb/classifiers.py has no classifier 'rnn'")):
        hyperparameters("rnn", {"rnn": {}})
    with pytest.raises(ParamsError, match="missing parameter classifiers.cnn"):
        hyperparameters("cnn", {})


def doc_example(heading):
    """The ```python block of docs/classifiers.md under ``heading``."""
    text = (REPO / "docs" / "classifiers.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return textwrap.dedent(example)  # a block inside a list item is indented


def test_adding_a_classifier_as_the_docs_say_takes_one_builder_and_one_line(monkeypatch):
    """The builder of docs/classifiers.md, registered: its signature is the schema of its line."""
    monkeypatch.setattr("elmo_imdb.classifiers.CLASSIFIERS", dict(CLASSIFIERS))
    from elmo_imdb import classifiers

    namespace = {name: getattr(classifiers, name) for name in ("classifier", "Tokens", "Int", "Float", "positive", "keras")}
    exec(compile(doc_example("Adding a classifier"), "docs/classifiers.md", "exec"), namespace)
    line = yaml.safe_load(re.search(r"`(gru: \{.*?\})`", (REPO / "docs" / "classifiers.md").read_text())[1])["gru"]

    hyper = hyperparameters("gru", {"gru": line})
    assert hyper == {"units": 64, "dropout": 0.2}
    with pytest.raises(ParamsError, match=re.escape("classifiers.gru.units must be >= 1, got 0")):
        hyperparameters("gru", {"gru": {**line, "units": 0}})
    model = build_classifier("gru", hyper, load_params(REPO / "params.yaml").train, 6, 10, (4,))
    assert model.output_shape == (None, 1) and model.get_layer("bigru").forward_layer.units == 64


def test_the_pipeline_trains_every_classifier_line_with_and_without_elmo_once_per_seed():
    pipeline = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    for stage in ("train", "evaluate"):
        assert pipeline[stage]["matrix"] == {"classifier": "${classifiers}", "variant": "${variants}", "seed": "${seeds}"}
        assert "${item.seed}" in pipeline[stage]["cmd"]
        assert {"data/base", "data/${item.variant}"} <= set(pipeline[stage]["deps"])
    assert "classifiers.${item.classifier}" in pipeline["train"]["params"] and "--seed ${item.seed}" in pipeline["train"]["cmd"]


def test_the_bring_your_own_model_example_in_the_docs_runs(tiny_store, monkeypatch):
    example = doc_example("Bring your own model")
    monkeypatch.chdir(tiny_store)  # the example's paths are relative to the repository root
    keras.utils.set_random_seed(0)
    exec(compile(example, "docs/classifiers.md", "exec"), {})

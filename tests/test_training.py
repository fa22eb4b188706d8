"""Fitting stops in one line when the loss stops being a number, and leaves no history behind."""

import keras
import numpy as np
import pytest

from elmo_imdb.params import TrainParams
from elmo_imdb.sequence import ReviewSequence
from elmo_imdb.training import DivergedError, fit


def tiny_model():
    ids = keras.Input((6,), dtype="int32")
    elmo = keras.Input((6, 4))
    output = keras.layers.Dense(1, activation="sigmoid")(keras.layers.GlobalAveragePooling1D()(elmo))
    model = keras.Model([ids, elmo], output)
    model.compile(optimizer="adam", loss="binary_crossentropy", metrics=["accuracy"])
    return model


def sequences(bad_row=None):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(40, 6, 4)).astype(np.float32)
    if bad_row is not None:
        features[bad_row, 2, 1] = np.nan
    ids, labels = np.ones((40, 6), np.int32), rng.integers(0, 2, 40)
    return ReviewSequence(ids, labels, features, 10, shuffle=False), ReviewSequence(ids[:20], labels[:20], features[:20] * 0, 10, False)


def params():
    return TrainParams(embedding_dim=4, learning_rate=0.01, batch_size=10, epochs=3, patience=2)


def test_a_loss_that_becomes_nan_stops_training_in_one_line_naming_the_batch(tmp_path):
    train, val = sequences(bad_row=25)  # the loss is NaN from the update after the bad batch on
    with pytest.raises(DivergedError, match=r"^the training loss became nan at batch \d of epoch 1; nothing was saved: lower"):
        fit(tiny_model(), train, val, params(), tmp_path / "history.csv")
    assert list(tmp_path.iterdir()) == []  # no history of a diverged run


def test_finite_losses_train_every_epoch(tmp_path):
    train, val = sequences()
    history = fit(tiny_model(), train, val, params(), tmp_path / "history.csv").history
    assert len(history["val_loss"]) == 3 and all(np.isfinite(history["loss"]))
    assert (tmp_path / "history.csv").read_text().count("\n") == 4

"""Fitting a classifier: early stopping on the validation split, per-epoch history for DVC.

The test split never reaches this module: the seed early-stopped on test accuracy, which makes
its test score optimistic; here validation loss chooses the epoch and its weights.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import keras

from elmo_imdb.atomic import atomic_output
from elmo_imdb.params import TrainParams


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time_s`` (wall clock of the epoch, validation included) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_time_s"] = round(time.perf_counter() - self._start, 3)


def fit(model: keras.Model, train, val, params: TrainParams, history_csv: str | Path) -> keras.callbacks.History:
    """Train until validation loss stops improving; keep the best epoch's weights.

    ``history_csv`` gets one row per epoch (loss, accuracy, their validation values, epoch
    time), written when training ends so an interrupted run leaves no partial history.
    """
    with atomic_output(history_csv) as tmp:
        history = model.fit(
            train,
            validation_data=val,
            epochs=params.epochs,
            callbacks=[
                EpochTimer(),
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience, restore_best_weights=True),
                keras.callbacks.CSVLogger(str(tmp)),
            ],
            verbose=1 if sys.stdout.isatty() else 2,  # a progress bar in a terminal, a line per epoch in logs
        )
    return history

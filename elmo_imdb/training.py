"""Fitting a classifier: early stopping on the validation split, per-epoch history for DVC.

The test split never reaches this module: the original script early-stopped on test accuracy, which makes
its test score optimistic; here validation loss chooses the epoch and its weights.
"""

from __future__ import annotations

import math
import sys
import time
from pathlib import Path

import keras

from elmo_imdb.atomic import atomic_output
from elmo_imdb.errors import PipelineError
from elmo_imdb.params import TrainParams


class DivergedError(PipelineError):
    """The loss became NaN or infinite: the model is garbage from there on, and nothing is saved."""


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop training, as a :class:`DivergedError`, at the first batch (or validation) whose loss
    is NaN or infinite. Keras' own ``TerminateOnNaN`` ends ``fit`` as if it had finished, so the
    stage would save a NaN model and write ``"val_loss": NaN`` (not JSON) with exit status 0."""

    def on_train_batch_end(self, batch, logs=None):
        self._check("training loss", (logs or {}).get("loss"), f"batch {batch + 1} of epoch {self._epoch}")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch + 1

    def on_epoch_end(self, epoch, logs=None):
        self._check("validation loss", (logs or {}).get("val_loss"), f"epoch {epoch + 1}")

    @staticmethod
    def _check(what: str, value, where: str) -> None:
        if value is not None and not math.isfinite(float(value)):
            raise DivergedError(
                f"the {what} became {float(value)} at {where}; nothing was saved: lower train.learning_rate, "
                "or check the inputs (`python -m elmo_imdb verify` on the features)"
            )


class EpochTimer(keras.callbacks.Callback):
    """Adds ``epoch_time_s`` (wall clock of the epoch, validation included) to the logs."""

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        logs["epoch_time_s"] = round(time.perf_counter() - self._start, 3)


def fit(model: keras.Model, train, val, params: TrainParams, history_csv: str | Path) -> keras.callbacks.History:
    """Train until validation loss stops improving; keep the best epoch's weights.

    ``history_csv`` gets one row per epoch (loss, accuracy, their validation values, epoch
    time), written when training ends so an interrupted run leaves no partial history. A
    loss that becomes NaN or infinite stops training with a :class:`DivergedError`.
    """
    with atomic_output(history_csv) as tmp:
        history = model.fit(
            train,
            validation_data=val,
            epochs=params.epochs,
            callbacks=[
                EpochTimer(),
                StopOnNonFiniteLoss(),
                keras.callbacks.EarlyStopping(monitor="val_loss", patience=params.patience, restore_best_weights=True),
                keras.callbacks.CSVLogger(str(tmp)),
            ],
            verbose=1 if sys.stdout.isatty() else 2,  # a progress bar in a terminal, a line per epoch in logs
        )
    return history

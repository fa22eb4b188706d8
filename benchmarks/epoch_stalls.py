"""Why ReviewSequence reads ahead with two worker threads: epoch start-up stalls, counted.

Trains one classifier on the first N reviews of a features file for several epochs, once with
Keras' default for a PyDataset (workers=1: batches go through a tf.data pipeline whose
prefetch buffer is autotuned) and once with workers=2 (Keras' own queue, tf.data autotuning
off), and records for every epoch its wall time and the wait between the epoch's start and
its first batch. Labels and ids are random: only time is measured.

Example (after `dvc repro embed`):
    python benchmarks/epoch_stalls.py data/elmo/train.h5 --reviews 5000 --epochs 12 --out docs/benchmarks/epoch_stalls.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import h5py
import keras
import numpy as np
from results import publish

from elmo_imdb.classifiers import build_classifier, hyperparameters
from elmo_imdb.features import DATASET
from elmo_imdb.params import load_params
from elmo_imdb.sequence import ReviewSequence


class EpochClock(keras.callbacks.Callback):
    """Per epoch: wall time, and the wait before the first batch starts."""

    def __init__(self):
        super().__init__()
        self.epochs, self.waits = [], []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_train_batch_begin(self, batch, logs=None):
        if batch == 0:
            self.waits.append(round(time.perf_counter() - self._start, 2))

    def on_epoch_end(self, epoch, logs=None):
        self.epochs.append(round(time.perf_counter() - self._start, 2))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", type=Path, help="a features file, e.g. data/elmo/train.h5")
    parser.add_argument("--reviews", type=int, default=5000, help="first N rows (default: %(default)s)")
    parser.add_argument("--classifier", default="cnn", help="default: %(default)s")
    parser.add_argument("--epochs", type=int, default=12, help="default: %(default)s")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    params = load_params(args.params)
    with h5py.File(args.features, "r") as f:
        features = f[DATASET][: args.reviews]  # in RAM: this measures the input pipeline, not the disk
    rng = np.random.default_rng(0)
    ids = rng.integers(2, 1000, size=features.shape[:2], dtype=np.int32)
    labels = rng.integers(0, 2, size=len(features))
    results = {"reviews": len(features), "classifier": args.classifier}
    for workers in (1, 2):
        keras.utils.set_random_seed(0)
        model = build_classifier(
            args.classifier, hyperparameters(args.classifier, params.classifiers), params.train, features.shape[1], 1000, features.shape[2:]
        )
        seq = ReviewSequence(ids, labels, features, params.train.batch_size, shuffle=True, workers=workers)
        model.fit(seq, epochs=1, steps_per_epoch=1, verbose=0)  # tracing
        clock = EpochClock()
        model.fit(seq, epochs=args.epochs, verbose=0, callbacks=[clock])
        typical = statistics.median(clock.epochs)
        results[f"workers={workers}"] = {
            "epoch_s": clock.epochs,
            "wait_before_first_batch_s": clock.waits,
            "median_epoch_s": typical,
            "mean_epoch_s": round(statistics.mean(clock.epochs), 2),
            "epochs_over_1.5x_median": sum(t > 1.5 * typical for t in clock.epochs),
        }
        print(workers, json.dumps(results[f"workers={workers}"]), flush=True)
    publish(results, args.out)


if __name__ == "__main__":
    main()

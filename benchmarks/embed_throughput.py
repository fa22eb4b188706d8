"""Throughput of the embed stage's inner loop on real prepared reviews, and what its two
choices buy: batching by length, and running the biLM as a traced ``tf.function``.

On the first N reviews of a prepared split, with the project's biLM (random weights in the
published layout unless --weights is given: speed does not depend on the values), times

1. the stage's loop, :func:`elmo_imdb.embedders.embed_blocks`: reviews sorted by length, each
   batch padded to its longest review (rounded up to LENGTH_BUCKET);
2. the same batches size in arrival order (the prepared order), each padded to its longest;
3. the stage's loop with the biLM run eagerly, op by op, instead of as a tf.function;

and counts the token positions each one computes (real tokens plus padding).

Example (after `dvc repro prepare` on the real archive):
    python benchmarks/embed_throughput.py data/prepared/train.h5 --reviews 512 --out docs/benchmarks/embed_throughput_maxlen80.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from results import publish

from elmo_imdb.bilm import load_options, write_random_weights
from elmo_imdb.embedders import (
    LENGTH_BUCKET,
    BilmElmo,
    embed_blocks,
    embed_rows,
    vector_shape,
)
from elmo_imdb.prepared import PreparedSplit


def padded_positions(lengths: np.ndarray, batches: list[np.ndarray], maxlen: int) -> int:
    """Token positions ELMo computes for these batches: batch size x its padded width."""
    return int(sum(len(b) * min(-(-lengths[b].max() // LENGTH_BUCKET) * LENGTH_BUCKET, maxlen) for b in batches if len(b)))


def by_length(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    order = np.argsort(-lengths, kind="stable")
    return np.array_split(order, -(-len(order) // batch_size))


def in_arrival_order(n: int, batch_size: int) -> list[np.ndarray]:
    return np.array_split(np.arange(n), -(-n // batch_size))


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", type=Path, help="a prepared split, e.g. data/prepared/train.h5")
    parser.add_argument("--reviews", type=int, default=512, help="reviews to embed (default: %(default)s)")
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway", help="options name or path (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="weights.hdf5 (default: random weights)")
    parser.add_argument("--batch-size", type=int, default=64, help="reviews per ELMo call (default: %(default)s)")
    parser.add_argument("--eager-reviews", type=int, default=64, help="reviews for the eager run (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    split = PreparedSplit.load(args.prepared)
    n, batch = min(args.reviews, len(split)), args.batch_size
    subset = PreparedSplit(split.tokens[:n], split.labels[:n], split.names[:n], split.maxlen)
    lengths = subset.lengths
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or write_random_weights(load_options(args.options), Path(tmp) / "w.hdf5")
        embedder = BilmElmo(args.options, str(weights), "elmo")
        shape = vector_shape(embedder)  # also traces the model, so tracing is not timed

        def stage_loop():
            for _ in embed_blocks(embedder, subset, batch, shape):
                pass

        def arrival_order():
            for rows in in_arrival_order(n, batch):
                embed_rows(embedder, subset, rows, batch, shape)  # one batch: padded to its own longest

        seconds = {"by_length": timed(stage_loop), "arrival_order": timed(arrival_order)}
        eager_rows = np.arange(min(args.eager_reviews, n))
        tf.config.run_functions_eagerly(True)  # every tf.function runs op by op
        eager = timed(lambda: embed_rows(embedder, subset, eager_rows, batch, shape))
        tf.config.run_functions_eagerly(False)

    traced_per_review = seconds["by_length"] / n
    results = {
        "reviews": n,
        "tokens": int(lengths.sum()),
        "maxlen": subset.maxlen,
        "batch_size": batch,
        "elmo": f"{args.options} ({'given weights' if args.weights else 'random weights'})",
        "reviews_s": {name: round(n / s, 3) for name, s in seconds.items()},
        "tokens_s": {name: round(int(lengths.sum()) / s, 1) for name, s in seconds.items()},
        "positions_computed": {
            "by_length": padded_positions(lengths, by_length(lengths, batch), subset.maxlen),
            "arrival_order": padded_positions(lengths, in_arrival_order(n, batch), subset.maxlen),
        },
        "eager": {"reviews": len(eager_rows), "reviews_s": round(len(eager_rows) / eager, 3),
                  "slowdown_over_tf_function": round(eager / len(eager_rows) / traced_per_review, 2)},
    }
    publish(results, args.out)


if __name__ == "__main__":
    main()

"""Throughput of the embed stage's inner loop on real prepared reviews: reviews/s and tokens/s.

Runs :func:`elmo_imdb.embedders.embed_blocks` (batching by length, left-padding into blocks) with
the project's biLM on the first N reviews of a prepared split. With no weight file given, the
biLM gets random weights in the published layout (speed does not depend on the values).

Example (after `dvc repro prepare` on the real archive):
    python benchmarks/embed_throughput.py data/prepared/train.h5 --reviews 1000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from elmo_imdb.bilm import load_options, write_random_weights
from elmo_imdb.embedders import BilmElmo, embed_blocks, output_dim
from elmo_imdb.prepared import PreparedSplit


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", type=Path, help="a prepared split, e.g. data/prepared/train.h5")
    parser.add_argument("--reviews", type=int, default=1000, help="reviews to embed (default: %(default)s)")
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway", help="options name or path (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="weights.hdf5 (default: random weights)")
    parser.add_argument("--batch-size", type=int, default=64, help="reviews per ELMo call (default: %(default)s)")
    args = parser.parse_args()

    split = PreparedSplit.load(args.prepared)
    subset = PreparedSplit(split.tokens[: args.reviews], split.labels[: args.reviews], split.names[: args.reviews], split.maxlen)
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or write_random_weights(load_options(args.options), Path(tmp) / "w.hdf5")
        embedder = BilmElmo(args.options, str(weights), "elmo")
        dim = output_dim(embedder)  # also traces the model, so tracing is not timed
        start = time.perf_counter()
        for _ in embed_blocks(embedder, subset, args.batch_size, dim):
            pass
        seconds = time.perf_counter() - start
    tokens = int(subset.lengths.sum())
    print(f"{len(subset)} reviews, {tokens} tokens (mean {tokens / len(subset):.1f}), maxlen {subset.maxlen}, batch {args.batch_size}")
    print(f"{seconds:.1f} s: {len(subset) / seconds:.2f} reviews/s, {tokens / seconds:.1f} tokens/s")


if __name__ == "__main__":
    main()

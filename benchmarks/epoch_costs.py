"""What an epoch costs with ELMo: online (the seed's way) against the cache, in one run.

On the same real reviews (the first N of a prepared split), the same BiLSTM and the same ELMo
(the full-size original options, random weights unless --weights is given), measures:

1. online: ELMo computed for every batch of every epoch, as the seed did;
2. cached: features read from the HDF5 store through ReviewSequence (the product);
3. in-memory: the same features from a NumPy array already in RAM (the floor for 2);
4. base: the classifier without ELMo;

plus the embed throughput, the bytes on disk per review, and the read throughput of the
Sequence alone against the disk's sequential read speed (page cache dropped for the file
before each cold read). All four use the same ReviewSequence code path: only the object
behind ``features`` differs. Each epoch is timed after a one-batch warm-up (tracing).

Example (after `dvc repro encode` on the real archive):
    python benchmarks/epoch_costs.py --reviews 1000 --out docs/epoch_costs.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import keras
import numpy as np

from elmo_imdb.bilm import load_options, write_random_weights
from elmo_imdb.classifiers import build_classifier
from elmo_imdb.embedders import BilmElmo, embed_blocks, embed_rows, output_dim
from elmo_imdb.features import FeatureIdentity, ResumableFeatures, open_features
from elmo_imdb.params import load_params
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.sequence import ReviewSequence
from elmo_imdb.vocabulary import Vocabulary, load_ids


class OnlineElmo:
    """Array-like "features" that run ELMo on the rows asked for: the seed's online path."""

    def __init__(self, embedder, split: PreparedSplit, dim: int, batch_size: int):
        self.embedder, self.split, self.dim, self.batch_size = embedder, split, dim, batch_size
        self.shape = (len(split), split.maxlen, dim)

    def __len__(self) -> int:
        return len(self.split)

    def __getitem__(self, rows: slice) -> np.ndarray:
        indices = np.arange(len(self.split))[rows]
        return embed_rows(self.embedder, self.split, indices, self.batch_size, self.dim).astype(np.float16)


def drop_from_page_cache(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sequential_read_mb_s(path: Path) -> float:
    drop_from_page_cache(path)
    start, size = time.perf_counter(), 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(16 << 20):
            size += len(chunk)
    return size / 1e6 / (time.perf_counter() - start)


def sequence_read(seq: ReviewSequence, path: Path) -> dict:
    drop_from_page_cache(path)
    start = time.perf_counter()
    for b in range(len(seq)):
        seq[b]
    seconds = time.perf_counter() - start
    bytes_read = seq.features.dtype.itemsize * np.prod(seq.features.shape)
    return {"mb_s": bytes_read / 1e6 / seconds, "batches_s": len(seq) / seconds}


def epoch_seconds(model: keras.Model, seq: ReviewSequence) -> float:
    """Wall time of one training epoch, after a one-batch warm-up that traces the model."""
    model.fit(seq, epochs=1, steps_per_epoch=1, verbose=0)
    start = time.perf_counter()
    model.fit(seq, epochs=1, verbose=0)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="default: %(default)s")
    parser.add_argument("--encoded", type=Path, default=Path("data/encoded"), help="default: %(default)s")
    parser.add_argument("--reviews", type=int, default=1000, help="first N train reviews (default: %(default)s)")
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway", help="biLM options (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="weights.hdf5 (default: random weights)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    params = load_params(args.params)
    n = args.reviews
    full = PreparedSplit.load(args.prepared / "train.h5")
    split = PreparedSplit(full.tokens[:n], full.labels[:n], full.names[:n], full.maxlen)
    ids = load_ids(args.encoded / "train.h5", full)[:n]
    vocab_size = Vocabulary.load(args.encoded / "vocab.txt").size
    batch = params.train.batch_size
    keras.utils.set_random_seed(0)

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        tmp = Path(tmp)
        weights = args.weights or write_random_weights(load_options(args.options), tmp / "weights.hdf5")
        embedder = BilmElmo(args.options, str(weights), "elmo")
        dim = output_dim(embedder)

        start = time.perf_counter()
        identity = FeatureIdentity("benchmark", "elmo", "float16", split.maxlen, dim, split.fingerprint)
        with ResumableFeatures(tmp / "train.h5", tmp / "scratch", n, identity) as store:
            store.resume()
            for first, vectors in embed_blocks(embedder, split, params.embed.batch_size, dim):
                store.write(first, vectors)
            store.finish()
        embed_s = time.perf_counter() - start
        cached = open_features(tmp / "train.h5", split)
        in_memory = cached[:]

        def sequence(features):
            return ReviewSequence(ids, split.labels, features, batch, shuffle=True, seed=0)

        def elmo_model():
            return build_classifier("bilstm", params, split.maxlen, vocab_size, dim)

        results = {
            "reviews": n,
            "tokens": int(split.lengths.sum()),
            "batch_size": batch,
            "elmo": f"{args.options} ({'given weights' if args.weights else 'random weights'})",
            "embed_reviews_s": n / embed_s,
            "disk_bytes_per_review": (tmp / "train.h5").stat().st_size / n,
            "disk_sequential_read_mb_s": sequential_read_mb_s(tmp / "train.h5"),
            "sequence_read": sequence_read(sequence(cached), tmp / "train.h5"),
            "epoch_s": {
                "base": epoch_seconds(build_classifier("bilstm", params, split.maxlen, vocab_size, None), sequence(None)),
                "in_memory": epoch_seconds(elmo_model(), sequence(in_memory)),
                "cached": epoch_seconds(elmo_model(), sequence(cached)),
                "online": epoch_seconds(elmo_model(), sequence(OnlineElmo(embedder, split, dim, params.embed.batch_size))),
            },
        }
        cached.file.close()
    epochs = results["epoch_s"]
    results["ratios"] = {
        "cached_over_in_memory": epochs["cached"] / epochs["in_memory"],
        "online_over_cached": epochs["online"] / epochs["cached"],
        "sequence_over_disk_read": results["sequence_read"]["mb_s"] / results["disk_sequential_read_mb_s"],
        "sequence_over_training_batches_s": results["sequence_read"]["batches_s"] / (len(sequence(None)) / epochs["cached"]),
    }
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()

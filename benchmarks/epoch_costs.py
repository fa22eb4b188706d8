"""What an epoch costs with ELMo: online (the original script's way) against the cache, in one run.

On the same real reviews (the first N of a prepared split), the same classifier and the same
ELMo (the full-size original options, random weights unless --weights is given), measures
per epoch and per review:

1. online: ELMo computed inside the training step for every batch, as the original script did (a Keras
   layer runs the biLM on the batch's tokens; its weights are frozen, so no gradient flows
   through it);
2. cached: features read from the HDF5 store through ReviewSequence (the product), every
   chunk's checksum and finiteness checked (CheckedFeatures);
3. unchecked: the same reads from the HDF5 dataset itself, nothing checked (what the check costs);
4. in-memory: the same features from a NumPy array already in RAM (the floor for 2);
5. base: the classifier without ELMo;

plus the check alone (every chunk's checksum and finiteness, from memory: what checking costs an
epoch, without the noise of two epochs' difference), the embed throughput, the bytes on disk per review, and the read throughput of the
Sequence alone against the disk's sequential read, both cold (the file dropped from the page cache).
Every mode goes through the same ReviewSequence code path: only the array behind
``features`` differs (the checked store, the HDF5 dataset, a NumPy array of vectors, or one of
token indices). Each epoch is timed after a one-batch warm-up (tracing); cached, unchecked,
in-memory and base epochs are repeated, interleaved, and their medians reported. The BiLSTM
gets all five modes; the faster classifiers (--also) all but online, the cases where reading
could show.

Example (after `dvc repro encode` on the real archive):
    python benchmarks/epoch_costs.py --reviews 5000 --out docs/benchmarks/epoch_costs.json
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import tempfile
import time
from pathlib import Path

import keras
import numpy as np
import tensorflow as tf
from results import publish

from elmo_imdb.bilm import load_bilm, load_options, write_random_weights
from elmo_imdb.classifiers import build_classifier, hyperparameters
from elmo_imdb.embedders import BilmElmo, embed_blocks, vector_shape
from elmo_imdb.features import FeatureIdentity, ResumableFeatures, chunk_checksum, non_finite_rows, open_features
from elmo_imdb.params import load_params
from elmo_imdb.prepared import PreparedSplit, left_pad
from elmo_imdb.sequence import ReviewSequence
from elmo_imdb.vocabulary import Vocabulary, load_ids


class OnlineElmo(keras.layers.Layer):
    """Token indices [B, T] (left-padded with 0) -> ELMo vectors [B, T, dim], computed in the
    training step from the token strings, as the original script's ELMo layer did. (Keras' data adapters
    cannot carry string arrays, so the Sequence yields indices into ``words``.)

    The output stops the gradient: the fastest online ELMo there is. Without it, TensorFlow
    keeps the intermediates of the biLM's LSTM loops for a backward pass (the biLM's layer mix
    weights are trainable variables) and the step takes over 3 times longer (measured:
    10.9 s against 34.1 s for a batch of 100 reviews of 80 tokens).
    """

    def __init__(self, bilm, words: list[str], **kwargs):
        super().__init__(trainable=False, **kwargs)
        self.bilm, self.words = bilm, tf.constant(words)

    def call(self, token_indices):
        tokens = tf.gather(self.words, token_indices)
        lengths = tf.reduce_sum(tf.cast(token_indices != 0, tf.int32), axis=1)
        right_padded = tf.reverse_sequence(tf.reverse(tokens, [1]), lengths, seq_axis=1, batch_axis=0)
        vectors = tf.stop_gradient(self.bilm(right_padded, lengths)["elmo"])
        return tf.reverse(tf.reverse_sequence(vectors, lengths, seq_axis=1, batch_axis=0), [1])

    def compute_output_shape(self, input_shape):
        return (*input_shape, self.bilm.output_dim)


def drop_from_page_cache(path: Path) -> None:
    """Ask the kernel to forget the file's cached pages, so the next read comes from the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def sequential_read_mb_s(path: Path) -> float:
    """Cold sequential read of the whole file in 16 MB requests: what the disk gives."""
    drop_from_page_cache(path)
    start, size = time.perf_counter(), 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(16 << 20):
            size += len(chunk)
    return size / 1e6 / (time.perf_counter() - start)


def epoch_read(seq: ReviewSequence) -> dict:
    """Read every batch of one shuffled epoch, nothing trained: MB/s of features and batches/s."""
    start = time.perf_counter()
    for index in range(len(seq)):
        seq[index]
    seconds = time.perf_counter() - start
    seq.on_epoch_end()
    nbytes = seq.features.dtype.itemsize * np.prod(seq.features.shape)
    return {"mb_s": round(nbytes / 1e6 / seconds, 1), "batches_s": round(len(seq) / seconds, 2)}


def cold_and_warm(seq: ReviewSequence, path: Path) -> dict:
    """:func:`epoch_read` of ``seq``, whose features are stored in ``path``: cold (the file dropped
    from the page cache first), then warm."""
    drop_from_page_cache(path)
    return {"cold": epoch_read(seq), "warm": epoch_read(seq)}


def token_indices(split: PreparedSplit) -> tuple[np.ndarray, list[str]]:
    """The split's tokens as left-padded indices into a word list whose entry 0 is padding."""
    words = ["", *sorted({t for tokens in split.tokens for t in tokens})]
    index = {w: i for i, w in enumerate(words)}
    return left_pad([[index[t] for t in tokens] for tokens in split.tokens], split.maxlen, 0, np.int32), words


def online_model(classifier: keras.Model, bilm, words: list[str], maxlen: int) -> keras.Model:
    """``classifier`` ([ids, elmo] inputs) fed by ELMo run on the batch's tokens in every step."""
    ids = keras.Input((maxlen,), dtype="int32", name="ids")
    tokens = keras.Input((maxlen,), dtype="int32", name="token_indices")
    model = keras.Model([ids, tokens], classifier([ids, OnlineElmo(bilm, words)(tokens)]))
    optimizer = type(classifier.optimizer).from_config(classifier.optimizer.get_config())  # same settings, own state
    model.compile(optimizer=optimizer, loss=classifier.loss, metrics=["accuracy"])
    return model


def epoch_seconds(model: keras.Model, seq: ReviewSequence, min_seconds: float) -> float:
    """Wall time of one training epoch, after a one-batch warm-up that traces the model. An
    epoch shorter than ``min_seconds`` is timed again as the mean of enough epochs in one
    ``fit`` to last that long, so short epochs are not lost in timer and start-up noise."""
    model.fit(seq, epochs=1, steps_per_epoch=1, verbose=0)
    start = time.perf_counter()
    model.fit(seq, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    if seconds >= min_seconds:
        return seconds
    epochs = math.ceil(min_seconds / seconds)
    start = time.perf_counter()
    model.fit(seq, epochs=epochs, verbose=0)
    return (time.perf_counter() - start) / epochs


def check_seconds(vectors: np.ndarray, rows_per_chunk: int) -> float:
    """Seconds to check every chunk of ``vectors`` as CheckedFeatures does on read (its
    checksum, its finiteness), the bytes already in memory."""
    start = time.perf_counter()
    for first in range(0, len(vectors), rows_per_chunk):
        chunk = vectors[first : first + rows_per_chunk]
        chunk_checksum(chunk), non_finite_rows(chunk)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="default: %(default)s")
    parser.add_argument("--base", type=Path, default=Path("data/base"), help="default: %(default)s")
    parser.add_argument("--reviews", type=int, default=5000, help="first N train reviews (default: %(default)s)")
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway", help="biLM options (default: %(default)s)")
    parser.add_argument("--weights", type=Path, help="weights.hdf5 (default: random weights)")
    parser.add_argument("--params", type=Path, default=Path("params.yaml"), help="default: %(default)s")
    parser.add_argument("--repeats", type=int, default=3, help="epochs per cached/in-memory/base mode (default: %(default)s)")
    parser.add_argument("--min-seconds", type=float, default=10, help="time shorter epochs over several (default: %(default)s)")
    parser.add_argument("--also", nargs="*", default=["cnn", "pooled"], help="classifiers timed without online (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    params = load_params(args.params)
    n = args.reviews
    full = PreparedSplit.load(args.prepared / "train.h5")
    split = PreparedSplit(full.tokens[:n], full.labels[:n], full.names[:n], full.maxlen)
    ids = load_ids(args.base / "train.h5", full)[:n]
    vocab_size = Vocabulary.load(args.base / "vocab.txt").size
    batch = params.train.batch_size
    keras.utils.set_random_seed(0)

    with tempfile.TemporaryDirectory(dir=".") as tmp:
        tmp = Path(tmp)
        weights = args.weights or write_random_weights(load_options(args.options), tmp / "weights.hdf5")
        embedder = BilmElmo(args.options, str(weights), "elmo")
        shape = vector_shape(embedder)

        start = time.perf_counter()
        identity = FeatureIdentity("benchmark", "elmo", "float16", split.maxlen, list(shape), split.fingerprint, 64)
        with ResumableFeatures(tmp / "train.h5", tmp / "scratch", n, identity) as store:
            store.resume()
            for first, vectors in embed_blocks(embedder, split, params.embed.batch_size, shape):
                store.write(first, vectors)
            store.finish()
        embed_s = time.perf_counter() - start
        cached = open_features(tmp / "train.h5", split)
        arrays = {
            "cached": cached,
            "unchecked": cached.dataset,
            "in_memory": cached[:],
            "base": None,
        }
        arrays["online"], words = token_indices(split)

        def sequence(mode):
            return ReviewSequence(ids, split.labels, arrays[mode], batch, shuffle=True, seed=0)

        def model(name, mode):
            hyper = hyperparameters(name, params.classifiers)
            classifier = build_classifier(name, hyper, params.train, split.maxlen, vocab_size, None if mode == "base" else shape)
            return online_model(classifier, load_bilm(args.options, weights), words, split.maxlen) if mode == "online" else classifier

        read = cold_and_warm(sequence("unchecked"), tmp / "train.h5")
        check_s = [check_seconds(arrays["in_memory"], cached.chunks[0]) for _ in range(args.repeats)]
        results = {
            "reviews": n,
            "tokens": int(split.lengths.sum()),
            "batch_size": batch,
            "elmo": f"{args.options} ({'given weights' if args.weights else 'random weights'})",
            "embed_reviews_s": round(n / embed_s, 3),
            "embed_tokens_s": round(int(split.lengths.sum()) / embed_s, 1),
            "disk_bytes_per_review": round((tmp / "train.h5").stat().st_size / n),
            "disk_sequential_read_mb_s": round(sequential_read_mb_s(tmp / "train.h5"), 1),
            "sequence_read_cold": read["cold"],
            "sequence_read_warm": read["warm"],
            "check_s": [round(t, 5) for t in check_s],
            "epoch_s": {},
        }
        for name in ["bilstm", *args.also]:
            modes = ("cached", "unchecked", "in_memory", "base")
            models = {mode: model(name, mode) for mode in modes}
            seqs = {mode: sequence(mode) for mode in modes}
            times = {mode: [] for mode in modes}
            for _ in range(args.repeats):
                for mode in modes:
                    times[mode].append(epoch_seconds(models[mode], seqs[mode], args.min_seconds))
                    print(name, mode, round(times[mode][-1], 2), flush=True)
            epochs = {mode: round(statistics.median(t), 2) for mode, t in times.items()}
            if name == "bilstm":
                epochs["online"] = round(epoch_seconds(model(name, "online"), sequence("online"), args.min_seconds), 2)
            results["epoch_s"][name] = {**epochs, "all": {mode: [round(t, 2) for t in ts] for mode, ts in times.items()}}
        cached.file.close()

    epochs = results["epoch_s"]["bilstm"]
    batches_per_epoch = -(-n // batch)
    results["per_review_ms"] = {mode: round(epochs[mode] / n * 1e3, 2) for mode in ("online", "cached", "unchecked", "in_memory", "base")}
    results["ratios"] = {
        **{f"{name}_checked_over_unchecked": round(e["cached"] / e["unchecked"], 3) for name, e in results["epoch_s"].items()},
        **{f"{name}_cached_over_in_memory": round(e["cached"] / e["in_memory"], 3) for name, e in results["epoch_s"].items()},
        **{f"{name}_check_over_cached": round(statistics.median(check_s) / e["cached"], 4) for name, e in results["epoch_s"].items()},
        "online_over_cached": round(epochs["online"] / epochs["cached"], 2),
        "sequence_cold_over_disk_read": round(results["sequence_read_cold"]["mb_s"] / results["disk_sequential_read_mb_s"], 3),
        **{
            f"sequence_cold_over_{name}_consumption": round(results["sequence_read_cold"]["batches_s"] / (batches_per_epoch / e["cached"]), 1)
            for name, e in results["epoch_s"].items()
        },
    }
    publish(results, args.out)


if __name__ == "__main__":
    main()

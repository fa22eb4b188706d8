"""Training batches straight from the feature store, never a whole split in memory.

:class:`ReviewSequence` is a Keras ``PyDataset`` (the Keras 3 ``keras.utils.Sequence``).
It shuffles *chunks*, not rows: the store keeps ``CHUNK_ROWS`` consecutive rows per HDF5
chunk, and every epoch the chunks are put in a new random order and cut into batches. A batch
therefore holds a new mix of reviews each epoch (rows were shuffled once by the prepare stage,
so a chunk is itself a random handful), yet it is read as a few whole chunks, one contiguous
slice each: the access HDF5 does fastest, on a cold disk as from the page cache. Without
shuffling, batch ``b`` is simply rows ``[b * batch_size, (b + 1) * batch_size)``.

The reads are slices on purpose: h5py's fancy indexing (``dataset[[3, 17, 40]]``) costs about
99 times more for the same rows (docs/journal.md#2026-12-07-benchmarks-retired). Keras reads the
next batches in two background threads while the model trains (``workers=2``): with them Keras prefetches through
its own queue instead of an autotuned ``tf.data`` pipeline, whose autotuning stalls the first
batch of about one epoch in three by seconds on a 2-core machine (measured:
docs/journal.md#2026-12-07-benchmarks-retired). The second thread adds nothing else: h5py reads one at a time.

:func:`open_sequence` is the way in: it loads a split's labels and ids, opens its features,
and checks that all three come from the same prepared rows. :func:`as_dataset` offers the same
batches as a ``tf.data.Dataset`` for code that wants one (a custom training loop, say).
"""

from __future__ import annotations

from pathlib import Path

import h5py
import keras
import numpy as np
import tensorflow as tf

from elmo_imdb.features import CHUNK_ROWS, open_features
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.vocabulary import load_ids


class ReviewSequence(keras.utils.PyDataset):
    """Batches ``((ids, elmo), labels)``, or ``(ids, labels)`` when ``features`` is None.

    ``features`` is anything sliced like an array of shape ``[N, maxlen, ...]``: the stored
    ``h5py.Dataset`` in the pipeline, a NumPy array in the benchmarks. Rows are shuffled in
    groups of the dataset's chunk rows (``CHUNK_ROWS`` when it has no chunks, or without
    features), so the ``base`` and ``elmo`` variants of a run see the same batches.
    Two threads read ahead (the module docstring says why two); ``kwargs`` go to ``PyDataset``
    (``max_queue_size``, say).
    """

    def __init__(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        features: h5py.Dataset | np.ndarray | None,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
        **kwargs,
    ):
        super().__init__(workers=2, **kwargs)
        if features is not None and len(features) != len(ids):
            raise ValueError(f"features have {len(features)} rows, ids have {len(ids)}")
        self.ids = ids
        self.labels = labels.astype(np.float32)
        self.features = features
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.group_rows = (getattr(features, "chunks", None) or (CHUNK_ROWS,))[0]
        self._rng = np.random.default_rng(seed)
        self._order = self._epoch_order()

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def rows(self, index: int) -> np.ndarray:
        """The rows of the ``index``-th batch of the current epoch, ascending."""
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        return np.sort(self._order[index * self.batch_size : (index + 1) * self.batch_size])

    def __getitem__(self, index: int):
        rows = self.rows(index)
        if self.features is None:
            return self.ids[rows], self.labels[rows]
        return (self.ids[rows], self.read_features(rows)), self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._order = self._epoch_order()

    def _epoch_order(self) -> np.ndarray:
        """Every row once: chunk after chunk, the whole chunks in random order when shuffling,
        then the short last chunk (if any), so that batches stay aligned with chunks."""
        n, group = len(self.ids), self.group_rows
        chunks = np.arange(n // group)
        if self.shuffle:
            self._rng.shuffle(chunks)
        rows = (chunks[:, None] * group + np.arange(group)).ravel()
        return np.concatenate([rows, np.arange(len(rows), n)])

    def read_features(self, rows: np.ndarray) -> np.ndarray:
        """``features[rows]`` for ascending ``rows``, read as one slice per run of consecutive rows."""
        out = np.empty((len(rows), *self.features.shape[1:]), self.features.dtype)
        run_starts = np.flatnonzero(np.diff(rows, prepend=-2) != 1)
        for begin, end in zip(run_starts, [*run_starts[1:], len(rows)]):
            out[begin:end] = self.features[rows[begin] : rows[begin] + end - begin]
        return out


def open_sequence(
    name: str,
    prepared_dir: str | Path,
    base_dir: str | Path,
    elmo_dir: str | Path | None,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> ReviewSequence:
    """The Sequence of split ``name`` (``train``, ``val`` or ``test``); with ELMo features when
    ``elmo_dir`` is given. Refuses ids or features computed from other prepared rows."""
    split = PreparedSplit.load(Path(prepared_dir) / f"{name}.h5")
    ids = load_ids(Path(base_dir) / f"{name}.h5", split)
    features = open_features(Path(elmo_dir) / f"{name}.h5", split) if elmo_dir else None
    return ReviewSequence(ids, split.labels, features, batch_size, shuffle, seed)


def as_dataset(sequence: ReviewSequence) -> tf.data.Dataset:
    """The batches of ``sequence`` as a ``tf.data.Dataset``: one pass is one epoch, and a
    shuffled sequence reshuffles after each pass. Two batches are read ahead, with tf.data's
    autotuning off (it stalls the first batch of some epochs: see the module docstring).
    ELMo vectors keep the store's dtype (float16 by default); cast them if your model wants
    float32."""
    n_tokens = sequence.ids.shape[1]
    ids = tf.TensorSpec((None, n_tokens), tf.as_dtype(sequence.ids.dtype))
    labels = tf.TensorSpec((None,), tf.float32)
    if sequence.features is None:
        signature = (ids, labels)
    else:
        features = tf.TensorSpec((None, *sequence.features.shape[1:]), tf.as_dtype(sequence.features.dtype))
        signature = ((ids, features), labels)

    def batches():
        for index in range(len(sequence)):
            yield sequence[index]
        sequence.on_epoch_end()

    options = tf.data.Options()
    options.autotune.enabled = False
    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(2).with_options(options)

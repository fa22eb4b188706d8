"""Training batches straight from the feature store, never a whole split in memory.

:class:`ReviewSequence` is a Keras ``PyDataset`` (the Keras 3 ``keras.utils.Sequence``).
Batch ``b`` is the contiguous row range ``[b * batch_size, (b + 1) * batch_size)``: with the
store's whole-row chunks that is a handful of sequential chunk reads, the cheapest access
HDF5 offers. Rows were shuffled once by the prepare stage; here the *order of the batches*
is reshuffled every epoch. Keras runs ``__getitem__`` in a background thread and prefetches,
so reading overlaps the training step.

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

from elmo_imdb.features import open_features
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.vocabulary import load_ids


class ReviewSequence(keras.utils.PyDataset):
    """Batches ``((ids, elmo), labels)``, or ``(ids, labels)`` when ``features`` is None."""

    def __init__(
        self,
        ids: np.ndarray,
        labels: np.ndarray,
        features: h5py.Dataset | None,
        batch_size: int,
        shuffle: bool,
        seed: int = 0,
    ):
        super().__init__()
        if features is not None and len(features) != len(ids):
            raise ValueError(f"features have {len(features)} rows, ids have {len(ids)}")
        self.ids = ids
        self.labels = labels.astype(np.float32)
        self.features = features
        self.batch_size = batch_size
        self.shuffle = shuffle
        self._rng = np.random.default_rng(seed)
        self._order = np.arange(len(self))
        if shuffle:
            self._rng.shuffle(self._order)

    def __len__(self) -> int:
        return -(-len(self.ids) // self.batch_size)

    def rows(self, index: int) -> slice:
        """The row range of the ``index``-th batch of the current epoch."""
        start = int(self._order[index]) * self.batch_size
        return slice(start, min(start + self.batch_size, len(self.ids)))

    def __getitem__(self, index: int):
        if not 0 <= index < len(self):
            raise IndexError(f"batch {index} out of range 0..{len(self) - 1}")
        rows = self.rows(index)
        if self.features is None:
            return self.ids[rows], self.labels[rows]
        return (self.ids[rows], self.features[rows]), self.labels[rows]

    def on_epoch_end(self) -> None:
        if self.shuffle:
            self._rng.shuffle(self._order)


def open_sequence(
    name: str,
    prepared_dir: str | Path,
    encoded_dir: str | Path,
    features_dir: str | Path | None,
    batch_size: int,
    shuffle: bool = False,
    seed: int = 0,
) -> ReviewSequence:
    """The Sequence of split ``name`` (``train``, ``val`` or ``test``); with ELMo features when
    ``features_dir`` is given. Refuses ids or features computed from other prepared rows."""
    split = PreparedSplit.load(Path(prepared_dir) / f"{name}.h5")
    ids = load_ids(Path(encoded_dir) / f"{name}.h5", split)
    features = open_features(Path(features_dir) / f"{name}.h5", split) if features_dir else None
    return ReviewSequence(ids, split.labels, features, batch_size, shuffle, seed)


def as_dataset(sequence: ReviewSequence) -> tf.data.Dataset:
    """The batches of ``sequence`` as a ``tf.data.Dataset``: one pass is one epoch, and a
    shuffled sequence reshuffles its batch order after each pass. ELMo vectors keep the
    store's dtype (float16 by default); cast them if your model wants float32."""
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

    return tf.data.Dataset.from_generator(batches, output_signature=signature).prefetch(tf.data.AUTOTUNE)

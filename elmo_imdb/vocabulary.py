"""The Embedding's vocabulary and the integer ids it gives each prepared split.

The learned Embedding sees lowercased tokens (ELMo sees them as they are). Ids follow the
seed's conventions: 0 pads, 1 stands for any token outside the vocabulary, and the
``max_features - 2`` most frequent lowercased tokens of the *training* split get ids
``2 .. max_features - 1`` by descending count (ties broken alphabetically, so the vocabulary
is deterministic). Validation and test text never influences it.

HDF5 layout of an encoded ``<split>.h5``::

    ids     int32 [N, maxlen]  left-padded like the prepared split's tokens
    attrs   prepared_fingerprint: the fingerprint of the prepared split it encodes
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import h5py
import numpy as np

from elmo_imdb.atomic import atomic_output
from elmo_imdb.prepared import PreparedDataError, PreparedSplit, left_pad, require_file

PAD_ID = 0
OOV_ID = 1


class Vocabulary:
    def __init__(self, words: list[str]):
        self.words = list(words)
        self.ids = {w: i + 2 for i, w in enumerate(self.words)}

    @property
    def size(self) -> int:
        """The Embedding's ``input_dim``: words plus the padding and out-of-vocabulary ids."""
        return len(self.words) + 2

    @classmethod
    def build(cls, split: PreparedSplit, max_features: int) -> Vocabulary:
        counts = Counter(t.lower() for tokens in split.tokens for t in tokens)
        ranked = sorted(counts, key=lambda w: (-counts[w], w))
        return cls(ranked[: max_features - 2])

    def encode(self, split: PreparedSplit) -> np.ndarray:
        rows = [[self.ids.get(t.lower(), OOV_ID) for t in tokens] for tokens in split.tokens]
        return left_pad(rows, split.maxlen, PAD_ID, np.int32)

    def save(self, path: str | Path) -> None:
        with atomic_output(path) as tmp:
            tmp.write_text("".join(w + "\n" for w in self.words), encoding="utf-8")

    @classmethod
    def load(cls, path: str | Path) -> Vocabulary:
        return cls(require_file(path, "encode").read_text(encoding="utf-8").split("\n")[:-1])


def save_ids(path: str | Path, ids: np.ndarray, split: PreparedSplit) -> None:
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        f.create_dataset("ids", data=ids, track_times=False)
        f.attrs["prepared_fingerprint"] = split.fingerprint


def load_ids(path: str | Path, split: PreparedSplit) -> np.ndarray:
    """The ids of ``split``; refuses a file encoded from other rows."""
    with h5py.File(require_file(path, "encode"), "r") as f:
        recorded = f.attrs["prepared_fingerprint"]
        if recorded != split.fingerprint:
            raise PreparedDataError(
                f"{path} was encoded from prepared data {recorded[:12]}, not from {split.fingerprint[:12]}; "
                "re-run `dvc repro encode`"
            )
        return f["ids"][:]

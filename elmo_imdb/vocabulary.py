"""The Embedding's vocabulary and the integer ids it gives each prepared split.

The learned Embedding sees lowercased tokens (ELMo sees them as they are). Ids follow the
original script's conventions: 0 pads, 1 stands for any token outside the vocabulary, and the
``max_features - 2`` most frequent lowercased tokens of the *training* split get ids
``2 .. max_features - 1`` by descending count (ties broken alphabetically, so the vocabulary
is deterministic). Validation and test text never influences it.

HDF5 layout of an encoded ``<split>.h5``::

    ids     int32 [N, maxlen]  left-padded like the prepared split's tokens
    attrs   prepared_fingerprint: the fingerprint of the prepared split it encodes
            sha256: of the ids (:func:`ids_digest`), checked by every read
"""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import numpy as np

from elmo_imdb.atomic import atomic_hdf5, atomic_output
from elmo_imdb.prepared import PreparedDataError, PreparedSplit, left_pad, read_hdf5, require_file

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
    with atomic_hdf5(path) as f:
        f.create_dataset("ids", data=ids, track_times=False)
        f.attrs["prepared_fingerprint"] = split.fingerprint
        f.attrs["sha256"] = ids_digest(ids)


def load_ids(path: str | Path, split: PreparedSplit) -> np.ndarray:
    """The ids of ``split``; refuses a file encoded from other rows, or whose ids are not the
    bytes that were written (a flipped bit)."""
    with read_hdf5(path, "encode") as f:
        recorded = f.attrs["prepared_fingerprint"]
        ids = f["ids"][:]
        digest = f.attrs.get("sha256")
    if recorded != split.fingerprint:
        raise PreparedDataError(
            f"{path} was encoded from prepared data {recorded[:12]}, not from {split.fingerprint[:12]}; re-run `dvc repro encode`"
        )
    if digest != ids_digest(ids):
        raise PreparedDataError(f"{path}: the ids do not match their recorded sha256 (damaged on disk?); re-run `dvc repro encode`")
    return ids


def ids_digest(ids: np.ndarray) -> str:
    """sha256 of the ids' bytes, their shape and dtype."""
    return hashlib.sha256(f"{ids.dtype.str}{ids.shape}".encode() + np.ascontiguousarray(ids).tobytes()).hexdigest()

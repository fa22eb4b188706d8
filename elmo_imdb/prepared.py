"""Prepared splits: the rows every later stage agrees on, and the fingerprint that proves it.

A prepared split holds, for each review in a fixed shuffled order, its file name, its label
and its last ``maxlen`` tokens. The ELMo features, the Embedding ids and every prediction are
row-aligned with it; its :attr:`PreparedSplit.fingerprint` is recorded by each file derived
from it, so a reader can refuse data that was computed from other rows.

Alignment: sequences are left-padded to ``maxlen`` (as the original script's ``pad_sequences`` did), so
token ``k`` of a row of length ``L`` sits at position ``maxlen - L + k``; see :func:`left_pad`.

HDF5 layout of ``<split>.h5``::

    tokens   vlen str [N]  the kept tokens of each row, joined by single spaces
    labels   int8 [N]      1 = positive, 0 = negative
    names    vlen str [N]  the review's path in the dataset, e.g. train/pos/123_9.txt
    lengths  int32 [N]     number of kept tokens (0 for an empty review)
    attrs    maxlen, fingerprint (recomputed from the content by every read: a flipped bit is refused)

Each such file is written whole, in memory, then to disk all or nothing
(:func:`~elmo_imdb.atomic.atomic_hdf5`).
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import h5py
import numpy as np

from elmo_imdb.atomic import atomic_hdf5
from elmo_imdb.errors import PipelineError
from elmo_imdb.imdb import Review
from elmo_imdb.params import ParamsError
from elmo_imdb.tokenize import tokenize

SPLITS = ("train", "val", "test")


class PreparedDataError(PipelineError, ValueError):
    """A prepared or derived file does not match the data it claims to come from."""


def require_file(path: str | Path, stage: str) -> Path:
    """``path`` if it exists; otherwise a :class:`PreparedDataError` naming the stage that makes it."""
    path = Path(path)
    if not path.is_file():
        raise PreparedDataError(f"{path} does not exist; run `dvc repro {stage}`")
    return path


@contextlib.contextmanager
def read_hdf5(path: str | Path, stage: str):
    """The ``h5py.File`` at ``path``, for reading within the block; a missing, truncated or
    damaged file (or one without the datasets read) is a :class:`PreparedDataError` naming
    the stage that makes it, not a traceback."""
    path = require_file(path, stage)
    try:
        with h5py.File(path, "r") as f:
            yield f
    except (OSError, KeyError) as e:
        reason = " ".join(str(e).split())[:200]
        raise PreparedDataError(f"{path} cannot be read ({reason}); re-run `dvc repro {stage}`") from None


@dataclass(frozen=True)
class PreparedSplit:
    tokens: list[list[str]]
    labels: np.ndarray
    names: list[str]
    maxlen: int

    def __len__(self) -> int:
        return len(self.names)

    @cached_property
    def lengths(self) -> np.ndarray:
        return np.array([len(t) for t in self.tokens], dtype=np.int32)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of everything that identifies the rows: maxlen, order, names, labels, tokens."""
        digest = hashlib.sha256(f"maxlen={self.maxlen}\n".encode())
        for name, label, tokens in zip(self.names, self.labels, self.tokens):
            digest.update(f"{name}\t{int(label)}\t{' '.join(tokens)}\n".encode())
        return digest.hexdigest()

    def save(self, path: str | Path) -> None:
        strings = h5py.string_dtype()
        with atomic_hdf5(path, track_order=True) as f:
            f.create_dataset("tokens", data=[" ".join(t) for t in self.tokens], dtype=strings, track_times=False)
            f.create_dataset("labels", data=self.labels.astype(np.int8), track_times=False)
            f.create_dataset("names", data=self.names, dtype=strings, track_times=False)
            f.create_dataset("lengths", data=self.lengths, track_times=False)
            f.attrs["maxlen"] = self.maxlen
            f.attrs["fingerprint"] = self.fingerprint

    @classmethod
    def load(cls, path: str | Path) -> PreparedSplit:
        with read_hdf5(path, "prepare") as f:
            split = cls(
                tokens=[row.split() for row in f["tokens"].asstr()[:]],
                labels=f["labels"][:],
                names=list(f["names"].asstr()[:]),
                maxlen=int(f.attrs["maxlen"]),
            )
            recorded = f.attrs["fingerprint"]
        if split.fingerprint != recorded:
            raise PreparedDataError(f"{path}: content does not match its recorded fingerprint; re-run `dvc repro prepare`")
        return split


def left_pad(rows: list, maxlen: int, fill, dtype) -> np.ndarray:
    """Place each row (at most ``maxlen`` items) at the right end of a ``[N, maxlen]`` array."""
    out = np.full((len(rows), maxlen), fill, dtype=dtype)
    for i, row in enumerate(rows):
        if len(row):
            out[i, maxlen - len(row):] = row
    return out


def prepare_splits(reviews: list[Review], maxlen: int, val_size: int, seed: int) -> dict[str, PreparedSplit]:
    """Tokenise, truncate to the last ``maxlen`` tokens, hold out a stratified validation split
    from train, and shuffle every split with ``seed`` (the archive is sorted by label)."""
    rng = np.random.default_rng(seed)
    by_split = {"train": [], "test": []}
    for review in reviews:
        by_split[review.split].append(review)
    train_labels = np.array([r.label for r in by_split["train"]])
    if not 0 < val_size < len(train_labels) - 1:
        raise ParamsError(f"prepare.val_size={val_size} must leave reviews for training (train has {len(train_labels)})")
    val_idx, train_idx = stratified_split(train_labels, val_size, rng)
    rows = {
        "train": [by_split["train"][i] for i in train_idx],
        "val": [by_split["train"][i] for i in val_idx],
        "test": [by_split["test"][i] for i in rng.permutation(len(by_split["test"]))],
    }
    return {
        name: PreparedSplit(
            tokens=[tokenize(r.text)[-maxlen:] for r in split_rows],
            labels=np.array([r.label for r in split_rows], dtype=np.int8),
            names=[r.name for r in split_rows],
            maxlen=maxlen,
        )
        for name, split_rows in rows.items()
    }


def stratified_split(labels: np.ndarray, n_held_out: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(held_out, rest)``, each shuffled; every class keeps its share in both parts."""
    held_out, rest = [], []
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        k = round(n_held_out * len(members) / len(labels))
        held_out.append(members[:k])
        rest.append(members[k:])
    return rng.permutation(np.concatenate(held_out)), rng.permutation(np.concatenate(rest))

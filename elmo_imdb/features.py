"""The feature store: ELMo vectors of a prepared split, computed once, in chunked HDF5.

HDF5 layout of ``data/features/<split>.h5`` (this module is the only code that knows it)::

    features  float16|float32 [N, maxlen, dim]   row i = prepared row i, left-padded like its
                                                 tokens; exact zeros at padding positions;
                                                 chunks of CHUNK_ROWS whole rows
    attrs     elmo                  what computed the vectors (TF-Hub handle, or bilm options
                                    and the sha256 of its weight file)
              output                the module output stored (``elmo`` by default)
              dtype, maxlen, dim
              prepared_fingerprint  fingerprint of the prepared split the rows come from
              complete              written last; a file without it is unfinished

Chunks hold whole rows so that the training Sequence reads a batch as a few contiguous
chunks (one disk read each, nothing decoded twice). A file is written under a temporary name
and renamed into place when complete, so a reader never sees a half-written store.
"""

from __future__ import annotations

import contextlib
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np

from elmo_imdb.atomic import atomic_output
from elmo_imdb.prepared import PreparedDataError, PreparedSplit

DATASET = "features"
CHUNK_ROWS = 10


@dataclass(frozen=True)
class FeatureIdentity:
    """Everything the stored vectors depend on; recorded as attributes of the file."""

    elmo: str
    output: str
    dtype: str
    maxlen: int
    dim: int
    prepared_fingerprint: str


@contextlib.contextmanager
def create_features(path: str | Path, n_rows: int, identity: FeatureIdentity):
    """Yield ``write(first_row, vectors)``, which stores a block of rows of a new features file.

    The file appears under its real name, marked complete, only when the ``with`` block ends
    without an exception. Blocks are converted to the stored dtype by NumPy, not by HDF5:
    HDF5's float32 -> float16 conversion rounds values just below a power of two (0.24996)
    down to the next one below (0.125) instead of up (0.25).
    """
    shape = (n_rows, identity.maxlen, identity.dim)
    with atomic_output(path) as tmp, h5py.File(tmp, "w") as f:
        data = f.create_dataset(
            DATASET,
            shape=shape,
            dtype=identity.dtype,
            chunks=(min(CHUNK_ROWS, max(n_rows, 1)), *shape[1:]),
            fillvalue=0,
            track_times=False,
        )
        f.attrs.update(asdict(identity))

        def write(first_row: int, vectors: np.ndarray) -> None:
            data[first_row : first_row + len(vectors)] = vectors.astype(identity.dtype)

        yield write
        f.attrs["complete"] = True


def open_features(path: str | Path, split: PreparedSplit) -> h5py.Dataset:
    """Open the features of ``split`` for reading; refuse a file that is unfinished, computed
    from other rows, or shaped for another ``maxlen``."""
    path = Path(path)
    if not path.is_file():
        raise PreparedDataError(f"{path}: no features file; run `dvc repro embed`")
    f = h5py.File(path, "r")
    attrs = dict(f.attrs)
    problem = None
    if not attrs.get("complete", False) or DATASET not in f:
        problem = "is unfinished"
    elif attrs["prepared_fingerprint"] != split.fingerprint:
        problem = (
            f"was computed from prepared data {attrs['prepared_fingerprint'][:12]}, "
            f"not from the given split {split.fingerprint[:12]}"
        )
    elif f[DATASET].shape[:2] != (len(split), split.maxlen):
        problem = f"has shape {f[DATASET].shape[:2]}, the split needs {(len(split), split.maxlen)}"
    if problem:
        f.close()
        raise PreparedDataError(f"{path} {problem}; re-run the embed stage (`dvc repro embed`)")
    return f[DATASET]

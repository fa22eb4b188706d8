"""The feature store: ELMo vectors of a prepared split, computed once, in chunked HDF5.

HDF5 layout of ``data/elmo/<split>.h5`` (this module is the only code that knows it)::

    features  float16|float32 [N, maxlen, *vector_shape]
                                    row i = prepared row i, left-padded like its tokens;
                                    exact zeros at padding positions; chunks of CHUNK_ROWS
                                    whole rows. vector_shape is [dim] (1024 for google/elmo),
                                    or [3, dim] for output ``layers``
    checksums uint64 [ceil(N / CHUNK_ROWS)]
                                    XXH3-64 of each chunk's rows as stored (C order, the
                                    last chunk's rows only), allocated with the file
    attrs     elmo                  what computed the vectors (TF-Hub handle, or bilm options
                                    and the sha256 of its weight file)
              output                the module output stored (``elmo`` by default)
              dtype, maxlen, vector_shape
              prepared_fingerprint  fingerprint of the prepared split the rows come from
              batch_size            embed.batch_size of the run (it changes the stored bytes)
              checksum              the checksums' algorithm, CHECKSUM ("xxh3_64"); a file
                                    without it (crc32, before 2026-12-07) is refused
              complete              false until the file is finished, then true (set in
                                    place, so a file's bytes do not depend on how many runs
                                    wrote it); a file without it is unfinished

Chunks hold whole rows, CHUNK_ROWS at a time, uncompressed: the training Sequence shuffles
chunks and reads a batch as a few whole chunks, one contiguous read each. Ten rows (1.6 MB in
float16) was the best of the layouts measured (docs/journal.md, 2026-12-07): reads nearly as
fast as 100-row chunks, batches nearly as mixed as 1-row chunks; compression saved under 9 % of
the bytes at a fifth of the read speed. A file grows in a scratch folder, durable
and resumable block by block (:class:`ResumableFeatures`), and is renamed into place when
complete, so a reader never sees a half-written store; :func:`open_features` checks that what
it opens is complete and made from the rows it is given.

The bytes are checked end to end: every chunk's checksum is recorded when it is written and
verified whenever a reader reads it (:class:`CheckedFeatures`), and non-finite values are
refused on write and on read, so a flipped bit or a NaN never reaches a model (DVC does not
rehash a file whose mtime did not change). The checksum is XXH3-64 (the ``xxhash`` package)
and finiteness is read off the exponent bits (:func:`non_finite_rows`), because a training
epoch reads every chunk once and the check must cost little beside it: on a 1.6 MB chunk,
zlib's crc32 took 0.4-0.6 ms and ``np.isfinite`` on float16 1.2 ms, 16 % of the pooled
classifier's epoch, where XXH3 takes 0.03 ms and the exponent bits 0.06-0.09 ms (measured
2026-12-07 on a 2-core AMD EPYC, AVX-512; the epoch figures: docs/benchmarks.md). A per-chunk
checksum recorded in a dataset of its own,
not HDF5's ``fletcher32`` filter: a filtered dataset's chunks are placed by HDF5 as they are
written, so every block write would move metadata, breaking the property that a block write
rewrites raw data only (and with it the kill-safety and byte-identity of resumed files). The
``checksums`` dataset is contiguous and allocated at creation, so writing it moves nothing
either. ``python -m elmo_imdb.features verify FILE_OR_FOLDER...`` reads every chunk and names
the first bad one.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import h5py
import numpy as np
import xxhash

from elmo_imdb.atomic import move_into_place
from elmo_imdb.code_fingerprint import code_fingerprint
from elmo_imdb.errors import PipelineError
from elmo_imdb.prepared import PreparedDataError, PreparedSplit, require_file
from elmo_imdb.resume_record import ResumeRecord

DATASET = "features"
CHECKSUMS = "checksums"
CHECKSUM = "xxh3_64"  # the ``checksum`` attribute: what ``checksums`` holds
CHUNK_ROWS = 10
#: The code whose every change may change the stored bytes, part of a partial file's resume
#: identity: the embedders (tokens to character ids, the TF-Hub and biLM forward passes), the
#: biLM package (its layers' arithmetic) and this module (the dtype conversion and layout).
#: elmo_imdb.cluster is left out: it only hands blocks to workers that run the embedders'
#: code, and which worker computes a block is already shown not to change its bytes
#: (tests/test_cluster.py); the tokeniser is covered by ``prepared_fingerprint``.
VECTOR_CODE = ("elmo_imdb.embedders", "elmo_imdb.bilm", "elmo_imdb.features")


@dataclass(frozen=True)
class FeatureIdentity:
    """Everything the stored vectors depend on; recorded as attributes of the file."""

    elmo: str
    output: str
    dtype: str
    maxlen: int
    vector_shape: list[int]  # of one token's vectors: [dim], or [3, dim] for output `layers`
    prepared_fingerprint: str
    batch_size: int  # embed.batch_size: it changes the stored bytes (by one float16 ulp, rarely)


class FeaturesError(PipelineError):
    """Writing a features file failed; the finished blocks are kept for the next run."""


class DamagedFeaturesError(PreparedDataError):
    """A stored chunk does not match its checksum, or holds a non-finite value."""


RERUN = "delete it and re-run its embed stage (`dvc repro embed_imdb` or `dvc repro embed_published`)"


class ResumableFeatures:
    """A features file under construction in ``scratch_dir``, durable block by block.

    The embed stage is the expensive one, so its work must survive Ctrl-C, SIGKILL, a lost
    machine or a full disk. DVC deletes a stage's outputs before re-running it, so the file
    grows in a scratch folder outside the outputs: ``<scratch>/<name>.h5`` plus a small
    ``<name>.progress.json``, a :class:`~elmo_imdb.resume_record.ResumeRecord` of the
    identity, the :data:`VECTOR_CODE` fingerprint and the rows stored so far: a partial file
    made by other code, params or data is started over, never finished by this code. Rows are
    stored in order, in blocks; a block counts as stored only once its bytes are on disk
    (fsync) and the progress record, replaced atomically, says so. The dataset's chunks are
    allocated when the file is created, so storing a block rewrites raw data only, never the
    HDF5 metadata: a kill at any moment leaves a readable file whose recorded rows are intact.
    The chunk cache is off (blocks are whole chunks, nothing to gain): a write that fails, on a
    full disk say, then leaves no dirty chunk behind for HDF5 to retry (and crash on) at exit.
    :meth:`finish` marks the file complete and moves it to ``path`` (atomic for readers, also
    across file systems), so the real name only ever holds a finished file. The ``complete`` attribute exists from the start and
    is set in place, so no run moves metadata: a file resumed any number of times is, byte for
    byte, the file of an uninterrupted run, and DVC sees the same output.

    Use as a context manager; :meth:`resume` tells where to continue.
    """

    def __init__(self, path: str | Path, scratch_dir: str | Path, n_rows: int, identity: FeatureIdentity,
                 names: Sequence[str] = ()):
        self.path = Path(path)
        self.names = names  # the rows' reviews, for messages (PreparedSplit.names); may be empty
        self.partial = Path(scratch_dir) / self.path.name
        self.record = ResumeRecord(
            self.partial.with_suffix(".progress.json"), {**asdict(identity), "code": code_fingerprint(VECTOR_CODE)}
        )
        self.n_rows = n_rows
        self.identity = identity
        self.rows_done = 0
        self._file = None

    def __enter__(self) -> ResumableFeatures:
        return self

    def __exit__(self, *exc) -> None:
        self._close()

    def resume(self) -> int:
        """Open the partial file, or start a new one; return the first row still to compute.

        Starting over is announced in one line with its reason: no partial file, a partial
        file made from other data, params or code (what differs is named: the source files,
        for code), or one that cannot be read.
        """
        self.partial.parent.mkdir(parents=True, exist_ok=True)
        reason = self._reason_to_start_over()
        if reason is None:
            print(f"{self.path.name}: resuming at row {self.rows_done} of {self.n_rows}")
            return self.rows_done
        if self.partial.exists() or self.record.path.exists():
            print(f"{self.path.name}: starting over: {reason}")
        self._create()
        return 0

    def write(self, first_row: int, vectors: np.ndarray) -> None:
        """Store the next block of rows durably.

        Blocks are converted to the stored dtype by NumPy, not by HDF5: HDF5's float32 ->
        float16 conversion rounds values just below a power of two (0.24996) down to the next
        one below (0.125) instead of up (0.25).
        """
        if first_row != self.rows_done:
            raise ValueError(f"blocks must come in order: expected row {self.rows_done}, got {first_row}")
        last_row = first_row + len(vectors)
        stored = np.ascontiguousarray(vectors.astype(self.identity.dtype))
        bad = non_finite_rows(stored)
        if len(bad):
            row = first_row + bad[0]
            review = f" (review {self.names[row]})" if len(self.names) > row else ""
            raise FeaturesError(
                f"row {row}{review} of {self.path.name} holds a non-finite value (NaN, or too large for "
                f"{self.identity.dtype}); nothing of it was stored: check the model that computed it"
            )
        try:
            self._file[DATASET][first_row:last_row] = stored
            self._store_checksums(first_row, stored)
            self._sync()
            self.rows_done = last_row
            self._record_progress()
        except OSError as e:
            self.rows_done = first_row
            self._close()
            raise FeaturesError(
                f"storing rows {first_row}-{last_row} of {self.path.name} failed ({' '.join(str(e).split())}); "
                f"rows 0-{first_row} are kept in {self.partial.parent}: fix the cause (disk full?) "
                "and re-run `dvc repro` to continue from there"
            ) from None

    def finish(self) -> None:
        """Mark the file complete and move it to its real name."""
        if self.rows_done != self.n_rows:
            raise ValueError(f"{self.path.name}: {self.rows_done} of {self.n_rows} rows stored; cannot finish")
        self._file.attrs.modify("complete", True)  # in place: no metadata moves, whichever run finishes
        self._sync()
        self._close()
        move_into_place(self.partial, self.path)
        self.record.delete()

    def _store_checksums(self, first_row: int, stored: np.ndarray) -> None:
        """The checksum of every chunk the block ``stored`` (from ``first_row``) wrote into; a chunk
        begun by the previous block is read back to be summed whole."""
        dataset = self._file[DATASET]
        rows = dataset.chunks[0]
        last_row = first_row + len(stored)
        for chunk in range(first_row // rows, -(-last_row // rows)):
            begin, end = chunk * rows, min((chunk + 1) * rows, last_row)
            part = stored[begin - first_row : end - first_row] if begin >= first_row else dataset[begin:end]
            self._file[CHECKSUMS][chunk] = chunk_checksum(part)

    def _reason_to_start_over(self) -> str | None:
        if not self.partial.exists():
            return "no partial file"
        progress, reason = self.record.load()
        if progress is None:
            return reason  # "it was made with other code (elmo_imdb/bilm/lstm.py)", say
        try:
            self._file = h5py.File(self.partial, "r+", rdcc_nbytes=0)
        except OSError as e:
            return f"the partial file cannot be opened ({e})"
        self.rows_done = int(progress["rows_done"])
        return None

    def _create(self) -> None:
        """A new partial file and its record; on a failure (a full disk), neither, and an
        ``OSError`` naming the file (HDF5's own message spans lines and names no errno's text)."""
        try:
            self._create_file()
        except OSError as e:
            self._close()
            self.partial.unlink(missing_ok=True)
            self.record.delete()
            if e.errno is None:
                raise
            raise OSError(e.errno, os.strerror(e.errno), str(self.partial)) from None

    def _create_file(self) -> None:
        shape = (self.n_rows, self.identity.maxlen, *self.identity.vector_shape)
        allocate_now = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        allocate_now.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
        self._file = h5py.File(self.partial, "w", rdcc_nbytes=0)
        self._file.create_dataset(
            DATASET,
            shape=shape,
            dtype=self.identity.dtype,
            chunks=(min(CHUNK_ROWS, max(self.n_rows, 1)), *shape[1:]),
            dcpl=allocate_now,
            fill_time="never",  # every row is written before the file is complete
            track_times=False,
        )
        self._file.create_dataset(
            CHECKSUMS, shape=(-(-self.n_rows // CHUNK_ROWS),), dtype=np.uint64, dcpl=contiguous_now(), track_times=False
        )
        self._file.attrs.update({**asdict(self.identity), "checksum": CHECKSUM, "complete": False})
        self._sync()
        self.rows_done = 0
        self._record_progress()

    def _close(self) -> None:
        """Close the file; a close that fails (a full disk) loses nothing the progress record counts."""
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError:
                pass

    def _sync(self) -> None:
        self._file.flush()
        os.fsync(self._file.id.get_vfd_handle())

    def _record_progress(self) -> None:
        self.record.save({"rows_done": self.rows_done})


def contiguous_now() -> h5py.h5p.PropDCID:
    """Dataset creation properties: contiguous, allocated at creation, never filled."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_NEVER)
    return dcpl


def chunk_checksum(chunk: np.ndarray) -> int:
    """The XXH3-64 of ``chunk``'s bytes in C order (what ``checksums`` records per chunk)."""
    return xxhash.xxh3_64_intdigest(np.ascontiguousarray(chunk).data)


def non_finite_rows(values: np.ndarray) -> np.ndarray:
    """Indices of the rows of ``values`` [rows, ...] (float16 or float32) holding a NaN or an
    infinity: an IEEE float is not finite exactly when its exponent bits are all ones, a test
    on the integers of the same bytes that costs a twentieth of ``np.isfinite`` on float16."""
    info = np.finfo(values.dtype)
    exponent = ((1 << info.nexp) - 1) << info.nmant
    bits = np.ascontiguousarray(values).view(f"u{values.dtype.itemsize}").reshape(len(values), -1)
    return np.flatnonzero(((bits & exponent) == exponent).any(axis=1))


class CheckedFeatures:
    """The stored vectors of a features file, sliced like the dataset (``[a:b]``), each read
    made of whole chunks whose checksum and finiteness are checked before a row is handed out."""

    def __init__(self, dataset: h5py.Dataset, path: Path):
        self.dataset, self.path, self.file = dataset, path, dataset.file
        self.shape, self.dtype, self.chunks = dataset.shape, dataset.dtype, dataset.chunks
        self.checksums = self.file[CHECKSUMS][:]

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: slice) -> np.ndarray:
        if not isinstance(index, slice) or index.step not in (None, 1):
            raise TypeError(f"stored features are read in slices of consecutive rows, not {index!r}")
        start, stop, _ = index.indices(len(self))
        if start >= stop:
            return np.empty((0, *self.shape[1:]), self.dtype)
        rows = self.chunks[0]
        first = start // rows * rows
        block = self.dataset[first : min(-(-stop // rows) * rows, len(self))]
        for begin in range(0, len(block), rows):
            self._check(first + begin, block[begin : begin + rows])
        return block[start - first : stop - first]

    def _check(self, first_row: int, chunk: np.ndarray) -> None:
        index = first_row // self.chunks[0]
        if chunk_checksum(chunk) != self.checksums[index]:
            raise DamagedFeaturesError(
                f"{self.path}: chunk {index} (rows {first_row}-{first_row + len(chunk) - 1}) does not match its "
                f"checksum: the file is damaged; {RERUN}"
            )
        bad = non_finite_rows(chunk)
        if len(bad):
            raise DamagedFeaturesError(f"{self.path}: row {first_row + bad[0]} holds a non-finite value; {RERUN}")


def open_features(path: str | Path, split: PreparedSplit) -> CheckedFeatures:
    """Open the features of ``split`` for checked reading; refuse a file that is missing,
    truncated, unfinished, computed from other rows, or shaped for another ``maxlen``."""
    f = open_store(path)
    attrs = dict(f.attrs)
    problem = _unreadable(attrs, f)
    if problem is None and attrs["prepared_fingerprint"] != split.fingerprint:
        problem = (
            f"was computed from prepared data {attrs['prepared_fingerprint'][:12]}, "
            f"not from the given split {split.fingerprint[:12]}"
        )
    elif problem is None and f[DATASET].shape[:2] != (len(split), split.maxlen):
        problem = f"has shape {f[DATASET].shape[:2]}, the split needs {(len(split), split.maxlen)}"
    if problem:
        f.close()
        raise PreparedDataError(f"{path} {problem}; {RERUN}")
    return CheckedFeatures(f[DATASET], Path(path))


def _unreadable(attrs: dict, f: h5py.File) -> str | None:
    """Why a features file cannot be read with checks (unfinished, or checksums of another
    algorithm: the crc32 of files written before 2026-12-07), or None."""
    if not attrs.get("complete", False) or DATASET not in f or CHECKSUMS not in f:
        return "is unfinished"
    if attrs.get("checksum", "crc32") != CHECKSUM:
        return f"holds {attrs.get('checksum', 'crc32')} checksums, which this version does not read (it writes {CHECKSUM})"
    return None


def open_store(path: str | Path) -> h5py.File:
    """The features file at ``path`` for reading; missing or unreadable (truncated, say) in one line."""
    if not Path(path).is_file():
        raise PreparedDataError(f"{path} does not exist; run its embed stage (`dvc repro embed_imdb` or `dvc repro embed_published`)")
    try:
        return h5py.File(path, "r")
    except OSError as e:
        raise PreparedDataError(f"{path} cannot be read ({' '.join(str(e).split())}); {RERUN}") from None


def stored_identity(path: str | Path) -> dict:
    """What a finished features file records as having computed its vectors (its
    :class:`FeatureIdentity` attributes), for a trained run to record in turn."""
    with open_store(path) as f:
        return {key: value.tolist() if hasattr(value, "tolist") else value for key, value in f.attrs.items()}


def verify(path: str | Path) -> str:
    """``ok: N chunks`` for a complete features file whose every chunk is intact; otherwise a
    :class:`PreparedDataError` naming the first bad chunk."""
    f = open_store(path)
    try:
        problem = _unreadable(dict(f.attrs), f)
        if problem:
            raise PreparedDataError(f"{path} {problem}; {RERUN}")
        features = CheckedFeatures(f[DATASET], Path(path))
        rows = features.chunks[0]
        for first in range(0, len(features), rows):
            features[first : first + rows]
        return f"ok: {len(features.checksums)} chunks"
    finally:
        f.close()


def main(argv: list[str] | None = None) -> None:
    """``python -m elmo_imdb.features verify FILE_OR_FOLDER...``: one line per file, ``ok`` or
    the first bad chunk (then exit 1)."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m elmo_imdb.features", description="Check stored ELMo features.")
    commands = parser.add_subparsers(dest="command", required=True)
    check = commands.add_parser("verify", help="read every chunk of each features file and check its checksum and finiteness")
    check.add_argument("targets", nargs="+", type=Path, help="features files (.h5) or folders of them (data/elmo_imdb)")
    for target in parser.parse_args(argv).targets:
        for file in sorted(target.glob("*.h5")) if target.is_dir() else [target]:
            try:
                print(f"{file}: {verify(file)}")
            except PipelineError as e:
                sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

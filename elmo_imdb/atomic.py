"""Files a stage trusts: written all or nothing, and identified by their content.

Every output a later stage trusts goes through :func:`atomic_output` (or :func:`write_json`,
:func:`move_into_place`): the content is written to a temporary name in the same folder, made
durable (fsync), and renamed into place only once it is complete, so an interrupted or failing
run never leaves a half-written file under the real name. The temporary name carries the
writer's PID, so two runs writing the same output never write into one temporary file, and a
later run deletes what a killed one left. :func:`sha256_of_file` names an input by its content
(model weights, say) in what is derived from it.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import itertools
import json
import os
import shutil
from pathlib import Path

_in_memory_names = itertools.count()


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds.
    Whatever the block leaves under the temporary name (a file or a folder) is removed if it fails."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _remove_strays(path)
    tmp = _temporary_name(path, os.getpid())
    _remove(tmp)
    try:
        yield tmp
        _fsync_tree(tmp)  # on disk before it takes the real name, even if the machine dies
        os.replace(tmp, path)
        _fsync(path.parent)  # and the rename too
    except OSError as e:
        if e.filename is None:  # a failed write() names no file: name the one the user knows
            e.filename = str(path)
        raise
    finally:
        _remove(tmp)


@contextlib.contextmanager
def atomic_hdf5(path: str | Path, **options):
    """Yield an ``h5py.File`` built in memory; write its bytes to ``path`` through
    :func:`atomic_output` if the block succeeds (``options`` go to ``h5py.File``).

    HDF5 never writes to the disk itself: when its own write fails (a full disk), HDF5 keeps
    the failed metadata dirty and retries it when the file is closed, and at the interpreter's
    exit, which raised tracebacks and once crashed the process (rc 139). Built in memory
    (the ``core`` driver without a backing store), the file's bytes reach the disk through
    Python's own I/O, whose failure is a plain ``OSError``. For files that fit in memory: the
    prepared splits, the ids, a biLM's weights; not the features store, which grows block by
    block on disk (:mod:`elmo_imdb.features`).
    """
    import h5py  # here: atomic is imported by stages that never touch HDF5

    f = h5py.File(f"in-memory-{next(_in_memory_names)}.h5", "w", driver="core", backing_store=False, **options)
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    with atomic_output(path) as tmp:
        tmp.write_bytes(image)


def write_json(path: str | Path, value) -> None:
    """``value`` as JSON at ``path``, atomically. NaN and infinity are refused (``ValueError``):
    they are not JSON, and every reader of the project's metrics (DVC's included) expects JSON."""
    text = json.dumps(value, indent=2, allow_nan=False) + "\n"
    with atomic_output(path) as tmp:
        tmp.write_text(text)


def move_into_place(source: str | Path, path: str | Path) -> None:
    """Move the finished file ``source`` to ``path``, atomically for readers of ``path``, also
    when the two are on different file systems (a scratch folder on a local disk, outputs on a
    mounted volume): the file is then copied next to ``path``, made durable and renamed there."""
    source, path = Path(source), Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.replace(source, path)
    except OSError as e:
        if e.errno != errno.EXDEV:
            raise
        with atomic_output(path) as tmp:
            try:
                shutil.copyfile(source, tmp)
            except OSError as e:  # copyfile names the source; the write to ``path`` failed
                raise OSError(e.errno, e.strerror, str(path)) from None
        source.unlink()
    _fsync(path.parent)


def sha256_of_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _temporary_name(path: Path, pid: int) -> Path:
    return path.with_name(f".{path.stem}.partial-{pid}{path.suffix}")  # same suffix: some writers insist


def _remove_strays(path: Path) -> None:
    """Delete the temporary files of ``path`` that writers no longer running left behind."""
    for stray in path.parent.glob(f".{path.stem}.partial-*{path.suffix}"):
        pid = stray.name[len(f".{path.stem}.partial-") : len(stray.name) - len(path.suffix)]
        if pid.isdigit() and not _running(int(pid)):
            _remove(stray)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _fsync_tree(path: Path) -> None:
    """fsync a file, or every file and folder of a folder (a checkpoint may be one)."""
    if path.is_dir():
        for child in path.rglob("*"):
            _fsync(child)
    _fsync(path)


def _fsync(path: Path) -> None:
    """fsync one file, or one folder's entries."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

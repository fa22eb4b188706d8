"""One writer per folder: an OS file lock that a second run is refused by, in one line.

DVC's own lock (``.dvc/tmp/rwlock``) guards ``dvc repro`` against a second ``dvc repro`` of the
same workspace, but not a stage script run directly, two clones sharing a scratch folder, or
``dvc repro`` beside a direct run. Every stage that grows a file or a checkpoint in a scratch
folder therefore holds :func:`one_writer` on that folder for as long as it writes there.

The lock is ``fcntl.flock`` on ``<folder>/.lock``: the kernel releases it when its holder
exits, however it exits (SIGKILL and a crash included), so there is never a stale lock to
delete by hand. The holder writes its PID into the file, for the refusal to name it. The lock
file itself is never deleted: deleting it would let a third run lock a new file while the
second still holds the old one. ``flock`` is advisory and per machine: it holds between
processes of one machine, and on NFS only where the server supports it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from elmo_imdb.errors import PipelineError

LOCK_NAME = ".lock"


class FolderBusyError(PipelineError):
    """Another process holds the folder's lock."""


@contextlib.contextmanager
def one_writer(folder: str | Path):
    """Hold the lock of ``folder`` (created if needed) within the ``with`` block, or raise
    :class:`FolderBusyError` at once, naming the holder's PID and the folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderBusyError(
                f"another run (pid {holder}) is writing {folder}; wait for it to finish or stop it, then run again"
            ) from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:  # a full disk: name the file, for the stage's one line
            raise OSError(e.errno, e.strerror, str(folder / LOCK_NAME)) from None
        yield folder
    finally:
        os.close(fd)  # releases the lock

"""The pretrain stage's checkpoints: TensorFlow checkpoints in a scratch folder, and their record.

A checkpoint ``ckpt-N`` (the files ``ckpt-N.index`` and ``ckpt-N.data-*``, N the step) holds
every variable of the run: the biLM, the softmax, the Adam moments, the step and the tokens
seen. The :class:`~elmo_imdb.resume_record.ResumeRecord` ``progress.json`` beside it names the
one checkpoint to resume and the learning curve so far, under the run's identity (settings and
code fingerprint). It is replaced only after its checkpoint is written, so it always points to
a complete checkpoint; only then are older checkpoints deleted.

A run killed at any moment leaves at most, besides that pair: a ``ckpt-N_temp/`` folder of
TensorFlow's shards (killed inside ``Checkpoint.write``), a lone ``ckpt-N.index`` (killed while
merging the shards), a record's temporary file (removed by :mod:`elmo_imdb.atomic`). All of them
are deleted when the next run resumes, so the stage always resumes.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

import tensorflow as tf

from elmo_imdb.resume_record import ResumeRecord


class Checkpoints:
    """The checkpoints in ``scratch`` of ``variables`` (name -> trackable, as
    ``tf.train.Checkpoint`` takes them), made under ``identity``."""

    def __init__(self, scratch: str | Path, identity: dict, **variables):
        self.scratch = Path(scratch)
        self.record = ResumeRecord(self.scratch / "progress.json", identity)
        self._checkpoint = tf.train.Checkpoint(**variables)

    def load(self) -> tuple[dict | None, str]:
        """``(progress, "")`` of a checkpoint that can be restored; ``(None, "")`` when there is
        none; ``(None, reason)`` when there is one that cannot be (other identity, unreadable)."""
        if not self.record.path.exists():
            return None, ""
        progress, reason = self.record.load()
        if progress is not None:
            reason = _unreadable(self.scratch / progress["checkpoint"])
        return (None, reason) if reason else (progress, "")

    def restore(self, progress: dict) -> None:
        """Set the variables to the checkpoint ``progress`` names (from :meth:`load`); delete
        every other checkpoint entry: what a killed run left."""
        remove_checkpoints(self.scratch, keep=progress["checkpoint"])
        self._checkpoint.read(str(self.scratch / progress["checkpoint"])).assert_consumed()

    def discard(self) -> None:
        """Delete the record, then every checkpoint: the run starts over."""
        self.record.delete()
        remove_checkpoints(self.scratch, keep=None)

    def save(self, name: str, progress: dict) -> None:
        """Write checkpoint ``name``, then the record of ``progress`` (which must name it); drop
        every other checkpoint. A full disk is an ``OSError(ENOSPC)`` naming the checkpoint,
        with its partial files deleted (TensorFlow raises its own error types)."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        try:
            self._checkpoint.write(str(self.scratch / name))
        except tf.errors.OpError as e:
            remove_checkpoints(self.scratch, keep=progress_checkpoint(self.record))
            if isinstance(e, tf.errors.ResourceExhaustedError) or "No space left" in e.message:
                raise OSError(errno.ENOSPC, "No space left on device", str(self.scratch / name)) from None
            raise
        self.record.save(progress)
        remove_checkpoints(self.scratch, keep=name)


def progress_checkpoint(record: ResumeRecord) -> str | None:
    """The checkpoint ``record`` names now (the one to keep when a new one fails), or None."""
    progress, _ = record.load()
    return progress["checkpoint"] if progress else None


def remove_checkpoints(scratch: Path, keep: str | None) -> None:
    """Delete every checkpoint entry in ``scratch`` but the files of checkpoint ``keep``
    (``ckpt-N.index``, ``ckpt-N.data-*``): older checkpoints, and what a write killed midway
    leaves, a ``ckpt-N_temp/`` folder of TensorFlow's shards or a lone ``ckpt-N.index``."""
    for entry in scratch.glob("ckpt-*"):
        if keep is not None and entry.name.startswith(keep + "."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def _unreadable(checkpoint: Path) -> str:
    """Why the checkpoint files of prefix ``checkpoint`` cannot be read, or ``""``: every
    tensor is read once (TensorFlow checks its CRC) before restoring, which would otherwise
    stop halfway with some variables restored. A few seconds for the default biLM's checkpoint."""
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError) as e:
        return f"its files are unreadable ({type(e).__name__}: {e.message if isinstance(e, tf.errors.OpError) else e})"
    return ""

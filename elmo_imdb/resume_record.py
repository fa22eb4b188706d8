"""The record that lets long work resume: what made it, and how far it got.

The embed stage's features files and the pretrain stage's checkpoints grow in scratch folders
over minutes to hours, and a run killed at any moment continues where it stopped. What it
continues from is trusted only if it was made by the same inputs, params and code: a
:class:`ResumeRecord` is one small JSON file beside the work holding

* ``identity``: everything the stored numbers depend on, as the caller lists it (input
  fingerprints, params, and the :func:`~elmo_imdb.code_fingerprint.code_fingerprint` of the
  code that computes them);
* ``progress``: how far the work got (rows stored, the checkpoint to restore, ...).

It is replaced atomically after the work it counts is durable, so it never counts more than is
on disk. :meth:`ResumeRecord.load` gives the progress back only under the same identity, and
otherwise the reason to start over, naming what differs (which source files, for code).
"""

from __future__ import annotations

import json
from pathlib import Path

from elmo_imdb.atomic import write_json

SHORT = 60  # values up to this long are quoted in a reason to start over; longer ones only named


class ResumeRecord:
    """The record at ``path`` of work made with ``identity`` (a JSON-able dict)."""

    def __init__(self, path: str | Path, identity: dict):
        self.path = Path(path)
        self.identity = json.loads(json.dumps(identity))  # as it reads back: lists, not tuples

    def load(self) -> tuple[dict | None, str]:
        """``(progress, "")`` of the record, or ``(None, reason)`` when there is nothing to resume."""
        if not self.path.exists():
            return None, "no progress record"
        try:
            state = json.loads(self.path.read_text())
            stored, progress = state["identity"], state["progress"]
        except (OSError, ValueError, KeyError, TypeError) as e:
            return None, f"its progress record is unreadable ({type(e).__name__}: {e})"
        changed = differences(stored, self.identity)
        if changed:
            return None, "it was made with other " + "; ".join(changed)
        return progress, ""

    def save(self, progress: dict) -> None:
        """Record ``progress`` (a JSON-able dict) atomically: call it once the work it counts is on disk."""
        write_json(self.path, {"identity": self.identity, "progress": progress})

    def delete(self) -> None:
        self.path.unlink(missing_ok=True)


def differences(stored: dict, current: dict) -> list[str]:
    """What differs between two identities, key by key: ``code (elmo_imdb/bilm/lstm.py)``,
    ``batch_size 50 (now 7)``."""
    out = []
    for key in sorted(stored.keys() | current.keys(), key=lambda k: (k not in current, k)):
        old, new = stored.get(key), current.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict):
            out.append(f"{key} ({', '.join(sorted(k for k in old.keys() | new.keys() if old.get(k) != new.get(k)))})")
        elif len(repr(old)) <= SHORT and len(repr(new)) <= SHORT:
            out.append(f"{key} {old!r} (now {new!r})")
        else:
            out.append(key)
    return out

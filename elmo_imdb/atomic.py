"""Files a stage trusts: written all or nothing, and identified by their content.

Every output a later stage trusts goes through :func:`atomic_output`: the content is written
to a temporary name in the same folder and renamed into place only once it is complete, so an
interrupted or failing run never leaves a half-written file under the real name.
:func:`sha256_of_file` names an input by its content (model weights, say) in what is derived from it.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from pathlib import Path


@contextlib.contextmanager
def atomic_output(path: str | Path):
    """Yield a temporary path next to ``path``; rename it to ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")  # same suffix: some writers insist
    tmp.unlink(missing_ok=True)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())  # on disk before it takes the real name, even if the machine dies
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def sha256_of_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MB pieces."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()

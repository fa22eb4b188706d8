"""What every benchmark script does with its results: print them as JSON and, with --out,
keep them in a file (docs/benchmarks/ holds the published ones)."""

from __future__ import annotations

import json
from pathlib import Path

from elmo_imdb.atomic import atomic_output


def publish(results: dict, out: Path | None) -> None:
    """Print ``results``; with ``out``, replace that file whole (never left half-written)."""
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        with atomic_output(out) as tmp:
            tmp.write_text(text + "\n")

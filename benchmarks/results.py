"""What every benchmark script does with its results: print them as JSON and, with --out,
keep them in a file (docs/benchmarks/ holds the published ones)."""

from __future__ import annotations

import json
from pathlib import Path


def publish(results: dict, out: Path | None) -> None:
    text = json.dumps(results, indent=2)
    print(text)
    if out:
        out.write_text(text + "\n")

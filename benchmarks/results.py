"""What every benchmark script does with its results: name the machine they were measured on,
print them as JSON and, with --out, keep them in a file (docs/benchmarks/ holds the published ones).

Speeds here compare only as ratios measured in one run: machines of one CPU model differ (virtual
machines on shared hosts), and some have AVX-512, some only AVX2. So every result says which CPU,
how many cores and which versions it came from, and when.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from elmo_imdb.atomic import atomic_output
from elmo_imdb.pretraining import usable_cores

VERSIONS_OF = ("tensorflow", "h5py", "numpy", "ray")  # what the speeds depend on, where installed (ray is optional)


def cpu_name(cpuinfo: Path = Path("/proc/cpuinfo")) -> str:
    """The CPU as /proc/cpuinfo names it, with its family and model numbers and whether it has
    AVX-512 (a virtual machine's name may be just "AMD EPYC"); without a model name (no
    /proc/cpuinfo, or an ARM one) the platform's guess, never an empty string."""
    fields = {}
    for line in cpuinfo.read_text().splitlines() if cpuinfo.exists() else []:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())  # the first core's
    if "model name" not in fields:
        return platform.processor() or platform.machine() or "unknown CPU"
    avx512 = ", AVX-512" if "avx512f" in fields.get("flags", "").split() else ""
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')}{avx512})"


def machine() -> dict:
    """This machine as a result names it: ``{"cpu", "cores", "python", <package>: version, ...}``;
    ``cores`` are those this process may run on."""
    versions = {}
    for package in VERSIONS_OF:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"cpu": cpu_name(), "cores": usable_cores(), "python": platform.python_version(), **versions}


def command() -> str:
    """How this benchmark was started, to run it again."""
    return " ".join(["python", *sys.argv])


def code_commit(tree: Path | None = None) -> str:
    """The commit of the checkout whose ``elmo_imdb`` ran (``tree``, by default the one
    imported), ``+changes`` if its elmo_imdb/ or benchmarks/ differ from it; ``unknown``
    outside a git checkout."""
    if tree is None:
        import elmo_imdb

        tree = Path(elmo_imdb.__file__).resolve().parent.parent

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=tree, capture_output=True, text=True, check=True).stdout.strip()

    try:
        changed = git("status", "--porcelain", "--", "elmo_imdb", "benchmarks")
        return git("rev-parse", "HEAD") + ("+changes" if changed else "")
    except (subprocess.CalledProcessError, FileNotFoundError):
        return "unknown"


def publish(results: dict, out: Path | None) -> None:
    """Print ``results``, preceded by when (UTC) and on which :func:`machine` unless they say so
    themselves; with ``out``, replace that file whole (never left half-written)."""
    stamped = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), **results}
    text = json.dumps(stamped, indent=2)
    print(text)
    if out:
        with atomic_output(out) as tmp:
            tmp.write_text(text + "\n")

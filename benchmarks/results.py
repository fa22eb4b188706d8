"""What every benchmark script does with its results: name when, on which machine, by which
command and with which commit's code they were measured, print them as JSON and, with --out,
keep them in a file (docs/benchmarks/ holds the published ones).

Speeds here compare only as ratios measured in one run: machines of one CPU model differ (virtual
machines on shared hosts), and some have AVX-512, some only AVX2. So every result says which CPU,
how many cores and which versions it came from, and when; and how to measure it again.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import shlex
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


def git(*args: str, cwd: Path | None = None) -> str | None:
    """git's output in ``cwd`` (default: the working directory), None when git fails."""
    result = subprocess.run(["git", *args], capture_output=True, text=True, cwd=cwd)
    return result.stdout if result.returncode == 0 else None


def path_in_repo(path: Path, cwd: Path | None = None) -> str | None:
    """``path`` relative to the top folder of ``cwd``'s repository (None outside a git checkout)."""
    top = git("rev-parse", "--show-toplevel", cwd=cwd)
    if top is None:
        return None
    return Path(os.path.relpath(path.resolve(), Path(top.strip()).resolve())).as_posix()


def commit(*ours: Path, cwd: Path | None = None) -> str:
    """The short hash of the commit checked out in ``cwd``, ``-dirty`` when files of the commit
    other than ``ours`` (what the caller writes, or compares on its own) are modified, deleted or
    renamed, or when git cannot tell; ``unknown`` outside a git checkout. Files new to it are not
    counted: `dvc repro` adds dvc.lock and .gitignore files to the index."""
    head = git("rev-parse", "--short", "HEAD", cwd=cwd)
    if head is None:
        return "unknown"
    excluded = [f":(top,exclude,literal){path_in_repo(p, cwd)}" for p in ours]  # literal: a name is not a pattern
    # --no-renames: a file moved away counts as deleted
    dirty = git("diff", "--name-only", "--no-renames", "--diff-filter=MDT", "HEAD", "--", ":(top)", *excluded, cwd=cwd)
    return head.strip() + ("-dirty" if dirty is None or dirty else "")


def command() -> str:
    """This process's command line as run from the repository's root: ``python
    benchmarks/<script> <arguments>``, whatever path the script was started by."""
    return shlex.join(["python", f"benchmarks/{Path(sys.argv[0]).name}", *sys.argv[1:]])


def publish(results: dict, out: Path | None) -> None:
    """Print ``results``, preceded by when (UTC), on which :func:`machine`, by which
    :func:`command` and with which :func:`commit` of the benchmarks' own repository (the code
    measured) unless they say so themselves; with ``out``, replace that file whole (never left
    half-written)."""
    stamped = {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "machine": machine(), "command": command(),
               "commit": commit(cwd=Path(__file__).resolve().parent), **results}
    text = json.dumps(stamped, indent=2)
    print(text)
    if out:
        with atomic_output(out) as tmp:
            tmp.write_text(text + "\n")

"""Shared fixtures: a tiny IMDB archive, its prepared splits, and a tiny ELMo hub module.

Everything here is built by the tests themselves: no network, no ../shared needed.
"""

import importlib
import os
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, str(Path(__file__).parent))

from imdb_fixtures import make_tiny_archive  # noqa: E402

from elmo_imdb.imdb import read_reviews  # noqa: E402
from elmo_imdb.prepared import prepare_splits  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
#: The device line every heavy stage prints (elmo_imdb.cli.print_device), on a CPU or a GPU machine.
RUNS_ON = r"^{} runs on (the CPU|/device:GPU:\d+(, /device:GPU:\d+)*)$"


@pytest.fixture(scope="session")
def tiny_archive(tmp_path_factory) -> Path:
    """A .tar.gz in the aclImdb layout: 10 reviews per split and class, awkward ones included."""
    return make_tiny_archive(tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", n_per_class=10)


@pytest.fixture(scope="session")
def tiny_splits(tiny_archive):
    """The tiny archive prepared with maxlen 12 and 4 validation reviews."""
    reviews, _ = read_reviews(tiny_archive)
    return prepare_splits(reviews, maxlen=12, val_size=4, seed=0)


@pytest.fixture(scope="session")
def tiny_hub_module(tmp_path_factory) -> Path:
    """A SavedModel with google/elmo/3's signatures and output widths: a random tiny biLM."""
    from hub_fixtures import build_tiny_hub_module

    return build_tiny_hub_module(tmp_path_factory.mktemp("elmo") / "tiny_elmo", seed=0)


def write_random_splits(folder: Path, n_train: int) -> None:
    """Prepared splits of random words for the embed stage (``n_train`` train, 30 val and 30
    test reviews of 0 to 12 tokens, maxlen 12) in ``folder``: cheap rows in any number."""
    import numpy as np

    from elmo_imdb.prepared import PreparedSplit

    rng = np.random.default_rng(0)
    words = [f"word{i}" for i in range(300)] + ["!", "n't", "Amélie"]
    for name, n in (("train", n_train), ("val", 30), ("test", 30)):
        tokens = [list(rng.choice(words, size=rng.integers(0, 13))) for _ in range(n)]
        PreparedSplit(tokens, rng.integers(0, 2, n).astype(np.int8), [f"{name}/{i}" for i in range(n)], 12).save(folder / f"{name}.h5")


def store_features(path: Path, vectors, identity) -> Path:
    """Write a complete features file holding ``vectors``, the way the embed stage does."""
    from elmo_imdb.features import ResumableFeatures

    with ResumableFeatures(path, path.parent / "scratch", len(vectors), identity) as features:
        features.resume()
        features.write(0, vectors)
        features.finish()
    return path


@pytest.fixture(scope="session")
def tiny_store(tmp_path_factory, tiny_splits) -> Path:
    """A folder laid out as the pipeline leaves it: ``data/prepared``, ``data/base`` and
    ``data/elmo_imdb`` for the tiny splits, the features random 8-wide vectors (zero at padding);
    ``data/elmo_layers`` holds three such layers per token, as ``embed.output: layers`` stores."""
    import numpy as np

    from elmo_imdb.features import FeatureIdentity
    from elmo_imdb.vocabulary import Vocabulary, save_ids

    root = tmp_path_factory.mktemp("store")
    data = root / "data"
    vocab = Vocabulary.build(tiny_splits["train"], 50)
    vocab.save(data / "base" / "vocab.txt")
    rng = np.random.default_rng(0)
    for name, split in tiny_splits.items():
        split.save(data / "prepared" / f"{name}.h5")
        ids = vocab.encode(split)
        save_ids(data / "base" / f"{name}.h5", ids, split)
        vectors = rng.normal(size=(*ids.shape, 8)).astype(np.float16) * (ids != 0)[..., None]
        identity = FeatureIdentity("tiny-random", "elmo", "float16", split.maxlen, [8], split.fingerprint, 50)
        store_features(data / "elmo_imdb" / f"{name}.h5", vectors, identity)
        layers = rng.normal(size=(*ids.shape, 3, 8)).astype(np.float16) * (ids != 0)[..., None, None]
        identity = FeatureIdentity("tiny-random", "layers", "float16", split.maxlen, [3, 8], split.fingerprint, 50)
        store_features(data / "elmo_layers" / f"{name}.h5", layers, identity)
    return root


@pytest.fixture
def small_disk(tmp_path):
    """``fill(folder_name, free_bytes, size_mb=1)``: a folder on a tmpfs of its own, filled up to
    leave ``free_bytes`` free, where a full disk is real. Skips where this process may not
    mount one (not root): tests that must run everywhere inject ``OSError(ENOSPC)`` instead."""
    import subprocess

    mounted = []

    def fill(name: str, free_bytes: int, size_mb: int = 1) -> Path:
        folder = tmp_path / name
        folder.mkdir()
        if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(folder)], capture_output=True).returncode:
            pytest.skip("cannot mount a tmpfs here (not root?): the injected-ENOSPC tests cover this case")
        mounted.append(folder)
        stat = os.statvfs(folder)
        (folder / ".filler").write_bytes(b"\0" * max(0, stat.f_bavail * stat.f_frsize - free_bytes))
        return folder

    yield fill
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def benchmark_module(name: str):
    """The script benchmarks/<name>.py imported as a module (the scripts import each other by
    bare name, so benchmarks/ is on the path while it loads)."""
    sys.path.insert(0, str(REPO / "benchmarks"))
    try:
        return importlib.import_module(name)
    finally:
        sys.path.remove(str(REPO / "benchmarks"))

"""Shared fixtures: a tiny IMDB archive, its prepared splits, and a tiny ELMo hub module.

Everything here is built by the tests themselves: no network, no ../shared needed.
"""

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
    from elmo_imdb.bilm import build_tiny_hub_module

    return build_tiny_hub_module(tmp_path_factory.mktemp("elmo") / "tiny_elmo", seed=0)

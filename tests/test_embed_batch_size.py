"""embed.batch_size changes stored bytes, so it is part of what a features file records and
resumes under: every batch size gives a complete file that says which it was made with, and a
partial file of one batch size is never finished with another."""

import importlib.util
import json
from functools import partial
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

from conftest import REPO, write_random_splits
from hub_fixtures import TINY_HUB_OPTIONS
from elmo_imdb.bilm import write_random_weights
from elmo_imdb.embedders import embed_blocks, load_embedder, vector_shape
from elmo_imdb.features import ResumableFeatures, open_features
from elmo_imdb.prepared import PreparedSplit

SPEC = importlib.util.spec_from_file_location("embed_stage", REPO / "stages" / "embed.py")
STAGE = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(STAGE)


@pytest.fixture(scope="module")
def tiny_bilm(tmp_path_factory):
    root = tmp_path_factory.mktemp("batch_size")
    write_random_splits(root / "prepared", 23)
    (root / "bilm").mkdir()
    (root / "bilm" / "options.json").write_text(json.dumps(TINY_HUB_OPTIONS))
    write_random_weights(TINY_HUB_OPTIONS, root / "bilm" / "weights.hdf5", seed=0)
    splits = {"train": PreparedSplit.load(root / "prepared" / "train.h5")}
    return root, splits, load_embedder(str(root / "bilm"), "elmo")


def run_store(root, splits, embedder, batch_size, run):
    args = SimpleNamespace(out=root / run / "features", scratch=root / run / "scratch")
    p = SimpleNamespace(output="elmo", dtype="float16", batch_size=batch_size)
    STAGE.store(args, p, splits, embedder, partial(embed_blocks, embedder))
    return args


@pytest.mark.parametrize("batch_size", [1, 2, 7, 50])
def test_every_batch_size_gives_a_complete_file_that_records_it(tiny_bilm, batch_size):
    root, splits, embedder = tiny_bilm
    args = run_store(root, splits, embedder, batch_size, f"b{batch_size}")
    vectors = open_features(args.out / "train.h5", splits["train"])
    assert vectors.file.attrs["batch_size"] == batch_size and vectors.file.attrs["complete"]
    values = vectors[:].astype(np.float32)
    assert values.shape == (23, 12, *vector_shape(embedder)) and np.isfinite(values).all()
    lengths = np.array([len(t) for t in splits["train"].tokens])
    assert all(np.abs(values[i]).sum(-1).astype(bool).sum() == min(n, 12) for i, n in enumerate(lengths))
    assert sorted(p.name for p in args.scratch.iterdir()) == [".lock"]  # nothing left to resume


def test_a_partial_file_of_another_batch_size_is_started_over(tiny_bilm, capsys):
    root, splits, embedder = tiny_bilm
    split = splits["train"]
    args = SimpleNamespace(out=root / "switch" / "features", scratch=root / "switch" / "scratch")
    shape = vector_shape(embedder)
    identity = STAGE.FeatureIdentity(embedder.identity, "elmo", "float16", 12, list(shape), split.fingerprint, 2)
    with ResumableFeatures(args.out / "train.h5", args.scratch, len(split), identity) as f:
        f.resume()
        start, block = next(embed_blocks(embedder, split, 2, shape))
        f.write(start, block[:10])
    run_store(root, splits, embedder, 7, "switch")
    assert "train.h5: starting over: it was made with other batch_size 2 (now 7)" in capsys.readouterr().out
    with h5py.File(args.out / "train.h5") as f:
        assert f.attrs["batch_size"] == 7

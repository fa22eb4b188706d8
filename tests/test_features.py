import zlib

import h5py
import numpy as np
import pytest

from elmo_imdb.embedders import embed_blocks
from elmo_imdb.features import DATASET, FeatureIdentity, create_features, open_features
from elmo_imdb.prepared import PreparedDataError


class PositionEmbedder:
    """A fake ELMo whose vector says which token, at which position, of which length it saw."""

    dim = 3

    def __init__(self):
        self.batches = []

    def __call__(self, tokens, lengths):
        self.batches.append(tokens.shape)
        out = np.zeros((*tokens.shape, self.dim), np.float32)
        for i, n in enumerate(lengths):
            for k in range(n):
                out[i, k] = (zlib.crc32(tokens[i, k].encode()) % 1000, k + 1, n)
        return out


def expected_row(tokens, maxlen):
    row = np.zeros((maxlen, 3), np.float32)
    for k, t in enumerate(tokens):
        row[maxlen - len(tokens) + k] = (zlib.crc32(t.encode()) % 1000, k + 1, len(tokens))
    return row


def identity(split, dtype="float16", dim=3):
    return FeatureIdentity(elmo="test", output="elmo", dtype=dtype, maxlen=split.maxlen, dim=dim, prepared_fingerprint=split.fingerprint)


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_embed_blocks_aligns_every_token_and_zeros_padding(tiny_splits, batch_size):
    split = tiny_splits["train"]
    embedder = PositionEmbedder()
    blocks = list(embed_blocks(embedder, split, batch_size, dim=3))
    vectors = np.concatenate([b for _, b in blocks])
    assert [s for s, _ in blocks] == list(range(0, len(split), 500))
    assert vectors.shape == (len(split), split.maxlen, 3)
    for i, tokens in enumerate(split.tokens):
        np.testing.assert_array_equal(vectors[i], expected_row(tokens, split.maxlen))
    assert all(b[0] <= batch_size for b in embedder.batches)
    assert all(b[1] % 8 == 0 or b[1] == split.maxlen for b in embedder.batches)


def test_features_file_roundtrip(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    vectors = np.concatenate([b for _, b in embed_blocks(PositionEmbedder(), split, 2, dim=3)])
    vectors[0, -1, :] = [0.24996, -0.062491, 65504.0]  # HDF5's own float16 conversion gets these wrong
    with create_features(tmp_path / "val.h5", len(split), identity(split)) as write:
        write(0, vectors[:5])
        write(5, vectors[5:])
    data = open_features(tmp_path / "val.h5", split)
    assert data.dtype == np.float16 and data.shape == (len(split), split.maxlen, 3)
    assert data.chunks[1:] == (split.maxlen, 3)
    np.testing.assert_array_equal(data[:], vectors.astype(np.float16))
    attrs = dict(data.file.attrs)
    assert attrs["complete"] and attrs["prepared_fingerprint"] == split.fingerprint and attrs["elmo"] == "test"


def test_failure_while_writing_leaves_nothing(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    with pytest.raises(RuntimeError, match="disk on fire"):
        with create_features(tmp_path / "val.h5", len(split), identity(split)) as write:
            write(0, np.ones((1, split.maxlen, 3), np.float32))
            raise RuntimeError("disk on fire")
    assert list(tmp_path.iterdir()) == []


def test_open_refuses_unfinished_stale_and_missing_files(tmp_path, tiny_splits):
    val, test = tiny_splits["val"], tiny_splits["test"]
    with create_features(tmp_path / "val.h5", len(val), identity(val)):
        pass
    with pytest.raises(PreparedDataError, match="was computed from prepared data .* not from the given split"):
        open_features(tmp_path / "val.h5", test)
    with h5py.File(tmp_path / "val.h5", "r+") as f:
        del f.attrs["complete"]
    with pytest.raises(PreparedDataError, match=r"is unfinished; re-run the embed stage \(`dvc repro embed`\)"):
        open_features(tmp_path / "val.h5", val)
    with pytest.raises(PreparedDataError, match="no features file"):
        open_features(tmp_path / "nope.h5", val)


def test_dataset_name_is_the_documented_one(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    with create_features(tmp_path / "f.h5", len(split), identity(split, dtype="float32")):
        pass
    with h5py.File(tmp_path / "f.h5") as f:
        assert list(f) == [DATASET] == ["features"] and f[DATASET].dtype == np.float32
        assert not f[DATASET][:].any()

import json
import zlib
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import store_features
from elmo_imdb.embedders import BLOCK_ROWS, embed_blocks
from elmo_imdb.features import CHECKSUMS, CHUNK_ROWS, DATASET, DamagedFeaturesError, FeatureIdentity, FeaturesError, ResumableFeatures, open_features
from elmo_imdb.prepared import PreparedDataError


class PositionEmbedder:
    """A fake ELMo whose vector says which token, at which position, of which length it saw."""

    def __init__(self):
        self.batches = []

    def __call__(self, tokens, lengths):
        self.batches.append(tokens.shape)
        out = np.zeros((*tokens.shape, 3), np.float32)
        for i, n in enumerate(lengths):
            for k in range(n):
                out[i, k] = (zlib.crc32(tokens[i, k].encode()) % 1000, k + 1, n)
        return out


def expected_row(tokens, maxlen):
    row = np.zeros((maxlen, 3), np.float32)
    for k, t in enumerate(tokens):
        row[maxlen - len(tokens) + k] = (zlib.crc32(t.encode()) % 1000, k + 1, len(tokens))
    return row


def identity(split, dtype="float16", dim=3, elmo="test"):
    return FeatureIdentity(elmo=elmo, output="elmo", dtype=dtype, maxlen=split.maxlen, vector_shape=[dim], prepared_fingerprint=split.fingerprint, batch_size=50)


def position_vectors(split):
    return np.concatenate([b for _, b in embed_blocks(PositionEmbedder(), split, 2, (3,))])


@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_embed_blocks_aligns_every_token_and_zeros_padding(tiny_splits, batch_size):
    split = tiny_splits["train"]
    embedder = PositionEmbedder()
    blocks = list(embed_blocks(embedder, split, batch_size, (3,)))
    vectors = np.concatenate([b for _, b in blocks])
    assert [s for s, _ in blocks] == list(range(0, len(split), BLOCK_ROWS))
    assert vectors.shape == (len(split), split.maxlen, 3)
    for i, tokens in enumerate(split.tokens):
        np.testing.assert_array_equal(vectors[i], expected_row(tokens, split.maxlen))
    assert all(b[0] <= batch_size for b in embedder.batches)
    assert all(b[1] % 8 == 0 or b[1] == split.maxlen for b in embedder.batches)


def test_embed_blocks_resumes_only_at_block_boundaries(tiny_splits):
    with pytest.raises(ValueError, match="not a multiple"):
        next(embed_blocks(PositionEmbedder(), tiny_splits["train"], 4, (3,), first_row=3))


def test_features_file_roundtrip(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    vectors = position_vectors(split)
    vectors[0, -1, :] = [0.24996, -0.062491, 65504.0]  # HDF5's own float16 conversion gets these wrong
    data = open_features(store_features(tmp_path / "val.h5", vectors, identity(split)), split)
    assert data.dtype == np.float16 and data.shape == (len(split), split.maxlen, 3)
    assert data.chunks[1:] == (split.maxlen, 3)
    np.testing.assert_array_equal(data[:], vectors.astype(np.float16))
    attrs = dict(data.file.attrs)
    assert attrs["complete"] and attrs["prepared_fingerprint"] == split.fingerprint and attrs["elmo"] == "test"
    assert list((tmp_path / "scratch").iterdir()) == []  # nothing left behind once finished


def test_an_interrupted_file_resumes_after_its_last_stored_block(tmp_path, tiny_splits, capsys):
    split = tiny_splits["train"]
    vectors = position_vectors(split)
    half = len(split) // 2
    with ResumableFeatures(tmp_path / "train.h5", tmp_path / "scratch", len(split), identity(split)) as features:
        assert features.resume() == 0
        features.write(0, vectors[:half])
        # the process dies here: no finish()
    assert not (tmp_path / "train.h5").exists()
    with ResumableFeatures(tmp_path / "train.h5", tmp_path / "scratch", len(split), identity(split)) as features:
        assert features.resume() == half
        with pytest.raises(ValueError, match="blocks must come in order"):
            features.write(0, vectors)
        features.write(half, vectors[half:])
        features.finish()
    assert f"train.h5: resuming at row {half} of {len(split)}" in capsys.readouterr().out
    np.testing.assert_array_equal(open_features(tmp_path / "train.h5", split)[:], vectors.astype(np.float16))


def test_a_partial_file_from_another_model_is_started_over_and_says_why(tmp_path, tiny_splits, capsys):
    split = tiny_splits["train"]
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split, elmo="hub:old")) as f:
        f.resume()
        f.write(0, position_vectors(split)[:4])
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split, elmo="hub:new")) as f:
        assert f.resume() == 0
    assert "t.h5: starting over: it was made with other elmo 'hub:old' (now 'hub:new')\n" in capsys.readouterr().out


def test_a_partial_file_from_other_code_is_started_over_and_names_the_changed_file(tmp_path, tiny_splits, capsys, monkeypatch):
    """Killed under one version of the biLM, resumed under another: the rows of both never meet in one file."""
    import elmo_imdb.features as features_module

    split = tiny_splits["train"]
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        f.resume()
        f.write(0, position_vectors(split)[:4])
    real = features_module.code_fingerprint
    monkeypatch.setattr(features_module, "code_fingerprint", lambda modules: {**real(modules), "elmo_imdb/bilm/lstm.py": "changed"})
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        assert f.resume() == 0
    assert capsys.readouterr().out.splitlines()[-1] == "t.h5: starting over: it was made with other code (elmo_imdb/bilm/lstm.py)"


def test_the_resume_identity_holds_the_batch_size_and_the_vector_code(tmp_path, tiny_splits, capsys):
    split = tiny_splits["train"]
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        f.resume()
        f.write(0, position_vectors(split)[:4])
    record = json.loads((tmp_path / "scratch" / "t.progress.json").read_text())
    assert record["identity"]["batch_size"] == 50 and record["progress"] == {"rows_done": 4}
    assert {"elmo_imdb/embedders.py", "elmo_imdb/bilm/lstm.py", "elmo_imdb/features.py"} <= record["identity"]["code"].keys()
    other = FeatureIdentity(**{**identity(split).__dict__, "batch_size": 7})
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), other) as f:
        assert f.resume() == 0
    assert capsys.readouterr().out.splitlines()[-1] == "t.h5: starting over: it was made with other batch_size 50 (now 7)"


def test_an_unreadable_partial_file_is_started_over(tmp_path, tiny_splits, capsys):
    split = tiny_splits["val"]
    with ResumableFeatures(tmp_path / "v.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        f.resume()
    (tmp_path / "scratch" / "v.h5").write_bytes(b"garbage")
    with ResumableFeatures(tmp_path / "v.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        assert f.resume() == 0
    assert "starting over: the partial file cannot be opened" in capsys.readouterr().out
    record = json.loads((tmp_path / "scratch" / "v.progress.json").read_text())
    assert record["progress"]["rows_done"] == 0 and record["identity"]["prepared_fingerprint"] == split.fingerprint


def test_a_failed_write_keeps_the_stored_rows_and_marks_nothing_complete(tmp_path, tiny_splits, monkeypatch):
    split = tiny_splits["train"]
    vectors = position_vectors(split)
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity(split)) as f:
        f.resume()
        f.write(0, vectors[:8])
        monkeypatch.setattr(f, "_sync", lambda: (_ for _ in ()).throw(OSError(28, "No space left on device")))
        with pytest.raises(FeaturesError, match=r"storing rows 8-16 of t.h5 failed .*No space left.* rows 0-8 are kept"):
            f.write(8, vectors[8:16])
    assert not (tmp_path / "t.h5").exists()
    assert json.loads((tmp_path / "scratch" / "t.progress.json").read_text())["progress"]["rows_done"] == 8


def test_open_refuses_unfinished_stale_and_missing_files(tmp_path, tiny_splits):
    val, test = tiny_splits["val"], tiny_splits["test"]
    path = store_features(tmp_path / "val.h5", position_vectors(val), identity(val))
    with pytest.raises(PreparedDataError, match="was computed from prepared data .* not from the given split"):
        open_features(path, test)
    for unfinish in (lambda attrs: attrs.modify("complete", False), lambda attrs: attrs.__delitem__("complete")):
        with h5py.File(path, "r+") as f:
            unfinish(f.attrs)  # a file being written holds complete = false; an older one no attribute
        with pytest.raises(PreparedDataError, match=r"is unfinished; delete it and re-run its embed stage \(`dvc repro embed_imdb` or `dvc repro embed_published`\)$"):
            open_features(path, val)
    with pytest.raises(PreparedDataError, match=r"nope.h5 does not exist; run its embed stage \(`dvc repro embed_imdb` or `dvc repro embed_published`\)$"):
        open_features(tmp_path / "nope.h5", val)


def test_dataset_name_and_dtype_are_the_documented_ones(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    store_features(tmp_path / "f.h5", position_vectors(split), identity(split, dtype="float32"))
    with h5py.File(tmp_path / "f.h5") as f:
        assert list(f) == [CHECKSUMS, DATASET] == ["checksums", "features"] and f[DATASET].dtype == np.float32
        assert f[CHECKSUMS].dtype == np.uint64 and f.attrs["checksum"] == "xxh3_64" and f[CHECKSUMS].shape == (-(-len(split) // CHUNK_ROWS),)


def test_features_of_another_maxlen_are_refused(tmp_path, tiny_splits):
    split = tiny_splits["val"]
    store_features(tmp_path / "val.h5", position_vectors(split), identity(split))
    longer = type(split)(split.tokens, split.labels, split.names, maxlen=split.maxlen + 4)
    with pytest.raises(PreparedDataError, match="was computed from prepared data"):
        open_features(tmp_path / "val.h5", longer)  # maxlen is part of the fingerprint


def test_row_alignment_with_the_prepared_split_holds_for_every_row(tmp_path, tiny_splits):
    """Padding positions are exact zeros and every real position is written, row by row."""
    split = tiny_splits["train"]
    data = open_features(store_features(tmp_path / "t.h5", position_vectors(split), identity(split)), split)[:]
    for i, n in enumerate(split.lengths):
        assert not data[i, : split.maxlen - n].any()
        assert (data[i, split.maxlen - n :, 1] == np.arange(1, n + 1)).all()  # position k+1 at column maxlen-n+k


def test_a_file_finishes_into_an_output_folder_on_another_file_system(tmp_path, tiny_splits, monkeypatch):
    """Scratch on a local disk, outputs on a mounted volume: the rename across devices fails
    with EXDEV, so the finished file is copied next to its real name and renamed there."""
    import errno
    import os

    split = tiny_splits["train"]
    scratch = tmp_path / "out" / "scratch"  # where store_features grows the file
    real_replace = os.replace

    def replace_across_devices(source, target):
        if Path(source) == scratch / "train.h5":
            raise OSError(errno.EXDEV, "Invalid cross-device link", str(source))
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_across_devices)
    store_features(tmp_path / "out" / "train.h5", position_vectors(split), identity(split))
    np.testing.assert_array_equal(open_features(tmp_path / "out" / "train.h5", split)[:], position_vectors(split).astype(np.float16))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["scratch", "train.h5"]  # no temporary copy left
    assert sorted(p.name for p in scratch.iterdir()) == []

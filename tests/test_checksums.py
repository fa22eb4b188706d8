"""The stored bytes are checked: a flipped bit or a NaN in a finished features file is refused
on read (naming the file and the chunk or row), `verify` names the first bad chunk, and a NaN
is never written."""

import re
import subprocess
import sys

import h5py
import numpy as np
import pytest

from conftest import REPO, store_features
from elmo_imdb.prepared import PreparedDataError
from elmo_imdb.features import (
    CHECKSUMS, CHUNK_ROWS, DATASET, DamagedFeaturesError, FeatureIdentity, FeaturesError, ResumableFeatures, chunk_checksum,
    non_finite_rows, open_features,
)


def vectors_of(split):
    rng = np.random.default_rng(0)
    return rng.normal(size=(len(split), split.maxlen, 4)).astype(np.float16)


@pytest.fixture
def stored(tmp_path, tiny_splits):
    split = tiny_splits["train"]  # 16 rows: chunks 0 and 1, the last one of 6 rows
    identity = FeatureIdentity("test", "elmo", "float16", split.maxlen, [4], split.fingerprint, 50)
    return store_features(tmp_path / "features" / "train.h5", vectors_of(split), identity), split


def chunk_offset(path, chunk):
    with h5py.File(path) as f:
        return f[DATASET].id.get_chunk_info(chunk).byte_offset


def patch_bytes(path, offset, data):
    with open(path, "r+b") as f:
        f.seek(offset)
        f.write(data)


def verify(*targets):
    return subprocess.run([sys.executable, "-m", "elmo_imdb.features", "verify", *map(str, targets)],
                          capture_output=True, text=True, cwd=REPO)


def test_an_intact_file_reads_back_and_verifies(stored):
    path, split = stored
    np.testing.assert_array_equal(open_features(path, split)[3:27], vectors_of(split)[3:27])
    result = verify(path.parent)
    assert result.returncode == 0 and result.stdout == f"{path}: ok: {-(-len(split) // CHUNK_ROWS)} chunks\n"


def test_a_flipped_bit_is_refused_on_read_and_named_by_verify(stored):
    path, split = stored
    offset = chunk_offset(path, 1) + 234
    with open(path, "rb") as f:
        f.seek(offset)
        byte = f.read(1)[0]
    patch_bytes(path, offset, bytes([byte ^ 0x10]))
    features = open_features(path, split)
    np.testing.assert_array_equal(features[0:10], vectors_of(split)[0:10])  # the chunk before it still reads
    with pytest.raises(DamagedFeaturesError) as e:
        features[5:12]
    assert str(e.value) == (
        f"{path}: chunk 1 (rows 10-15) does not match its checksum: the file is damaged; "
        "delete it and re-run its embed stage (`dvc repro embed_imdb` or `dvc repro embed_published`)"
    )
    result = verify(path)
    assert result.returncode == 1 and result.stdout == "" and result.stderr == f"error: {e.value}\n"


def test_a_nan_in_the_bytes_is_refused_on_read_even_with_a_matching_checksum(stored):
    path, split = stored
    row, chunk = 15, 1
    nan_row = vectors_of(split)[10:16].copy()
    nan_row[row - 10, 5, 1] = np.nan
    patch_bytes(path, chunk_offset(path, chunk), nan_row.tobytes())
    with pytest.raises(DamagedFeaturesError, match=r"chunk 1 \(rows 10-15\) does not match its checksum"):
        open_features(path, split)[14:16]
    with h5py.File(path, "r+") as f:
        f[CHECKSUMS][chunk] = chunk_checksum(nan_row)  # damage that a checksum cannot see
    with pytest.raises(DamagedFeaturesError) as e:
        open_features(path, split)[8:16]
    assert str(e.value).startswith(f"{path}: row 15 holds a non-finite value; delete it and re-run")


def test_a_nan_is_never_written(tmp_path, tiny_splits):
    split = tiny_splits["train"]
    identity = FeatureIdentity("test", "elmo", "float16", split.maxlen, [4], split.fingerprint, 50)
    vectors = vectors_of(split).astype(np.float32)
    vectors[13, 2, 0] = np.nan
    vectors[14, 0, 0] = 1e6  # finite in float32, infinite in the stored float16
    with ResumableFeatures(tmp_path / "t.h5", tmp_path / "scratch", len(split), identity, split.names) as f:
        f.resume()
        f.write(0, vectors[:10])
        with pytest.raises(FeaturesError, match=rf"^row 13 \(review {split.names[13]}\) of t.h5 holds a non-finite value"):
            f.write(10, vectors[10:16])
        vectors[13, 2, 0] = 0
        with pytest.raises(FeaturesError, match=r"^row 14 \(review .*\) of t.h5 holds a non-finite value \(NaN, or too large for float16\)"):
            f.write(10, vectors[10:16])
        assert f.rows_done == 10


def test_a_truncated_file_is_one_line_naming_it(stored):
    path, split = stored
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)
    with pytest.raises(PreparedDataError, match=rf"^{path} cannot be read \(.*\); delete it and re-run its embed stage"):
        open_features(path, split)
    result = verify(path)
    assert result.returncode == 1 and result.stderr.startswith(f"error: {path} cannot be read") and "Traceback" not in result.stderr


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_non_finite_rows_are_those_numpy_calls_not_finite(dtype):
    info = np.finfo(dtype)
    values = np.random.default_rng(1).normal(size=(12, 3, 5)).astype(dtype)
    specials = {1: np.nan, 3: np.inf, 4: -np.inf, 6: -np.nan}  # not finite
    finite = {0: info.max, 2: -info.max, 5: info.smallest_subnormal, 7: -0.0, 8: info.tiny}  # finite extremes
    for row, value in {**specials, **finite}.items():
        values[row, row % 3, row % 5] = value
    np.testing.assert_array_equal(non_finite_rows(values), sorted(specials))
    np.testing.assert_array_equal(non_finite_rows(values), np.flatnonzero(~np.isfinite(values).reshape(12, -1).all(axis=1)))


def test_a_file_with_the_checksums_of_an_older_version_is_refused_in_one_line(stored):
    path, split = stored
    with h5py.File(path, "r+") as f:
        del f.attrs["checksum"]  # as written before xxh3: crc32 checksums, no attribute
    message = (f"{path} holds crc32 checksums, which this version does not read (it writes xxh3_64); "
               "delete it and re-run its embed stage")
    with pytest.raises(PreparedDataError, match=f"^{re.escape(message)}"):
        open_features(path, split)
    result = verify(path)
    assert result.returncode == 1 and result.stderr.startswith(f"error: {message}")

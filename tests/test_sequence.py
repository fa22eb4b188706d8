import numpy as np
import pytest

from conftest import store_features
from elmo_imdb.features import FeatureIdentity, open_features
from elmo_imdb.prepared import PreparedDataError
from elmo_imdb.sequence import ReviewSequence, open_sequence
from elmo_imdb.vocabulary import Vocabulary, save_ids


@pytest.fixture
def features(tmp_path, tiny_splits):
    """A features file for the tiny train split whose row i holds the value i everywhere."""
    split = tiny_splits["train"]
    identity = FeatureIdentity("test", "elmo", "float32", split.maxlen, [2], split.fingerprint, 50)
    rows = np.broadcast_to(np.arange(len(split), dtype=np.float32)[:, None, None], (len(split), split.maxlen, 2))
    return open_features(store_features(tmp_path / "train.h5", rows, identity), split)


def row_ids(n, maxlen=3):
    return np.repeat(np.arange(n, dtype=np.int32)[:, None], maxlen, axis=1)


class RecordingFeatures:
    """An in-memory features array with HDF5-like chunks that records every read."""

    def __init__(self, n, chunk_rows, maxlen=3):
        self.array = np.broadcast_to(np.arange(n, dtype=np.float32)[:, None, None], (n, maxlen, 2))
        self.shape, self.dtype, self.chunks = self.array.shape, self.array.dtype, (chunk_rows, maxlen, 2)
        self.reads = []

    def __len__(self):
        return len(self.array)

    def __getitem__(self, key):
        self.reads.append(key)
        return self.array[key]


def test_batches_carry_matching_ids_features_and_labels(features, tiny_splits):
    split = tiny_splits["train"]
    seq = ReviewSequence(row_ids(len(split)), split.labels, features, batch_size=5, shuffle=True, seed=3)
    for b in range(len(seq)):
        (ids, elmo), labels = seq[b]
        rows = ids[:, 0]
        assert np.all(elmo == rows[:, None, None])
        assert np.array_equal(labels, split.labels[rows]) and labels.dtype == np.float32
        assert np.all(np.diff(rows) > 0)  # ascending: reads go forward through the file


def test_every_row_exactly_once_per_epoch_and_batches_remixed():
    n = 50
    seq = ReviewSequence(row_ids(n), np.zeros(n), RecordingFeatures(n, chunk_rows=2), batch_size=4, shuffle=True, seed=0)
    epochs = []
    for _ in range(3):
        batches = [seq[b][0][0][:, 0].tolist() for b in range(len(seq))]
        assert sorted(r for batch in batches for r in batch) == list(range(n))
        epochs.append(batches)
        seq.on_epoch_end()
    assert epochs[0] != epochs[1] != epochs[2]
    assert len(seq) == -(-n // 4)


def test_shuffled_batches_are_whole_chunks_read_as_one_slice_each():
    n, chunk_rows, batch_size = 103, 4, 12
    features = RecordingFeatures(n, chunk_rows)
    seq = ReviewSequence(row_ids(n), np.zeros(n), features, batch_size=batch_size, shuffle=True, seed=1)
    assert seq.group_rows == chunk_rows
    compositions = []
    for _ in range(2):
        for b in range(len(seq)):
            features.reads.clear()
            (ids, elmo), _ = seq[b]
            rows = ids[:, 0]
            assert np.array_equal(elmo[:, 0, 0], rows)
            assert len(rows) == (batch_size if b < len(seq) - 1 else n - batch_size * (len(seq) - 1))
            chunks = set(rows // chunk_rows)
            if b < len(seq) - 1:
                assert len(chunks) == batch_size // chunk_rows  # whole chunks only
            assert all(isinstance(key, slice) for key in features.reads)
            assert len(features.reads) <= len(chunks)  # neighbouring chunks merge into one slice
            assert sum(key.stop - key.start for key in features.reads) == len(rows)  # nothing read twice
            compositions.append(frozenset(rows.tolist()))
        seq.on_epoch_end()
    assert set(compositions[: len(seq)]) != set(compositions[len(seq) :])


def test_unshuffled_sequence_is_in_row_order_and_base_gets_ids_only(tiny_splits):
    n = len(tiny_splits["train"])
    seq = ReviewSequence(row_ids(n), tiny_splits["train"].labels, None, batch_size=7, shuffle=False)
    ids, labels = seq[1]
    assert ids[:, 0].tolist() == list(range(7, 14))
    seq.on_epoch_end()
    assert np.concatenate([seq[b][0][:, 0] for b in range(len(seq))]).tolist() == list(range(n))
    with pytest.raises(IndexError):
        seq[len(seq)]


def test_open_sequence_checks_all_files_come_from_the_same_rows(tmp_path, tiny_splits, features):
    for name in ("train", "val"):
        tiny_splits[name].save(tmp_path / "prepared" / f"{name}.h5")
    vocab = Vocabulary.build(tiny_splits["train"], 100)
    save_ids(tmp_path / "base" / "train.h5", vocab.encode(tiny_splits["train"]), tiny_splits["train"])
    save_ids(tmp_path / "base" / "val.h5", vocab.encode(tiny_splits["train"]), tiny_splits["train"])  # wrong rows

    seq = open_sequence("train", tmp_path / "prepared", tmp_path / "base", tmp_path, batch_size=8)
    (ids, elmo), labels = seq[0]
    assert ids.shape == (8, 12) and elmo.shape == (8, 12, 2)
    assert np.array_equal(ids, vocab.encode(tiny_splits["train"])[:8])
    with pytest.raises(PreparedDataError, match="was encoded from prepared data"):
        open_sequence("val", tmp_path / "prepared", tmp_path / "base", None, batch_size=8)


def test_mismatched_lengths_are_refused(features):
    with pytest.raises(ValueError, match="features have 16 rows, ids have 3"):
        ReviewSequence(row_ids(3), np.zeros(3), features, batch_size=2, shuffle=False)


def test_the_docs_feature_store_example_gives_aligned_batches(tiny_store, tiny_splits, monkeypatch):
    """The ```python block of docs/classifiers.md's "The feature store", run on the tiny store."""
    from test_classifiers import doc_example

    example = doc_example("The feature store")
    monkeypatch.chdir(tiny_store)  # the example's paths are relative to the repository root
    namespace = {}
    exec(compile(example, "docs/classifiers.md", "exec"), namespace)
    ids, elmo, labels = namespace["ids"], namespace["elmo"], namespace["labels"]
    split = tiny_splits["train"]
    assert ids.dtype == np.int32 and elmo.dtype == np.float16 and labels.dtype == np.float32
    assert ids.shape == (len(split), split.maxlen) and elmo.shape == (*ids.shape, 8) and labels.shape == (len(split),)
    assert np.array_equal(elmo == 0, np.broadcast_to((ids == 0)[..., None], elmo.shape))  # padding lines up
    assert sorted(labels) == sorted(split.labels.astype(np.float32))

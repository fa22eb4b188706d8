import numpy as np
import pytest

from elmo_imdb.prepared import PreparedDataError, PreparedSplit
from elmo_imdb.vocabulary import OOV_ID, PAD_ID, Vocabulary, load_ids, save_ids


def split(rows, maxlen=4):
    return PreparedSplit(tokens=rows, labels=np.zeros(len(rows), np.int8), names=[f"r{i}" for i in range(len(rows))], maxlen=maxlen)


def test_vocabulary_counts_lowercased_training_tokens_with_deterministic_ties():
    train = split([["The", "film", "the", "END"], ["the", "end", "a", "b"]])
    vocab = Vocabulary.build(train, max_features=5)
    assert vocab.words == ["the", "end", "a"]  # the:3, end:2, then a/b/film tie at 1 -> alphabetical
    assert vocab.size == 5


def test_encode_left_pads_and_maps_unknown_words():
    vocab = Vocabulary(["the", "end"])
    ids = vocab.encode(split([["The", "END"], ["never", "seen", "the", "end"], []]))
    assert ids.dtype == np.int32
    assert ids.tolist() == [[PAD_ID, PAD_ID, 2, 3], [OOV_ID, OOV_ID, 2, 3], [PAD_ID] * 4]


def test_vocabulary_from_tiny_train_never_sees_test_only_words(tiny_splits):
    vocab = Vocabulary.build(tiny_splits["train"], max_features=20000)
    train_words = {t.lower() for row in tiny_splits["train"].tokens for t in row}
    assert set(vocab.words) == train_words
    assert "test" not in vocab.ids  # "Test review 3: ..." appears only in the test split


def test_save_load_roundtrip_with_odd_characters(tmp_path):
    vocab = Vocabulary(["é", "\x1c", "日本", "n't"])
    vocab.save(tmp_path / "vocab.txt")
    assert Vocabulary.load(tmp_path / "vocab.txt").words == vocab.words


def test_ids_file_refuses_other_prepared_rows(tmp_path):
    a = split([["a", "b"]])
    b = split([["a", "c"]])
    save_ids(tmp_path / "ids.h5", Vocabulary(["a"]).encode(a), a)
    assert load_ids(tmp_path / "ids.h5", a).tolist() == [[0, 0, 2, 1]]
    with pytest.raises(PreparedDataError, match="re-run `dvc repro encode`"):
        load_ids(tmp_path / "ids.h5", b)

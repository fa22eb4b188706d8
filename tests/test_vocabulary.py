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


def test_ids_with_a_flipped_bit_or_a_truncated_file_are_refused_in_one_line(tmp_path, tiny_splits):
    import h5py
    import pytest

    from elmo_imdb.prepared import PreparedDataError
    from elmo_imdb.vocabulary import Vocabulary, load_ids, save_ids

    split = tiny_splits["train"]
    path = tmp_path / "train.h5"
    save_ids(path, Vocabulary.build(split, 50).encode(split), split)
    with h5py.File(path) as f:
        offset = f["ids"].id.get_offset()
    data = bytearray(path.read_bytes())
    data[offset + 13] ^= 0x04  # one bit of one id
    path.write_bytes(bytes(data))
    with pytest.raises(PreparedDataError, match=r"train.h5: the ids do not match their recorded sha256 .*re-run `dvc repro encode`"):
        load_ids(path, split)
    path.write_bytes(bytes(data[: len(data) // 2]))
    with pytest.raises(PreparedDataError, match=r"train.h5 cannot be read \(Unable to .*\); re-run `dvc repro encode`"):
        load_ids(path, split)

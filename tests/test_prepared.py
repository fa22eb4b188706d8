import h5py
import numpy as np
import pytest

from elmo_imdb.imdb import Review
from elmo_imdb.params import ParamsError
from elmo_imdb.prepared import PreparedDataError, PreparedSplit, left_pad, prepare_splits, stratified_split


def reviews(n_pos, n_neg, split="train", words=5):
    out = []
    for label, n in ((1, n_pos), (0, n_neg)):
        for i in range(n):
            text = " ".join(f"w{label}_{i}_{k}" for k in range(words))
            out.append(Review(split=split, label=label, name=f"{split}/{'pos' if label else 'neg'}/{i}_5.txt", text=text))
    return out


def test_truncation_keeps_the_last_tokens_and_short_reviews_whole():
    data = reviews(6, 6, words=20) + reviews(3, 3, split="test", words=2)
    splits = prepare_splits(data, maxlen=8, val_size=4, seed=1)
    for split in splits.values():
        for name, tokens in zip(split.names, split.tokens):
            source = next(r for r in data if r.name == name and r.split == name.split("/")[0])
            assert tokens == source.text.split()[-8:]
    assert set(splits["test"].lengths) == {2}


def test_validation_split_is_stratified_disjoint_deterministic_and_complete():
    data = reviews(60, 40) + reviews(5, 5, split="test")
    a = prepare_splits(data, maxlen=10, val_size=20, seed=7)
    b = prepare_splits(data, maxlen=10, val_size=20, seed=7)
    c = prepare_splits(data, maxlen=10, val_size=20, seed=8)
    assert len(a["val"]) == 20 and len(a["train"]) == 80
    assert a["val"].labels.mean() == pytest.approx(0.6) and a["train"].labels.mean() == pytest.approx(0.6)
    assert not set(a["val"].names) & set(a["train"].names)
    assert set(a["val"].names) | set(a["train"].names) == {r.name for r in data if r.split == "train"}
    assert all(a[s].fingerprint == b[s].fingerprint for s in a)
    assert set(a["val"].names) != set(c["val"].names)


def test_rows_are_shuffled_not_sorted_by_label():
    splits = prepare_splits(reviews(50, 50) + reviews(50, 50, split="test"), maxlen=5, val_size=10, seed=0)
    for split in splits.values():
        labels = split.labels
        assert 0 < labels.mean() < 1
        assert (np.diff(labels) != 0).sum() > len(labels) // 5  # sorted rows would change label once


def test_stratified_split_rejects_nothing_left_for_training():
    with pytest.raises(ParamsError, match="val_size=12 must leave reviews for training"):
        prepare_splits(reviews(6, 6) + reviews(1, 1, split="test"), maxlen=5, val_size=12, seed=0)


def test_stratified_split_indices():
    labels = np.array([0] * 30 + [1] * 70)
    held, rest = stratified_split(labels, 10, np.random.default_rng(0))
    assert sorted(np.concatenate([held, rest])) == list(range(100))
    assert labels[held].sum() == 7


def test_left_pad_aligns_rows_to_the_right():
    out = left_pad([[5, 6, 7], [], [1, 2, 3, 4]], 4, 0, np.int32)
    assert out.tolist() == [[0, 5, 6, 7], [0, 0, 0, 0], [1, 2, 3, 4]]


def test_save_load_roundtrip_and_fingerprint(tmp_path, tiny_splits):
    split = tiny_splits["train"]
    split.save(tmp_path / "train.h5")
    loaded = PreparedSplit.load(tmp_path / "train.h5")
    assert loaded.tokens == split.tokens and loaded.names == split.names
    assert np.array_equal(loaded.labels, split.labels) and loaded.fingerprint == split.fingerprint
    assert 0 in split.lengths  # the empty review is kept, with no tokens
    assert any(t for row in split.tokens for t in row if not t.isascii())  # "Amélie", "très"

    swapped = PreparedSplit(split.tokens, 1 - split.labels, split.names, split.maxlen)
    assert swapped.fingerprint != split.fingerprint


def test_load_refuses_a_tampered_file(tmp_path, tiny_splits):
    tiny_splits["test"].save(tmp_path / "test.h5")
    with h5py.File(tmp_path / "test.h5", "r+") as f:
        f["labels"][0] = 1 - f["labels"][0]
    with pytest.raises(PreparedDataError, match="does not match its recorded fingerprint"):
        PreparedSplit.load(tmp_path / "test.h5")


def test_html_breaks_are_gone_and_punctuation_split(tiny_splits):
    all_tokens = [t for s in tiny_splits.values() for row in s.tokens for t in row]
    assert not any("<" in t or ">" in t for t in all_tokens)
    assert "," in all_tokens and "." in all_tokens

"""The char CNN once per distinct token: the cached path gives the vectors of the direct one."""

import json
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from elmo_imdb.bilm import BiLM, BiLMConfig, load_bilm, load_options, random_weights
from elmo_imdb.bilm.token_cache import TokenEmbeddingCache

FIXTURES = Path(__file__).resolve().parents[1].parent / "shared" / "fixtures" / "elmo"
OUTPUTS = ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo", "default")


def fixture_model(name):
    folder = FIXTURES / name
    if not (folder / "lm_weights.hdf5").exists():
        pytest.skip(f"reference fixtures not found at {folder} (../shared is absent in this checkout)")
    sentences = json.loads(next(p for p in folder.glob("*sentences.json")).read_text())
    return load_bilm(folder / "options.json", folder / "lm_weights.hdf5"), [s.split() for group in sentences for s in group]


def full_size_model():
    options = load_options("elmo_2x4096_512_2048cnn_2xhighway")
    sentences = ["The movie was n't bad at all , really .", "Amélie : très bien !", "<S> a b </S>", "worst film ever"]
    return BiLM(options, random_weights(BiLMConfig.from_options(options), seed=3)), [s.split() for s in sentences]


def padded(sentences):
    width = max(len(s) for s in sentences)
    return np.array([s + [""] * (width - len(s)) for s in sentences], dtype=object), np.array([len(s) for s in sentences], np.int32)


@pytest.mark.parametrize("model", ["bilm-tf", "allennlp", "full-size"])
def test_cached_token_embeddings_give_every_output_of_the_direct_call(model):
    bilm, sentences = full_size_model() if model == "full-size" else fixture_model(model)
    cache = TokenEmbeddingCache(bilm)
    half = len(sentences) // 2 or 1
    for batch in (sentences[:half], sentences[half:], sentences):  # the last batch is all cache hits
        tokens, lengths = padded(batch)
        direct = bilm(tf.constant(tokens.astype(str)), tf.constant(lengths))
        cached = bilm.from_embeddings(cache.embed(tokens, lengths), tf.constant(lengths))
        for name in OUTPUTS:
            np.testing.assert_allclose(cached[name], direct[name], atol=1e-6, rtol=0, err_msg=f"{model} {name}")
    assert len(cache) == len({token for sentence in sentences for token in sentence})


def test_each_distinct_token_is_encoded_once_and_the_table_grows(monkeypatch):
    bilm, _ = fixture_model("bilm-tf")
    cache = TokenEmbeddingCache(bilm)
    encoded = []
    original = bilm.embed_tokens
    monkeypatch.setattr(bilm, "embed_tokens", lambda ids: encoded.append(int(ids.shape[0])) or original(ids))
    for i in range(40):  # more new tokens than the first table holds: it grows
        cache.embed(*padded([[f"w{i}", f"v{i}", "the", "the"], ["the"]]))
    assert encoded == [3] + [2] * 39 and len(cache) == 81
    rows = cache.embed(*padded([["w3", "the"], ["x"]]))  # <S> w3 the </S> / <S> x </S> padding
    assert rows.shape == (2, 4, bilm.config.projection_dim) and len(cache) == 82
    np.testing.assert_array_equal(rows[0, 0], rows[1, 0])  # <S>
    np.testing.assert_array_equal(rows[0, 3], rows[1, 2])  # </S>
    assert not rows[1, 3].any() and rows[0, 1:3].any()

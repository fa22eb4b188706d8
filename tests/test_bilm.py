"""The project's biLM: reference outputs of bilm-tf, character ids, padding, batch independence,
weight files and their validation."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tensorflow as tf

from elmo_imdb.bilm import (
    SHIPPED_OPTIONS,
    BiLM,
    BiLMConfig,
    load_bilm,
    load_options,
    random_weights,
    read_weights,
    write_random_weights,
)
from elmo_imdb.bilm.chars import BOS_CHAR, BOW_CHAR, EOS_CHAR, EOW_CHAR, PAD_CHAR, sentence_char_ids

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
FIXTURES = SHARED / "fixtures" / "elmo"

# The fixture models' shapes, with skip connections: small enough to build in a second.
SMALL_OPTIONS = {
    "char_cnn": {
        "activation": "relu",
        "embedding": {"dim": 4},
        "filters": [[1, 4], [2, 8], [3, 16], [4, 32], [5, 64]],
        "n_highway": 2,
        "n_characters": 262,
        "max_characters_per_token": 50,
    },
    "lstm": {"dim": 64, "projection_dim": 16, "n_layers": 2, "cell_clip": 3, "proj_clip": 3,
             "use_skip_connections": True},
}


@pytest.fixture(scope="module")
def small_bilm() -> BiLM:
    return BiLM(SMALL_OPTIONS, random_weights(BiLMConfig.from_options(SMALL_OPTIONS), seed=1))


def pad_batch(sentences: list[list[str]], n_tokens: int | None = None) -> tuple[tf.Tensor, tf.Tensor]:
    """Tokens [B, T] padded with "" at the end of rows, and their lengths."""
    n_tokens = n_tokens or max(len(s) for s in sentences)
    tokens = [s + [""] * (n_tokens - len(s)) for s in sentences]
    return tf.constant(tokens), tf.constant([len(s) for s in sentences], tf.int32)


# --------------------------------------------------------------------- reference outputs (bilm-tf)


def _fixture(name: str) -> Path:
    folder = FIXTURES / name
    if not (folder / "lm_weights.hdf5").exists():
        pytest.skip(f"reference fixtures not found at {folder} (../shared is absent in this checkout)")
    return folder


def _fixture_sentences(folder: Path) -> list[list[str]]:
    for name in ("lm_embeddings_sentences.json", "sentences.json"):
        if (folder / name).exists():
            return json.loads((folder / name).read_text())
    raise FileNotFoundError(f"no sentences file in {folder}")


@pytest.mark.parametrize("name", ["bilm-tf", "allennlp"])  # without / with skip connections
def test_replays_the_stateful_reference_protocol(name):
    """10 batches of 3 sentences, LSTM states carried over row by row (../shared/README.md)."""
    folder = _fixture(name)
    bilm = load_bilm(folder / "options.json", folder / "lm_weights.hdf5")
    sentences = _fixture_sentences(folder)
    expected = [h5py.File(folder / f"lm_embeddings_{k}.hdf5", "r") for k in range(3)]
    projection = bilm.config.projection_dim
    top = f"lstm_outputs{bilm.config.n_layers}"

    state = bilm.zero_state(3)
    worst = 0.0
    for i in range(10):
        batch = [sentences[k][i].split() for k in range(3)]
        tokens, sequence_len = pad_batch(batch)
        outputs, state = bilm.run(tokens, sequence_len, state)
        if i == 0:  # zero initial states: the stateless call must agree
            np.testing.assert_array_equal(bilm(tokens, sequence_len)[top], outputs[top])
        for k, words in enumerate(batch):
            got = outputs[top][k, : len(words)].numpy()
            forward_backward = np.stack([got[:, :projection], got[:, projection:]])
            reference = expected[k][str(i)][...]
            assert forward_backward.shape == reference.shape
            worst = max(worst, float(np.abs(forward_backward - reference).max()))
    assert worst <= 1e-5, f"max abs difference to bilm-tf {worst:.2e}"


# ---------------------------------------------------------------------------------- character ids


def _shifted(ids: list[int]) -> list[int]:
    return [i + 1 for i in ids]


def test_char_ids_frame_words_and_sentences():
    ids = sentence_char_ids(tf.constant([["ab", ""]]), tf.constant([1]), max_chars=8).numpy()[0]
    pad = [PAD_CHAR] * 5
    assert ids[0].tolist() == _shifted([BOW_CHAR, BOS_CHAR, EOW_CHAR] + pad)
    assert ids[1].tolist() == _shifted([BOW_CHAR, ord("a"), ord("b"), EOW_CHAR] + pad[:4])
    assert ids[2].tolist() == _shifted([BOW_CHAR, EOS_CHAR, EOW_CHAR] + pad)  # </S> after the last token
    assert ids[3].tolist() == [0] * 8  # padding token: all zeros


def test_char_ids_cut_long_words_and_encode_utf8():
    long_word = "x" * 60
    ids = sentence_char_ids(tf.constant([[long_word, "né"]]), tf.constant([2])).numpy()[0]
    assert ids.shape == (4, 50)
    assert ids[1].tolist() == _shifted([BOW_CHAR] + [ord("x")] * 48 + [EOW_CHAR])
    assert ids[2, :5].tolist() == _shifted([BOW_CHAR, ord("n"), 0xC3, 0xA9, EOW_CHAR])


def test_char_ids_place_end_marker_per_row():
    tokens, sequence_len = pad_batch([["a", "b", "c"], ["a"]])
    ids = sentence_char_ids(tokens, sequence_len).numpy()
    assert ids[0, 4, 1] == EOS_CHAR + 1 and ids[1, 2, 1] == EOS_CHAR + 1
    assert not ids[1, 3:].any()


# --------------------------------------------------------------------------------- model outputs


def test_output_shapes_and_layer_mix(small_bilm):
    tokens, sequence_len = pad_batch([["the", "cat", "sat"], ["a", "dog"]])
    out = small_bilm(tokens, sequence_len)
    assert small_bilm.output_dim == 32
    assert out["word_emb"].shape == (2, 3, 16)
    for name in ("lstm_outputs1", "lstm_outputs2", "elmo"):
        assert out[name].shape == (2, 3, 32) and out[name].dtype == tf.float32
    assert out["default"].shape == (2, 32)
    layer0 = tf.concat([out["word_emb"]] * 2, axis=-1)
    mean_of_layers = (layer0 + out["lstm_outputs1"] + out["lstm_outputs2"]) / 3
    np.testing.assert_allclose(out["elmo"], mean_of_layers, atol=1e-6)
    np.testing.assert_allclose(out["default"][1], out["elmo"][1, :2].numpy().mean(axis=0), atol=1e-6)


def test_padding_positions_are_exact_zeros(small_bilm):
    tokens, sequence_len = pad_batch([["a", "b", "c", "d"], ["short"], []], n_tokens=6)
    out = small_bilm(tokens, sequence_len)
    for name in ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo"):
        values = out[name].numpy()
        assert not values[0, 4:].any() and not values[1, 1:].any() and not values[2].any(), name
        assert values[0, :4].any(axis=-1).all(), f"{name}: a real token got a zero vector"
    assert not out["default"].numpy()[2].any()


def test_sentence_vectors_do_not_depend_on_the_batch(small_bilm):
    sentence = "the film was not as good as the book".split()
    alone = small_bilm(*pad_batch([sentence]))
    others = [["a"], "an entirely different and much longer review of some other film".split()]
    in_batch = small_bilm(*pad_batch([others[0], sentence, others[1]], n_tokens=20))
    n = len(sentence)
    for name in ("word_emb", "lstm_outputs1", "lstm_outputs2", "elmo"):
        np.testing.assert_allclose(in_batch[name][1, :n], alone[name][0], atol=1e-5, err_msg=name)


def test_token_embeddings_do_not_depend_on_how_the_tokens_are_sliced(small_bilm):
    """More than TOKENS_PER_CNN_SLICE tokens go through in equal slices; every row must still be
    its own token's embedding, as when it goes through in a small batch."""
    ids = tf.random.stateless_uniform([2100, 50], [0, 1], 1, 262, tf.int32)
    at_once = small_bilm.embed_tokens(ids).numpy()
    in_small_batches = np.concatenate([small_bilm.embed_tokens(ids[i : i + 300]).numpy() for i in range(0, 2100, 300)])
    assert at_once.shape == (2100, small_bilm.config.projection_dim)
    np.testing.assert_allclose(at_once, in_small_batches, atol=1e-6)


def test_traced_once_for_any_batch_shape(small_bilm):
    small_bilm(*pad_batch([["a"]]))
    small_bilm(*pad_batch([["a", "b"], ["c"], ["d"]], n_tokens=7))
    assert small_bilm._call_fn.experimental_get_tracing_count() == 1


def test_published_options_and_pretraining_presets_are_shipped_and_valid():
    assert set(SHIPPED_OPTIONS) == {
        "elmo_2x4096_512_2048cnn_2xhighway",
        "elmo_2x2048_256_2048cnn_1xhighway",
        "elmo_2x1024_128_2048cnn_1xhighway",
        "imdb_tiny",
        "imdb_small",
    }
    for preset, width in (("imdb_tiny", 32), ("imdb_small", 256)):
        config = BiLMConfig.from_options(load_options(preset))
        assert config.output_dim == width and config.n_layers == 2 and config.use_skip_connections
    original = BiLMConfig.from_options(load_options("elmo_2x4096_512_2048cnn_2xhighway"))
    assert (original.n_filters, original.projection_dim, original.lstm_dim) == (2048, 512, 4096)
    assert (original.n_highway, original.n_characters, original.max_characters_per_token) == (2, 262, 50)
    assert original.output_dim == 1024


def test_smallest_published_model_runs_with_random_weights():
    options = load_options(SHIPPED_OPTIONS["elmo_2x1024_128_2048cnn_1xhighway"])
    bilm = BiLM(options, random_weights(BiLMConfig.from_options(options)))
    out = bilm(*pad_batch([["hello", "world"]]))
    assert out["elmo"].shape == (1, 2, 256) and out["word_emb"].shape == (1, 2, 128)


# ----------------------------------------------------------------------------------- weight files


def test_random_weight_file_round_trips(tmp_path, small_bilm):
    path = write_random_weights(SMALL_OPTIONS, tmp_path / "weights.hdf5", seed=1)
    with h5py.File(path, "r") as f:
        assert f["char_embed"].shape == (261, 4)
        assert f["RNN_1/RNN/MultiRNNCell/Cell1/LSTMCell/W_0"].shape == (32, 256)
    options_path = tmp_path / "options.json"
    options_path.write_text(json.dumps(SMALL_OPTIONS))
    loaded = load_bilm(options_path, path)
    batch = pad_batch([["round", "trip"]])
    np.testing.assert_array_equal(loaded(*batch)["elmo"], small_bilm(*batch)["elmo"])


def test_wrong_shapes_name_the_dataset_and_both_shapes(tmp_path):
    config = BiLMConfig.from_options(SMALL_OPTIONS)
    path = write_random_weights(SMALL_OPTIONS, tmp_path / "weights.hdf5")
    wider = {**SMALL_OPTIONS, "lstm": {**SMALL_OPTIONS["lstm"], "dim": 128}}
    with pytest.raises(ValueError, match=r"RNN_0/RNN/MultiRNNCell/Cell0/LSTMCell/W_0.*\(32, 256\).*\(32, 512\)"):
        read_weights(path, BiLMConfig.from_options(wider))

    weights = random_weights(config)
    del weights["CNN_proj/b_proj"]
    with pytest.raises(ValueError, match="CNN_proj/b_proj"):
        BiLM(SMALL_OPTIONS, weights)


def test_bad_options_are_reported():
    with pytest.raises(ValueError, match="activation"):
        BiLMConfig.from_options({**SMALL_OPTIONS, "char_cnn": {**SMALL_OPTIONS["char_cnn"], "activation": "gelu"}})
    with pytest.raises(ValueError, match="lstm"):
        BiLMConfig.from_options({"char_cnn": SMALL_OPTIONS["char_cnn"]})


@pytest.mark.parametrize("name", ["bilm-tf", "allennlp"])
def test_a_token_spelled_like_a_sentence_marker_reads_as_the_marker(name):
    """bilm-tf's UnicodeCharsVocabulary and allennlp's ELMoCharacterMapper give `<S>` and `</S>`
    the markers' character ids, whatever their position; so does the project's biLM."""
    from elmo_imdb.bilm.chars import marker_char_ids, word_char_ids
    from elmo_imdb.bilm.token_cache import TokenEmbeddingCache

    ids = word_char_ids(tf.constant(["<S>", "</S>", "<s>", "S"]))
    np.testing.assert_array_equal(ids[0], marker_char_ids(BOS_CHAR, 50))
    np.testing.assert_array_equal(ids[1], marker_char_ids(EOS_CHAR, 50))
    assert ids[2, 1] == ord("<") + 1 and ids[3, 1] == ord("S") + 1  # other spellings stay words
    folder = _fixture(name)
    bilm = load_bilm(folder / "options.json", folder / "lm_weights.hdf5")
    rows = TokenEmbeddingCache(bilm).embed(np.array([["a", "<S>", "</S>"]], dtype=object), np.array([3]))
    # The same character ids give the same vector but for float rounding: the marker rows and the
    # token rows go through the character CNN in batches of different shapes, and on some CPUs
    # (CI, 2026-12-06) a batch's shape changes the last bit of a matmul.
    np.testing.assert_allclose(rows[0, 2], rows[0, 0], rtol=1e-6, atol=1e-6)  # the token <S> is the sentence start
    np.testing.assert_allclose(rows[0, 3], rows[0, 4], rtol=1e-6, atol=1e-6)  # the token </S> is the sentence end
    word_emb = bilm(*pad_batch([["a", "<S>", "</S>"]]))["word_emb"][0]
    np.testing.assert_allclose(word_emb[1], rows[0, 0], atol=1e-6)

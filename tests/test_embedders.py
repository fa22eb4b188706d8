"""Loading ELMo: the TF-Hub path and the native biLM path, and what happens when either is wrong."""

import json
import re

import numpy as np
import pytest
import tensorflow as tf

from hub_fixtures import TINY_HUB_OPTIONS

from elmo_imdb.bilm import write_random_weights
from elmo_imdb.embedders import BilmElmo, ElmoLoadError, HubElmo, load_embedder


def save_module(path, signatures):
    module = tf.Module()
    tf.saved_model.save(module, str(path), signatures=signatures)
    return str(path)


def fake_tokens_signature(width):
    @tf.function(input_signature=[tf.TensorSpec([None, None], tf.string), tf.TensorSpec([None], tf.int32)])
    def tokens(tokens, sequence_len):
        shape = tf.shape(tokens)
        return {"elmo": tf.zeros([shape[0], shape[1], width]), "sequence_len": sequence_len}

    return tokens


def test_hub_and_native_paths_give_the_same_vectors(tmp_path, tiny_hub_module):
    tokens = np.array([["A", "fine", "film", "."], ["Bad", "!", "", ""]], dtype=object)
    lengths = np.array([4, 2])
    hub_vectors = HubElmo(str(tiny_hub_module), "elmo")(tokens, lengths)
    assert hub_vectors.shape == (2, 4, 1024)
    assert not hub_vectors[1, 2:].any() and np.abs(hub_vectors[1, :2]).max() > 0

    options = tmp_path / "options.json"
    options.write_text(json.dumps(TINY_HUB_OPTIONS))
    write_random_weights(TINY_HUB_OPTIONS, tmp_path / "weights.hdf5", seed=0)  # the module's weights
    native = load_embedder(str(tmp_path), "elmo")  # a folder with options.json + weights.hdf5
    assert isinstance(native, BilmElmo) and isinstance(load_embedder(str(tiny_hub_module), "elmo"), HubElmo)
    np.testing.assert_allclose(native(tokens, lengths), hub_vectors, atol=1e-5)
    assert re.fullmatch(r"bilm:options.json:sha256=[0-9a-f]{64}:weights.hdf5:sha256=[0-9a-f]{64}", native.identity)


def test_output_layers_stacks_the_three_biLM_layers_whose_plain_mean_is_elmo(tiny_hub_module):
    import tensorflow_hub as hub

    from elmo_imdb.embedders import vector_shape
    from elmo_imdb.layers import ScalarMix

    tokens = np.array([["A", "fine", "film", "."], ["Bad", "!", "", ""]], dtype=object)
    lengths = np.array([4, 2])
    embedder = HubElmo(str(tiny_hub_module), "layers")
    layers = embedder(tokens, lengths)
    assert layers.shape == (2, 4, 3, 1024) and vector_shape(embedder) == (3, 1024)
    module = hub.load(str(tiny_hub_module)).signatures["tokens"]
    outputs = module(tokens=tf.constant(tokens.astype(str)), sequence_len=tf.constant(lengths, tf.int32))
    word_emb = outputs["word_emb"].numpy()
    np.testing.assert_array_equal(layers[:, :, 0], np.concatenate([word_emb, word_emb], axis=-1))
    np.testing.assert_array_equal(layers[:, :, 1], outputs["lstm_outputs1"].numpy())
    np.testing.assert_array_equal(layers[:, :, 2], outputs["lstm_outputs2"].numpy())
    assert not layers[1, 2:].any() and np.abs(layers[1, :2]).max(axis=-1).min() > 0  # every layer of every real token
    # TF-Hub's `elmo` is the layers mixed with its initial weights; so is a fresh ScalarMix.
    elmo = HubElmo(str(tiny_hub_module), "elmo")(tokens, lengths)
    np.testing.assert_allclose(layers.mean(axis=2), elmo, atol=1e-6)
    np.testing.assert_allclose(ScalarMix()(layers).numpy(), elmo, atol=1e-6)


def test_a_missing_handle_says_how_to_use_a_local_copy(tmp_path):
    with pytest.raises(ElmoLoadError, match=r"(?s)cannot load the ELMo module .*set embed.published in params.yaml to that local directory"):
        HubElmo(str(tmp_path / "nowhere"), "elmo")


def test_a_module_without_the_tokens_signature_is_refused(tmp_path):
    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def default(strings):
        return {"default": tf.zeros([tf.shape(strings)[0], 1024])}

    handle = save_module(tmp_path / "m", {"default": default})
    with pytest.raises(ElmoLoadError, match=r"has no `tokens` signature \(it has: default\)"):
        HubElmo(handle, "elmo")


def test_a_module_of_the_wrong_width_is_refused(tmp_path):
    handle = save_module(tmp_path / "m", {"tokens": fake_tokens_signature(16)})
    with pytest.raises(ElmoLoadError, match="returns elmo vectors of width 16, not 1024"):
        HubElmo(handle, "elmo")
    with pytest.raises(ElmoLoadError, match="has no output 'lstm_outputs1'"):
        HubElmo(handle, "lstm_outputs1")
    with pytest.raises(ElmoLoadError, match="has no output 'word_emb'"):
        HubElmo(handle, "layers")


def test_weights_that_do_not_fit_their_options_are_refused(tmp_path):
    options = tmp_path / "options.json"
    options.write_text(json.dumps(TINY_HUB_OPTIONS))
    smaller = json.loads(json.dumps(TINY_HUB_OPTIONS))
    smaller["lstm"]["dim"] = 64
    weights = write_random_weights(smaller, tmp_path / "weights.hdf5")
    with pytest.raises(ElmoLoadError, match=r"cannot build the biLM .* has shape .* but the options require"):
        BilmElmo(str(options), str(weights), "elmo")


def test_a_weights_folder_without_its_options_says_what_is_missing(tmp_path):
    write_random_weights(TINY_HUB_OPTIONS, tmp_path / "weights.hdf5")
    with pytest.raises(ElmoLoadError, match=re.escape(f"{tmp_path / 'options.json'} does not exist")):
        load_embedder(str(tmp_path), "elmo")


# ------------------------------------------------------- the TF1 Hub format google/elmo/3 is served in


@pytest.fixture(scope="module")
def tf1_module(tmp_path_factory):
    from hub_fixtures import build_tf1_hub_module

    return build_tf1_hub_module(tmp_path_factory.mktemp("tf1") / "elmo3_like")


def test_a_tf1_hub_format_module_loads_with_elmo3s_signatures(tf1_module):
    import tensorflow_hub as hub

    module = hub.load(str(tf1_module))
    assert module._is_hub_module_v1 and set(module.signatures) == {"tokens", "default"}
    tokens = tf.constant([["A", "fine", "film", "."], ["Bad", "!", "", ""]])
    outputs = module.signatures["tokens"](tokens=tokens, sequence_len=tf.constant([4, 2]))
    assert {name: tuple(value.shape) for name, value in outputs.items()} == {
        "elmo": (2, 4, 1024), "lstm_outputs1": (2, 4, 1024), "lstm_outputs2": (2, 4, 1024),
        "word_emb": (2, 4, 512), "default": (2, 1024), "sequence_len": (2,),
    }
    sentences = module.signatures["default"](strings=tf.constant(["A fine film .", "Bad !"]))
    np.testing.assert_allclose(sentences["elmo"], outputs["elmo"], atol=1e-6)  # split on whitespace


@pytest.mark.parametrize("output, shape", [("elmo", (2, 4, 1024)), ("layers", (2, 4, 3, 1024))])
def test_the_hub_path_runs_a_tf1_hub_format_module(tf1_module, output, shape):
    tokens = np.array([["A", "fine", "film", "."], ["Bad", "!", "", ""]], dtype=object)
    embedder = load_embedder(str(tf1_module), output)
    assert isinstance(embedder, HubElmo) and embedder.identity == f"hub:{tf1_module}"
    vectors = embedder(tokens, np.array([4, 2]))
    assert vectors.shape == shape and not vectors[1, 2:].any() and np.abs(vectors[1, :2]).min() > 0
    if output == "layers":
        np.testing.assert_allclose(vectors.mean(axis=2), HubElmo(str(tf1_module), "elmo")(tokens, np.array([4, 2])), atol=1e-6)


def test_a_tf1_hub_format_module_of_the_wrong_width_is_refused(tmp_path):
    from hub_fixtures import build_tf1_hub_module

    module = build_tf1_hub_module(tmp_path / "narrow", width=16)
    with pytest.raises(ElmoLoadError, match="returns elmo vectors of width 16, not 1024"):
        load_embedder(str(module), "elmo")
    with pytest.raises(ElmoLoadError, match="returns layers vectors of width 16, not 1024"):
        load_embedder(str(module), "layers")

"""The biLM exported as a TF-Hub-compatible SavedModel (the stand-in for google/elmo/3)."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_hub as hub

from hub_fixtures import TINY_HUB_OPTIONS, build_tiny_hub_module

from elmo_imdb.bilm import BiLM, BiLMConfig, random_weights

SEED = 3
OUTPUTS = {
    "elmo": ([None, None, 1024], tf.float32),
    "lstm_outputs1": ([None, None, 1024], tf.float32),
    "lstm_outputs2": ([None, None, 1024], tf.float32),
    "word_emb": ([None, None, 512], tf.float32),
    "default": ([None, 1024], tf.float32),
    "sequence_len": ([None], tf.int32),
}


@pytest.fixture(scope="module")
def hub_module(tmp_path_factory):
    return hub.load(str(build_tiny_hub_module(tmp_path_factory.mktemp("tiny_elmo"), seed=SEED)))


@pytest.fixture(scope="module")
def native_bilm():
    return BiLM(TINY_HUB_OPTIONS, random_weights(BiLMConfig.from_options(TINY_HUB_OPTIONS), SEED))


def _specs(structure) -> dict[str, tuple[list, tf.DType]]:
    return {name: (spec.shape.as_list(), spec.dtype) for name, spec in structure.items()}


def test_signatures_match_google_elmo_3(hub_module):
    tokens = hub_module.signatures["tokens"]
    assert _specs(tokens.structured_input_signature[1]) == {
        "tokens": ([None, None], tf.string),
        "sequence_len": ([None], tf.int32),
    }
    assert _specs(tokens.structured_outputs) == OUTPUTS
    default = hub_module.signatures["default"]
    assert _specs(default.structured_input_signature[1]) == {"strings": ([None], tf.string)}
    assert _specs(default.structured_outputs) == OUTPUTS


def test_exported_module_equals_native_model(hub_module, native_bilm):
    tokens = tf.constant([["the", "movie", "was", "great"], ["awful", "", "", ""]])
    sequence_len = tf.constant([4, 1])
    exported = hub_module.signatures["tokens"](tokens=tokens, sequence_len=sequence_len)
    native = native_bilm(tokens, sequence_len)
    for name in ("elmo", "lstm_outputs1", "lstm_outputs2", "word_emb", "default"):
        assert exported[name].shape == native[name].shape, name
        np.testing.assert_allclose(exported[name], native[name], atol=1e-5, err_msg=name)
    np.testing.assert_array_equal(exported["sequence_len"], sequence_len)


def test_default_signature_splits_on_whitespace(hub_module):
    by_strings = hub_module.signatures["default"](strings=tf.constant(["the movie  was\tgreat", "awful"]))
    by_tokens = hub_module.signatures["tokens"](
        tokens=tf.constant([["the", "movie", "was", "great"], ["awful", "", "", ""]]),
        sequence_len=tf.constant([4, 1]),
    )
    np.testing.assert_array_equal(by_strings["sequence_len"], [4, 1])
    for name in ("elmo", "default"):
        np.testing.assert_allclose(by_strings[name], by_tokens[name], atol=1e-6, err_msg=name)

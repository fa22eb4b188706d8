"""Export a :class:`BiLM` as a TF2 SavedModel with the signatures of TF-Hub's ``google/elmo/3``.

Code written against the hub module (``hub.load(handle).signatures["tokens"](tokens=...,
sequence_len=...)``) then runs unchanged on the project's own biLM, and tests can stand in a
tiny random module (:func:`build_tiny_hub_module`) for the 360 MB download.

Signatures:

* ``tokens``: inputs ``tokens`` [B, T] string (padding "" at the end of rows) and
  ``sequence_len`` [B] int32;
* ``default``: input ``strings`` [B] string, each a sentence split on whitespace;

both returning ``elmo``, ``lstm_outputs1``, ``lstm_outputs2`` [B, T, 2 * projection_dim],
``word_emb`` [B, T, projection_dim], ``default`` [B, 2 * projection_dim] float32 and
``sequence_len`` [B] int32.
"""

from __future__ import annotations

from pathlib import Path

import tensorflow as tf

from .config import BiLMConfig
from .model import BiLM
from .weights import random_weights

#: A biLM with google/elmo/3's output widths (word_emb 512, layers 1024) but a small char CNN
#: and 128-unit LSTM cells, so it builds and runs in seconds on a CPU. Only for tests.
TINY_HUB_OPTIONS = {
    "char_cnn": {
        "activation": "relu",
        "embedding": {"dim": 4},
        "filters": [[1, 8], [2, 8], [3, 16], [4, 32]],
        "n_highway": 1,
        "n_characters": 262,
        "max_characters_per_token": 50,
    },
    "lstm": {
        "dim": 128,
        "projection_dim": 512,
        "n_layers": 2,
        "cell_clip": 3,
        "proj_clip": 3,
        "use_skip_connections": True,
    },
}


def export_hub_module(bilm: BiLM, export_dir: str | Path) -> Path:
    """Write ``bilm`` as a SavedModel with ``tokens`` and ``default`` signatures; return its path."""

    @tf.function(
        input_signature=[
            tf.TensorSpec([None, None], tf.string, name="tokens"),
            tf.TensorSpec([None], tf.int32, name="sequence_len"),
        ]
    )
    def tokens_signature(tokens, sequence_len):
        return {**bilm(tokens, sequence_len), "sequence_len": sequence_len}

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="strings")])
    def default_signature(strings):
        words = tf.strings.split(strings)  # splits on whitespace, like the hub module
        return tokens_signature(words.to_tensor(default_value=""), tf.cast(words.row_lengths(), tf.int32))

    export_dir = Path(export_dir)
    tf.saved_model.save(
        bilm,
        str(export_dir),
        signatures={"tokens": tokens_signature, "default": default_signature},
    )
    return export_dir


def build_tiny_hub_module(export_dir: str | Path, seed: int = 0) -> Path:
    """Export a random-weight :data:`TINY_HUB_OPTIONS` biLM: a fast stand-in for ``google/elmo/3``."""
    weights = random_weights(BiLMConfig.from_options(TINY_HUB_OPTIONS), seed)
    return export_hub_module(BiLM(TINY_HUB_OPTIONS, weights), export_dir)

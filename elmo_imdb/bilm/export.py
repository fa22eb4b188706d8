"""Export a :class:`BiLM` as a TF2 SavedModel with the signatures of TF-Hub's ``google/elmo/3``.

Code written against the hub module (``hub.load(handle).signatures["tokens"](tokens=...,
sequence_len=...)``) then runs unchanged on the project's own biLM, and the tests stand in a
tiny random one for the 360 MB download (tests/hub_fixtures.py).

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

from .model import BiLM


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


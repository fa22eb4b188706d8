"""Stand-ins for ``google/elmo/3``: the project's biLM at a tiny size with the module's output
widths (:data:`TINY_HUB_OPTIONS`, exported by :func:`build_tiny_hub_module`), and a tiny module
in TF-Hub's *TF1* format with ``google/elmo/3``'s signatures (:func:`build_tf1_hub_module`).

``google/elmo/3`` is not a TF2 SavedModel: it is a TF1 Hub-format module, a TF1 SavedModel with
meta graphs tagged ``[]`` and ``["train"]`` and a ``tfhub_module.pb`` beside it, which
``tensorflow_hub.load`` opens through ``tf.compat.v1.saved_model.load_v2`` with tags ``[]``.
tensorflow_hub 0.16 has no ``create_module_spec`` any more; ``tf.compat.v1``'s SavedModel
builder still writes the format. The TF1 module here has elmo/3's signatures as its documentation
gives them:

* ``tokens``: inputs ``tokens`` [B, T] string, ``sequence_len`` [B] int32;
* ``default``: input ``strings`` [B] string, each a sentence split on whitespace;

both with outputs ``elmo``, ``lstm_outputs1``, ``lstm_outputs2`` [B, T, width], ``word_emb``
[B, T, width / 2], ``default`` [B, width] float32 and ``sequence_len`` [B] int32. Its values
are made of hashed-token lookups (a fixed random table per layer) so that they are cheap,
deterministic and different per token; ``lstm_outputs2`` is the running mean of
``lstm_outputs1``, so it depends on context. Positions past ``sequence_len`` are zero, and
``elmo`` is the plain mean of the three layers, as elmo/3 with its initial weights.

With ``batch_dependent``, ``lstm_outputs2`` (and so ``elmo``) also adds the mean of
``lstm_outputs1`` over the whole padded batch: like ``google/elmo/3``, a review's vectors then
depend on what shares its batch and on the batch's padded width.
"""

from pathlib import Path

import numpy as np
import tensorflow as tf

from elmo_imdb.bilm import BiLM, BiLMConfig, export_hub_module, random_weights

#: A biLM with google/elmo/3's output widths (word_emb 512, layers 1024) but a small char CNN
#: and 128-unit LSTM cells, so it builds and runs in seconds on a CPU.
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


def build_tiny_hub_module(export_dir: str | Path, seed: int = 0) -> Path:
    """Export a random-weight :data:`TINY_HUB_OPTIONS` biLM as a SavedModel with ``google/elmo/3``'s
    TF2 signatures (:func:`elmo_imdb.bilm.export_hub_module`): a fast stand-in for the download."""
    return export_hub_module(BiLM(TINY_HUB_OPTIONS, random_weights(BiLMConfig.from_options(TINY_HUB_OPTIONS), seed)), export_dir)


BUCKETS = 97
MODULE_DEF_FORMAT_V3 = b"\x08\x03"  # tensorflow_hub's ModuleDef proto: field 1 (format) = 3 (FORMAT_V3)


def build_tf1_hub_module(path: Path, width: int = 1024, seed: int = 0, batch_dependent: bool = False) -> Path:
    """Write the module to ``path`` (a new folder) and return ``path``."""
    rng = np.random.default_rng(seed)
    tables = {
        "word_emb": rng.normal(size=(BUCKETS, width // 2)).astype(np.float32),
        "lstm_outputs1": rng.normal(size=(BUCKETS, width)).astype(np.float32),
    }
    graph = tf.Graph()
    with graph.as_default():
        v1 = tf.compat.v1
        tokens = v1.placeholder(tf.string, [None, None], name="tokens")
        sequence_len = v1.placeholder(tf.int32, [None], name="sequence_len")
        strings = v1.placeholder(tf.string, [None], name="strings")
        words = tf.strings.split(strings)
        signatures = {
            "tokens": v1.saved_model.predict_signature_def(
                {"tokens": tokens, "sequence_len": sequence_len}, _outputs(tokens, sequence_len, tables, batch_dependent)
            ),
            "default": v1.saved_model.predict_signature_def(
                {"strings": strings},
                _outputs(words.to_tensor(default_value=""), tf.cast(words.row_lengths(), tf.int32), tables, batch_dependent),
            ),
        }
        with v1.Session(graph=graph) as session:
            builder = v1.saved_model.Builder(str(path))
            builder.add_meta_graph_and_variables(session, [], signature_def_map=signatures)
            builder.add_meta_graph(["train"], signature_def_map=signatures)
            builder.save()
    (Path(path) / "tfhub_module.pb").write_bytes(MODULE_DEF_FORMAT_V3)
    return Path(path)


def _outputs(tokens, sequence_len, tables, batch_dependent):
    mask = tf.sequence_mask(sequence_len, tf.shape(tokens)[1], dtype=tf.float32)[..., tf.newaxis]
    ids = tf.strings.to_hash_bucket_fast(tokens, BUCKETS)
    word_emb = tf.gather(tf.constant(tables["word_emb"]), ids) * mask
    lstm1 = tf.gather(tf.constant(tables["lstm_outputs1"]), ids) * mask
    steps = tf.cast(tf.range(1, tf.shape(tokens)[1] + 1), tf.float32)[tf.newaxis, :, tf.newaxis]
    lstm2 = tf.cumsum(lstm1, axis=1) / steps * mask
    if batch_dependent:
        lstm2 += tf.reduce_mean(lstm1, axis=[0, 1]) * mask
    elmo = (tf.concat([word_emb, word_emb], axis=-1) + lstm1 + lstm2) / 3
    n_real = tf.cast(tf.maximum(sequence_len, 1), tf.float32)[:, tf.newaxis]
    return {
        "elmo": elmo,
        "lstm_outputs1": lstm1,
        "lstm_outputs2": lstm2,
        "word_emb": word_emb,
        "default": tf.reduce_sum(elmo, axis=1) / n_real,
        "sequence_len": sequence_len,
    }

"""The project's own Keras layers, registered so that ``keras.models.load_model`` finds them
once this module is imported (:mod:`elmo_imdb.classifiers` imports it).

- :class:`MeanOverTokens`: the mean of token vectors over real tokens, padding masked by the ids.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="elmo_imdb")
class MeanOverTokens(keras.layers.Layer):
    """``[vectors, ids] -> mean of vectors[b, t]`` over the positions whose id is not padding
    (0); a review without tokens gets zeros. Padding is masked by the ids, not by the vectors,
    so a real token is never mistaken for padding."""

    def call(self, inputs):
        vectors, ids = inputs
        real = keras.ops.expand_dims(keras.ops.cast(keras.ops.not_equal(ids, 0), vectors.dtype), -1)
        count = keras.ops.maximum(keras.ops.sum(real, axis=1), 1.0)
        return keras.ops.sum(vectors * real, axis=1) / count

"""The project's own Keras layers, registered so that ``keras.models.load_model`` finds them
once this module is imported (:mod:`elmo_imdb.classifiers` imports it).

- :class:`MeanOverTokens`: the mean of token vectors over real tokens, padding masked by the ids.
- :class:`ScalarMix`: ELMo's task-specific weighting of its layers (Peters et al. 2018, eq. 1),
  for a feature store that keeps all three ELMo layers.
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


@keras.saving.register_keras_serializable(package="elmo_imdb")
class ScalarMix(keras.layers.Layer):
    """``[B, L, T, D] -> gamma * sum_l softmax(w)_l * x[:, l]``: one learned weight per layer,
    softmax-normalised, and one learned scale. Starts as the plain mean of the layers."""

    def build(self, input_shape):
        self.layer_weights = self.add_weight(shape=(input_shape[1],), initializer="zeros", name="layer_weights")
        self.gamma = self.add_weight(shape=(), initializer="ones", name="gamma")

    def call(self, layers):
        weights = keras.ops.softmax(self.layer_weights)
        return self.gamma * keras.ops.einsum("l,bltd->btd", weights, layers)

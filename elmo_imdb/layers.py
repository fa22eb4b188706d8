"""The project's own Keras layers, registered so that ``keras.models.load_model`` finds them
once this module is imported (:mod:`elmo_imdb.classifiers` imports it).

- :class:`MeanAndMaxOverTokens`: the mean and the max of token vectors over real tokens, padding masked by the ids.
- :class:`ScalarMix`: ELMo's task-specific weighting of the biLM layers.
"""

from __future__ import annotations

import keras


@keras.saving.register_keras_serializable(package="elmo_imdb")
class MeanAndMaxOverTokens(keras.layers.Layer):
    """``[vectors [B, T, D], ids [B, T]] -> [mean, max] [B, 2 D]``: the mean and the
    element-wise max of the vectors over the positions whose id is not padding (0), concatenated
    ("concat pooling", as ULMFiT pools a language model's states for a classifier). Padding is
    masked by the ids, not by the vectors, so a real token is never mistaken for padding, nor a
    short review diluted towards zero; a review without tokens gets zeros."""

    def call(self, inputs):
        vectors, ids = inputs
        real = keras.ops.expand_dims(keras.ops.not_equal(ids, 0), -1)
        count = keras.ops.maximum(keras.ops.sum(keras.ops.cast(real, vectors.dtype), axis=1), 1.0)
        mean = keras.ops.sum(keras.ops.where(real, vectors, 0.0), axis=1) / count
        highest = keras.ops.max(keras.ops.where(real, vectors, float("-inf")), axis=1)
        highest = keras.ops.where(keras.ops.any(real, axis=1), highest, 0.0)
        return keras.ops.concatenate([mean, highest], axis=-1)

    def compute_output_shape(self, input_shape):
        vectors_shape, _ = input_shape
        return (vectors_shape[0], 2 * vectors_shape[-1])


@keras.saving.register_keras_serializable(package="elmo_imdb")
class ScalarMix(keras.layers.Layer):
    """``[B, T, L, D]`` layers of each token -> ``gamma * sum_j softmax(w)_j * layer_j``, ``[B, T, D]``.

    The task-specific combination of the biLM layers of the ELMo paper (Peters et al., 2018,
    eq. 1): ``w`` (one weight per layer) and the scale ``gamma`` are learned with the
    classifier. They start at ``w = 0`` and ``gamma = 1``, the plain average of the layers,
    which is also what TF-Hub's ``elmo`` output computes with its initial weights.
    """

    def build(self, input_shape):
        self.layer_weights = self.add_weight(shape=(input_shape[-2],), initializer="zeros", name="layer_weights")
        self.gamma = self.add_weight(shape=(), initializer="ones", name="gamma")

    def call(self, layers):
        weights = keras.ops.softmax(self.layer_weights)[:, None]
        return self.gamma * keras.ops.sum(layers * keras.ops.cast(weights, layers.dtype), axis=-2)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-2], input_shape[-1])


import keras
import numpy as np

from elmo_imdb.layers import MeanOverTokens


def test_mean_over_tokens_ignores_left_padding():
    ids = np.array([[0, 0, 5, 7], [0, 0, 0, 0]], dtype=np.int32)
    vectors = np.array([[[9.0], [9.0], [1.0], [3.0]], [[4.0], [4.0], [4.0], [4.0]]], dtype=np.float32)
    mean = keras.ops.convert_to_numpy(MeanOverTokens()([vectors, ids]))
    np.testing.assert_allclose(mean, [[2.0], [0.0]])  # padding ignored even where not zero; no tokens -> 0

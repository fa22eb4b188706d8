import keras
import numpy as np

from elmo_imdb.layers import MeanOverTokens, ScalarMix


def test_mean_over_tokens_ignores_left_padding():
    ids = np.array([[0, 0, 5, 7], [0, 0, 0, 0]], dtype=np.int32)
    vectors = np.array([[[9.0], [9.0], [1.0], [3.0]], [[4.0], [4.0], [4.0], [4.0]]], dtype=np.float32)
    mean = keras.ops.convert_to_numpy(MeanOverTokens()([vectors, ids]))
    np.testing.assert_allclose(mean, [[2.0], [0.0]])  # padding ignored even where not zero; no tokens -> 0


def test_scalar_mix_starts_as_the_mean_and_weights_layers_by_softmax(tmp_path):
    layers = np.random.default_rng(0).normal(size=(2, 3, 4, 5)).astype(np.float32)  # [B, L, T, D]
    mix = ScalarMix()
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mix(layers)), layers.mean(axis=1), rtol=1e-5, atol=1e-6)

    mix.set_weights([np.array([0.0, np.log(3.0), 0.0], np.float32), np.array(2.0, np.float32)])
    expected = 2.0 * (0.2 * layers[:, 0] + 0.6 * layers[:, 1] + 0.2 * layers[:, 2])
    np.testing.assert_allclose(keras.ops.convert_to_numpy(mix(layers)), expected, rtol=1e-5, atol=1e-6)

    inputs = keras.Input((3, 4, 5))
    model = keras.Model(inputs, mix(inputs))
    model.save(tmp_path / "mix.keras")
    reloaded = keras.models.load_model(tmp_path / "mix.keras")
    np.testing.assert_allclose(reloaded.predict(layers, verbose=0), expected, rtol=1e-5, atol=1e-6)

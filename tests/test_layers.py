import keras
import numpy as np

from elmo_imdb.classifiers import build_classifier
from elmo_imdb.layers import MeanAndMaxOverTokens
from elmo_imdb.params import TrainParams


def test_mean_and_max_over_tokens_ignore_left_padding():
    ids = np.array([[0, 0, 5, 7], [0, 0, 0, 0], [0, 3, 3, 3]], dtype=np.int32)
    vectors = np.array([[[9.0, -9.0], [9.0, -9.0], [1.0, -4.0], [3.0, -2.0]],
                        [[4.0, 4.0], [4.0, 4.0], [4.0, 4.0], [4.0, 4.0]],
                        [[0.0, 0.0], [-1.0, -5.0], [-3.0, -6.0], [-2.0, -7.0]]], dtype=np.float32)
    pooled = keras.ops.convert_to_numpy(MeanAndMaxOverTokens()([vectors, ids]))
    # [mean | max]: padding ignored even where not zero (and larger than every real value); no tokens -> zeros
    np.testing.assert_allclose(pooled, [[2.0, -3.0, 3.0, -2.0], [0.0, 0.0, 0.0, 0.0], [-2.0, -6.0, -1.0, -5.0]])
    assert MeanAndMaxOverTokens().compute_output_shape(((None, 4, 2), (None, 4))) == (None, 4)


def test_pooled_reads_the_embedding_in_both_variants_and_elmo_is_its_only_difference():
    train = TrainParams(embedding_dim=6, learning_rate=1e-3, batch_size=2, epochs=1, patience=0)
    base = build_classifier("pooled", {}, train, maxlen=4, vocab_size=10, elmo_shape=None)
    elmo = build_classifier("pooled", {}, train, maxlen=4, vocab_size=10, elmo_shape=(5,))
    assert base.get_layer("embedding").output.shape[-1] == 6 and elmo.get_layer("embedding").output.shape[-1] == 6
    assert base.get_layer("positive").kernel.shape == (2 * 6, 1)  # mean and max of the Embedding
    assert elmo.get_layer("positive").kernel.shape == (2 * (6 + 5), 1)  # of the Embedding next to ELMo
    assert "elmo_scale_norm" not in [layer.name for layer in base.layers]


def test_scale_norm_gives_every_vector_the_learned_norm_and_keeps_padding_zero(tmp_path):
    from elmo_imdb.layers import ScaleNorm

    x = np.array([[[3.0, 4.0], [0.0, 0.0], [-30.0, 40.0]]], dtype=np.float32)
    layer = ScaleNorm(0.5)
    y = keras.ops.convert_to_numpy(layer(x))
    np.testing.assert_allclose(y, [[[0.3, 0.4], [0.0, 0.0], [-0.3, 0.4]]], atol=1e-6)
    assert [w.name for w in layer.trainable_weights] == ["g"]
    model = keras.Sequential([keras.Input((3, 2)), ScaleNorm(0.5, name="s")])
    model.get_layer("s").g.assign(2.0)
    model.save(tmp_path / "m.keras")
    loaded = keras.models.load_model(tmp_path / "m.keras")  # registered, its initial norm and learned g kept
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(x)), 4 * y, atol=1e-5)
    assert loaded.get_layer("s").initial_norm == 0.5


def test_elmo_enters_at_the_norm_of_an_initial_embedding_row():
    train = TrainParams(embedding_dim=300, learning_rate=1e-3, batch_size=2, epochs=1, patience=0)
    model = build_classifier("cnn", {"filters": 2, "kernel_size": 3, "hidden_units": 2, "dropout": 0.0}, train,
                             maxlen=4, vocab_size=50, elmo_shape=(8,))
    ids = np.array([[0, 3, 7, 9]], dtype=np.int32)
    elmo = np.zeros((1, 4, 8), np.float32)
    elmo[0, 1:] = np.random.default_rng(0).normal(0, 5, (3, 8))  # about the IMDB biLM's scale
    concatenated = keras.Model(model.inputs, model.get_layer("embedding_and_elmo").output)([ids, elmo])
    parts = keras.ops.convert_to_numpy(concatenated)[0]
    embedding_norms = np.linalg.norm(model.get_layer("embedding").get_weights()[0], axis=1)
    np.testing.assert_allclose(np.linalg.norm(parts[1:, 300:], axis=1), 0.5, rtol=1e-5)  # 0.05 * sqrt(300 / 3)
    assert abs(embedding_norms.mean() - 0.5) < 0.02 and not parts[0, 300:].any()  # padding stays zero

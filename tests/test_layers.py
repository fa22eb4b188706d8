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


def test_elmo_enters_as_cached_next_to_the_embedding_of_the_same_token():
    train = TrainParams(embedding_dim=6, learning_rate=1e-3, batch_size=2, epochs=1, patience=0)
    model = build_classifier("cnn", {"filters": 2, "kernel_size": 3, "hidden_units": 2, "dropout": 0.0}, train,
                             maxlen=4, vocab_size=50, elmo_shape=(8,))
    ids = np.array([[0, 3, 7, 9]], dtype=np.int32)
    elmo = np.zeros((1, 4, 8), np.float32)
    elmo[0, 1:] = np.random.default_rng(0).normal(0, 5, (3, 8))  # about the IMDB biLM's scale
    concatenated = keras.ops.convert_to_numpy(keras.Model(model.inputs, model.get_layer("embedding_and_elmo").output)([ids, elmo]))
    table = model.get_layer("embedding").get_weights()[0]
    np.testing.assert_allclose(concatenated[0, :, :6], table[ids[0]])  # each position's own Embedding row
    np.testing.assert_array_equal(concatenated[0, :, 6:], elmo[0])  # ELMo unchanged, padding still zero
    assert 0.04 < np.abs(table).max() <= 0.05  # Keras' default initialiser, uniform(-0.05, 0.05)

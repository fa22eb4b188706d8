"""The biLM's LSTM (elmo_imdb/bilm/lstm.py): the training version's hand-written gradient
against TensorFlow's own, and its outputs against the inference version's.

The reference is the cell written out step by step in eager mode, differentiated by
``GradientTape``: every gradient the training step uses (inputs, both initial states, the four
weights) must agree, with clipping active in both places, rows of different lengths (steps
after a row's end must pass its state through untouched) and a loss on the final states.
"""

import numpy as np
import pytest
import tensorflow as tf

from elmo_imdb.bilm.lstm import LSTMCellWeights, projected_lstm, trainable_projected_lstm

S, D, H, P = 9, 6, 8, 4
LENGTHS = [S, 1, 4, S - 1, 6]  # time_chunk 4 does not divide S: the last chunk is short


def reference_lstm(cell, inputs, lengths, c, h, cell_clip, proj_clip):
    """The cell of the module docstring, one step at a time, nothing fused."""
    clip = lambda x, limit: x if limit is None else tf.clip_by_value(x, -limit, limit)  # noqa: E731
    outputs = []
    for t in range(inputs.shape[1]):
        z = tf.matmul(inputs[:, t], cell.kernel_x) + cell.bias + tf.matmul(h, cell.kernel_h)
        i, j, f, o = tf.split(z, 4, axis=-1)
        new_c = clip(tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(j), cell_clip)
        new_h = clip(tf.matmul(tf.sigmoid(o) * tf.tanh(new_c), cell.projection), proj_clip)
        active = (t < lengths)[:, None]
        c, h = tf.where(active, new_c, c), tf.where(active, new_h, h)
        outputs.append(tf.where(active, new_h, 0.0))
    return tf.stack(outputs, axis=1), c, h


def random_case(seed, lengths=LENGTHS):
    rng = np.random.default_rng(seed)
    B = len(lengths)
    tensor = lambda *shape, scale=1.0: tf.constant(rng.normal(0, scale, shape).astype(np.float32))  # noqa: E731
    cell = LSTMCellWeights(tensor(D, 4 * H, scale=0.8), tensor(P, 4 * H, scale=0.8), tensor(4 * H, scale=0.5),
                           tensor(H, P, scale=0.8))
    lengths = tf.constant(lengths, tf.int32)
    weights = [tensor(B, S, P), tensor(B, H), tensor(B, P)]  # what the loss weighs each output with
    return cell, tensor(B, S, D), lengths, tensor(B, H, scale=0.5), tensor(B, P, scale=0.5), weights


@pytest.mark.parametrize(
    "clips, lengths",
    [((0.7, 0.3), LENGTHS), ((None, None), LENGTHS), ((0.7, 0.3), [S])],
    ids=["clipped", "unclipped", "one-full-row"],
)
def test_outputs_and_gradients_match_tensorflows_own(clips, lengths):
    cell, inputs, lengths, c0, h0, loss_weights = random_case(seed=0, lengths=lengths)

    def loss_and_gradients(lstm):
        differentiated = [inputs, c0, h0, *cell]
        with tf.GradientTape() as tape:
            tape.watch(differentiated)
            outputs = lstm(cell, inputs, lengths, c0, h0)
            loss = sum(tf.reduce_sum(w * x) for w, x in zip(loss_weights, outputs))
        return outputs, tape.gradient(loss, differentiated)

    ours, our_gradients = loss_and_gradients(lambda *a: trainable_projected_lstm(*a, *clips, time_chunk=4))
    theirs, their_gradients = loss_and_gradients(lambda *a: reference_lstm(*a, *clips))
    inference = projected_lstm(cell, inputs, lengths, c0, h0, *clips, time_chunk=4)
    for x, y, z in zip(ours, theirs, inference):
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=1e-6)
        np.testing.assert_array_equal(x.numpy(), z.numpy())  # one forward loop, two entry points
    names = ["inputs", "cell_state", "output_state", *LSTMCellWeights._fields]
    for name, x, y in zip(names, our_gradients, their_gradients):
        assert np.abs(y.numpy()).max() > 1e-3, f"{name}: the case does not exercise this gradient"
        np.testing.assert_allclose(x.numpy(), y.numpy(), atol=2e-5, rtol=1e-4, err_msg=name)
    if clips[0] is not None:  # the case must clip, or the masks go untested
        assert np.abs(ours[0].numpy()).max() == pytest.approx(clips[1])


def test_rows_past_their_length_get_no_gradient():
    cell, inputs, lengths, c0, h0, _ = random_case(seed=1)
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs, _, _ = trainable_projected_lstm(cell, inputs, lengths, c0, h0, 3.0, 3.0, time_chunk=4)
        loss = tf.reduce_sum(outputs)
    d_inputs = tape.gradient(loss, inputs).numpy()
    for row, n in enumerate(lengths.numpy()):
        assert np.all(d_inputs[row, n:] == 0.0)
        assert np.all(np.abs(d_inputs[row, :n]).max(axis=-1) > 0.0)


def test_gradient_inside_a_compiled_function_equals_eager():
    cell, inputs, lengths, c0, h0, _ = random_case(seed=2)

    def gradient(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(trainable_projected_lstm(cell, inputs, lengths, c0, h0, 3.0, 3.0, time_chunk=3)[0] ** 2)
        return tape.gradient(loss, inputs)

    compiled = tf.function(gradient, input_signature=[tf.TensorSpec([None, None, None], tf.float32)])  # as the biLM traces
    np.testing.assert_array_equal(compiled(inputs).numpy(), gradient(inputs).numpy())

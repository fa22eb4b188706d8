"""One direction of one biLM layer: a TF1 ``LSTMCell`` with ``num_proj``, and its gradient.

The cell (gate order i, j, f, o as TF1's ``LSTMCell``; the forget bias already folded into
``bias``) at step ``t``, with ``x_t`` [B, D], state ``(c, h)`` [B, H], [B, P]::

    z = x_t @ kernel_x + bias + h @ kernel_h              # [B, 4H]
    c' = clip(sigmoid(f) * c + sigmoid(i) * tanh(j), cell_clip)
    h' = clip((sigmoid(o) * tanh(c')) @ projection, proj_clip)

Rows stop at their length: from step ``lengths[b]`` on, row b keeps its state and outputs
zeros, like TF1's ``dynamic_rnn`` with ``sequence_length``.

Two entry points with the same outputs: :func:`projected_lstm` for inference (it keeps
nothing it does not return), and :func:`trainable_projected_lstm` for training, with a
hand-written gradient. Why: TensorFlow differentiates a ``while_loop`` by pushing every
intermediate of every step on a stack and popping them one by one in a loop of small ops;
for the biLM's LSTMs that backward pass took about 6x the forward one, most of a pretraining
step. The trainable version's forward loop keeps each step's gate pre-activations [B, 4H],
cell state [B, H] and unclipped output [B, P]; its backward pass computes the per-step
factors of the chain rule for all steps at once, runs a loop that does only what is
sequential (two [B, .] matmuls per step, as the forward loop), and forms the weight and input
gradients as single matmuls over all steps and rows. It equals TensorFlow's own gradient up
to float rounding (tests/test_lstm.py).
"""

from __future__ import annotations

from typing import NamedTuple

import tensorflow as tf


class LSTMCellWeights(NamedTuple):
    """One direction of one LSTM layer (a TF1 ``LSTMCell`` with ``num_proj``)."""

    kernel_x: tf.Variable  # [input_dim, 4 * lstm_dim]: the input rows of W_0
    kernel_h: tf.Variable  # [projection_dim, 4 * lstm_dim]: the recurrent rows of W_0
    bias: tf.Variable  # [4 * lstm_dim]: B with the forget bias folded in
    projection: tf.Variable  # [lstm_dim, projection_dim]: W_P_0


def _clip(x: tf.Tensor, limit: float | None) -> tf.Tensor:
    return x if limit is None else tf.clip_by_value(x, -limit, limit)


def _inside(x: tf.Tensor, limit: float | None) -> tf.Tensor:
    """1.0 where ``_clip`` lets the gradient through (|x| <= limit, as TF's ClipByValue), else 0.0."""
    return tf.ones_like(x) if limit is None else tf.cast(tf.abs(x) <= limit, x.dtype)


def _matmul_all_steps(x: tf.Tensor, kernel: tf.Tensor) -> tf.Tensor:
    """[S, B, K] @ [K, N] -> [S, B, N] as one matmul with S * B rows."""
    shape = tf.shape(x)
    flat = tf.matmul(tf.reshape(x, [-1, kernel.shape[0]]), kernel)
    return tf.reshape(flat, [shape[0], shape[1], kernel.shape[-1]])


def _rows_of_all_steps(x: tf.Tensor) -> tf.Tensor:
    """[S, B, K] -> [S * B, K]."""
    return tf.reshape(x, [-1, tf.shape(x)[-1]])


class _Record(NamedTuple):
    """What the trainable forward loop keeps of every step (time-major)."""

    gates: tf.Tensor  # [S, B, 4H]: z, before the activations
    cells: tf.Tensor  # [S, B, H]: the cell state after each step
    raw_outputs: tf.Tensor  # [S, B, P]: the projection before proj_clip


def _forward(weights, x, lengths, cell_state, output_state, cell_clip, proj_clip, time_chunk, keep: bool):
    """The loop over time of ``x`` [S, B, D] (time-major). Returns outputs [S, B, P], the final
    cell and output states, and, if ``keep``, the :class:`_Record` of every step."""
    kernel_x, kernel_h, bias, projection = weights
    steps = tf.shape(x)[0]

    def forward_chunk(start, c, h, *arrays):
        stop = tf.minimum(start + time_chunk, steps)
        gates_x = _matmul_all_steps(x[start:stop], kernel_x) + bias

        def step(t, c, h, outputs, *record):
            z = gates_x[t - start] + tf.matmul(h, kernel_h)
            i, j, f, o = tf.split(z, 4, axis=-1)
            new_c = _clip(tf.sigmoid(f) * c + tf.sigmoid(i) * tf.tanh(j), cell_clip)
            raw_h = tf.matmul(tf.sigmoid(o) * tf.tanh(new_c), projection)
            new_h = _clip(raw_h, proj_clip)
            active = (t < lengths)[:, tf.newaxis]
            c, h = tf.where(active, new_c, c), tf.where(active, new_h, h)
            outputs = outputs.write(t, tf.where(active, new_h, 0.0))
            return (t + 1, c, h, outputs, *(a.write(t, v) for a, v in zip(record, (z, c, raw_h))))

        return tf.while_loop(lambda t, *_: t < stop, step, (start, c, h, *arrays))

    arrays = [tf.TensorArray(tf.float32, size=steps) for _ in range(4 if keep else 1)]
    _, final_c, final_h, outputs, *record = tf.while_loop(
        lambda start, *_: start < steps, forward_chunk, (tf.constant(0), cell_state, output_state, *arrays)
    )
    return outputs.stack(), final_c, final_h, _Record(*(a.stack() for a in record)) if keep else None


def projected_lstm(cell: LSTMCellWeights, inputs, lengths, cell_state, output_state,
                   cell_clip: float | None, proj_clip: float | None, time_chunk: int):
    """Run the cell over ``inputs`` [B, S, D] from states (cell [B, H], output [B, P]).

    Returns outputs [B, S, P] (zeros at and after ``lengths`` [B]) and the final cell and
    output states. The input half of the gates is computed ``time_chunk`` steps at a time (one
    matmul with ``time_chunk * B`` rows instead of ``time_chunk`` skinny ones), so only that
    many steps of [B, 4H] pre-activations exist at once. For inference: differentiable, but
    by TensorFlow's slow while-loop gradient (train with :func:`trainable_projected_lstm`).
    """
    weights = [tf.convert_to_tensor(w) for w in cell]  # read once, not at every step
    outputs, final_c, final_h, _ = _forward(
        weights, tf.transpose(inputs, [1, 0, 2]), lengths, cell_state, output_state, cell_clip, proj_clip, time_chunk, keep=False
    )
    return tf.transpose(outputs, [1, 0, 2]), final_c, final_h


def trainable_projected_lstm(cell: LSTMCellWeights, inputs, lengths, cell_state, output_state,
                             cell_clip: float | None, proj_clip: float | None, time_chunk: int):
    """:func:`projected_lstm`'s outputs, with the fast gradient of the module docstring with
    respect to the inputs, the states and the four weights. Keeps [S, B, 4H + H + P] floats per
    call until the gradient is taken."""

    @tf.custom_gradient
    def run(inputs, cell_state, output_state, kernel_x, kernel_h, bias, projection):
        x = tf.transpose(inputs, [1, 0, 2])  # [S, B, D]
        steps = tf.shape(x)[0]
        weights = kernel_x, kernel_h, bias, projection
        outputs, final_c, final_h, record = _forward(
            weights, x, lengths, cell_state, output_state, cell_clip, proj_clip, time_chunk, keep=True
        )

        def gradient(d_outputs, d_final_c, d_final_h):
            # What every step saw, for all steps at once: previous states, gates, cell.
            h_prev = tf.concat([output_state[tf.newaxis], outputs[:-1]], axis=0)  # right while active
            c_prev = tf.concat([cell_state[tf.newaxis], record.cells[:-1]], axis=0)
            i, j, f, o = tf.split(record.gates, 4, axis=-1)
            i, j, f, o = tf.sigmoid(i), tf.tanh(j), tf.sigmoid(f), tf.sigmoid(o)
            raw_c = f * c_prev + i * j
            tanh_c = tf.tanh(_clip(raw_c, cell_clip))
            m = o * tanh_c
            active = tf.cast(tf.transpose(tf.sequence_mask(lengths, steps)), tf.float32)[..., tf.newaxis]  # [S, B, 1]
            # Per-step factors of the chain rule, all steps at once.
            to_raw_h = active * _inside(record.raw_outputs, proj_clip)  # d h' -> d (m @ projection)
            to_c = o * (1.0 - tf.square(tanh_c))  # d m -> d c'
            keep_c = _inside(raw_c, cell_clip)
            to_z = tf.concat(  # d c' (three times), d m -> d z
                [keep_c * j * i * (1.0 - i), keep_c * i * (1.0 - tf.square(j)), keep_c * c_prev * f * (1.0 - f),
                 tanh_c * o * (1.0 - o)],
                axis=-1,
            )
            to_c_prev, inactive = keep_c * f, 1.0 - active  # d c' -> d c; inactive steps pass gradients through
            d_out = tf.zeros_like(outputs) if d_outputs is None else tf.transpose(d_outputs, [1, 0, 2])
            kernel_h_t, projection_t = tf.transpose(kernel_h), tf.transpose(projection)

            def step(t, d_c, d_h, d_z, d_raw_h):
                # d_c, d_h: the loss's gradient with respect to the states after step t.
                g_raw_h = to_raw_h[t] * (d_out[t] + d_h)
                d_m = tf.matmul(g_raw_h, projection_t)
                d_new_c = active[t] * d_c + d_m * to_c[t]
                g_z = tf.concat([d_new_c, d_new_c, d_new_c, d_m], axis=-1) * to_z[t]
                d_c = d_new_c * to_c_prev[t] + inactive[t] * d_c
                d_h = tf.matmul(g_z, kernel_h_t) + inactive[t] * d_h
                return t - 1, d_c, d_h, d_z.write(t, g_z), d_raw_h.write(t, g_raw_h)

            d_c0 = tf.zeros_like(cell_state) if d_final_c is None else d_final_c
            d_h0 = tf.zeros_like(output_state) if d_final_h is None else d_final_h
            _, d_c, d_h, d_z, d_raw_h = tf.while_loop(
                lambda t, *_: t >= 0,
                step,
                (steps - 1, d_c0, d_h0, tf.TensorArray(tf.float32, size=steps), tf.TensorArray(tf.float32, size=steps)),
            )
            d_z = d_z.stack()  # [S, B, 4H]
            d_z_rows, d_raw_h_rows = _rows_of_all_steps(d_z), _rows_of_all_steps(d_raw_h.stack())
            return (
                tf.transpose(_matmul_all_steps(d_z, tf.transpose(kernel_x)), [1, 0, 2]),
                d_c,
                d_h,
                tf.matmul(_rows_of_all_steps(x), d_z_rows, transpose_a=True),
                tf.matmul(_rows_of_all_steps(h_prev), d_z_rows, transpose_a=True),
                tf.reduce_sum(d_z_rows, axis=0),
                tf.matmul(_rows_of_all_steps(m), d_raw_h_rows, transpose_a=True),
            )

        return (tf.transpose(outputs, [1, 0, 2]), final_c, final_h), gradient

    return run(inputs, cell_state, output_state, *cell)

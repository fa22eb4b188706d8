"""The ELMo biLM (Peters et al., 2018) as a TensorFlow 2 ``tf.Module``.

Computation, as in bilm-tf:

1. tokens -> character ids with ``<S>`` / ``</S>`` added (:mod:`.chars`);
2. token encoder: char embedding -> 1-D convolutions, max-pooled over the characters and passed
   through the activation -> highway layers -> linear projection to ``projection_dim``;
3. two stacks of LSTMs with a projected output (TF1 ``LSTMCell`` with ``num_proj``,
   ``cell_clip``, ``proj_clip``, forget bias 1), one reading left to right, one reading each
   sentence right to left from its *own* last token (``tf.reverse_sequence``), optionally with
   residual connections from the second layer on;
4. the sentence markers are removed and the layers mixed like TF-Hub's ``google/elmo/3``.

A sentence's vectors therefore depend only on that sentence: not on the batch size, the other
rows, or how much padding follows it. The published biLM was *stateful* (each batch started
from the previous batch's final LSTM states); :meth:`BiLM.run` accepts and returns those states
so that protocol can be replayed, while calling the model directly always starts from zeros.

Speed: the input half of every LSTM gate matmul is computed for ``time_chunk`` steps at once
(one large matmul instead of ``time_chunk`` skinny ones), and the two directions run in the
same loop as one batched matmul. Only ``time_chunk`` steps of gate pre-activations exist at a
time, so memory grows with batch x time only through the [B, T, P] layer outputs.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np
import tensorflow as tf

from .chars import sentence_char_ids
from .config import BiLMConfig, load_options
from .weights import check_weights, lstm_prefix, read_weights

FORGET_BIAS = 1.0  # TF1 LSTMCell's default, used when the published models were trained

_ACTIVATION = {"relu": tf.nn.relu, "tanh": tf.nn.tanh}


class LSTMLayer(NamedTuple):
    """Both directions of one LSTM layer, stacked on a leading axis of size 2 (forward, backward)."""

    kernel_x: tf.Variable  # [2, input_dim, 4 * lstm_dim]: the input rows of W_0
    kernel_h: tf.Variable  # [2, projection_dim, 4 * lstm_dim]: the recurrent rows of W_0
    bias: tf.Variable  # [2, 1, 4 * lstm_dim]: B with the forget bias folded in
    projection: tf.Variable  # [2, lstm_dim, projection_dim]: W_P_0


def _lstm_layer_weights(config: BiLMConfig, weights: dict[str, np.ndarray], layer: int) -> LSTMLayer:
    def stacked(dataset):
        return np.stack([weights[f"{lstm_prefix(d, layer)}/{dataset}"] for d in (0, 1)])

    kernel, bias = stacked("W_0"), stacked("B")
    gate = config.lstm_dim
    bias[:, 2 * gate : 3 * gate] += FORGET_BIAS  # gate order i, j, f, o
    input_dim = kernel.shape[1] - config.projection_dim
    return LSTMLayer(
        kernel_x=tf.Variable(kernel[:, :input_dim], trainable=False, name=f"lstm{layer}_kernel_x"),
        kernel_h=tf.Variable(kernel[:, input_dim:], trainable=False, name=f"lstm{layer}_kernel_h"),
        bias=tf.Variable(bias[:, np.newaxis], trainable=False, name=f"lstm{layer}_bias"),
        projection=tf.Variable(stacked("W_P_0"), trainable=False, name=f"lstm{layer}_projection"),
    )


def _clip(x: tf.Tensor, limit: float | None) -> tf.Tensor:
    return x if limit is None else tf.clip_by_value(x, -limit, limit)


class BiLM(tf.Module):
    """Character-based bidirectional language model with TF-Hub ``google/elmo/3``-like outputs.

    ``bilm(tokens, sequence_len)`` takes ``tokens`` [B, T] strings (rows padded at the end with
    anything, conventionally "") and ``sequence_len`` [B] int32, and returns a dict:

    * ``word_emb`` [B, T, projection_dim]: the character-based token embedding;
    * ``lstm_outputs{k}`` [B, T, 2 * projection_dim]: layer k, forward then backward;
    * ``elmo`` [B, T, 2 * projection_dim]: ``gamma * sum_k softmax(w)_k * layer_k`` with layer 0
      the token embedding concatenated with itself (w = 0, gamma = 1: TF-Hub's initial values);
    * ``default`` [B, 2 * projection_dim]: the mean of ``elmo`` over each sentence's tokens.

    Positions at or after ``sequence_len`` are exactly zero.

    Both entry points are ``tf.function`` s with an ``input_signature`` whose batch and time
    dimensions are ``None``: they are traced once, whatever the batch shapes.
    """

    def __init__(
        self,
        options: dict,
        weights: dict[str, np.ndarray],
        time_chunk: int = 8,
        jit_compile: bool = False,
        name: str = "bilm",
    ):
        """Build from a parsed ``options.json`` and the datasets of a ``weights.hdf5``.

        Args:
          time_chunk: LSTM steps whose input matmul is batched together (and unrolled).
          jit_compile: compile the numeric part with XLA (recompiles for every new batch shape).
        """
        super().__init__(name=name)
        config = BiLMConfig.from_options(options)
        check_weights(config, weights)
        self.config = config
        self.output_dim = config.output_dim
        self.time_chunk = time_chunk
        with self.name_scope:
            padded_embed = np.concatenate(
                [np.zeros((1, config.char_embed_dim), np.float32), weights["char_embed"]]
            )  # id 0 (no character) gets a zero row, as in bilm-tf
            self._char_embed = tf.Variable(padded_embed, trainable=False, name="char_embed")
            self._convolutions = [
                (
                    tf.Variable(weights[f"CNN/W_cnn_{i}"][0], trainable=False, name=f"W_cnn_{i}"),
                    tf.Variable(weights[f"CNN/b_cnn_{i}"], trainable=False, name=f"b_cnn_{i}"),
                )
                for i in range(len(config.filters))
            ]
            self._highways = [
                tuple(
                    tf.Variable(weights[f"CNN_high_{i}/{n}"], trainable=False, name=f"high{i}_{n}")
                    for n in ("W_carry", "b_carry", "W_transform", "b_transform")
                )
                for i in range(config.n_highway)
            ]
            self._projection = (
                tf.Variable(weights["CNN_proj/W_proj"], trainable=False, name="W_proj"),
                tf.Variable(weights["CNN_proj/b_proj"], trainable=False, name="b_proj"),
            )
            self._lstm = [_lstm_layer_weights(config, weights, k) for k in range(config.n_layers)]
            self.mix_weights = tf.Variable(tf.zeros([config.n_layers + 1]), name="mix_weights")
            self.gamma = tf.Variable(1.0, name="gamma")

        self._encode = tf.function(self._encode_char_ids, jit_compile=jit_compile)
        tokens_spec = [tf.TensorSpec([None, None], tf.string), tf.TensorSpec([None], tf.int32)]
        self._call_fn = tf.function(self._call_stateless, input_signature=tokens_spec)
        self.run = tf.function(self._run, input_signature=tokens_spec + [self.state_spec()])

    # ----------------------------------------------------------------------------- public API

    def __call__(self, tokens, sequence_len) -> dict[str, tf.Tensor]:
        """Stateless outputs (see the class docstring) for a padded batch of tokens."""
        return self._call_fn(tokens, sequence_len)

    def state_spec(self) -> tuple:
        """Structure of the LSTM states: per layer (cell [2, B, lstm_dim], output [2, B, proj])."""
        cell = tf.TensorSpec([2, None, self.config.lstm_dim], tf.float32)
        output = tf.TensorSpec([2, None, self.config.projection_dim], tf.float32)
        return tuple((cell, output) for _ in range(self.config.n_layers))

    def zero_state(self, batch_size) -> tuple:
        """All-zero LSTM states for ``batch_size`` sentences (what every stateless call uses)."""
        return tuple(
            (tf.zeros([2, batch_size, self.config.lstm_dim]), tf.zeros([2, batch_size, self.config.projection_dim]))
            for _ in range(self.config.n_layers)
        )

    def _call_stateless(self, tokens, sequence_len):
        outputs, _ = self._run(tokens, sequence_len, self.zero_state(tf.shape(tokens)[0]))
        return outputs

    def _run(self, tokens, sequence_len, initial_state):
        """Outputs and final LSTM states, starting from ``initial_state`` (see :meth:`state_spec`).

        Row b of the final states is the state after row b's last token (``</S>`` forwards,
        ``<S>`` backwards), as bilm-tf's ``dynamic_rnn`` with ``sequence_length`` left it.
        """
        char_ids = sentence_char_ids(tokens, sequence_len, self.config.max_characters_per_token)
        embedding, layers, final_state = self._encode(char_ids, sequence_len + 2, initial_state)
        return self._hub_outputs(embedding, layers, sequence_len), final_state

    # ------------------------------------------------------------------------------ internals

    def _encode_char_ids(self, char_ids, lengths, initial_state):
        """[B, S, max_chars] ids (markers included, S = T + 2) -> embedding, LSTM layers, states.

        Every LSTM layer output is [B, S, 2 * projection_dim] in sentence order.
        """
        embedding = self._token_embedding(char_ids)
        reverse = lambda x: tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)  # noqa: E731
        # Direction-major: the backward LSTM reads every sentence reversed within its length.
        inputs = tf.stack([embedding, reverse(embedding)])
        layers, final_state = [], []
        for k, layer in enumerate(self._lstm):
            outputs, state = self._lstm_layer(layer, inputs, lengths, initial_state[k])
            if self.config.use_skip_connections and k > 0:
                outputs += inputs
            layers.append(tf.concat([outputs[0], reverse(outputs[1])], axis=-1))
            final_state.append(state)
            inputs = outputs
        return embedding, layers, tuple(final_state)

    def _token_embedding(self, char_ids):
        """Char-CNN token encoder: [B, S, max_chars] ids -> [B, S, projection_dim]."""
        shape = tf.shape(char_ids)
        chars = tf.gather(self._char_embed, tf.reshape(char_ids, [-1, shape[2]]))
        activation = _ACTIVATION[self.config.activation]
        pooled = []
        for kernel, bias in self._convolutions:
            convolved = tf.nn.conv1d(chars, kernel, stride=1, padding="VALID") + bias
            pooled.append(activation(tf.reduce_max(convolved, axis=1)))
        x = tf.concat(pooled, axis=-1)
        for w_carry, b_carry, w_transform, b_transform in self._highways:
            carry = tf.sigmoid(tf.matmul(x, w_carry) + b_carry)
            transform = tf.nn.relu(tf.matmul(x, w_transform) + b_transform)
            x = carry * transform + (1.0 - carry) * x
        w_proj, b_proj = self._projection
        x = tf.matmul(x, w_proj) + b_proj
        return tf.reshape(x, [shape[0], shape[1], self.config.projection_dim])

    def _lstm_layer(self, layer: LSTMLayer, inputs, lengths, state):
        """Run both directions of one layer.

        Args:
          inputs: [2, B, S, D] direction-major inputs (the backward ones already reversed).
          lengths: [B] valid steps per row; later steps keep the state and output zeros.
          state: (cell [2, B, H], output [2, B, P]).
        Returns:
          outputs [2, B, S, P] and the final (cell, output).
        """
        k = self.time_chunk
        dim_in, gates = layer.kernel_x.shape[1], layer.kernel_x.shape[2]
        batch, steps = tf.shape(inputs)[1], tf.shape(inputs)[2]
        n_chunks = (steps + k - 1) // k
        padded = tf.pad(inputs, [[0, 0], [0, 0], [0, n_chunks * k - steps], [0, 0]])
        # [n_chunks, 2, k * B, D], rows ordered (step, sentence) so a step's gates are contiguous.
        chunks = tf.reshape(
            tf.transpose(tf.reshape(padded, [2, batch, n_chunks, k, dim_in]), [2, 0, 3, 1, 4]),
            [n_chunks, 2, k * batch, dim_in],
        )
        cell_clip, proj_clip = self.config.cell_clip, self.config.proj_clip

        def chunk_step(i, cell, output, outputs):
            gates_x = tf.reshape(tf.matmul(chunks[i], layer.kernel_x) + layer.bias, [2, k, batch, gates])
            chunk_outputs = []
            for t in range(k):
                z = gates_x[:, t] + tf.matmul(output, layer.kernel_h)
                gate_i, gate_j, gate_f, gate_o = tf.split(z, 4, axis=-1)
                new_cell = _clip(tf.sigmoid(gate_f) * cell + tf.sigmoid(gate_i) * tf.tanh(gate_j), cell_clip)
                new_output = _clip(tf.matmul(tf.sigmoid(gate_o) * tf.tanh(new_cell), layer.projection), proj_clip)
                active = (i * k + t < lengths)[tf.newaxis, :, tf.newaxis]
                cell = tf.where(active, new_cell, cell)
                output = tf.where(active, new_output, output)
                chunk_outputs.append(tf.where(active, new_output, 0.0))
            return i + 1, cell, output, outputs.write(i, tf.stack(chunk_outputs, axis=2))

        _, cell, output, outputs = tf.while_loop(
            lambda i, *_: i < n_chunks,
            chunk_step,
            (tf.constant(0), state[0], state[1], tf.TensorArray(tf.float32, size=n_chunks)),
        )
        proj = output.shape[-1]
        outputs = tf.transpose(outputs.stack(), [1, 2, 0, 3, 4])  # [2, B, n_chunks, k, P]
        outputs = tf.reshape(outputs, [2, batch, n_chunks * k, proj])[:, :, :steps]
        return outputs, (cell, output)

    def _hub_outputs(self, embedding, layers, sequence_len):
        """Drop ``<S>``/``</S>``, zero the padding, and mix the layers like ``google/elmo/3``."""
        n_tokens = tf.shape(embedding)[1] - 2
        is_token = tf.sequence_mask(sequence_len, n_tokens)[..., tf.newaxis]

        def tokens_only(x):
            return tf.where(is_token, x[:, 1 : n_tokens + 1], 0.0)

        word_emb = tokens_only(embedding)
        all_layers = [tf.concat([word_emb, word_emb], axis=-1)] + [tokens_only(x) for x in layers]
        mix = tf.unstack(tf.nn.softmax(self.mix_weights))
        elmo = self.gamma * tf.add_n([w * x for w, x in zip(mix, all_layers)])
        n_real = tf.cast(tf.maximum(sequence_len, 1), tf.float32)[:, tf.newaxis]
        outputs = {"word_emb": word_emb, "elmo": elmo, "default": tf.reduce_sum(elmo, axis=1) / n_real}
        outputs.update({f"lstm_outputs{k}": x for k, x in enumerate(all_layers[1:], start=1)})
        return outputs


def load_bilm(options_path: str | Path, weights_path: str | Path, **kwargs) -> BiLM:
    """Build a :class:`BiLM` from an ``options.json`` (path or published name) and ``weights.hdf5``.

    ``kwargs`` go to :class:`BiLM` (``time_chunk``, ``jit_compile``).
    """
    options = load_options(options_path)
    weights = read_weights(weights_path, BiLMConfig.from_options(options))
    return BiLM(options, weights, **kwargs)

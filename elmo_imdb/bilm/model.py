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

Speed: the LSTMs (:mod:`.lstm`) compute the input half of every gate matmul for :data:`TIME_CHUNK`
steps at once (one large matmul instead of that many skinny ones), and the two directions
are independent loops that TensorFlow runs concurrently. Only that many steps of gate
pre-activations exist at a time, so memory grows with batch x time only through the [B, T, P]
layer outputs; a trainable biLM's LSTMs also keep what their hand-written gradient needs.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import tensorflow as tf

from .chars import sentence_char_ids
from .config import BiLMConfig, load_options
from .lstm import LSTMCellWeights, projected_lstm, trainable_projected_lstm
from .weights import check_weights, lstm_prefix, read_weights

FORGET_BIAS = 1.0  # TF1 LSTMCell's default, used when the published models were trained

#: LSTM steps whose input matmul is done at once (more: larger matmuls, more memory for their
#: [TIME_CHUNK, B, 4 * lstm_dim] result; 8, 16 and 32 were within noise, docs/bilm.md).
TIME_CHUNK = 16
#: Tokens encoded by the char CNN at a time (bounds its memory, see BiLM._token_embedding).
TOKENS_PER_CNN_SLICE = 1024

_ACTIVATION = {"relu": tf.nn.relu, "tanh": tf.nn.tanh}
HIGHWAY_WEIGHTS = ("W_carry", "b_carry", "W_transform", "b_transform")


def _forget_bias(config: BiLMConfig) -> np.ndarray:
    """FORGET_BIAS on the forget gate's columns of B (gate order i, j, f, o), 0 elsewhere."""
    shift = np.zeros(4 * config.lstm_dim, np.float32)
    shift[2 * config.lstm_dim : 3 * config.lstm_dim] = FORGET_BIAS
    return shift


def _lstm_cell_weights(config: BiLMConfig, weights: dict[str, np.ndarray], direction: int, layer: int, trainable: bool):
    prefix = lstm_prefix(direction, layer)
    kernel = weights[f"{prefix}/W_0"]
    input_dim = kernel.shape[0] - config.projection_dim
    name = f"lstm{layer}_{('forward', 'backward')[direction]}"
    return LSTMCellWeights(
        kernel_x=tf.Variable(kernel[:input_dim], trainable=trainable, name=f"{name}_kernel_x"),
        kernel_h=tf.Variable(kernel[input_dim:], trainable=trainable, name=f"{name}_kernel_h"),
        bias=tf.Variable(weights[f"{prefix}/B"] + _forget_bias(config), trainable=trainable, name=f"{name}_bias"),
        projection=tf.Variable(weights[f"{prefix}/W_P_0"], trainable=trainable, name=f"{name}_projection"),
    )


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
        trainable: bool = False,
        name: str = "bilm",
    ):
        """Build from a parsed ``options.json`` and the datasets of a ``weights.hdf5``.

        Args:
          trainable: make the weights trainable variables (pretraining, elmo_imdb.pretraining);
            the layer mix (``mix_weights``, ``gamma``) is trainable either way, as in the hub module.
        """
        super().__init__(name=name)
        config = BiLMConfig.from_options(options)
        check_weights(config, weights)
        self.config = config
        self.output_dim = config.output_dim
        # Training needs the gradient of the LSTMs, inference nothing but their outputs (.lstm).
        self._projected_lstm = trainable_projected_lstm if trainable else projected_lstm
        with self.name_scope:
            padded_embed = np.concatenate(
                [np.zeros((1, config.char_embed_dim), np.float32), weights["char_embed"]]
            )  # id 0 (no character) gets a zero row, as in bilm-tf
            self._char_embed = tf.Variable(padded_embed, trainable=trainable, name="char_embed")
            self._convolutions = [
                (
                    tf.Variable(weights[f"CNN/W_cnn_{i}"][0], trainable=trainable, name=f"W_cnn_{i}"),
                    tf.Variable(weights[f"CNN/b_cnn_{i}"], trainable=trainable, name=f"b_cnn_{i}"),
                )
                for i in range(len(config.filters))
            ]
            self._highways = [
                tuple(
                    tf.Variable(weights[f"CNN_high_{i}/{n}"], trainable=trainable, name=f"high{i}_{n}")
                    for n in HIGHWAY_WEIGHTS
                )
                for i in range(config.n_highway)
            ]
            self._projection = (
                tf.Variable(weights["CNN_proj/W_proj"], trainable=trainable, name="W_proj"),
                tf.Variable(weights["CNN_proj/b_proj"], trainable=trainable, name="b_proj"),
            )
            self._lstm = [
                [_lstm_cell_weights(config, weights, direction, layer, trainable) for direction in (0, 1)]
                for layer in range(config.n_layers)
            ]
            self.mix_weights = tf.Variable(tf.zeros([config.n_layers + 1]), name="mix_weights")
            self.gamma = tf.Variable(1.0, name="gamma")

        self._encode = tf.function(self._encode_char_ids)
        tokens_spec = [tf.TensorSpec([None, None], tf.string), tf.TensorSpec([None], tf.int32)]
        self._call_fn = tf.function(self._call_stateless, input_signature=tokens_spec)
        self.run = tf.function(self._run, input_signature=tokens_spec + [self.state_spec()])
        embedding_spec = tf.TensorSpec([None, None, config.projection_dim], tf.float32)
        self.from_embeddings = tf.function(self._from_embeddings, input_signature=[embedding_spec, tokens_spec[1]])
        self.embed_tokens = tf.function(  # for eager callers (the token cache); graphs call _embed_tokens
            self._embed_tokens, input_signature=[tf.TensorSpec([None, config.max_characters_per_token], tf.int32)]
        )

    # ----------------------------------------------------------------------------- public API

    def __call__(self, tokens, sequence_len) -> dict[str, tf.Tensor]:
        """Stateless outputs (see the class docstring) for a padded batch of tokens."""
        return self._call_fn(tokens, sequence_len)

    def published_weights(self) -> dict[str, np.ndarray]:
        """The current weights as the datasets of a published ``weights.hdf5`` (the inverse of
        the constructor: no padding row in ``char_embed``, the forget bias taken out of ``B``)."""
        weights = {"char_embed": self._char_embed.numpy()[1:]}
        for i, (kernel, bias) in enumerate(self._convolutions):
            weights[f"CNN/W_cnn_{i}"], weights[f"CNN/b_cnn_{i}"] = kernel.numpy()[np.newaxis], bias.numpy()
        for i, variables in enumerate(self._highways):
            weights.update({f"CNN_high_{i}/{n}": v.numpy() for n, v in zip(HIGHWAY_WEIGHTS, variables)})
        weights["CNN_proj/W_proj"], weights["CNN_proj/b_proj"] = (v.numpy() for v in self._projection)
        for layer, cells in enumerate(self._lstm):
            for direction, cell in enumerate(cells):
                prefix = lstm_prefix(direction, layer)
                weights[f"{prefix}/W_0"] = np.concatenate([cell.kernel_x.numpy(), cell.kernel_h.numpy()])
                weights[f"{prefix}/B"] = cell.bias.numpy() - _forget_bias(self.config)
                weights[f"{prefix}/W_P_0"] = cell.projection.numpy()
        return weights

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

    def _from_embeddings(self, embedding, sequence_len):
        """Stateless outputs (as ``__call__``) from the token embeddings of a batch,
        [B, T + 2, projection_dim] with ``<S>``, the tokens, ``</S>`` at ``sequence_len + 1``:
        what :class:`~elmo_imdb.bilm.token_cache.TokenEmbeddingCache` hands over, the char CNN
        having run once per distinct token."""
        layers, _ = self.contextualize(embedding, sequence_len + 2, self.zero_state(tf.shape(embedding)[0]))
        return self._hub_outputs(embedding, layers, sequence_len)

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
        """[B, S, max_chars] ids (markers included, S = T + 2) -> embedding, LSTM layers, states."""
        embedding = self._token_embedding(char_ids)
        return (embedding, *self.contextualize(embedding, lengths, initial_state))

    def contextualize(self, embedding, lengths, initial_state):
        """The LSTM stacks over token embeddings [B, S, projection_dim] (markers included, rows
        of ``lengths`` [B] positions): every layer's output [B, S, 2 * projection_dim] in
        sentence order (forward, then backward output of each position), and the final states.
        """
        reverse = lambda x: tf.reverse_sequence(x, lengths, seq_axis=1, batch_axis=0)  # noqa: E731
        # The backward LSTM reads every sentence reversed within its own length.
        inputs = [embedding, reverse(embedding)]
        layers, final_state = [], []
        clips = self.config.cell_clip, self.config.proj_clip
        for k, cells in enumerate(self._lstm):
            cell_state, output_state = initial_state[k]
            # The two directions are independent loops that TensorFlow runs concurrently.
            runs = [
                self._projected_lstm(cell, x, lengths, cell_state[d], output_state[d], *clips, TIME_CHUNK)
                for d, (cell, x) in enumerate(zip(cells, inputs))
            ]
            outputs = [run[0] for run in runs]
            if self.config.use_skip_connections and k > 0:
                outputs = [y + x for y, x in zip(outputs, inputs)]
            layers.append(tf.concat([outputs[0], reverse(outputs[1])], axis=-1))
            final_state.append((tf.stack([run[1] for run in runs]), tf.stack([run[2] for run in runs])))
            inputs = outputs
        return layers, tuple(final_state)

    def _token_embedding(self, char_ids):
        """Char-CNN token encoder: [B, S, max_chars] ids -> [B, S, projection_dim].

        Tokens go through in slices of :data:`TOKENS_PER_CNN_SLICE`, one after the other: the
        widest convolution's output is [tokens, max_chars, filters] floats (0.5 GB for a
        32 x 82 batch of the original model), so this bounds memory for any batch size.
        """
        shape = tf.shape(char_ids)
        flat = tf.reshape(char_ids, [-1, char_ids.shape[-1]])
        return tf.reshape(self._embed_tokens(flat), [shape[0], shape[1], self.config.projection_dim])

    def _embed_tokens(self, char_ids):
        """[N, max_chars] char ids -> [N, projection_dim] token embeddings, in equal slices of
        at most :data:`TOKENS_PER_CNN_SLICE` tokens (equal, so padding the last one costs
        little: 1,100 tokens go through as two slices of 550, not 2 x 1,024)."""
        max_chars = char_ids.shape[-1]
        n_tokens = tf.shape(char_ids)[0]
        n_slices = tf.maximum((n_tokens + TOKENS_PER_CNN_SLICE - 1) // TOKENS_PER_CNN_SLICE, 1)
        slice_size = (n_tokens + n_slices - 1) // n_slices
        flat = tf.pad(char_ids, [[0, n_slices * slice_size - n_tokens], [0, 0]])
        embedded = tf.map_fn(
            self._encode_tokens,
            tf.reshape(flat, [n_slices, slice_size, max_chars]),
            fn_output_signature=tf.float32,
            parallel_iterations=1,
        )
        return tf.reshape(embedded, [-1, self.config.projection_dim])[:n_tokens]

    def _encode_tokens(self, char_ids):
        """[N, max_chars] char ids -> [N, projection_dim]: convolutions, highways, projection."""
        chars = tf.gather(self._char_embed, char_ids)
        activation = _ACTIVATION[self.config.activation]
        pooled = []
        for kernel, bias in self._convolutions:
            # The bias is added after the max: the same outputs (rounding is monotonic), one pass
            # over the [N, max_chars - width + 1, filters] convolution output fewer. (Training's
            # gradient may split a tie that rounding made differently: an equally valid subgradient.)
            convolved = tf.nn.conv1d(chars, kernel, stride=1, padding="VALID")
            pooled.append(activation(tf.reduce_max(convolved, axis=1) + bias))
        x = tf.concat(pooled, axis=-1)
        for w_carry, b_carry, w_transform, b_transform in self._highways:
            carry = tf.sigmoid(tf.matmul(x, w_carry) + b_carry)
            transform = tf.nn.relu(tf.matmul(x, w_transform) + b_transform)
            x = carry * transform + (1.0 - carry) * x
        w_proj, b_proj = self._projection
        return tf.matmul(x, w_proj) + b_proj

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


def load_bilm(options_path: str | Path, weights_path: str | Path) -> BiLM:
    """Build a :class:`BiLM` from an ``options.json`` (path or published name) and ``weights.hdf5``."""
    options = load_options(options_path)
    weights = read_weights(weights_path, BiLMConfig.from_options(options))
    return BiLM(options, weights)

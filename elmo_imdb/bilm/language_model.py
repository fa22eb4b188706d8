"""The biLM with the softmax that trains it: forward and backward language-model losses.

As in bilm-tf (``bilm/training.py``): the top LSTM layer's forward output at position ``t``
predicts the token at ``t + 1``, its backward output at ``t`` the token at ``t - 1``; both
directions share one softmax over the target vocabulary, and the loss is the mean of the two
directions' mean negative log-likelihoods. Training uses a *sampled* softmax (the true class
against ``n_samples`` classes drawn from a log-uniform distribution, i.e. Zipf's law over the
frequency-sorted vocabulary, with the sampling correction and accidental hits removed, as
``tf.nn.sampled_softmax_loss``); held-out perplexity uses the full softmax.

The sampler is stateless: its draws are a function of ``(seed, step)``, so an interrupted and
resumed training run samples exactly what an uninterrupted one would.

Inputs are batches of token *types* ``[B, S]`` (``S`` = window + 2, markers included, see
:mod:`elmo_imdb.lm_corpus`) with ``lengths`` [B] tokens each. The char CNN runs once per
distinct type of the batch (``tf.unique``), which is exact: a token's embedding does not
depend on its context.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .chars import marker_rows, word_char_ids
from .config import BiLMConfig
from .model import BiLM


def type_char_ids(types: list[str], config: BiLMConfig) -> np.ndarray:
    """int32 [n_types, max_chars]: the char ids of every token type (row 0, padding: zeros;
    rows 1 and 2: the ``<S>`` and ``</S>`` markers), as :func:`.chars.sentence_char_ids` frames them."""
    markers = marker_rows(config.max_characters_per_token)
    ids = word_char_ids(tf.constant(types[len(markers) :], tf.string), config.max_characters_per_token).numpy()
    return np.concatenate([markers, ids]).astype(np.int32)


class LanguageModel(tf.Module):
    """A trainable :class:`BiLM`, its softmax ``[vocab_size, projection_dim]``, and the losses."""

    def __init__(self, options: dict, weights: dict[str, np.ndarray], char_ids: np.ndarray,
                 target_of_type: np.ndarray, vocab_size: int, n_samples: int, seed: int):
        """``weights``: a published-layout dict to start from; ``char_ids`` [n_types, max_chars]
        and ``target_of_type`` [n_types]: the corpus' types (:func:`type_char_ids`)."""
        super().__init__(name="language_model")
        self.bilm = BiLM(options, weights, trainable=True)
        projection = self.bilm.config.projection_dim
        rng = np.random.default_rng([seed, 1])
        with self.name_scope:
            self.softmax_w = tf.Variable(
                rng.normal(0.0, 1.0 / np.sqrt(projection), (vocab_size, projection)).astype(np.float32), name="softmax_w"
            )  # bilm-tf's initialiser
            self.softmax_b = tf.Variable(tf.zeros([vocab_size]), name="softmax_b")
        self._char_ids = tf.constant(char_ids)
        self._target_of_type = tf.constant(target_of_type)
        self.vocab_size, self.n_samples, self.seed = vocab_size, n_samples, seed
        # Zipf's law over the frequency-sorted targets: P(k) = log((k + 2) / (k + 1)) / log(V + 1).
        k = np.arange(vocab_size, dtype=np.float64)
        self._log_expected = tf.constant(np.log(n_samples * np.log((k + 2) / (k + 1)) / np.log(vocab_size + 1)), tf.float32)

    @property
    def weights(self) -> list[tf.Variable]:
        """What training updates: the biLM's weights and the softmax (not the hub layer mix)."""
        layer_mix = (self.bilm.mix_weights, self.bilm.gamma)
        return [v for v in self.trainable_variables if not any(v is m for m in layer_mix)]

    def top_states(self, types, lengths):
        """Hidden states and targets of both directions: ``(h [N, P], target [N])`` for every
        predicted position of the batch, forward positions first, then backward ones."""
        flat = tf.reshape(types, [-1])
        distinct, index = tf.unique(flat)
        embedded = self.bilm._embed_tokens(tf.gather(self._char_ids, distinct))
        embedding = tf.reshape(tf.gather(embedded, index), [tf.shape(types)[0], tf.shape(types)[1], -1])
        zeros = self.bilm.zero_state(tf.shape(types)[0])
        layers, _ = self.bilm.contextualize(embedding, lengths + 2, zeros)
        top, projection = layers[-1], self.bilm.config.projection_dim
        targets = tf.gather(self._target_of_type, types)
        # Position t of a row of n tokens: forward t = 0..n predicts t + 1; backward t = 1..n + 1 predicts t - 1.
        predicted = tf.sequence_mask(lengths + 1, tf.shape(types)[1] - 1)
        forward = tf.boolean_mask(top[:, :-1, :projection], predicted), tf.boolean_mask(targets[:, 1:], predicted)
        backward = tf.boolean_mask(top[:, 1:, projection:], predicted), tf.boolean_mask(targets[:, :-1], predicted)
        return forward, backward

    def sampled_loss(self, types, lengths, step):
        """Mean of the two directions' sampled-softmax losses for training step ``step``."""
        losses = []
        for direction, (h, target) in enumerate(self.top_states(types, lengths)):
            sampled = self._sample([self.seed, step * 2 + direction])
            true_logit = tf.reduce_sum(h * tf.gather(self.softmax_w, target), -1) + tf.gather(self.softmax_b, target)
            true_logit -= tf.gather(self._log_expected, target)
            sampled_logits = tf.matmul(h, tf.gather(self.softmax_w, sampled), transpose_b=True)
            sampled_logits += tf.gather(self.softmax_b - self._log_expected, sampled)
            accidental = tf.equal(target[:, tf.newaxis], sampled[tf.newaxis, :])
            sampled_logits = tf.where(accidental, -1e30, sampled_logits)  # the true class is not a negative
            # Cross-entropy with the true class as class 0 (as a log-sum-exp: twice the speed of the fused op on CPU).
            logits = tf.concat([true_logit[:, tf.newaxis], sampled_logits], axis=1)
            losses.append(tf.reduce_mean(tf.reduce_logsumexp(logits, axis=1) - true_logit))
        return (losses[0] + losses[1]) / 2

    def full_nll(self, types, lengths):
        """Summed negative log-likelihood of each direction under the full softmax, and the
        number of predicted tokens: ``[forward, backward], count`` (perplexity: exp(sum / count))."""
        sums = []
        for h, target in self.top_states(types, lengths):
            logits = tf.matmul(h, self.softmax_w, transpose_b=True) + self.softmax_b
            sums.append(tf.reduce_sum(tf.nn.sparse_softmax_cross_entropy_with_logits(target, logits)))
        return tf.stack(sums), tf.reduce_sum(lengths + 1)

    def _sample(self, seed):
        """``n_samples`` targets drawn with replacement from the log-uniform distribution."""
        uniform = tf.random.stateless_uniform([self.n_samples], seed, dtype=tf.float64)
        drawn = tf.cast(tf.exp(uniform * np.log(self.vocab_size + 1)), tf.int32) - 1
        return tf.clip_by_value(drawn, 0, self.vocab_size - 1)

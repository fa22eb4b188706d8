"""The biLM's training step: Adam on the sampled-softmax loss, gradients clipped by global norm.

Adam, learning rate 0.001, gradients clipped to a global norm of 10 (bilm-tf's clipping).
bilm-tf's Adagrad (learning rate 0.2, accumulators starting at 1.0) was tried first and learned
far slower in a budget of a few thousand steps: with accumulators at 1.0 and small gradients it
is plain SGD at 0.2 for a long time (docs/pretraining.md). No dropout: the default budget is
about 1.24 passes over the corpus, so no window is seen often enough to be memorised.

The step counter, the tokens seen and the moments are variables of this object, so a
checkpoint of it (:mod:`elmo_imdb.pretrain_checkpoints`) holds everything a resumed run needs;
the softmax samples are a function of the step, so a resumed step computes what an
uninterrupted one would.
"""

from __future__ import annotations

import tensorflow as tf

from elmo_imdb.bilm.language_model import LanguageModel

LEARNING_RATE = 1e-3
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Adam's usual constants (Keras' defaults)
CLIP_NORM = 10.0
RECIPE = f"adam lr={LEARNING_RATE} beta_1={BETA_1} beta_2={BETA_2} epsilon={EPSILON} clip_norm={CLIP_NORM}"
#: A batch: ``windows`` [batch, width] int32 type ids (``<S>``, tokens, ``</S>``, padding) and
#: ``lengths`` [batch] int32 tokens per window, markers not counted.
WINDOWS = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)


class AdamStep:
    """``step(windows, lengths)`` trains ``model`` on one batch and returns its loss (a scalar)."""

    def __init__(self, model: LanguageModel):
        self.model = model
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.tokens_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="tokens_seen")
        self.moments = [  # (m, v) per weight, of its shape
            (tf.Variable(tf.zeros(v.shape), trainable=False, name="m"), tf.Variable(tf.zeros(v.shape), trainable=False, name="v"))
            for v in model.weights
        ]
        self._compiled = tf.function(self._train, input_signature=WINDOWS)

    def __call__(self, windows, lengths) -> tf.Tensor:
        return self._compiled(windows, lengths)

    def _train(self, windows, lengths):
        variables = self.model.weights
        with tf.GradientTape() as tape:
            loss = self.model.sampled_loss(windows, lengths, self.step)
        gradients, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), CLIP_NORM)
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        rate = LEARNING_RATE * tf.sqrt(1.0 - BETA_2**t) / (1.0 - BETA_1**t)  # bias-corrected
        for variable, gradient, (m, v) in zip(variables, gradients, self.moments):
            gradient = tf.convert_to_tensor(gradient)  # IndexedSlices (softmax, char embedding) made dense
            m.assign(BETA_1 * m + (1.0 - BETA_1) * gradient)
            v.assign(BETA_2 * v + (1.0 - BETA_2) * tf.square(gradient))
            variable.assign_sub(rate * m / (tf.sqrt(v) + EPSILON))
        self.tokens_seen.assign_add(tf.cast(tf.reduce_sum(lengths), tf.int64))
        return loss

"""The training step (elmo_imdb/pretrain_step.py) against Adam written out in numpy.

For a few steps of a tiny biLM, the step's loss, moments and updated weights must be what the
textbook update gives from the same gradient, clipped by global norm: the fused optimiser op
is the same maths as the element-wise formulation it replaced.
"""

import numpy as np
import pytest
import tensorflow as tf
from test_pretraining import corpus, trainer  # noqa: F401 (corpus: a fixture)

from elmo_imdb.lm_corpus import batch_rows
from elmo_imdb.pretrain_step import BETA_1, BETA_2, CLIP_NORM, EPSILON, LEARNING_RATE


def textbook_adam(weight, m, v, gradient, t):
    """One Adam update in float64 (Kingma & Ba, epsilon outside the square root)."""
    m = BETA_1 * m + (1 - BETA_1) * gradient
    v = BETA_2 * v + (1 - BETA_2) * gradient**2
    rate = LEARNING_RATE * np.sqrt(1 - BETA_2**t) / (1 - BETA_1**t)
    return weight - rate * m / (np.sqrt(v) + EPSILON), m, v


def test_the_step_is_adam_on_the_clipped_gradient(corpus, tmp_path):  # noqa: F811
    training = trainer(corpus, tmp_path, n_samples=6)
    step, model = training.train_step, training.model
    for t in range(1, 4):
        rows = batch_rows(t - 1, 8, len(corpus.train), 0)
        lengths = corpus.train.lengths[rows]
        windows = corpus.train.types[rows][:, : int(lengths.max()) + 2]
        before = [(w.numpy().astype(np.float64), m.numpy(), v.numpy()) for w, (m, v) in zip(model.weights, step.moments)]
        with tf.GradientTape() as tape:
            expected_loss = model.sampled_loss(tf.constant(windows), tf.constant(lengths), step.step)
        gradients = [tf.convert_to_tensor(g).numpy().astype(np.float64) for g in tape.gradient(expected_loss, model.weights)]
        norm = np.sqrt(sum((g**2).sum() for g in gradients))
        assert norm > 0
        scale = min(1.0, CLIP_NORM / norm)

        loss = step(windows, lengths)

        assert float(loss) == pytest.approx(float(expected_loss), rel=1e-6)
        assert int(step.step) == t and int(step.tokens_seen) > 0
        for (weight, m, v), gradient, variable, (m_after, v_after) in zip(before, gradients, model.weights, step.moments):
            expected = textbook_adam(weight, m, v, scale * gradient, t)
            for name, got, want in zip(("weight", "m", "v"), (variable, m_after, v_after), expected):
                np.testing.assert_allclose(got.numpy(), want, rtol=1e-4, atol=1e-7, err_msg=f"{variable.name} {name}")
        assert any(np.abs(w.numpy() - b[0]).max() > 1e-5 for w, b in zip(model.weights, before))  # it moved

"""Held-out perplexity of the biLM in training, and the learning curve's points.

Perplexity is measured with the full softmax (training uses a sampled one) over every held-out
window, forward and backward separately, as bilm-tf reports it.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from elmo_imdb.bilm.language_model import LanguageModel
from elmo_imdb.lm_corpus import Windows
from elmo_imdb.pretrain_step import WINDOWS

HELDOUT_BATCH = 32  # windows per held-out step: the full-softmax logits are [~80 x 32, vocab_size] floats


class HeldoutPerplexity:
    """``perplexity()``: ``(forward, backward)`` full-softmax perplexity of ``model`` on ``heldout``."""

    def __init__(self, model: LanguageModel, heldout: Windows):
        self.heldout = heldout
        self._nll = tf.function(model.full_nll, input_signature=WINDOWS)  # (summed nll [2], tokens)

    def __call__(self) -> tuple[float, float]:
        heldout, total, count = self.heldout, np.zeros(2), 0
        for start in range(0, len(heldout), HELDOUT_BATCH):
            lengths = heldout.lengths[start : start + HELDOUT_BATCH]
            windows = heldout.types[start : start + HELDOUT_BATCH, : int(lengths.max()) + 2]
            nll, n = self._nll(windows, lengths)
            total, count = total + nll.numpy(), count + int(n)
        forward, backward = np.exp(total / count)
        return float(forward), float(backward)


def curve_point(history: list[dict], perplexity: tuple[float, float], loss: float, tokens: int, step: int, seconds: float) -> dict:
    """The learning curve's next point after ``history``: tokens seen, step, the last batch's
    training loss, held-out perplexities, tokens/s since the previous point (by the training
    clock ``seconds``, held-out evaluation included) and that clock."""
    last = history[-1] if history else {"tokens": 0, "elapsed_s": 0.0}
    forward, backward = perplexity
    return {
        "tokens": tokens,
        "step": step,
        "train_loss": round(loss, 4),
        "heldout_perplexity_forward": round(forward, 2),
        "heldout_perplexity_backward": round(backward, 2),
        "tokens_per_s": round((tokens - last["tokens"]) / (seconds - last["elapsed_s"]), 1),
        "elapsed_s": round(seconds, 1),
    }

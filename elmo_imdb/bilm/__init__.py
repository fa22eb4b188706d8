"""The project's own ELMo biLM in TensorFlow 2: published weights in, TF-Hub-like outputs out.

Typical use::

    from elmo_imdb.bilm import load_bilm, SHIPPED_OPTIONS
    bilm = load_bilm(SHIPPED_OPTIONS["elmo_2x4096_512_2048cnn_2xhighway"], "weights.hdf5")
    out = bilm(tokens, sequence_len)  # word_emb, lstm_outputs1, lstm_outputs2, elmo, default

See docs/bilm.md for the design, the correctness checks and the measured speed.
"""

from .config import SHIPPED_OPTIONS, BiLMConfig, load_options
from .export import export_hub_module
from .model import BiLM, load_bilm
from .weights import random_weights, read_weights, write_random_weights, write_weights

__all__ = [
    "BiLM",
    "BiLMConfig",
    "SHIPPED_OPTIONS",
    "export_hub_module",
    "load_bilm",
    "load_options",
    "random_weights",
    "read_weights",
    "write_random_weights",
    "write_weights",
]

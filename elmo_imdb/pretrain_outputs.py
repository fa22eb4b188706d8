"""What the pretrain stage publishes: the biLM in the published ELMo format, and its learning curve.

The biLM is the two files every ELMo tool reads, ``options.json`` and ``weights.hdf5`` (the
layout of :mod:`elmo_imdb.bilm.weights`), plus ``vocab.txt``, the softmax's targets one per
line as bilm-tf's vocabulary files; the softmax itself is not part of the published layout and
stays in the checkpoints. Every file is written all or nothing (:mod:`elmo_imdb.atomic`); the
weights are built in memory, so a full disk is an ``OSError``, never HDF5's crash at exit.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from elmo_imdb.atomic import atomic_hdf5, atomic_output, write_json
from elmo_imdb.bilm import write_weights


def export_bilm(options: dict, weights: dict[str, np.ndarray], vocab: list[str], folder: str | Path) -> Path:
    """Write ``options.json``, ``weights.hdf5`` (``weights``: dataset name -> array, published
    layout) and ``vocab.txt`` to ``folder``."""
    folder = Path(folder)
    with atomic_output(folder / "options.json") as tmp:
        tmp.write_text(json.dumps(options, indent=2) + "\n")
    with atomic_hdf5(folder / "weights.hdf5") as f:  # built in memory: see atomic_hdf5
        write_weights(weights, f)
    with atomic_output(folder / "vocab.txt") as tmp:
        tmp.write_text("\n".join(vocab) + "\n", encoding="utf-8")
    return folder


def write_curve(history: list[dict], dropped: dict[str, int], folder: str | Path) -> None:
    """The learning curve the DVC way: ``metrics.json`` holds the last point (held-out
    perplexities, tokens seen, tokens/s and seconds by the stage's clock since the previous
    point, held-out evaluation included, total time) and how many reviews the corpus left out
    for their text (``dropped``, :func:`~elmo_imdb.lm_corpus.build_corpus`); ``curve.tsv``
    every point, one row per held-out evaluation (for ``dvc plots``: perplexity against
    tokens). Written after every evaluation, so ``dvc metrics show`` and ``dvc plots show``
    follow a run in progress."""
    folder = Path(folder)
    write_json(folder / "metrics.json", {**history[-1], "reviews_dropped": dropped})
    with atomic_output(folder / "curve.tsv") as tmp:
        rows = ["\t".join(history[0])] + ["\t".join(str(value) for value in point.values()) for point in history]
        tmp.write_text("\n".join(rows) + "\n")

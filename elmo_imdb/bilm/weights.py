"""The published ``weights.hdf5`` layout: expected shapes, reading, and random stand-ins.

bilm-tf saved its TensorFlow variables under their variable-scope names, so a weight file is a
flat set of HDF5 datasets::

    char_embed                              [n_characters - 1, char_embed_dim]  (no padding row)
    CNN/W_cnn_{i}, CNN/b_cnn_{i}            [1, width, char_embed_dim, num], [num]
    CNN_high_{i}/{W,b}_{carry,transform}    [n_filters, n_filters], [n_filters]
    CNN_proj/W_proj, CNN_proj/b_proj        [n_filters, projection_dim], [projection_dim]
    RNN_{d}/RNN/MultiRNNCell/Cell{k}/LSTMCell/
        W_0    [input_dim + projection_dim, 4 * lstm_dim]  (rows: input, then previous output;
                                                            columns: gates i, j, f, o)
        B      [4 * lstm_dim]
        W_P_0  [lstm_dim, projection_dim]

with ``d`` = 0 for the forward and 1 for the backward direction. :func:`expected_shapes` is the
single description of this layout; reading, validating and writing random weights all use it,
so they cannot drift apart.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from .config import BiLMConfig


def lstm_prefix(direction: int, layer: int) -> str:
    """HDF5 group of one LSTM cell (direction 0: forward, 1: backward)."""
    return f"RNN_{direction}/RNN/MultiRNNCell/Cell{layer}/LSTMCell"


def expected_shapes(config: BiLMConfig) -> dict[str, tuple[int, ...]]:
    """Dataset name -> shape, for every dataset a weight file of ``config`` must hold."""
    shapes = {"char_embed": (config.n_characters - 1, config.char_embed_dim)}
    for i, (width, num) in enumerate(config.filters):
        shapes[f"CNN/W_cnn_{i}"] = (1, width, config.char_embed_dim, num)
        shapes[f"CNN/b_cnn_{i}"] = (num,)
    for i in range(config.n_highway):
        for gate in ("carry", "transform"):
            shapes[f"CNN_high_{i}/W_{gate}"] = (config.n_filters, config.n_filters)
            shapes[f"CNN_high_{i}/b_{gate}"] = (config.n_filters,)
    shapes["CNN_proj/W_proj"] = (config.n_filters, config.projection_dim)
    shapes["CNN_proj/b_proj"] = (config.projection_dim,)
    gates = 4 * config.lstm_dim
    for direction in (0, 1):
        for layer in range(config.n_layers):
            prefix = lstm_prefix(direction, layer)
            shapes[f"{prefix}/W_0"] = (2 * config.projection_dim, gates)
            shapes[f"{prefix}/B"] = (gates,)
            shapes[f"{prefix}/W_P_0"] = (config.lstm_dim, config.projection_dim)
    return shapes


def check_weights(config: BiLMConfig, weights: dict[str, np.ndarray]) -> None:
    """Raise ValueError naming the first missing dataset or the first one of the wrong shape."""
    for name, shape in expected_shapes(config).items():
        if name not in weights:
            raise ValueError(f"weights lack the dataset {name!r} (expected shape {shape})")
        if tuple(weights[name].shape) != shape:
            raise ValueError(
                f"dataset {name!r} has shape {tuple(weights[name].shape)} but the options "
                f"require {shape}"
            )


def read_weights(path: str | Path, config: BiLMConfig) -> dict[str, np.ndarray]:
    """Read the datasets ``config`` needs from a published-format ``weights.hdf5``."""
    with h5py.File(path, "r") as f:
        weights = {
            name: np.asarray(f[name], dtype=np.float32)
            for name in expected_shapes(config)
            if isinstance(f.get(name), h5py.Dataset)
        }
    try:
        check_weights(config, weights)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from None
    return weights


def random_weights(config: BiLMConfig, seed: int = 0) -> dict[str, np.ndarray]:
    """Random weights in the layout of ``config``: where pretraining starts from
    (:mod:`elmo_imdb.pretraining`), and stand-ins of the right shapes for tests and benchmarks.

    The initialisers are bilm-tf's (``bilm/training.py``): character embedding U(-1, 1);
    convolutions U(-0.05, 0.05) before a relu, N(0, 1/(width * char_embed_dim)) before a tanh;
    highway and projection matrices N(0, 1/n_filters), the highway carry bias -2 (so that a new
    highway layer mostly carries its input through); LSTM matrices Glorot-uniform (TF1
    ``LSTMCell``'s default); all other biases 0.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in expected_shapes(config).items():
        if name == "char_embed":
            value = rng.uniform(-1.0, 1.0, shape)
        elif name.startswith("CNN/W_cnn"):
            _, width, char_dim, _ = shape
            if config.activation == "relu":
                value = rng.uniform(-0.05, 0.05, shape)
            else:
                value = rng.normal(0.0, np.sqrt(1.0 / (width * char_dim)), shape)
        elif name.startswith(("CNN_high", "CNN_proj")) and len(shape) == 2:
            value = rng.normal(0.0, np.sqrt(1.0 / config.n_filters), shape)
        elif name.endswith("b_carry"):
            value = np.full(shape, -2.0)
        elif len(shape) == 2:  # the LSTMs' W_0 and W_P_0
            limit = np.sqrt(6.0 / sum(shape))
            value = rng.uniform(-limit, limit, shape)
        else:
            value = np.zeros(shape)
        weights[name] = value.astype(np.float32)
    return weights


def write_weights(weights: dict[str, np.ndarray], f: h5py.File) -> None:
    """Store ``weights`` (dataset name -> array) in the open file ``f``, in the published layout."""
    for name, value in weights.items():
        f.create_dataset(name, data=value, track_times=False)


def write_random_weights(options: dict, path: str | Path, seed: int = 0) -> Path:
    """Write a ``weights.hdf5`` of :func:`random_weights` for ``options``: a model folder (with the
    options beside it) that every path-taking loader and the embed stage accept, for timing or
    trying the pipeline at any size before pretraining or downloading weights (the FLOPs, and so
    the speed, do not depend on the values; the benchmarks run so)."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        write_weights(random_weights(BiLMConfig.from_options(options), seed), f)
    return path

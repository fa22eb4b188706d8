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
    """Random weights of the right shapes and of a sensible scale (outputs neither 0 nor saturated).

    Matrices are N(0, 1/fan_in), the character embedding U(-1, 1) as bilm-tf initialised it,
    biases small; the values carry no meaning.
    """
    rng = np.random.default_rng(seed)
    weights = {}
    for name, shape in expected_shapes(config).items():
        if name == "char_embed":
            value = rng.uniform(-1.0, 1.0, shape)
        elif len(shape) == 1:
            value = rng.normal(0.0, 0.1, shape)
        else:
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(fan_in), shape)
        weights[name] = value.astype(np.float32)
    return weights


def write_random_weights(options: dict, path: str | Path, seed: int = 0) -> Path:
    """Write a ``weights.hdf5`` of random values in the published layout for ``options``."""
    path = Path(path)
    with h5py.File(path, "w") as f:
        for name, value in random_weights(BiLMConfig.from_options(options), seed).items():
            f.create_dataset(name, data=value)
    return path

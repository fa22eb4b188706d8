"""The biLM's hyper-parameters, read from an ``options.json`` of the published format.

The published ELMo models ship as two files: ``options.json`` (the architecture) and
``weights.hdf5`` (the values). This module turns the first into a typed, validated
:class:`BiLMConfig` so that the model and the weight loader never index raw dictionaries, and
an options file with a typo fails here, naming the key, instead of deep inside TensorFlow.

The options of the three published English models, and the presets of the biLMs this project
pretrains on IMDB (``imdb_tiny`` for tests, ``imdb_small`` the default, docs/pretraining.md),
are shipped as package data in ``options/``; :data:`SHIPPED_OPTIONS` maps each name to its file.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

_OPTIONS_DIR = Path(__file__).resolve().parent / "options"

#: Name of a published model or pretraining preset -> path of its shipped ``options.json``.
SHIPPED_OPTIONS: dict[str, Path] = {
    path.stem: path for path in sorted(_OPTIONS_DIR.glob("*.json"))
}

_ACTIVATIONS = ("relu", "tanh")


@dataclass(frozen=True)
class BiLMConfig:
    """Architecture of a character-based biLM, as described by an ``options.json``.

    Attributes mirror the options file: ``char_cnn.*`` describe the token encoder (character
    embedding, convolutions, highway layers, projection to ``projection_dim``) and ``lstm.*``
    the two stacks of projected LSTMs.
    """

    char_embed_dim: int
    filters: tuple[tuple[int, int], ...]  # (width, number of filters)
    n_highway: int
    n_characters: int  # includes the padding row that is not stored in weights.hdf5
    max_characters_per_token: int
    activation: str
    projection_dim: int
    lstm_dim: int
    n_layers: int
    cell_clip: float | None
    proj_clip: float | None
    use_skip_connections: bool

    @property
    def n_filters(self) -> int:
        """Width of the concatenated char-CNN output (2048 for the published models)."""
        return sum(num for _, num in self.filters)

    @property
    def output_dim(self) -> int:
        """Width of one biLM layer: forward and backward outputs concatenated."""
        return 2 * self.projection_dim

    @classmethod
    def from_options(cls, options: dict) -> "BiLMConfig":
        """Validate an options dictionary (the parsed ``options.json``)."""
        try:
            cnn, lstm = options["char_cnn"], options["lstm"]
            config = cls(
                char_embed_dim=int(cnn["embedding"]["dim"]),
                filters=tuple((int(width), int(num)) for width, num in cnn["filters"]),
                n_highway=int(cnn.get("n_highway") or 0),
                n_characters=int(cnn["n_characters"]),
                max_characters_per_token=int(cnn["max_characters_per_token"]),
                activation=str(cnn["activation"]),
                projection_dim=int(lstm["projection_dim"]),
                lstm_dim=int(lstm["dim"]),
                n_layers=int(lstm.get("n_layers", 1)),
                cell_clip=lstm.get("cell_clip"),
                proj_clip=lstm.get("proj_clip"),
                use_skip_connections=bool(lstm["use_skip_connections"]),
            )
        except KeyError as err:
            raise ValueError(f"options.json lacks the key {err}") from None
        if config.activation not in _ACTIVATIONS:
            raise ValueError(
                f"char_cnn.activation is {config.activation!r}, expected one of {_ACTIVATIONS}"
            )
        if config.max_characters_per_token < 3:
            raise ValueError("char_cnn.max_characters_per_token must leave room for the word markers")
        if max(width for width, _ in config.filters) > config.max_characters_per_token:
            raise ValueError("a char_cnn filter is wider than max_characters_per_token")
        if config.n_filters == config.projection_dim:
            # bilm-tf then omits CNN_proj; no published model does this and the layout differs.
            raise ValueError("options without a char-CNN projection (n_filters == projection_dim) are not supported")
        return config


def load_options(path_or_name: str | Path) -> dict:
    """Read an ``options.json``, given its path or the name of a shipped one (:data:`SHIPPED_OPTIONS`)."""
    path = SHIPPED_OPTIONS.get(str(path_or_name), Path(path_or_name))
    with open(path, encoding="utf-8") as f:
        return json.load(f)

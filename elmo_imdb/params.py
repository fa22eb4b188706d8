"""The schema of ``params.yaml``: every knob of the pipeline, its type, its range, its meaning.

This module is the one place that knows what a parameter may be. Each stage calls
:func:`load_params` before doing any heavy work, so a typo or an out-of-range value fails in
a second with a message naming the key, not an hour into ELMo.

The values themselves live only in ``params.yaml``: every key must be there (DVC tracks them
there), so a missing key is an error too. A field's ``metadata`` holds its help text and its
constraints: ``min``/``max`` for numbers, ``choices`` for strings. ``null`` is allowed only
where the annotation says ``| None``.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from elmo_imdb.errors import PipelineError


class ParamsError(PipelineError, ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range."""


def _spec(help: str, **constraints):
    return field(metadata={"help": help, **constraints})


@dataclass(frozen=True)
class FetchParams:
    url: str = _spec("where to download the Large Movie Review Dataset when `local` is not set")
    sha256: str | None = _spec("checksum the download must have (null: do not check)")
    local: str | None = _spec("a local aclImdb_v1.tar.gz or extracted aclImdb/ folder to use instead of `url`")


@dataclass(frozen=True)
class PrepareParams:
    maxlen: int = _spec("tokens kept per review (the last ones, as the seed kept)", min=1, max=10_000)
    val_size: int = _spec("reviews held out of train, stratified, for early stopping", min=2)
    seed: int = _spec("seed of the validation split and of the row shuffle", min=0)


@dataclass(frozen=True)
class EncodeParams:
    max_features: int = _spec(
        "Embedding vocabulary size, ids 0 (padding) and 1 (out of vocabulary) included", min=3
    )


@dataclass(frozen=True)
class EmbedParams:
    source: str = _spec("`hub`: a TF-Hub ELMo module; `bilm`: published weight files", choices=("hub", "bilm"))
    hub_handle: str = _spec("TF-Hub handle or local module directory")
    bilm_options: str = _spec("options.json path, or the name of a published model's options")
    bilm_weights: str = _spec("weights.hdf5 of the bilm source")
    output: str = _spec("module output to cache", choices=("elmo", "lstm_outputs1", "lstm_outputs2"))
    dtype: str = _spec("storage dtype of the cached vectors", choices=("float16", "float32"))
    batch_size: int = _spec("reviews per ELMo call (speed and memory only, not the values)", min=1)


@dataclass(frozen=True)
class TrainParams:
    """What every classifier shares: its Embedding width, the optimiser and the training loop."""

    embedding_dim: int = _spec("width of the learned Embedding of the token ids", min=1)
    learning_rate: float = _spec("Adam learning rate", min=1e-7, max=1.0)
    batch_size: int = _spec("reviews per training batch", min=1)
    epochs: int = _spec("upper bound on epochs; early stopping usually ends sooner", min=1)
    patience: int = _spec("epochs without a better validation loss before stopping", min=0)
    seed: int = _spec("seed of weights, dropout and batch order", min=0)


@dataclass(frozen=True)
class BilstmParams:
    lstm_units: int = _spec("units of each LSTM direction", min=1)
    dropout: float = _spec("LSTM input dropout", min=0.0, max=0.99)
    recurrent_dropout: float = _spec("LSTM recurrent dropout", min=0.0, max=0.99)


@dataclass(frozen=True)
class CnnParams:
    filters: int = _spec("Conv1D filters", min=1)
    kernel_size: int = _spec("Conv1D window, in tokens", min=1)
    hidden_units: int = _spec("units of the dense layer after global max pooling", min=1)
    dropout: float = _spec("dropout before and after the dense layer", min=0.0, max=0.99)


@dataclass(frozen=True)
class PooledParams:
    """Logistic regression on the mean token vector: nothing to tune beyond `train`."""


@dataclass(frozen=True)
class ClassifiersParams:
    """One section per classifier of ``elmo_imdb.classifiers.CLASSIFIERS``, named alike, so a
    DVC stage can depend on its own classifier's section only."""

    bilstm: BilstmParams
    cnn: CnnParams
    pooled: PooledParams


@dataclass(frozen=True)
class Params:
    fetch: FetchParams
    prepare: PrepareParams
    encode: EncodeParams
    embed: EmbedParams
    train: TrainParams
    classifiers: ClassifiersParams


def load_params(path: str | Path = "params.yaml") -> Params:
    """Read and validate ``params.yaml``; raise :class:`ParamsError` naming the bad key."""
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: no such parameters file")
    with path.open(encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f) or {}
        except yaml.YAMLError as e:
            raise ParamsError(f"{path}: not valid YAML: {e}") from None
    return _build(Params, raw, prefix="")


def _build(cls, raw, prefix: str):
    if not isinstance(raw, dict):
        raise ParamsError(f"{prefix.rstrip('.') or 'params.yaml'}: expected a mapping, got {raw!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ParamsError(f"unknown parameter {prefix}{unknown[0]} (known here: {', '.join(fields)})")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, f in fields.items():
        key = prefix + name
        if name not in raw:
            raise ParamsError(f"missing parameter {key}")
        if dataclasses.is_dataclass(hints[name]):
            values[name] = _build(hints[name], raw[name], prefix=key + ".")
        else:
            values[name] = _check(key, raw[name], hints[name], f.metadata)
    return cls(**values)


def _check(key: str, value, annotation, meta):
    allowed = typing.get_args(annotation) if isinstance(annotation, types.UnionType) else (annotation,)
    if value is None:
        if type(None) in allowed:
            return None
        raise ParamsError(f"{key} must be set (got null)")
    kind = next(t for t in allowed if t is not type(None))
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) or not isinstance(value, kind):
        raise ParamsError(f"{key} must be {kind.__name__}, got {type(value).__name__} {value!r}")
    if "min" in meta and value < meta["min"]:
        raise ParamsError(f"{key} must be >= {meta['min']}, got {value!r}")
    if "max" in meta and value > meta["max"]:
        raise ParamsError(f"{key} must be <= {meta['max']}, got {value!r}")
    if "choices" in meta and value not in meta["choices"]:
        raise ParamsError(f"{key} must be one of {', '.join(meta['choices'])}; got {value!r}")
    return value

"""The schema of ``params.yaml``: every knob of the pipeline, its type, its range, its meaning.

This module is the one place that knows what a pipeline parameter may be. Each stage calls
:func:`load_params` before doing any heavy work, so a typo or an out-of-range value fails in
a second with a message naming the key, not an hour into ELMo.

The values themselves live only in ``params.yaml``: every key must be there (DVC tracks them
there), so a missing key is an error too. A field's :class:`Spec` holds its help text and its
constraints: ``min``/``max`` for numbers, ``choices`` for strings. ``null`` is allowed only
where the annotation says ``| None``.

The one exception is each classifier's line under ``classifiers``: its schema is the signature
of the classifier's builder (:mod:`elmo_imdb.classifiers`, parameters annotated with
:func:`Int`, :func:`Float`, ...), so that adding a classifier takes one function and one line
of params. :func:`load_params` checks that every line is a mapping; :func:`check_arguments`
checks a line against its builder, with the same rules and messages, when the classifier is
built (the train stage does it first thing).
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from elmo_imdb.errors import PipelineError


#: Variants a classifier can be trained on: the Embedding alone, or next to the vectors of
#: an ELMo source cached in data/<variant>/ (dvc.yaml makes each).
VARIANTS = ("base", "elmo_published", "elmo_imdb")


#: Parameters renamed since a release, so that an older params.yaml is told the new name.
RENAMED = {"embed.google": "embed.published"}


class ParamsError(PipelineError, ValueError):
    """A parameter is missing, unknown, of the wrong type or out of range."""


@dataclass(frozen=True)
class Spec:
    """What a parameter may be, and what it means."""

    help: str
    min: float | None = None
    max: float | None = None
    choices: tuple[str, ...] | None = None


def _spec(help: str, **constraints):
    return field(metadata={"spec": Spec(help, **constraints)})


def Int(help: str, **constraints):
    """Annotation of an int hyperparameter of a classifier builder: ``units: Int("...", min=1)``."""
    return typing.Annotated[int, Spec(help, **constraints)]


def Float(help: str, **constraints):
    """Annotation of a float hyperparameter of a classifier builder."""
    return typing.Annotated[float, Spec(help, **constraints)]


@dataclass(frozen=True)
class FetchParams:
    url: str = _spec("where to download the Large Movie Review Dataset when `local` is not set")
    sha256: str | None = _spec("checksum the download must have (null: do not check)")
    local: str | None = _spec("a local aclImdb_v1.tar.gz or extracted aclImdb/ folder to use instead of `url`")


@dataclass(frozen=True)
class PrepareParams:
    maxlen: int = _spec("tokens kept per review (the last ones, as the original script kept)", min=1, max=10_000)
    val_size: int = _spec("reviews held out of train, stratified, for early stopping", min=2)
    seed: int = _spec("seed of the validation split and of the row shuffle", min=0)


@dataclass(frozen=True)
class EncodeParams:
    max_features: int = _spec(
        "Embedding vocabulary size, ids 0 (padding) and 1 (out of vocabulary) included", min=3
    )


@dataclass(frozen=True)
class EmbedParams:
    """How every ELMo source is cached (the embed stages), and where the published one comes from."""

    published: str = _spec(
        "the elmo_published source: a TF-Hub handle or module folder, or a folder with a published "
        "ELMo's options.json + weights.hdf5"
    )
    output: str = _spec(
        "what to cache per token: `elmo` (the module's mix, [dim]), one layer, or `layers`: all three, "
        "[3, dim], for a classifier to learn its own mix",
        choices=("elmo", "lstm_outputs1", "lstm_outputs2", "layers"),
    )
    dtype: str = _spec("storage dtype of the cached vectors", choices=("float16", "float32"))
    batch_size: int = _spec("reviews per ELMo call (speed and memory; a dependency: it changes stored bytes by one float16 ulp, rarely)", min=1)
    workers: int = _spec(
        "ELMo processes: 1 runs ELMo in the stage itself, as before; more run it on that many Ray "
        "workers (elmo_imdb/cluster.py, docs/scaling.md). Speed only: the features are the same",
        min=1,
    )
    cluster: str | None = _spec(
        "the Ray cluster of the workers: null starts a local one on this machine, for the stage's run "
        "only; an address (`auto`, `host:6379`) joins a running cluster, with any `workers`. Speed only"
    )
    gpus_per_worker: float = _spec(
        "GPUs each Ray worker reserves: 0 for CPU workers, 1 for a GPU each, 0.5 for two workers "
        "sharing one (the stage's own process, `workers: 1` without a cluster, uses any GPU it sees)",
        min=0,
    )


@dataclass(frozen=True)
class PretrainParams:
    """Training the biLM on IMDB's own reviews (elmo_imdb/pretraining.py); its windows are
    `prepare.maxlen` tokens long, as the embed stage runs it."""

    options: str = _spec("architecture: a shipped options name (imdb_tiny, imdb_small, a published model's) or an options.json path")
    init: str | None = _spec("a published-layout weights.hdf5 to continue from (domain adaptation); null: random weights")
    vocab_size: int = _spec("softmax vocabulary: the most frequent training tokens, besides <S>, </S>, <UNK>", min=1)
    n_samples: int = _spec("negative classes of the sampled softmax per step", min=1)
    heldout_reviews: int = _spec("unlabelled reviews held out for perplexity", min=1)
    tokens: int = _spec("training budget in tokens; raising it continues from the last checkpoint", min=1)
    eval_every: int = _spec("tokens between held-out perplexity measurements (and checkpoints)", min=1)
    batch_size: int = _spec("windows per training step", min=1)
    seed: int = _spec("seed of the weights, the held-out slice, the batch order and the softmax samples", min=0)


@dataclass(frozen=True)
class TrainParams:
    """What every classifier shares: its Embedding width, the optimiser and the training loop."""

    embedding_dim: int = _spec("width of the learned Embedding of the token ids", min=1)
    learning_rate: float = _spec("Adam learning rate", min=1e-7, max=1.0)
    batch_size: int = _spec("reviews per training batch", min=1)
    epochs: int = _spec("upper bound on epochs; early stopping usually ends sooner", min=1)
    patience: int = _spec("epochs without a better validation loss before stopping", min=0)


@dataclass(frozen=True)
class Params:
    fetch: FetchParams
    prepare: PrepareParams
    encode: EncodeParams
    pretrain: PretrainParams
    embed: EmbedParams
    train: TrainParams
    variants: list[str] = _spec(
        "variants every classifier is trained on: `base` (the Embedding alone) and ELMo sources "
        "(`elmo_published`, `elmo_imdb`: the Embedding next to that source's cached vectors)",
        choices=VARIANTS,
    )
    seeds: list[int] = _spec(
        "one training run of every classifier and variant per seed (weights, dropout, batch "
        "order): results are means and spreads over them",
        min=0,
        max=2**32 - 1,
    )
    classifiers: dict[str, dict] = _spec(
        "one line per classifier of elmo_imdb.classifiers: its hyperparameters (checked by check_arguments)"
    )


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


def check_arguments(function, raw, key: str) -> dict:
    """The keyword arguments for ``function`` from ``raw``, the params.yaml mapping at ``key``:
    one per parameter of ``function`` annotated with a :class:`Spec` (see :func:`Int`), each
    present and checked; raise :class:`ParamsError` naming the key."""
    hints = typing.get_type_hints(function, include_extras=True)
    fields = {name: typing.get_args(hint) for name, hint in hints.items() if typing.get_origin(hint) is typing.Annotated}
    return _check_mapping(raw, fields, prefix=key + ".")


def _build(cls, raw, prefix: str):
    hints = typing.get_type_hints(cls)
    fields = {f.name: (hints[f.name], f.metadata.get("spec")) for f in dataclasses.fields(cls)}
    return cls(**_check_mapping(raw, fields, prefix))


def _check_mapping(raw, fields: dict[str, tuple], prefix: str) -> dict:
    """``raw`` checked against ``fields`` (name -> (annotation, Spec)): no key unknown, none
    missing, each value checked; nested dataclasses are built in turn."""
    if not isinstance(raw, dict):
        raise ParamsError(f"{prefix.rstrip('.') or 'params.yaml'}: expected a mapping, got {raw!r}")
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        renamed = RENAMED.get(prefix + unknown[0])
        hint = f"; it is now {renamed}" if renamed else f" (known here: {', '.join(fields) or 'none'})"
        raise ParamsError(f"unknown parameter {prefix}{unknown[0]}{hint}")
    values = {}
    for name, (annotation, spec) in fields.items():
        key = prefix + name
        if name not in raw:
            raise ParamsError(f"missing parameter {key}")
        if dataclasses.is_dataclass(annotation):
            values[name] = _build(annotation, raw[name], prefix=key + ".")
        elif annotation == dict[str, dict]:
            values[name] = _mapping_of_mappings(key, raw[name])
        elif typing.get_origin(annotation) is list:
            values[name] = _list_of(key, raw[name], typing.get_args(annotation)[0], spec)
        else:
            values[name] = _check(key, raw[name], annotation, spec)
    return values


def _mapping_of_mappings(key: str, raw) -> dict[str, dict]:
    if not isinstance(raw, dict):
        raise ParamsError(f"{key}: expected a mapping, got {raw!r}")
    for name, value in raw.items():
        if not isinstance(value, dict):
            raise ParamsError(f"{key}.{name}: expected a mapping, got {value!r}")
    return raw


def _list_of(key: str, raw, kind: type, spec: Spec) -> list:
    if not isinstance(raw, list) or not raw:
        raise ParamsError(f"{key}: expected a non-empty list, got {raw!r}")
    for value in raw:
        _check(key, value, kind, spec)
    if len(set(raw)) < len(raw):
        raise ParamsError(f"{key}: lists a value twice: {raw!r}")
    return raw


def _check(key: str, value, annotation, spec: Spec):
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
    if spec.min is not None and value < spec.min:
        raise ParamsError(f"{key} must be >= {spec.min}, got {value!r}")
    if spec.max is not None and value > spec.max:
        raise ParamsError(f"{key} must be <= {spec.max}, got {value!r}")
    if spec.choices is not None and value not in spec.choices:
        raise ParamsError(f"{key} must be one of {', '.join(spec.choices)}; got {value!r}")
    return value

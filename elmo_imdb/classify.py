"""A trained run classifies new text: the same path from raw review to probability as in training.

The pipeline scores a model only on the cached test split. :func:`load_classifier` gives a run of
the matrix (``bilstm-elmo_imdb-1``) a life outside it: ``clf.predict(["great film"])`` cleans
and tokenises each text (:func:`~elmo_imdb.tokenize.tokenize`), keeps its last ``maxlen``
tokens, encodes them with the run's vocabulary and, for an ELMo run, computes the vectors on the
fly with the run's ELMo source, rounded to the cached dtype, exactly as the prepare, encode and
embed stages did for the training rows (nothing is read from the feature store).

That is only true if the files loaded now are those the run was trained with, so the train
stage writes a *run record* beside the model, ``models/<run>.json``::

    run, classifier, variant, seed, maxlen
    vocabulary  {path, sha256}            the Embedding's vocab.txt and the digest of its bytes
    elmo        null, or {source, identity, output, dtype, batch_size}
                source: the folder of options.json + weights.hdf5 (data/bilm) or the TF-Hub
                handle; identity: what the feature store recorded as having computed its
                vectors (the weights' sha256, or the handle)

and :func:`load_classifier` refuses, in one line naming what differs, a vocabulary or an ELMo
source that is not the recorded one (a ``data/bilm`` retrained since, say).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from elmo_imdb.atomic import sha256_of_file, write_json
from elmo_imdb.embedders import BLOCK_ROWS, embed_block, load_embedder, vector_shape
from elmo_imdb.errors import PipelineError
from elmo_imdb.features import stored_identity
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.tokenize import tokenize
from elmo_imdb.vocabulary import Vocabulary

MODELS = Path("models")


class ClassifyError(PipelineError):
    """A run cannot be loaded, or its files are not those it was trained with."""


def elmo_source(variant: str, params) -> str:
    """Where an ELMo variant's vectors come from, as dvc.yaml's embed stages run it."""
    return "data/bilm" if variant == "elmo_imdb" else params.embed.published


def write_run_record(path: str | Path, run: str, classifier: str, variant: str, seed: int, maxlen: int,
                     vocabulary: str | Path, features: str | Path | None, params) -> dict:
    """Record at ``path`` (``models/<run>.json``) what the run was trained with; ``features`` is
    the ELMo store the run read (None for ``base``), whose recorded identity is copied."""
    elmo = None
    if features is not None:
        stored = stored_identity(features)
        elmo = {"source": elmo_source(variant, params), "identity": stored["elmo"], "output": stored["output"],
                "dtype": stored["dtype"], "batch_size": stored.get("batch_size", params.embed.batch_size)}
    record = {"run": run, "classifier": classifier, "variant": variant, "seed": seed, "maxlen": maxlen,
              "vocabulary": {"path": str(vocabulary), "sha256": sha256_of_file(vocabulary)}, "elmo": elmo}
    write_json(path, record)
    return record


class Classifier:
    """A trained model with everything needed to score raw text: ``predict(texts)`` → P(positive)."""

    def __init__(self, model, vocabulary: Vocabulary, maxlen: int, embedder=None, dtype: str = "float16", batch_size: int = 64):
        self.model, self.vocabulary, self.maxlen = model, vocabulary, maxlen
        self.embedder, self.dtype, self.batch_size = embedder, dtype, batch_size
        self._shape = vector_shape(embedder) if embedder is not None else None

    def predict(self, texts: list[str], progress=None) -> np.ndarray:
        """float32 ``[len(texts)]``: each text's probability of being positive. Texts are scored
        BLOCK_ROWS at a time (the embed stage's blocks), ``progress(n)`` called after each."""
        if isinstance(texts, str):
            raise TypeError("predict takes a list of texts, not one string")
        out = np.empty(len(texts), np.float32)
        for start in range(0, len(texts), BLOCK_ROWS):
            block = self._as_split(texts[start : start + BLOCK_ROWS])
            ids = self.vocabulary.encode(block)
            if self.embedder is None:
                inputs = ids
            else:
                inputs = (ids, embed_block(self.embedder, block, self.batch_size, self._shape).astype(self.dtype))
            out[start : start + len(block)] = self.model.predict(inputs, batch_size=self.batch_size, verbose=0).reshape(-1)
            if progress is not None:
                progress(len(block))
        return out

    def _as_split(self, texts: list[str]) -> PreparedSplit:
        """The texts as the prepare stage stores reviews: tokens, the last ``maxlen`` of them."""
        tokens = [tokenize(text)[-self.maxlen :] for text in texts]
        return PreparedSplit(tokens, np.zeros(len(texts), np.int8), [str(i) for i in range(len(texts))], self.maxlen)


def load_classifier(run: str | Path, root: str | Path = ".", elmo: str | None = None) -> Classifier:
    """The classifier of ``run``: a run name of the matrix (``bilstm-elmo_imdb-1``, looked up in
    ``root/models``) or the path of its ``.keras`` file. ``elmo`` overrides the recorded ELMo
    source (a local copy of google/elmo/3, say); it must compute what the run was trained on."""
    model_path = find_model(run, Path(root))
    record_path = model_path.with_suffix(".json")
    if not record_path.is_file():
        raise ClassifyError(f"{record_path} does not exist: the run was trained before runs recorded their inputs; re-run its train stage")
    record = json.loads(record_path.read_text())
    vocabulary = _checked_vocabulary(record, Path(root))
    embedder = None
    if record["elmo"] is None:
        if elmo is not None:
            raise ClassifyError(f"{record['run']} is a base run: it uses no ELMo, so --elmo {elmo} is not needed")
    else:
        embedder = _checked_embedder(record, Path(root), elmo)
    from elmo_imdb import layers  # noqa: F401  (registers the custom layers the saved models use)

    import keras

    model = keras.models.load_model(model_path)
    elmo_record = record["elmo"] or {}
    return Classifier(model, vocabulary, record["maxlen"], embedder, elmo_record.get("dtype", "float16"), elmo_record.get("batch_size", 64))


def find_model(run: str | Path, root: Path) -> Path:
    """``root/models/<run>.keras``, or ``run`` itself when it is a path to a ``.keras`` file."""
    if str(run).endswith(".keras"):
        path = Path(run)
        if not path.is_file():
            raise ClassifyError(f"{path} does not exist")
        return path
    path = root / MODELS / f"{run}.keras"
    if not path.is_file():
        runs = available_runs(root)
        listed = ", ".join(runs) if runs else "none (run `make repro` first)"
        raise ClassifyError(f"no trained run {run!r} in {root / MODELS}; the runs there are: {listed}")
    return path


def available_runs(root: Path) -> list[str]:
    return sorted(p.stem for p in (root / MODELS).glob("*.keras"))


def _checked_vocabulary(record: dict, root: Path) -> Vocabulary:
    path = root / record["vocabulary"]["path"]
    if not path.is_file():
        raise ClassifyError(f"{path}, the vocabulary {record['run']} was trained with, does not exist; run `make repro`")
    if sha256_of_file(path) != record["vocabulary"]["sha256"]:
        raise ClassifyError(
            f"{path} is not the vocabulary {record['run']} was trained with (its sha256 differs: re-encoded since?); "
            f"re-run `dvc repro train@{record['run']}`"
        )
    return Vocabulary.load(path)


def _checked_embedder(record: dict, root: Path, override: str | None):
    elmo = record["elmo"]
    source = override or elmo["source"]
    local = root / source
    embedder = load_embedder(str(local) if local.exists() else source, elmo["output"])
    if embedder.identity != elmo["identity"]:
        raise ClassifyError(
            f"{source} is not the ELMo {record['run']} was trained with: {identity_difference(elmo['identity'], embedder.identity)}; "
            f"re-run `dvc repro train@{record['run']}` (or pass the original files with --elmo)"
        )
    return embedder


def identity_difference(recorded: str, found: str) -> str:
    """Which part of an embedder identity (``bilm:options.json:sha256=...:weights.hdf5:sha256=...``
    or ``hub:<handle>``) differs, in words."""
    recorded_parts = dict(_identity_parts(recorded))
    found_parts = dict(_identity_parts(found))
    changed = [name for name in recorded_parts if recorded_parts.get(name) != found_parts.get(name)]
    return f"{' and '.join(changed)} changed since" if changed else f"recorded {recorded}, found {found}"


def _identity_parts(identity: str):
    kind, _, rest = identity.partition(":")
    if kind != "bilm":
        yield kind, rest
        return
    fields = rest.split(":")
    for name, digest in zip(fields[::2], fields[1::2]):
        yield name, digest

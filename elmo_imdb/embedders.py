"""ELMo embedders: turn batches of tokenised reviews into contextual vectors.

An ELMo *model* is named by one string (:func:`load_embedder`), and two kinds give the same
interface (``embedder(tokens, lengths) -> [B, T, dim]``):

* a folder holding ``options.json`` and ``weights.hdf5``, the published ELMo format (AllenNLP's
  downloads, or the biLM the pretrain stage trains on IMDB): :class:`BilmElmo` runs it on the
  project's own TF2 biLM (:mod:`elmo_imdb.bilm`);
* anything else is a TF-Hub handle or module folder (``google/elmo/3`` or a local copy):
  :class:`HubElmo` calls its ``tokens`` signature, the way the original script did, but once per review
  instead of once per epoch.

Both take tokens right-padded with ``""`` (the modules' convention) and leave padding
positions at zero. Besides any single output of the module, they can return ``layers``: the
three biLM layers of every token, ``[B, T, 3, dim]`` (:func:`select_output`), for a classifier
to mix itself. :func:`embed_blocks` walks a prepared split in contiguous blocks of rows,
batches reviews of similar length inside each block (less padding, fewer wasted FLOPs), and
returns each block left-padded like the prepared split, ready to be stored. A block is the
unit of work: :mod:`elmo_imdb.cluster` hands the same blocks (:func:`split_blocks`) to Ray
workers, which run the same :func:`embed_block` on them.
TensorFlow places the work on a GPU when it sees one.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from elmo_imdb.atomic import sha256_of_file
from elmo_imdb.errors import PipelineError
from elmo_imdb.prepared import PreparedSplit

BLOCK_ROWS = 500
LENGTH_BUCKET = 8
HUB_ELMO_WIDTH = 1024  # google/elmo's `elmo` and `lstm_outputs*`; a module that differs is not ELMo
LAYERS = ("word_emb", "lstm_outputs1", "lstm_outputs2")  # the module outputs behind output `layers`


class ElmoLoadError(PipelineError, RuntimeError):
    """The configured ELMo model cannot be loaded or does not behave like ELMo."""


class HubElmo:
    """A TF-Hub ELMo module called through its ``tokens`` signature."""

    def __init__(self, handle: str, output: str):
        import tensorflow_hub as hub

        try:
            self._module = hub.load(handle)
        except Exception as e:  # hub raises many types: network, missing path, bad format
            raise ElmoLoadError(
                f"cannot load the ELMo module {handle!r}: {type(e).__name__}: {e}\n"
                "Without internet, download the module elsewhere (e.g. the compressed "
                "https://tfhub.dev/google/elmo/3?tf-hub-format=compressed), unpack it, and set "
                "embed.published in params.yaml to that local directory; or set it to a folder holding "
                "a published ELMo's options.json and weights.hdf5."
            ) from None
        if "tokens" not in self._module.signatures:
            raise ElmoLoadError(f"{handle!r} has no `tokens` signature (it has: {', '.join(self._module.signatures)})")
        self._signature = self._module.signatures["tokens"]
        for needed in LAYERS if output == "layers" else (output,):
            if needed not in self._signature.structured_outputs:
                raise ElmoLoadError(f"{handle!r} has no output {needed!r} (it has: {', '.join(self._signature.structured_outputs)})")
        self.output = output
        self.identity = f"hub:{handle}"
        width = vector_shape(self)[-1]
        if width != HUB_ELMO_WIDTH:
            raise ElmoLoadError(f"{handle!r} returns {output} vectors of width {width}, not {HUB_ELMO_WIDTH} like google/elmo")

    def __call__(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        outputs = self._signature(tokens=tf.constant(tokens, tf.string), sequence_len=tf.constant(lengths, tf.int32))
        return select_output(outputs, self.output)


class BilmElmo:
    """The project's TF2 biLM on an ``options.json`` (path or shipped name) + ``weights.hdf5``."""

    def __init__(self, options: str, weights: str, output: str):
        from elmo_imdb.bilm import SHIPPED_OPTIONS, load_bilm
        from elmo_imdb.bilm.token_cache import TokenEmbeddingCache

        options_path = Path(SHIPPED_OPTIONS.get(options, options))
        for path in (options_path, Path(weights)):
            if not path.is_file():
                raise ElmoLoadError(f"{path} does not exist")
        try:
            self._bilm = load_bilm(options_path, weights)
        except (ValueError, OSError) as e:  # options and weights that do not fit, unreadable files
            raise ElmoLoadError(f"cannot build the biLM from {options_path} and {weights}: {e}") from None
        self._token_embeddings = TokenEmbeddingCache(self._bilm)  # the char CNN once per distinct token
        self.output = output
        self.identity = f"bilm:options.json:sha256={sha256_of_file(options_path)}:weights.hdf5:sha256={sha256_of_file(weights)}"

    def __call__(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        embedding = self._token_embeddings.embed(tokens, np.asarray(lengths))
        return select_output(self._bilm.from_embeddings(embedding, tf.constant(lengths, tf.int32)), self.output)


def load_embedder(model: str, output: str) -> HubElmo | BilmElmo:
    """The embedder of ``model``: a folder with ``weights.hdf5`` (and ``options.json``) runs on the
    project's biLM; anything else is loaded as a TF-Hub module."""
    folder = Path(model)
    if (folder / "weights.hdf5").is_file():
        return BilmElmo(str(folder / "options.json"), str(folder / "weights.hdf5"), output)
    return HubElmo(model, output)


def select_output(outputs: dict[str, tf.Tensor], output: str) -> np.ndarray:
    """``output`` of an ELMo call. ``layers`` stacks the biLM's three layers on axis 2, as the
    ELMo paper and TF-Hub's ``elmo`` mix them: the token embedding (doubled, to the LSTMs'
    width), then the two LSTM layers."""
    if output != "layers":
        return outputs[output].numpy()
    word_emb, lstm1, lstm2 = (outputs[name] for name in LAYERS)
    return tf.stack([tf.concat([word_emb, word_emb], axis=-1), lstm1, lstm2], axis=2).numpy()


def vector_shape(embedder) -> tuple[int, ...]:
    """Shape of the embedder's vectors of one token, ``(dim,)`` or ``(3, dim)``, found by
    embedding one word."""
    return embedder(np.array([["movie"]], dtype=object), np.array([1]))[0, 0].shape


def embed_blocks(
    embedder, split: PreparedSplit, batch_size: int, shape: tuple[int, ...], first_row: int = 0
) -> Iterator[tuple[int, np.ndarray]]:
    """Yield ``(first_row, vectors)`` for consecutive blocks of BLOCK_ROWS rows of ``split``,
    from ``first_row`` (a block boundary, or the end when only finishing is left, to resume),
    with a progress bar. Block boundaries and the batches inside a block depend only on the
    split and ``batch_size``, so a resumed run computes exactly what an uninterrupted one would
    (and so does a Ray worker given the same block: :mod:`elmo_imdb.cluster`)."""
    blocks = split_blocks(split, first_row)
    yield from with_progress(((start, embed_block(embedder, block, batch_size, shape)) for start, block in blocks), split, first_row)


def split_blocks(split: PreparedSplit, first_row: int = 0) -> Iterator[tuple[int, PreparedSplit]]:
    """``(first_row, block)`` for the blocks of BLOCK_ROWS rows of ``split`` from ``first_row``,
    each block a split of its own (its rows' tokens, labels, names; the same ``maxlen``)."""
    if first_row % BLOCK_ROWS and first_row != len(split):
        raise ValueError(f"first_row {first_row} is not a multiple of {BLOCK_ROWS}")
    for start in range(first_row, len(split), BLOCK_ROWS):
        end = min(start + BLOCK_ROWS, len(split))
        yield start, PreparedSplit(split.tokens[start:end], split.labels[start:end], split.names[start:end], split.maxlen)


def with_progress(blocks: Iterator[tuple[int, np.ndarray]], split: PreparedSplit, first_row: int) -> Iterator[tuple[int, np.ndarray]]:
    """``blocks`` of ``split``'s rows, from ``first_row`` on, counted on a progress bar as they come."""
    with tqdm(total=len(split), initial=first_row, unit="review", desc="ELMo", smoothing=0.05) as progress:
        for start, vectors in blocks:
            yield start, vectors
            progress.update(len(vectors))


def embed_block(embedder, block: PreparedSplit, batch_size: int, shape: tuple[int, ...]) -> np.ndarray:
    """float32 ``[len(block), maxlen, *shape]`` vectors of every row of ``block``, left-padded like
    the block, exact zeros at padding. Reviews are sorted by length and batched, each batch padded
    to a multiple of LENGTH_BUCKET tokens: little padding, few distinct shapes. Empty reviews
    stay all zeros without calling ELMo."""
    lengths = block.lengths
    vectors = np.zeros((len(block), block.maxlen, *shape), dtype=np.float32)
    nonempty = np.flatnonzero(lengths > 0)
    by_length = nonempty[np.argsort(-lengths[nonempty], kind="stable")]
    for batch in np.array_split(by_length, max(1, -(-len(by_length) // batch_size))):
        if len(batch) == 0:
            continue
        width = min(-(-lengths[batch].max() // LENGTH_BUCKET) * LENGTH_BUCKET, block.maxlen)
        tokens = np.full((len(batch), width), "", dtype=object)
        for i, row in enumerate(batch):
            tokens[i, : lengths[row]] = block.tokens[row]
        output = embedder(tokens, lengths[batch])
        for i, row in enumerate(batch):
            n = lengths[row]
            vectors[row, block.maxlen - n :] = output[i, :n]
    return vectors

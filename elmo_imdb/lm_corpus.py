"""The biLM's pretraining corpus: IMDB's own reviews, cut into windows shaped like its later use.

The corpus is the archive's 50,000 unlabelled reviews (``train/unsup/``) plus the reviews of
the prepared *train* split, whole (not only their last ``maxlen`` tokens), tokenised by the
project's one tokeniser. The validation and test reviews never enter it, by name nor by
content: IMDB holds some reviews twice, under other names, so any candidate whose cleaned text
equals a validation or test review's is dropped (:func:`build_corpus`). A held-out slice of
the unlabelled reviews, chosen by the seed, measures perplexity; training candidates with the
text of a held-out review are dropped too.

The embed stage runs the biLM from zero states over at most ``maxlen`` tokens framed by
``<S>`` and ``</S>``, so that is what a training example is: a *window* of at most ``window``
tokens. Each review is cut into windows from its end backwards, so the last window of a review
ends where the review ends (as the embed stage's last ``maxlen`` tokens do) and only the first
window of a long review is shorter.

Ids:

* *token types*, the biLM's input, in the token-table convention of
  :mod:`elmo_imdb.bilm.chars` (0 = padding, 1 = ``<S>``, 2 = ``</S>``), then every distinct
  token of the corpus, the training part's most frequent first. The biLM reads a type through
  its characters, so every type keeps its spelling, rare or not.
* *targets*, the softmax's classes: 0 = ``<S>``, 1 = ``</S>``, 2 = ``<UNK>``, then the
  ``vocab_size`` most frequent tokens of the training part, most frequent first (the order the
  log-uniform sampler of the sampled softmax assumes). Any other token's target is ``<UNK>``.

Windows are stored as ``[n_windows, window + 2]`` int32 type ids: ``<S>``, the tokens,
``</S>``, then padding; ``lengths`` counts the tokens without the markers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
from tqdm import tqdm

from elmo_imdb.bilm.chars import BOS_ROW, EOS_ROW, PAD_ROW, frame_rows
from elmo_imdb.errors import PipelineError
from elmo_imdb.imdb import UNLABELLED_FOLDER, read_texts
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.tokenize import clean_review, tokenize

MARKERS = ("<S>", "</S>")
TARGET_BOS, TARGET_EOS, TARGET_UNK = 0, 1, 2
SPECIAL_TARGETS = ("<S>", "</S>", "<UNK>")


class CorpusError(PipelineError, ValueError):
    """The archive or the pretraining parameters cannot make a usable corpus."""


@dataclass(frozen=True)
class Windows:
    """Windows of token types ``[n, window + 2]`` and their token counts ``[n]`` (markers excluded)."""

    types: np.ndarray
    lengths: np.ndarray

    def __len__(self) -> int:
        return len(self.lengths)

    @property
    def n_tokens(self) -> int:
        return int(self.lengths.sum())


@dataclass(frozen=True)
class LMCorpus:
    """Training and held-out windows, the token types and the softmax vocabulary."""

    types: list[str]  # type id -> spelling ("" for padding, <S>, </S>, then words)
    vocab: list[str]  # target id -> spelling (<S>, </S>, <UNK>, then the vocab_size words)
    train: Windows
    heldout: Windows
    dropped: dict[str, int]  # candidate reviews kept out for their text: {"as_validation_or_test": n, "as_heldout": m}

    @cached_property
    def target_of_type(self) -> np.ndarray:
        """int32 [n_types]: the softmax target of every token type."""
        rank = np.arange(len(self.types)) - len(MARKERS) - 1  # the words' frequency rank
        n_words = len(self.vocab) - len(SPECIAL_TARGETS)
        targets = np.where(rank < n_words, rank + len(SPECIAL_TARGETS), TARGET_UNK)
        targets[[PAD_ROW, BOS_ROW, EOS_ROW]] = [TARGET_UNK, TARGET_BOS, TARGET_EOS]  # padding is never a target
        return targets.astype(np.int32)

    @cached_property
    def fingerprint(self) -> str:
        """sha256 of everything training reads: types, vocabulary, windows in order."""
        digest = hashlib.sha256()
        for strings in (self.types, self.vocab):
            digest.update("\n".join(strings).encode() + b"\0")
        for windows in (self.train, self.heldout):
            digest.update(windows.types.tobytes() + windows.lengths.tobytes())
        return digest.hexdigest()


def read_corpus(archive: Path, train_split: Path, window: int, vocab_size: int, heldout_reviews: int, seed: int) -> LMCorpus:
    """:func:`build_corpus` over every review of ``archive`` (.tar.gz or extracted folder), the
    training part being the unlabelled reviews and those of the prepared ``train_split`` (.h5)."""
    train_names = sorted(PreparedSplit.load(train_split).names)
    return build_corpus(read_texts(archive, lambda name: True), train_names, window, vocab_size, heldout_reviews, seed)


def build_corpus(
    texts: dict[str, str], train_names: list[str], window: int, vocab_size: int, heldout_reviews: int, seed: int
) -> LMCorpus:
    """Tokenise the unlabelled reviews and those of ``train_names`` and cut them into windows;
    hold out ``heldout_reviews`` unlabelled ones.

    ``texts`` maps a review's name to its raw text; it may also hold the other labelled reviews
    (validation and test, every name neither unlabelled nor in ``train_names``), whose text is
    then kept out *by content*: IMDB holds the same review under several names, so a candidate
    whose cleaned text (:func:`~elmo_imdb.tokenize.clean_review`: markup, entities, controls,
    Unicode form and whitespace normalised) equals a validation or test review's is dropped,
    and so is a training candidate equal to a held-out review. ``LMCorpus.dropped`` counts both.

    Raises :class:`CorpusError` when there are no unlabelled reviews, when too few are left
    for training after the held-out slice, or when ``vocab_size`` exceeds the distinct tokens.
    """
    unlabelled = sorted(name for name in texts if name.startswith(UNLABELLED_FOLDER + "/"))
    if not unlabelled:
        raise CorpusError(
            f"the archive holds no unlabelled reviews (aclImdb/{UNLABELLED_FOLDER}/*.txt), which the biLM "
            "is pretrained on; use the full aclImdb_v1.tar.gz (fetch.local), not a copy of the labelled reviews only"
        )
    missing = sorted(set(train_names) - set(texts))
    if missing:
        raise CorpusError(f"the training review {missing[0]} is not in the archive; re-run `dvc repro prepare`")
    cleaned = {name: clean_review(text) for name, text in tqdm(texts.items(), desc="cleaning", unit=" reviews")}
    protected = {cleaned[name] for name in set(texts) - set(unlabelled) - set(train_names)}  # validation, test
    everything = unlabelled + sorted(train_names)
    candidates = [name for name in everything if cleaned[name] not in protected]
    unlabelled = [name for name in candidates if name.startswith(UNLABELLED_FOLDER + "/")]
    if not 0 < heldout_reviews < len(unlabelled):
        raise CorpusError(
            f"pretrain.heldout_reviews={heldout_reviews} must be at least 1 and leave unlabelled reviews "
            f"for training (the archive has {len(unlabelled)} that are not a validation or test review)"
        )
    rng = np.random.default_rng(seed)
    heldout = sorted(rng.choice(unlabelled, heldout_reviews, replace=False).tolist())
    heldout_texts = {cleaned[name] for name in heldout}
    training = [name for name in candidates if cleaned[name] not in heldout_texts]
    dropped = {
        "as_validation_or_test": len(everything) - len(candidates),
        "as_heldout": len(candidates) - len(heldout) - len(training),
    }
    tokens = {name: tokenize(texts[name]) for name in tqdm(training + heldout, desc="tokenising", unit=" reviews")}

    counts = Counter(token for name in training for token in tokens[name])
    if vocab_size > len(counts):
        raise CorpusError(
            f"pretrain.vocab_size={vocab_size} exceeds the {len(counts)} distinct tokens of the corpus; lower it"
        )
    by_frequency = sorted(counts, key=lambda token: (-counts[token], token))
    heldout_only = sorted({token for name in heldout for token in tokens[name]} - counts.keys())
    types = ["", *MARKERS, *by_frequency, *heldout_only]
    type_of = {token: i for i, token in enumerate(types)}
    return LMCorpus(
        types=types,
        vocab=[*SPECIAL_TARGETS, *by_frequency[:vocab_size]],
        train=_windows([tokens[name] for name in training], type_of, window),
        heldout=_windows([tokens[name] for name in heldout], type_of, window),
        dropped=dropped,
    )


def _windows(reviews: list[list[str]], type_of: dict[str, int], window: int) -> Windows:
    """Cut every review into windows of at most ``window`` tokens, from its end backwards."""
    pieces = [
        review[max(0, end - window) : end]
        for review in reviews
        for end in range(len(review), 0, -window)
    ]
    ids = np.zeros((len(pieces), window), np.int32)
    for i, piece in enumerate(pieces):
        ids[i, : len(piece)] = [type_of[token] for token in piece]
    lengths = np.array([len(piece) for piece in pieces], np.int32)
    return Windows(frame_rows(ids, lengths), lengths)


def batch_rows(step: int, batch_size: int, n_windows: int, seed: int) -> np.ndarray:
    """Row indices of training batch ``step``: the windows in a new random order every epoch
    (a permutation fixed by ``seed`` and the epoch), taken ``batch_size`` at a time across epoch
    boundaries. A function of ``step`` alone, so a resumed run reads exactly what an
    uninterrupted one would."""
    first = step * batch_size
    rows = []
    while len(rows) < batch_size:
        epoch, offset = divmod(first + len(rows), n_windows)
        order = np.random.default_rng([seed, epoch]).permutation(n_windows)
        rows.extend(order[offset : offset + batch_size - len(rows)])
    return np.array(rows)

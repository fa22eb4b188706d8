"""The biLM's pretraining corpus: IMDB's own reviews, cut into windows shaped like its later use.

The corpus is the archive's 50,000 unlabelled reviews (``train/unsup/``) plus the reviews of
the prepared *train* split, whole (not only their last ``maxlen`` tokens), tokenised by the
project's one tokeniser. The validation and test reviews never enter it. A held-out slice of
the unlabelled reviews, chosen by the seed, measures perplexity.

The embed stage runs the biLM from zero states over at most ``maxlen`` tokens framed by
``<S>`` and ``</S>``, so that is what a training example is: a *window* of at most ``window``
tokens. Each review is cut into windows from its end backwards, so the last window of a review
ends where the review ends (as the embed stage's last ``maxlen`` tokens do) and only the first
window of a long review is shorter.

Ids (this module is the one place that knows them):

* *token types*, the biLM's input: 0 = padding, 1 = ``<S>``, 2 = ``</S>``, then every distinct
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

import numpy as np
from tqdm import tqdm

from elmo_imdb.errors import PipelineError
from elmo_imdb.imdb import UNLABELLED_FOLDER
from elmo_imdb.tokenize import tokenize

PAD, BOS, EOS = 0, 1, 2  # token types of padding and the sentence markers
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

    @cached_property
    def target_of_type(self) -> np.ndarray:
        """int32 [n_types]: the softmax target of every token type."""
        rank = np.arange(len(self.types)) - len(MARKERS) - 1  # the words' frequency rank
        n_words = len(self.vocab) - len(SPECIAL_TARGETS)
        targets = np.where(rank < n_words, rank + len(SPECIAL_TARGETS), TARGET_UNK)
        targets[[PAD, BOS, EOS]] = [TARGET_UNK, TARGET_BOS, TARGET_EOS]  # padding is never a target
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


def build_corpus(
    texts: dict[str, str], train_names: list[str], window: int, vocab_size: int, heldout_reviews: int, seed: int
) -> LMCorpus:
    """Tokenise ``texts`` (name -> raw review: the unlabelled reviews and those of
    ``train_names``) and cut them into windows; hold out ``heldout_reviews`` unlabelled ones.

    Raises :class:`CorpusError` when there are no unlabelled reviews, when too few are left
    for training after the held-out slice, or when ``vocab_size`` exceeds the distinct tokens.
    """
    unlabelled = sorted(name for name in texts if name.startswith(UNLABELLED_FOLDER + "/"))
    if not unlabelled:
        raise CorpusError(
            f"the archive holds no unlabelled reviews (aclImdb/{UNLABELLED_FOLDER}/*.txt), which the biLM "
            "is pretrained on; use the full aclImdb_v1.tar.gz (fetch.local), not a copy of the labelled reviews only"
        )
    if not 0 < heldout_reviews < len(unlabelled):
        raise CorpusError(
            f"pretrain.heldout_reviews={heldout_reviews} must be at least 1 and leave unlabelled reviews "
            f"for training (the archive has {len(unlabelled)})"
        )
    missing = sorted(set(train_names) - set(texts))
    if missing:
        raise CorpusError(f"the training review {missing[0]} is not in the archive; re-run `dvc repro prepare`")
    rng = np.random.default_rng(seed)
    heldout = sorted(rng.choice(unlabelled, heldout_reviews, replace=False).tolist())
    training = sorted(set(unlabelled) - set(heldout)) + sorted(train_names)
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
    )


def _windows(reviews: list[list[str]], type_of: dict[str, int], window: int) -> Windows:
    """Cut every review into windows of at most ``window`` tokens, from its end backwards."""
    pieces = [
        review[max(0, end - window) : end]
        for review in reviews
        for end in range(len(review), 0, -window)
    ]
    types = np.full((len(pieces), window + 2), PAD, np.int32)
    types[:, 0] = BOS
    for i, piece in enumerate(pieces):
        types[i, 1 : len(piece) + 1] = [type_of[token] for token in piece]
        types[i, len(piece) + 1] = EOS
    return Windows(types, np.array([len(piece) for piece in pieces], np.int32))


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

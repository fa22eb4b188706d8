"""The sentiment classifiers, all fed the same batches by :class:`elmo_imdb.sequence.ReviewSequence`.

A classifier is a function ``(tokens, hyper) -> P(positive)`` over Keras tensors, registered
in :data:`CLASSIFIERS` under the name of its line in ``params.yaml``'s ``classifiers``, whose
values it gets as ``hyper`` (their schema is in :mod:`elmo_imdb.params`). ``tokens.elmo`` is
None in the variant without ELMo. :func:`build_classifier` makes the inputs, calls the
function and compiles the model, so every classifier is trained and scored the same way.

- ``bilstm``, the seed's model: Embedding [⊕ ELMo] -> BiLSTM -> Dense(1, sigmoid).
- ``cnn``: Embedding [⊕ ELMo] -> Conv1D -> global max pooling -> Dense -> Dense(1, sigmoid).
- ``pooled``: logistic regression on the mean over real tokens of the ELMo vectors (of the
  learned Embedding without ELMo); trains in seconds, a floor for the others.

Ids and features are left-padded with id 0 and zero vectors: the pooled mean masks padding by
the ids, so short reviews are not diluted towards zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from elmo_imdb.layers import MeanOverTokens
from elmo_imdb.params import BilstmParams, CnnParams, Params, PooledParams

# features variant -> whether it reads the cached ELMo features
VARIANTS = {"base": False, "elmo": True}


@dataclass(frozen=True)
class Tokens:
    """A model's inputs: left-padded ids ``[B, T]`` and ELMo vectors ``[B, T, D]`` (or None),
    with what it takes to embed the ids."""

    ids: keras.KerasTensor
    elmo: keras.KerasTensor | None
    vocab_size: int
    embedding_dim: int

    def embedding(self) -> keras.KerasTensor:
        """The learned Embedding of the ids, ``[B, T, embedding_dim]``."""
        return keras.layers.Embedding(self.vocab_size, self.embedding_dim, name="embedding")(self.ids)

    def vectors(self) -> keras.KerasTensor:
        """The Embedding, concatenated with the ELMo vectors of the same positions when given."""
        if self.elmo is None:
            return self.embedding()
        return keras.layers.Concatenate(name="embedding_and_elmo")([self.embedding(), self.elmo])


def positive(x) -> keras.KerasTensor:
    """The one sigmoid unit every classifier ends with: P(review is positive)."""
    return keras.layers.Dense(1, activation="sigmoid", name="positive")(x)


def bilstm(tokens: Tokens, hyper: BilstmParams) -> keras.KerasTensor:
    """The seed's model: Embedding [⊕ ELMo] read by a BiLSTM whose final states feed the output."""
    lstm = keras.layers.LSTM(hyper.lstm_units, dropout=hyper.dropout, recurrent_dropout=hyper.recurrent_dropout)
    return positive(keras.layers.Bidirectional(lstm, name="bilstm")(tokens.vectors()))


def cnn(tokens: Tokens, hyper: CnnParams) -> keras.KerasTensor:
    """n-gram detectors: Conv1D over Embedding [⊕ ELMo], the strongest response of each filter
    anywhere in the review, then a small dense layer."""
    x = keras.layers.Conv1D(hyper.filters, hyper.kernel_size, padding="same", activation="relu", name="conv")(tokens.vectors())
    x = keras.layers.GlobalMaxPooling1D(name="max_over_tokens")(x)
    x = keras.layers.Dropout(hyper.dropout)(x)
    x = keras.layers.Dense(hyper.hidden_units, activation="relu", name="hidden")(x)
    return positive(keras.layers.Dropout(hyper.dropout)(x))


def pooled(tokens: Tokens, hyper: PooledParams) -> keras.KerasTensor:
    """Logistic regression on the mean ELMo vector over real tokens (on the mean learned
    Embedding without ELMo): the cheapest use of the features, a floor for the others."""
    vectors = tokens.elmo if tokens.elmo is not None else tokens.embedding()
    return positive(MeanOverTokens(name="mean_over_tokens")([vectors, tokens.ids]))


# name (= its section of params.yaml's `classifiers`) -> the function that builds it
CLASSIFIERS = {"bilstm": bilstm, "cnn": cnn, "pooled": pooled}


def build_classifier(name: str, params: Params, maxlen: int, vocab_size: int, elmo_dim: int | None) -> keras.Model:
    """Classifier ``name`` over ids [and ``elmo_dim``-wide ELMo vectors], compiled with Adam and
    binary cross-entropy. Its inputs are ``ids`` alone, or ``[ids, elmo]``: what
    :class:`~elmo_imdb.sequence.ReviewSequence` yields."""
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    elmo = None if elmo_dim is None else keras.Input(shape=(maxlen, elmo_dim), dtype="float32", name="elmo")
    tokens = Tokens(ids, elmo, vocab_size, params.train.embedding_dim)
    outputs = CLASSIFIERS[name](tokens, getattr(params.classifiers, name))
    inputs = ids if elmo is None else [ids, elmo]
    model = keras.Model(inputs, outputs, name=name if elmo is None else f"{name}_elmo")
    model.compile(
        optimizer=keras.optimizers.Adam(params.train.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model

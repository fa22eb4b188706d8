"""The sentiment classifiers, all fed the same batches by :class:`elmo_imdb.sequence.ReviewSequence`.

A classifier is a builder function ``(tokens, **hyperparameters) -> P(positive)`` over Keras
tensors, registered with :func:`classifier` under its own name: the name of its line in
``params.yaml``'s ``classifiers``, and of its DVC stages. Its keyword parameters, annotated
with :func:`~elmo_imdb.params.Int` / :func:`~elmo_imdb.params.Float`, are the schema of that
line. ``tokens.elmo`` is None in the variant without ELMo. :func:`build_classifier` checks the
line, makes the inputs, calls the builder and compiles the model, so every classifier is
trained and scored the same way. Adding one takes a builder here and its line in params.yaml.

- ``bilstm``, the original script's model: Embedding [⊕ ELMo] -> BiLSTM -> Dense(1, sigmoid).
- ``cnn``: Embedding [⊕ ELMo] -> Conv1D -> global max pooling -> Dense -> Dense(1, sigmoid).
- ``pooled``: logistic regression on the mean and the max over real tokens of Embedding
  [⊕ ELMo]; trains in seconds, a floor for the others.

Every ELMo variant is its base model with the ELMo vectors next to the Embedding, so the two
variants of a classifier differ in the ELMo input only, and the ELMo vectors enter as cached
(scaling them to the Embedding's norm cost the BiLSTM more than a point: docs/journal.md, 2026-12-02). Ids
and features are left-padded with id 0 and zero vectors: pooling masks padding by the ids, so short reviews are not diluted
towards zero. When the cache holds all three ELMo
layers per token (``embed.output: layers``), a :class:`~elmo_imdb.layers.ScalarMix` learns
their task-specific mix first, and every classifier sees one vector per token as before.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras

from elmo_imdb.layers import MeanAndMaxOverTokens, ScalarMix
from elmo_imdb.params import Float, Int, ParamsError, TrainParams, check_arguments

# name (= its line in params.yaml's `classifiers`) -> the function that builds it
CLASSIFIERS = {}


def classifier(builder):
    """Register ``builder`` under its function name."""
    CLASSIFIERS[builder.__name__] = builder
    return builder


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
        """The Embedding, concatenated with the ELMo vectors of the same positions when given:
        ``[B, T, embedding_dim (+ D)]``."""
        if self.elmo is None:
            return self.embedding()
        return keras.layers.Concatenate(name="embedding_and_elmo")([self.embedding(), self.elmo])


def positive(x) -> keras.KerasTensor:
    """The one sigmoid unit every classifier ends with: P(review is positive)."""
    return keras.layers.Dense(1, activation="sigmoid", name="positive")(x)


@classifier
def bilstm(
    tokens: Tokens,
    lstm_units: Int("units of each LSTM direction", min=1),
    dropout: Float("LSTM input dropout", min=0.0, max=0.99),
    recurrent_dropout: Float("LSTM recurrent dropout", min=0.0, max=0.99),
) -> keras.KerasTensor:
    """The original script's model: Embedding [⊕ ELMo] read by a BiLSTM whose final states feed the output."""
    lstm = keras.layers.LSTM(lstm_units, dropout=dropout, recurrent_dropout=recurrent_dropout)
    return positive(keras.layers.Bidirectional(lstm, name="bilstm")(tokens.vectors()))


@classifier
def cnn(
    tokens: Tokens,
    filters: Int("Conv1D filters", min=1),
    kernel_size: Int("Conv1D window, in tokens", min=1),
    hidden_units: Int("units of the dense layer after global max pooling", min=1),
    dropout: Float("dropout before and after the dense layer", min=0.0, max=0.99),
) -> keras.KerasTensor:
    """n-gram detectors: Conv1D over Embedding [⊕ ELMo], the strongest response of each filter
    anywhere in the review, then a small dense layer."""
    x = keras.layers.Conv1D(filters, kernel_size, padding="same", activation="relu", name="conv")(tokens.vectors())
    x = keras.layers.GlobalMaxPooling1D(name="max_over_tokens")(x)
    x = keras.layers.Dropout(dropout)(x)
    x = keras.layers.Dense(hidden_units, activation="relu", name="hidden")(x)
    return positive(keras.layers.Dropout(dropout)(x))


@classifier
def pooled(tokens: Tokens) -> keras.KerasTensor:
    """Logistic regression on the mean and the max over real tokens of Embedding [⊕ ELMo]:
    the cheapest use of the features, a floor for the others."""
    return positive(MeanAndMaxOverTokens(name="mean_and_max_over_tokens")([tokens.vectors(), tokens.ids]))


def hyperparameters(name: str, classifiers: dict[str, dict]) -> dict:
    """Classifier ``name``'s line of params.yaml, checked against its builder's signature."""
    if name not in CLASSIFIERS:
        raise ParamsError(f"classifiers.{name}: elmo_imdb/classifiers.py has no classifier {name!r} (it has: {', '.join(CLASSIFIERS)})")
    if name not in classifiers:
        raise ParamsError(f"missing parameter classifiers.{name}")
    return check_arguments(CLASSIFIERS[name], classifiers[name], f"classifiers.{name}")


def build_classifier(
    name: str, hyper: dict, train: TrainParams, maxlen: int, vocab_size: int, elmo_shape: tuple[int, ...] | None
) -> keras.Model:
    """Classifier ``name`` with hyperparameters ``hyper`` (see :func:`hyperparameters`) over ids
    [and ELMo vectors of shape ``elmo_shape`` per token: ``(dim,)``, or ``(layers, dim)`` to be
    mixed], compiled with Adam and binary cross-entropy. Its inputs are ``ids`` alone, or
    ``[ids, elmo]``: what :class:`~elmo_imdb.sequence.ReviewSequence` yields."""
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    elmo_in = None if elmo_shape is None else keras.Input(shape=(maxlen, *elmo_shape), dtype="float32", name="elmo")
    elmo = ScalarMix(name="elmo_scalar_mix")(elmo_in) if elmo_shape is not None and len(elmo_shape) == 2 else elmo_in
    outputs = CLASSIFIERS[name](Tokens(ids, elmo, vocab_size, train.embedding_dim), **hyper)
    model = keras.Model(ids if elmo is None else [ids, elmo_in], outputs, name=name if elmo is None else f"{name}_elmo")
    model.compile(
        optimizer=keras.optimizers.Adam(train.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model

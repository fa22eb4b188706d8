"""The sentiment classifiers, fed by :class:`elmo_imdb.sequence.ReviewSequence`.

``bilstm`` is the seed's model: a learned Embedding of the token ids, optionally concatenated
with the cached ELMo vectors of the same positions, read by a bidirectional LSTM whose final
states feed one sigmoid unit. Without ELMo it is the seed's baseline, with it the seed's ELMo
variant, minus running ELMo in the training loop.
"""

from __future__ import annotations

import keras

from elmo_imdb.params import TrainParams

# variant name -> whether it reads the cached ELMo features
VARIANTS = {"base": False, "elmo": True}


def build_bilstm(params: TrainParams, maxlen: int, vocab_size: int, elmo_dim: int | None) -> keras.Model:
    """Embedding(vocab_size, embedding_dim) [⊕ ELMo] -> BiLSTM -> Dense(1, sigmoid), compiled."""
    ids = keras.Input(shape=(maxlen,), dtype="int32", name="ids")
    inputs = [ids]
    x = keras.layers.Embedding(vocab_size, params.embedding_dim, name="embedding")(ids)
    if elmo_dim is not None:
        elmo = keras.Input(shape=(maxlen, elmo_dim), dtype="float32", name="elmo")
        inputs.append(elmo)
        x = keras.layers.Concatenate(name="embedding_and_elmo")([x, elmo])
    x = keras.layers.Bidirectional(
        keras.layers.LSTM(params.lstm_units, dropout=params.dropout, recurrent_dropout=params.recurrent_dropout),
        name="bilstm",
    )(x)
    outputs = keras.layers.Dense(1, activation="sigmoid", name="positive")(x)
    model = keras.Model(inputs if elmo_dim is not None else ids, outputs, name="bilstm_elmo" if elmo_dim else "bilstm")
    model.compile(
        optimizer=keras.optimizers.Adam(params.learning_rate),
        loss="binary_crossentropy",
        metrics=["accuracy"],
    )
    return model

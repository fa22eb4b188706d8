"""The char CNN once per word type: token embeddings computed once, then looked up.

ELMo's token encoder (char CNN, highway layers, projection) sees one token at a time, with no
context, so a word gets the same embedding wherever it occurs: in a split of IMDB reviews
about 4 million positions hold about a hundred thousand distinct tokens. bilm-tf computes the
encoder once per vocabulary word for inference (``dump_token_embeddings``); so does this
cache, for every distinct token it is shown, growing as new ones arrive.

:meth:`TokenEmbeddingCache.embed` turns a padded batch of tokens into the biLM's input rows
``[B, T + 2, projection_dim]`` (``<S>``, the tokens, ``</S>``, zeros), encoding only the tokens
not seen before; :meth:`BiLM.from_embeddings <elmo_imdb.bilm.model.BiLM.from_embeddings>` runs
the LSTMs on them. Memory: one float32 row of ``projection_dim`` per distinct token, 2 KB for
the original model (projection 512): 200 MB for 100,000 types; 0.5 KB for ``imdb_small``.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from .chars import PAD_ROW, frame_rows, marker_rows, word_char_ids
from .model import BiLM


class TokenEmbeddingCache:
    """Token embeddings of ``bilm`` for every distinct token seen so far."""

    def __init__(self, bilm: BiLM):
        self.bilm = bilm
        self._table = bilm.embed_tokens(marker_rows(bilm.config.max_characters_per_token)).numpy()
        self._table[PAD_ROW] = 0.0  # padding positions are zeros
        self._size = len(self._table)  # rows in use; the table grows by doubling
        self._row_of: dict[str, int] = {}

    def __len__(self) -> int:
        """Distinct tokens encoded so far."""
        return len(self._row_of)

    def embed(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """float32 [B, T + 2, projection_dim]: ``<S>``, the embeddings of row b's first
        ``lengths[b]`` tokens, ``</S>``, then zeros; tokens not seen before are encoded first."""
        batch, width = tokens.shape
        real = np.arange(width)[np.newaxis, :] < lengths[:, np.newaxis]
        new = sorted({token for token in tokens[real]} - self._row_of.keys())
        if new:
            embedded = self.bilm.embed_tokens(word_char_ids(tf.constant(new, tf.string), self.bilm.config.max_characters_per_token))
            if self._size + len(new) > len(self._table):
                grown = np.zeros((max(2 * len(self._table), self._size + len(new)), self._table.shape[1]), np.float32)
                grown[: self._size] = self._table[: self._size]
                self._table = grown
            self._table[self._size : self._size + len(new)] = embedded.numpy()
            self._row_of.update((token, self._size + i) for i, token in enumerate(new))
            self._size += len(new)
        rows = np.zeros((batch, width), np.int64)
        rows[real] = [self._row_of[token] for token in tokens[real]]
        return self._table[frame_rows(rows, lengths)]

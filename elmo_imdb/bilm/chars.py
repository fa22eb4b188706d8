"""Tokens -> character ids, in-graph, as the published biLM was trained on.

ELMo reads a token as the UTF-8 bytes of the word (0..255) framed by special symbols:

* 256 / 257 begin / end of *sentence* (the whole ``<S>`` / ``</S>`` token),
* 258 / 259 begin / end of *word*,
* 260 padding up to ``max_characters_per_token``.

A word keeps at most ``max_characters_per_token - 2`` bytes (longer words are cut, possibly in
the middle of a multi-byte character, as bilm-tf does). Finally every id is shifted by +1 so
that 0 can mean "no token here" (the char embedding's padding row).

The conversion runs as TensorFlow string ops so that exported SavedModels take raw strings.

Tables of tokens (the pretraining corpus' token types, the token-embedding cache's rows) share
one convention, defined here: row ``PAD_ROW`` (0) is padding, ``BOS_ROW`` (1) and ``EOS_ROW`` (2)
the ``<S>`` and ``</S>`` markers, real tokens from 3 on (:func:`marker_rows`,
:func:`frame_rows`).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

BOS_CHAR, EOS_CHAR, BOW_CHAR, EOW_CHAR, PAD_CHAR = 256, 257, 258, 259, 260
PAD_ROW, BOS_ROW, EOS_ROW = 0, 1, 2  # rows of a token table; real tokens from 3 on


def marker_char_ids(marker: int, max_chars: int) -> tf.Tensor:
    """Char ids (already shifted by +1) of the ``<S>`` or ``</S>`` token."""
    ids = [BOW_CHAR, marker, EOW_CHAR] + [PAD_CHAR] * (max_chars - 3)
    return tf.constant(ids, tf.int32) + 1


def marker_rows(max_chars: int) -> np.ndarray:
    """int32 [3, max_chars]: the char ids of a token table's first rows: padding (zeros), ``<S>``, ``</S>``."""
    markers = [marker_char_ids(marker, max_chars).numpy() for marker in (BOS_CHAR, EOS_CHAR)]
    return np.stack([np.zeros(max_chars, np.int32), *markers]).astype(np.int32)


def frame_rows(rows: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """``[B, T + 2]`` table rows of a batch: ``BOS_ROW``, row b's first ``lengths[b]`` entries of
    ``rows`` [B, T], ``EOS_ROW``, then ``PAD_ROW``: the framing :func:`sentence_char_ids` gives chars."""
    batch, width = rows.shape
    real = np.arange(width)[np.newaxis, :] < lengths[:, np.newaxis]
    framed = np.full((batch, width + 2), PAD_ROW, rows.dtype)
    framed[:, 0] = BOS_ROW
    framed[:, 1:-1][real] = rows[real]
    framed[np.arange(batch), lengths + 1] = EOS_ROW
    return framed


def word_char_ids(tokens: tf.Tensor, max_chars: int = 50) -> tf.Tensor:
    """Char ids (shifted by +1) of each string in ``tokens``: shape ``tokens.shape + [max_chars]``.

    A token spelled ``<S>`` or ``</S>`` gets the sentence marker's ids, as in bilm-tf's
    ``UnicodeCharsVocabulary`` and allennlp's ``ELMoCharacterMapper``.
    """
    max_bytes = max_chars - 2
    words = tf.strings.substr(tokens, 0, max_bytes)  # unit="BYTE": cuts bytes like bilm-tf
    n_bytes = tf.strings.length(words)[..., tf.newaxis]
    raw = tf.cast(tf.io.decode_raw(words, tf.uint8, fixed_length=max_bytes), tf.int32)
    # Shift the bytes one to the right so that position k holds byte k-1 (position 0 is BOW).
    edge = tf.zeros_like(raw[..., :1])
    bytes_at = tf.concat([edge, raw, edge], axis=-1)
    position = tf.range(max_chars)
    ids = tf.where(
        position == 0,
        BOW_CHAR,
        tf.where(position <= n_bytes, bytes_at, tf.where(position == n_bytes + 1, EOW_CHAR, PAD_CHAR)),
    ) + 1
    for spelling, marker in (("<S>", BOS_CHAR), ("</S>", EOS_CHAR)):
        ids = tf.where((tokens == spelling)[..., tf.newaxis], marker_char_ids(marker, max_chars), ids)
    return ids


def sentence_char_ids(tokens: tf.Tensor, sequence_len: tf.Tensor, max_chars: int = 50) -> tf.Tensor:
    """Char ids of a padded batch with the sentence markers added.

    Args:
      tokens: [B, T] strings; row ``b`` holds ``sequence_len[b]`` tokens followed by padding.
      sequence_len: [B] int32.
    Returns:
      [B, T + 2, max_chars] int32: ``<S>``, the tokens, ``</S>`` at position
      ``sequence_len[b] + 1``, then all-zero rows (padding).
    """
    tokens = tf.convert_to_tensor(tokens, tf.string)
    sequence_len = tf.cast(sequence_len, tf.int32)
    batch_size, n_tokens = tf.shape(tokens)[0], tf.shape(tokens)[1]
    is_token = tf.range(n_tokens)[tf.newaxis, :] < sequence_len[:, tf.newaxis]
    words = word_char_ids(tokens, max_chars) * tf.cast(is_token, tf.int32)[..., tf.newaxis]

    bos = tf.tile(marker_char_ids(BOS_CHAR, max_chars)[tf.newaxis, tf.newaxis], [batch_size, 1, 1])
    no_token = tf.zeros([batch_size, 1, max_chars], tf.int32)
    framed = tf.concat([bos, words, no_token], axis=1)
    is_eos = tf.range(n_tokens + 2)[tf.newaxis, :] == sequence_len[:, tf.newaxis] + 1
    return tf.where(is_eos[..., tf.newaxis], marker_char_ids(EOS_CHAR, max_chars), framed)

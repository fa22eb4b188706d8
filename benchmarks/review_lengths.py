"""How long IMDB reviews are, and what each `maxlen` costs: tokens kept, bytes of features,
and the token positions ELMo computes with and without batching by length.

Tokenises every labelled review of the archive (the pipeline's tokeniser) and, for each
maxlen, reports the tokens kept per review, the float16 features per review and for all
reviews, and the positions the embed stage computes when it batches reviews sorted by length
against batches in arrival order (each padded to its longest review, rounded up to
LENGTH_BUCKET). Also how many of the kept tokens are words (a token holding a letter or digit;
punctuation is a token of its own) and how many tokens it takes to keep the last --words
words, as the original script's Keras IMDB (words only) kept them. Pure counting: no ELMo runs, so it
takes a minute.

Example:
    python benchmarks/review_lengths.py ../shared/data/aclImdb_v1.tar.gz --out docs/benchmarks/review_lengths.json
"""

from __future__ import annotations

import argparse
import re
from pathlib import Path

import numpy as np
from embed_throughput import by_length, in_arrival_order, padded_positions
from results import publish

from elmo_imdb.imdb import read_reviews
from elmo_imdb.tokenize import tokenize

ELMO_DIM = 1024
WORD = re.compile(r"\w")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="aclImdb_v1.tar.gz or an extracted aclImdb/ folder")
    parser.add_argument("--maxlen", type=int, nargs="+", default=[80, 200, 400], help="default: %(default)s")
    parser.add_argument("--batch-size", type=int, default=64, help="reviews per ELMo call (default: %(default)s)")
    parser.add_argument("--words", type=int, default=80, help="the original script's window, in words (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    reviews, _ = read_reviews(args.archive)
    tokens = [tokenize(r.text) for r in reviews]
    full = np.array([len(t) for t in tokens])
    is_word = [np.array([bool(WORD.search(token)) for token in t], bool) for t in tokens]
    # tokens from the end needed to hold the last `--words` words (all of them if fewer)
    to_cover = np.array([np.searchsorted(np.cumsum(w[::-1]), args.words) + 1 if w.sum() >= args.words else len(w) for w in is_word])
    order = np.random.default_rng(0).permutation(len(full))  # arrival order = the prepared shuffle
    results = {
        "reviews": len(full),
        "tokens_per_review": {"mean": round(float(full.mean()), 1), "median": int(np.median(full)), "p90": int(np.percentile(full, 90))},
        f"tokens_to_keep_the_last_{args.words}_words": {
            "mean": round(float(to_cover.mean()), 1), "median": int(np.median(to_cover)), "p90": int(np.percentile(to_cover, 90))
        },
        "maxlen": {},
    }
    for maxlen in args.maxlen:
        lengths = np.minimum(full, maxlen)[order]
        positions = {
            "by_length": padded_positions(lengths, by_length(lengths, args.batch_size), maxlen),
            "arrival_order": padded_positions(lengths, in_arrival_order(len(lengths), args.batch_size), maxlen),
        }
        results["maxlen"][maxlen] = {
            "kept_tokens_per_review": round(float(lengths.mean()), 1),
            "kept_words_per_review": round(float(np.mean([w[-maxlen:].sum() for w in is_word])), 1),
            "reviews_cut": round(float(np.mean(full > maxlen)), 3),
            "float16_bytes_per_review": maxlen * ELMO_DIM * 2,
            "float16_gb_all_reviews": round(len(full) * maxlen * ELMO_DIM * 2 / 1e9, 1),
            "positions_over_real_tokens": {k: round(v / lengths.sum(), 3) for k, v in positions.items()},
        }
    publish(results, args.out)


if __name__ == "__main__":
    main()

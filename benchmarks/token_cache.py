"""What the char CNN once per distinct token buys the embed stage: tokens/s with and without it.

On the first N reviews of a prepared split, with the project's biLM (full-size original options,
random weights unless --weights: speed does not depend on the values), runs the embed stage's
loop (:func:`elmo_imdb.embedders.embed_blocks`, batches by length) twice per round:

1. direct: every batch through ``bilm(tokens, lengths)``, the char CNN for every position;
2. cached: the stage's own :class:`elmo_imdb.embedders.BilmElmo`, whose token-embedding cache
   (a fresh one per round) runs the char CNN once per distinct token;

and reports, for every round, the seconds of each and their ratio (direct / cached, the two
timed back to back, so both see the same load), and over the rounds the mean and sample
standard deviation of the ratio and of each one's tokens/s; and the fraction of token
positions that are distinct tokens. The FLOP bound of the ratio counts what the cached loop
still computes: total / (LSTM + distinct fraction x token encoder) FLOPs per token (the LSTM-only
bound, total / LSTM, is what it would be if no token were ever encoded).

Example (after `dvc repro prepare` on the real archive):
    python benchmarks/token_cache.py data/prepared/test.h5 --reviews 1000 --out docs/benchmarks/token_cache.json
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from pretrain_throughput import flops_per_token
from results import publish

from elmo_imdb.bilm import BiLMConfig, load_options, write_random_weights
from elmo_imdb.bilm.token_cache import TokenEmbeddingCache
from elmo_imdb.embedders import BilmElmo, embed_blocks, select_output
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.report import spread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", type=Path, help="a prepared split, e.g. data/prepared/test.h5")
    parser.add_argument("--reviews", type=int, default=1000)
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway")
    parser.add_argument("--weights", type=Path, help="weights.hdf5 (default: random weights)")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()

    split = PreparedSplit.load(args.prepared)
    n = min(args.reviews, len(split))
    subset = PreparedSplit(split.tokens[:n], split.labels[:n], split.names[:n], split.maxlen)
    tokens = int(subset.lengths.sum())
    distinct = len({token for review in subset.tokens for token in review})
    with tempfile.TemporaryDirectory() as tmp:
        weights = args.weights or write_random_weights(load_options(args.options), Path(tmp) / "w.hdf5")
        cached = BilmElmo(args.options, str(weights), "elmo")
        bilm = cached._bilm

        def direct(batch_tokens, lengths):
            return select_output(bilm(tf.constant(batch_tokens.astype(str)), tf.constant(lengths, tf.int32)), "elmo")

        def run(embedder) -> float:
            start = time.perf_counter()
            for _ in embed_blocks(embedder, subset, args.batch_size, (bilm.output_dim,)):
                pass
            return time.perf_counter() - start

        direct(*_one_word()), cached(*_one_word())  # trace both outside the timing
        times = {"direct": [], "cached": []}
        for _ in range(args.rounds):
            times["direct"].append(run(direct))
            cached._token_embeddings = TokenEmbeddingCache(bilm)  # every round starts with an empty cache
            times["cached"].append(run(cached))

    flops = flops_per_token(BiLMConfig.from_options(load_options(args.options)))
    encoder = flops["char_cnn"] + flops["highway"] + flops["projection"]
    ratios = [d / c for d, c in zip(times["direct"], times["cached"])]
    publish(
        {
            "reviews": n,
            "tokens": tokens,
            "distinct_tokens": distinct,
            "distinct_fraction": round(distinct / tokens, 4),
            "elmo": f"{args.options} ({'given weights' if args.weights else 'random weights'})",
            "batch_size": args.batch_size,
            "rounds": args.rounds,
            "seconds": {name: [round(t, 4) for t in values] for name, values in times.items()},
            "speedup_per_round": [round(r, 3) for r in ratios],
            "speedup": spread(ratios, 3),
            "tokens_s": {name: spread([tokens / t for t in values], 1) for name, values in times.items()},
            "flop_bound": round(flops["total"] / (flops["lstm"] + distinct / tokens * encoder), 3),
            "lstm_only_flop_bound": round(flops["total"] / flops["lstm"], 3),
        },
        args.out,
    )


def _one_word():
    return np.array([["movie"]], dtype=object), np.array([1], np.int32)


if __name__ == "__main__":
    main()

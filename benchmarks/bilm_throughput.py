"""Throughput of the project's biLM on this machine, against its own float32 matmul speed.

Builds the biLM of a published options file with random weights (speed does not depend on the
values), runs fixed-shape batches of random words, and reports

* tokens/s (real tokens: the <S>/</S> the model adds are overhead, not counted),
* the model's FLOPs per token (docs/bilm.md derives the formula),
* the float32 matmul throughput measured in the same process with a chain of large tf.matmul,
  timed in alternation with the model batches (best of each kept, see --rounds),
* the fraction of that bound the biLM reaches: tokens/s x FLOPs/token / matmul FLOP/s.

Example (from the repository root, package not installed):
    PYTHONPATH=. python benchmarks/bilm_throughput.py --batch-size 32 --tokens 80
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from results import publish

from elmo_imdb.bilm import BiLM, BiLMConfig, load_options, random_weights


def flops_per_token(config: BiLMConfig) -> dict[str, int]:
    """Multiply-add FLOPs (2 per multiply-add) of one token position, by component.

    Element-wise work (activations, gates, clipping) is left out: it is O(width), not O(width^2).
    """
    chars, embed = config.max_characters_per_token, config.char_embed_dim
    filters, proj, hidden = config.n_filters, config.projection_dim, config.lstm_dim
    cnn = sum(2 * width * embed * num * (chars - width + 1) for width, num in config.filters)
    highway = config.n_highway * 2 * (2 * filters * filters)
    projection = 2 * filters * proj
    # Per layer and direction: gates [input, previous output] @ W_0, then the output projection.
    lstm = config.n_layers * 2 * (2 * (proj + proj) * 4 * hidden + 2 * hidden * proj)
    return {"char_cnn": cnn, "highway": highway, "projection": projection, "lstm": lstm,
            "total": cnn + highway + projection + lstm}


def matmul_chain(size: int, repeats: int, chains: int = 1):
    """A tf.function multiplying a size x size matrix ``repeats`` times, ``chains`` times side by
    side (independent chains TensorFlow can run concurrently), and its FLOP count."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size]) / size**0.5

    @tf.function
    def chain():
        xs = [a + i for i in range(chains)]
        for _ in range(repeats):
            xs = [tf.matmul(x, b) for x in xs]
        return tf.add_n(xs)

    return chain, 2 * size**3 * repeats * chains


def seconds(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def random_batch(batch_size: int, n_tokens: int, seed: int) -> tf.Tensor:
    """[batch_size, n_tokens] random lowercase words of 1 to 12 letters."""
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words = ["".join(rng.choice(letters, rng.integers(1, 13))) for _ in range(batch_size * n_tokens)]
    return tf.constant(np.array(words, dtype=object).reshape(batch_size, n_tokens))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--options", default="elmo_2x4096_512_2048cnn_2xhighway",
                        help="published model name or options.json path (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--tokens", type=int, default=80, help="tokens per sentence (all sentences full)")
    parser.add_argument("--rounds", type=int, default=5,
                        help="timed (batch, matmul) pairs after one warm-up of each; the best of each counts")
    parser.add_argument("--time-chunk", type=int, default=16, help="BiLM time_chunk")
    parser.add_argument("--jit", action="store_true", help="compile the numeric part with XLA")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--matmul-repeats", type=int, default=4, help="matmuls per timed chain")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    load_average = round(os.getloadavg()[0], 2)

    options = load_options(args.options)
    config = BiLMConfig.from_options(options)
    bilm = BiLM(options, random_weights(config, args.seed), time_chunk=args.time_chunk, jit_compile=args.jit)
    tokens = random_batch(args.batch_size, args.tokens, args.seed)
    sequence_len = tf.fill([args.batch_size], args.tokens)

    def run_batch():
        bilm(tokens, sequence_len)["elmo"].numpy()

    chain, matmul_flops = matmul_chain(args.matmul_size, args.matmul_repeats)
    first_batch = seconds(run_batch)  # includes tracing
    seconds(lambda: chain().numpy())
    # Interleave the two measurements so that both see the same load on a shared machine, and
    # keep the best of each: interference only ever slows a run down.
    batch_times, matmul_times = [], []
    for _ in range(args.rounds):
        batch_times.append(seconds(run_batch))
        matmul_times.append(seconds(lambda: chain().numpy()))
    best_batch = min(batch_times)
    tokens_per_second = args.batch_size * args.tokens / best_batch
    matmul = matmul_flops / min(matmul_times)
    flops = flops_per_token(config)
    report = {
        "options": args.options,
        "batch": [args.batch_size, args.tokens],
        "time_chunk": args.time_chunk,
        "jit_compile": args.jit,
        "load_average_1min_at_start": load_average,
        "first_batch_s": round(first_batch, 2),
        "batch_s": [round(t, 2) for t in batch_times],
        "matmul_s": [round(t, 2) for t in matmul_times],
        "tokens_per_s": round(tokens_per_second, 1),
        "flops_per_token": flops,
        "model_gflops_per_s": round(tokens_per_second * flops["total"] / 1e9, 1),
        "matmul_gflops_per_s": round(matmul / 1e9, 1),
        "fraction_of_matmul_bound": round(tokens_per_second * flops["total"] / matmul, 3),
    }
    publish(report, args.out)


if __name__ == "__main__":
    main()

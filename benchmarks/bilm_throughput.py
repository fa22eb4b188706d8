"""Throughput of the project's biLM on this machine, against its own float32 matmul speed.

Builds the biLM of a published options file with random weights (speed does not depend on the
values), runs fixed-shape batches of random words, and reports

* tokens/s (real tokens: the <S>/</S> the model adds are overhead, not counted),
* the model's FLOPs per token (docs/bilm.md derives the formula),
* the float32 matmul throughput measured in the same process with a large tf.matmul,
* the fraction of that bound the biLM reaches: tokens/s x FLOPs/token / matmul FLOP/s.

Example: python benchmarks/bilm_throughput.py --batch-size 32 --tokens 80
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import tensorflow as tf

from elmo_imdb.bilm import PUBLISHED_OPTIONS, BiLM, BiLMConfig, load_options, random_weights


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


def matmul_flops_per_second(size: int, repeats: int) -> float:
    """Best-of-3 float32 throughput of a size x size x size tf.matmul chain."""
    a = tf.random.normal([size, size])
    b = tf.random.normal([size, size]) / size**0.5

    @tf.function
    def chain(x):
        for _ in range(repeats):
            x = tf.matmul(x, b)
        return x

    chain(a).numpy()  # trace and warm up
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        chain(a).numpy()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 * repeats / best


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
    parser.add_argument("--batches", type=int, default=5, help="timed batches after one warm-up batch")
    parser.add_argument("--time-chunk", type=int, default=8, help="BiLM time_chunk")
    parser.add_argument("--jit", action="store_true", help="compile the numeric part with XLA")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    options = load_options(PUBLISHED_OPTIONS.get(args.options, args.options))
    config = BiLMConfig.from_options(options)
    bilm = BiLM(options, random_weights(config, args.seed), time_chunk=args.time_chunk, jit_compile=args.jit)
    tokens = random_batch(args.batch_size, args.tokens, args.seed)
    sequence_len = tf.fill([args.batch_size], args.tokens)

    start = time.perf_counter()
    bilm(tokens, sequence_len)["elmo"].numpy()
    first_batch = time.perf_counter() - start
    times = []
    for _ in range(args.batches):
        start = time.perf_counter()
        bilm(tokens, sequence_len)["elmo"].numpy()
        times.append(time.perf_counter() - start)
    tokens_per_second = args.batch_size * args.tokens / float(np.median(times))

    flops = flops_per_token(config)
    matmul = matmul_flops_per_second(args.matmul_size, repeats=8)
    report = {
        "options": args.options,
        "batch": [args.batch_size, args.tokens],
        "time_chunk": args.time_chunk,
        "jit_compile": args.jit,
        "first_batch_s": round(first_batch, 2),
        "median_batch_s": round(float(np.median(times)), 3),
        "tokens_per_s": round(tokens_per_second, 1),
        "flops_per_token": flops,
        "model_gflops_per_s": round(tokens_per_second * flops["total"] / 1e9, 1),
        "matmul_gflops_per_s": round(matmul / 1e9, 1),
        "fraction_of_matmul_bound": round(tokens_per_second * flops["total"] / matmul, 3),
        "threads": {"intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
                    "inter_op": tf.config.threading.get_inter_op_parallelism_threads()},
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

"""Pretraining speed on this machine: tokens/s of the training step, against its float32 matmul speed.

On the real corpus (the archive's unlabelled reviews and the prepared train split, as the
pretrain stage builds it), with the options of --options and the batches the stage would
train on and the stage's use of the cores (one per op), times compiled training steps in
alternation with chains of large matmuls (best of each kept: interference only ever slows a
run down), and reports

* tokens/s of the training step (tokens the loss predicts from, markers not counted);
* the FLOPs of one training token, by component, counted as the step computes them: the
  LSTMs and the sampled softmax for every position, the char CNN, highway and projection once
  per *distinct* token type of the batch (measured), times 3 for forward + backward (the
  backward pass of a matmul is two matmuls of the same size);
* the fraction of the same-run matmul bound: tokens/s x FLOPs/token / matmul FLOP/s, the
  bound being the faster of one matmul chain and enough chains side by side to use every core
  with the stage's threads per op.

Example (after `dvc repro prepare` on the real archive):
    PYTHONPATH=. python benchmarks/pretrain_throughput.py --out docs/benchmarks/pretrain_throughput.json
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import tensorflow as tf
from bilm_throughput import flops_per_token, matmul_chain, seconds
from results import publish

from elmo_imdb.bilm import BiLMConfig, load_options
from elmo_imdb.lm_corpus import batch_rows, read_corpus
from elmo_imdb.params import load_params
from elmo_imdb.pretraining import Pretraining, share_cores_between_directions, usable_cores


def training_flops(config: BiLMConfig, n_samples: int, distinct_fraction: float) -> dict[str, float]:
    """FLOPs of one training token: 3 x (forward FLOPs), the token encoder charged per distinct type."""
    forward = flops_per_token(config)
    encoder = forward["char_cnn"] + forward["highway"] + forward["projection"]
    softmax = 2 * 2 * config.projection_dim * (n_samples + 1)  # two directions, true class + samples
    computed = distinct_fraction * encoder + forward["lstm"] + softmax
    return {
        "token_encoder_per_type": encoder,
        "lstm": forward["lstm"],
        "sampled_softmax": softmax,
        "forward_if_encoder_per_position": encoder + forward["lstm"] + softmax,
        "forward_computed": computed,
        "training_computed": 3 * computed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=Path("data/raw/aclImdb_v1.tar.gz"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--options", help="options name or path (default: params.yaml's pretrain.options)")
    parser.add_argument("--batch-size", type=int, help="windows per step (default: params.yaml's)")
    parser.add_argument("--rounds", type=int, default=10, help="timed (step, matmul) pairs after one warm-up of each")
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--matmul-repeats", type=int, default=4)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    share_cores_between_directions()  # as the pretrain stage
    cores = usable_cores()
    params = load_params(args.params)
    p = params.pretrain
    options_name = args.options or p.options
    batch_size = args.batch_size or p.batch_size

    corpus = read_corpus(args.archive, args.prepared / "train.h5", params.prepare.maxlen, p.vocab_size, p.heldout_reviews, p.seed)
    options = load_options(options_name)
    config = BiLMConfig.from_options(options)
    with tempfile.TemporaryDirectory() as scratch:
        training = Pretraining(corpus, options, None, batch_size, p.n_samples, p.seed, scratch)
        batches = []
        for step in range(args.rounds + 1):
            rows = batch_rows(step, batch_size, len(corpus.train), p.seed)
            lengths = corpus.train.lengths[rows]
            batches.append((corpus.train.types[rows][:, : int(lengths.max()) + 2], lengths))
        # The bound: the faster of one chain of large matmuls and as many chains side by side as
        # ops of share_cores_between_directions' width fit in the cores (all cores busy).
        side_by_side = max(1, cores // tf.config.threading.get_intra_op_parallelism_threads())
        chains = {n: matmul_chain(args.matmul_size, args.matmul_repeats, n) for n in sorted({1, side_by_side})}
        first_step = seconds(lambda: training.train_step(*batches[0]).numpy())  # includes tracing
        for chain, _ in chains.values():
            seconds(lambda: chain().numpy())
        step_s, matmul_s = [], {n: [] for n in chains}
        for windows, lengths in batches[1:]:
            step_s.append(seconds(lambda: training.train_step(windows, lengths).numpy()))
            for n, (chain, _) in chains.items():
                matmul_s[n].append(seconds(lambda: chain().numpy()))

    tokens = [int(lengths.sum()) for _, lengths in batches[1:]]
    positions = [windows.size for windows, _ in batches[1:]]
    distinct = [len(np.unique(windows)) for windows, _ in batches[1:]]
    distinct_fraction = float(np.sum(distinct) / np.sum(positions))
    flops = training_flops(config, p.n_samples, distinct_fraction)
    best = int(np.argmin(np.array(step_s) / np.array(tokens)))
    tokens_per_s = tokens[best] / step_s[best]
    matmul_by_chains = {n: flops_n / min(matmul_s[n]) for n, (_, flops_n) in chains.items()}
    matmul = max(matmul_by_chains.values())
    publish(
        {
            "options": options_name,
            "batch_size": batch_size,
            "n_samples": p.n_samples,
            "corpus_tokens": corpus.train.n_tokens,
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "first_step_s": round(first_step, 2),
            "step_s": [round(t, 3) for t in step_s],
            "tokens_per_step": tokens,
            "distinct_types_per_position": round(distinct_fraction, 3),
            "matmul_s": {f"{n}_chains": [round(t, 3) for t in ts] for n, ts in matmul_s.items()},
            "matmul_gflops_per_s_by_chains": {f"{n}_chains": round(f / 1e9, 1) for n, f in matmul_by_chains.items()},
            "flops_per_training_token": {k: round(v) for k, v in flops.items()},
            "tokens_per_s_best_step": round(tokens_per_s, 1),
            "tokens_per_s_all_steps": round(sum(tokens) / sum(step_s), 1),
            "model_gflops_per_s": round(tokens_per_s * flops["training_computed"] / 1e9, 1),
            "matmul_gflops_per_s": round(matmul / 1e9, 1),
            "fraction_of_matmul_bound": round(tokens_per_s * flops["training_computed"] / matmul, 3),
            "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        },
        args.out,
    )


if __name__ == "__main__":
    main()

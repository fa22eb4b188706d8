"""Where the pretraining step's time goes: its parts timed one by one on the stage's batches.

Each part is its own compiled function over the same batch, timed in alternation with the
others for --rounds rounds (the median kept per part, so a burst of load on a shared machine
moves one sample, not the table):

* ``token_encoder``: ``tf.unique`` over the batch, the char CNN, highway and projection over
  its distinct types, the gather back to [B, S, projection_dim];
* ``lstms_forward``: both LSTM stacks' forward loops from the embedding (the trainable loops,
  which keep what the gradient needs);
* ``loss_forward``: the whole sampled-softmax loss, forward only (encoder + LSTMs + softmax);
* ``loss_and_gradient``: the loss and every weight's gradient;
* ``step``: the whole training step (gradient, clipping, Adam update), on a copy of the model.

The table derives the softmax (loss - encoder - LSTMs), the backward pass (gradient - loss)
and the optimiser (step - gradient) from these. Then TensorFlow's profiler traces
--trace-steps whole steps and the per-op table says where their time goes: self time by op
type and by op, and how many ops ran per step (each costs some microseconds however small).

Example (after `dvc repro prepare`):
    PYTHONPATH=. python benchmarks/pretrain_profile.py --out docs/benchmarks/pretrain_profile.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from results import commit, publish
from tensorflow.python.profiler.internal import _pywrap_profiler_plugin

import elmo_imdb
from elmo_imdb.bilm import load_options
from elmo_imdb.lm_corpus import batch_rows, read_corpus
from elmo_imdb.params import load_params
from elmo_imdb.pretrain_step import WINDOWS
from elmo_imdb.pretraining import Pretraining, share_cores_between_directions


def parts(training: Pretraining) -> dict:
    """The timed parts of the module docstring, each a ``tf.function(windows, lengths)``."""
    model = training.model

    def token_encoder(types, lengths):
        distinct, index = tf.unique(tf.reshape(types, [-1]))
        return tf.gather(model.bilm._embed_tokens(tf.gather(model._char_ids, distinct)), index)

    def lstms_forward(types, lengths):
        embedding = tf.reshape(token_encoder(types, lengths), [tf.shape(types)[0], tf.shape(types)[1], -1])
        layers, _ = model.bilm.contextualize(embedding, lengths + 2, model.bilm.zero_state(tf.shape(types)[0]))
        return layers[-1]

    def loss_forward(types, lengths):
        return model.sampled_loss(types, lengths, training.step)

    def loss_and_gradient(types, lengths):
        with tf.GradientTape() as tape:
            loss = model.sampled_loss(types, lengths, training.step)
        return [tf.convert_to_tensor(g) for g in tape.gradient(loss, model.weights)]

    compiled = {f.__name__: tf.function(f, input_signature=WINDOWS) for f in
                (token_encoder, lstms_forward, loss_forward, loss_and_gradient)}
    return {**compiled, "step": training.train_step}


def op_table(trace_dir: Path, steps: int, top: int = 15) -> dict:
    """The profiler's per-op statistics of a trace of ``steps`` steps: self time (ms per step)
    by op type and for the ``top`` ops, and ops executed per step."""
    traces = [str(p) for p in trace_dir.rglob("*.xplane.pb")]
    data, _ = _pywrap_profiler_plugin.xspace_to_tools_data(traces, "framework_op_stats", {})
    table = json.loads(data)[0]  # a Google Charts DataTable: cols, then rows of cells
    columns = [c["id"] for c in table["cols"]]
    by_type, by_op, count = {}, {}, 0.0
    for row in table["rows"]:
        op = dict(zip(columns, (c.get("v") for c in row["c"])))
        if op["type"] == "IDLE":
            continue
        ms = op["total_self_time"] / 1000 / steps
        by_type[op["type"]] = by_type.get(op["type"], 0.0) + ms
        by_op[f'{op["type"]} {op["operation"]}'] = ms
        count += op["occurrences"] / steps
    total = sum(by_type.values())

    def ranked(times: dict, n: int) -> dict:
        return {k: {"ms": round(v, 1), "fraction": round(v / total, 3)}
                for k, v in sorted(times.items(), key=lambda kv: -kv[1])[:n]}

    return {"self_ms_per_step": round(total, 1), "ops_per_step": round(count), "by_type": ranked(by_type, top),
            "top_ops": ranked(by_op, top)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=Path("data/raw/aclImdb_v1.tar.gz"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--rounds", type=int, default=7, help="timed rounds of every part after one warm-up")
    parser.add_argument("--trace-steps", type=int, default=3, help="whole steps traced by the profiler")
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    share_cores_between_directions()  # as the pretrain stage
    params = load_params(args.params)
    p = params.pretrain
    corpus = read_corpus(args.archive, args.prepared / "train.h5", params.prepare.maxlen, p.vocab_size, p.heldout_reviews, p.seed)
    rows = batch_rows(0, p.batch_size, len(corpus.train), p.seed)
    lengths = corpus.train.lengths[rows]
    batch = corpus.train.types[rows][:, : int(lengths.max()) + 2], lengths
    with tempfile.TemporaryDirectory() as scratch:
        training = Pretraining(corpus, load_options(p.options), None, p.batch_size, p.n_samples, p.seed, scratch)
        timed = parts(training)
        samples = {name: [] for name in timed}
        for round_ in range(args.rounds + 1):
            for name, fn in timed.items():
                start = time.perf_counter()
                tf.nest.map_structure(lambda t: t.numpy(), fn(*batch))
                if round_:  # round 0 traces
                    samples[name].append(time.perf_counter() - start)
        with tempfile.TemporaryDirectory() as trace_dir:
            tf.profiler.experimental.start(trace_dir)
            for _ in range(args.trace_steps):
                training.train_step(*batch).numpy()
            tf.profiler.experimental.stop()
            ops = op_table(Path(trace_dir), args.trace_steps)
    ms = {name: 1000 * float(np.median(s)) for name, s in samples.items()}
    table = {
        "token_encoder": ms["token_encoder"],
        "lstms_forward": ms["lstms_forward"] - ms["token_encoder"],
        "sampled_softmax_forward": ms["loss_forward"] - ms["lstms_forward"],
        "backward": ms["loss_and_gradient"] - ms["loss_forward"],
        "clip_and_adam": ms["step"] - ms["loss_and_gradient"],
    }
    publish(
        {
            "elmo_imdb_commit": commit(cwd=Path(elmo_imdb.__file__).parent),  # the code profiled (PYTHONPATH may name another checkout)
            "load_average_1min_at_end": round(os.getloadavg()[0], 2),
            "options": p.options,
            "batch_size": p.batch_size,
            "tokens_in_batch": int(lengths.sum()),
            "median_ms": {k: round(v, 1) for k, v in ms.items()},
            "samples_ms": {k: [round(1000 * t, 1) for t in s] for k, s in samples.items()},
            "step_ms_by_part": {k: round(v, 1) for k, v in table.items()},
            "step_fraction_by_part": {k: round(v / ms["step"], 3) for k, v in table.items()},
            "profiled_steps": {"steps": args.trace_steps, **ops},
        },
        args.out,
    )


if __name__ == "__main__":
    main()

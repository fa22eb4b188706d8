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

Last, the limits of one LSTM cell (``one_lstm_cell``): a trainable cell of the biLM's shape,
forward and backward on random inputs of the batch's width, timed per row (one position of one
window; the width is the batch's, its longest window + 2) at the stage's batch size and at 2x
and 4x it, and two cells side by side (as the step runs the two directions; the time per row
per cell, which two cores can at best halve). All with the stage's threads (one per op, two ops
side by side), each size timed on its own, not alternated. A time per row that does not fall
with the batch says the cell is bound by its work per row, not by the per-op overhead a bigger
batch would spread. Beside it, the floor its matmuls set on one core (its FLOPs at the rate
of its loop's [batch, projection_dim] x [projection_dim, 4 * lstm_dim] matmul), in float32 and
in bfloat16, and what the cell would take with bfloat16 matmuls and everything else
as it is.

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
from elmo_imdb.bilm import BiLMConfig, load_options
from elmo_imdb.bilm.lstm import LSTMCellWeights, trainable_projected_lstm
from elmo_imdb.bilm.model import TIME_CHUNK
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


def median_seconds(fn, rounds: int) -> float:
    """Median wall time of ``fn()`` over ``rounds`` calls after one warm-up (which traces)."""
    fn()
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return float(np.median(samples))


def lstm_cells(config: BiLMConfig, batch: int, width: int, rounds: int, cells: int = 1) -> float:
    """Wall seconds per row per cell of ``cells`` independent trainable LSTM cells (forward and
    backward, on random inputs [batch, width, projection_dim], every row as long as the window)
    run side by side, as the step runs the two directions."""
    d, h, p = config.projection_dim, config.lstm_dim, config.projection_dim
    rng = tf.random.Generator.from_seed(0)
    weights = [LSTMCellWeights(*(tf.Variable(rng.normal(s) * 0.05) for s in ([d, 4 * h], [p, 4 * h], [4 * h], [h, p])))
               for _ in range(cells)]
    inputs, lengths = [rng.normal([batch, width, d]) for _ in range(cells)], tf.fill([batch], width)

    @tf.function
    def forward_and_backward():
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            outputs = [trainable_projected_lstm(cell, x, lengths, tf.zeros([batch, h]), tf.zeros([batch, p]),
                                                config.cell_clip, config.proj_clip, TIME_CHUNK)[0] for cell, x in zip(weights, inputs)]
        return tape.gradient(outputs, [inputs, *weights])

    seconds = median_seconds(lambda: tf.nest.map_structure(lambda t: t.numpy(), forward_and_backward()), rounds)
    return seconds / (batch * width * cells)


def matmul_rate(rows: int, inner: int, columns: int, dtype, repeats: int = 200) -> float:
    """One core's FLOP/s of a [rows, inner] x [inner, columns] matmul in ``dtype``: ``repeats``
    of them one after the other (``parallel_iterations=1``: with the stage's two ops side by
    side, independent iterations would overlap and time both cores)."""
    a, b = (tf.cast(tf.random.normal(shape), dtype) for shape in ([rows, inner], [inner, columns]))

    @tf.function
    def chain():
        def body(i, total):
            return i + 1, total + tf.cast(tf.matmul(a, b)[0, 0], tf.float32)

        return tf.while_loop(lambda i, _: i < repeats, body, (0, tf.constant(0.0)), parallel_iterations=1)[1]

    return 2 * rows * inner * columns * repeats / median_seconds(lambda: chain().numpy(), 5)


def cell_limits(config: BiLMConfig, batch_size: int, width: int, rounds: int) -> dict:
    """The ``one_lstm_cell`` section of the module docstring (microseconds per row)."""
    d, h, p = config.projection_dim, config.lstm_dim, config.projection_dim
    per_row = {f"batch_{n}": 1e6 * lstm_cells(config, n, width, rounds) for n in (batch_size, 2 * batch_size, 4 * batch_size)}
    side_by_side = 1e6 * lstm_cells(config, batch_size, width, rounds, cells=2)
    flops = 6 * (d * 4 * h + p * 4 * h + h * p)  # the three matmuls, forward, and twice that backward
    floor = {dtype.name: 1e6 * flops / matmul_rate(batch_size, p, 4 * h, dtype) for dtype in (tf.float32, tf.bfloat16)}
    here = per_row[f"batch_{batch_size}"]
    return {
        "width": width,
        "flops_per_row": flops,
        "us_per_row": {k: round(v, 3) for k, v in per_row.items()},
        "two_cells_side_by_side_us_per_row": round(side_by_side, 3),
        "matmul_floor_us_per_row": {k: round(v, 3) for k, v in floor.items()},
        "float32_matmul_fraction": round(floor["float32"] / here, 3),
        "with_bfloat16_matmuls_us_per_row": round(here - floor["float32"] + floor["bfloat16"], 3),
    }


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
    limits = cell_limits(BiLMConfig.from_options(load_options(p.options)), p.batch_size, batch[0].shape[1], args.rounds)
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
            "one_lstm_cell": limits,
        },
        args.out,
    )


if __name__ == "__main__":
    main()

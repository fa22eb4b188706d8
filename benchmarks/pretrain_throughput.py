"""Pretraining speed and learning, this checkout's step against a git revision's, side by side.

Each side is its own process (this checkout's ``elmo_imdb``, and with --baseline the package of
that revision, extracted with ``git archive`` into a temporary folder), built as the pretrain
stage builds its run: the real corpus (the archive's unlabelled reviews and the prepared train
split), the options, batch size, negatives and seed of --params (the baseline reads its own
revision's params.yaml, whose other keys may differ, with --params' ``prepare`` and ``pretrain``
sections; the run stops if the settings the step depends on still differ), random initial weights, the stage's use of the cores. Both sides train the same batches from the same weights, in rounds
of --steps-per-round steps taken in alternation (A B, then B A, ...; the idle side waits on
its pipe), until --tokens tokens; then each measures the held-out perplexity (full softmax).
Between rounds this process times chains of large matmuls, the machine's float32 bound. So
one run says, on the same machine under the same load:

* every step's seconds (wall clock, and the CPU time of the side's process: on a loaded
  machine it moves less than the wall clock), tokens and training loss, per side (the losses are the learning curve,
  batch by batch: the same maths gives the same losses within float noise);
* tokens/s per round (its mean and spread) and over all steps (tokens / seconds, the first,
  tracing, step excluded), and the speed-up per round and over all steps;
* the held-out perplexity of both sides after the same tokens;
* the FLOPs of one training token, by component, counted as the step computes them: the
  LSTMs and the sampled softmax for every position, the token encoder once per *distinct*
  token type of the batch (measured), times 3 for forward + backward (the backward pass of a
  matmul is two matmuls of the same size), and the fraction of the matmul bound each side
  reaches over all steps.

Example (after `dvc repro prepare` on the real archive; about 1 M tokens a side):
    PYTHONPATH=. python benchmarks/pretrain_throughput.py --baseline main --tokens 1000000 \
        --out docs/benchmarks/pretrain_throughput.json
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
#: The pretrain params a step's speed and learning depend on: both sides must have the same.
SETTINGS = ("options", "vocab_size", "n_samples", "heldout_reviews", "batch_size", "seed")
REPLY = "@@pretrain_throughput "  # marks a side's answers on its stdout (the library may print too)


# ------------------------------------------------------------------------------ FLOPs, bound


def flops_per_token(config) -> dict[str, int]:
    """Multiply-add FLOPs (2 per multiply-add) of one token position of a biLM forward pass
    (encoder at every position), by component, for a :class:`~elmo_imdb.bilm.BiLMConfig`.

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


def training_flops(config, n_samples: int, distinct_fraction: float) -> dict[str, float]:
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


def matmul_chain(size: int, repeats: int, chains: int = 1):
    """A tf.function multiplying a size x size matrix ``repeats`` times, ``chains`` times side by
    side (independent chains TensorFlow can run concurrently), and its FLOP count."""
    import tensorflow as tf

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


# ------------------------------------------------------------------------------ one side


def serve(archive: Path, prepared: Path, params_path: Path) -> None:
    """One side: build the stage's run with whatever ``elmo_imdb`` is first on the path, then
    answer requests, one JSON line each on stdin: ``{"steps": n}`` trains the next n steps and
    answers their seconds, tokens and losses; ``{"perplexity": true}`` answers the held-out
    perplexity; end of input ends the process. Only the API both sides share is used."""
    from elmo_imdb.bilm import load_options
    from elmo_imdb.lm_corpus import batch_rows, read_corpus
    from elmo_imdb.params import load_params
    from elmo_imdb.pretraining import Pretraining, share_cores_between_directions

    share_cores_between_directions()  # as the pretrain stage
    params = load_params(params_path)
    p = params.pretrain
    corpus = read_corpus(archive, prepared / "train.h5", params.prepare.maxlen, p.vocab_size, p.heldout_reviews, p.seed)
    scratch = tempfile.mkdtemp(prefix="pretrain_throughput_")  # no checkpoint is written there
    atexit.register(shutil.rmtree, scratch, ignore_errors=True)
    training = Pretraining(corpus, load_options(p.options), None, p.batch_size, p.n_samples, p.seed, scratch)

    def answer(reply: dict) -> None:
        print(REPLY + json.dumps(reply), flush=True)

    def batch(step: int) -> tuple[np.ndarray, np.ndarray]:
        """Windows [B, longest + 2] and lengths [B] of step ``step``, as Pretraining.run takes them."""
        rows = batch_rows(step, p.batch_size, len(corpus.train), p.seed)
        lengths = corpus.train.lengths[rows]
        return corpus.train.types[rows][:, : int(lengths.max()) + 2], lengths

    def train(step: int) -> tuple[float, float, int, float]:
        windows, lengths = batch(step)
        start, cpu_start = time.perf_counter(), time.process_time()
        loss = float(training.train_step(windows, lengths))
        return time.perf_counter() - start, time.process_time() - cpu_start, int(lengths.sum()), loss

    first_s, _, first_tokens, first_loss = train(0)  # traces: timed apart
    answer({"first_step_s": first_s, "first_step_tokens": first_tokens, "first_loss": first_loss,
            "corpus_tokens": corpus.train.n_tokens,
            "settings": {"maxlen": params.prepare.maxlen, **{k: getattr(p, k) for k in SETTINGS}},
            "distinct_types_per_position": distinct_fraction([batch(step)[0] for step in range(20)])})
    for line in sys.stdin:
        request = json.loads(line)
        if "steps" in request:
            done = [train(int(training.step)) for _ in range(request["steps"])]
            answer(dict(zip(("step_s", "cpu_s", "tokens", "loss"), map(list, zip(*done)))))
        else:
            forward, backward = training.heldout_perplexity()
            answer({"tokens_seen": int(training.tokens_seen), "heldout_perplexity": [forward, backward]})


def distinct_fraction(batches: list[np.ndarray]) -> float:
    """Distinct token types per position of ``batches`` (what the token encoder costs)."""
    return sum(len(np.unique(windows)) for windows in batches) / sum(windows.size for windows in batches)


class Side:
    """A :func:`serve` process over the ``elmo_imdb`` package in ``tree``, with the params file ``params``."""

    def __init__(self, name: str, tree: Path, params: Path, args):
        self.name = name
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tree), str(HERE)])}
        command = [sys.executable, str(Path(__file__).resolve()), "--serve", "--archive", str(args.archive),
                   "--prepared", str(args.prepared), "--params", str(params)]
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env,
                                        cwd=tree)
        self.steps: dict[str, list] = {"step_s": [], "cpu_s": [], "tokens": [], "loss": []}
        self.rounds: list[float] = []  # tokens/s of each round

    def reply(self) -> dict:
        for line in self.process.stdout:
            if line.startswith(REPLY):
                return json.loads(line[len(REPLY):])
        raise RuntimeError(f"the {self.name} side ended without answering (exit code {self.process.wait()})")

    def ask(self, request: dict) -> dict:
        self.process.stdin.write(json.dumps(request) + "\n")
        self.process.stdin.flush()
        return self.reply()

    def train(self, steps: int) -> None:
        done = self.ask({"steps": steps})
        for key, values in done.items():
            self.steps[key] += values
        self.rounds.append(sum(done["tokens"]) / sum(done["step_s"]))

    def close(self) -> None:
        self.process.stdin.close()
        self.process.wait()


def extracted(revision: str, folder: Path) -> tuple[Path, str]:
    """``revision``'s ``elmo_imdb`` package and ``params.yaml``, extracted into ``folder``, and its full commit hash."""
    commit = subprocess.run(["git", "rev-parse", "--verify", f"{revision}^{{commit}}"], cwd=REPO, capture_output=True,
                            text=True, check=True).stdout.strip()
    archive = folder / "baseline.tar"
    subprocess.run(["git", "archive", "--output", str(archive), commit, "elmo_imdb", "params.yaml"], cwd=REPO,
                   check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree", commit




# ------------------------------------------------------------------------------ the run


def baseline_params(ours: Path, theirs: Path) -> Path:
    """``theirs`` (a revision's params.yaml: its keys, which may have been renamed since) with the
    ``prepare`` and ``pretrain`` sections of ``ours``, written next to it."""
    import yaml

    merged = yaml.safe_load(theirs.read_text())
    merged.update({key: yaml.safe_load(ours.read_text())[key] for key in ("prepare", "pretrain")})
    out = theirs.with_name("params_for_baseline.yaml")
    out.write_text(yaml.safe_dump(merged))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--archive", type=Path, default=Path("data/raw/aclImdb_v1.tar.gz"))
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"))
    parser.add_argument("--params", type=Path, default=Path("params.yaml"))
    parser.add_argument("--baseline", metavar="REV", help="a git revision whose step runs beside this checkout's")
    parser.add_argument("--tokens", type=int, default=150_000, help="tokens each side trains on (default: %(default)s)")
    parser.add_argument("--steps-per-round", type=int, default=3)
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-repeats", type=int, default=4)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)  # one side (Side)
    parser.add_argument("--out", type=Path, help="write the results here as JSON")
    args = parser.parse_args()
    args.archive, args.prepared, args.params = (p.resolve() for p in (args.archive, args.prepared, args.params))
    if args.serve:
        return serve(args.archive, args.prepared, args.params)

    import tensorflow as tf
    from results import commit, publish

    from elmo_imdb.bilm import BiLMConfig, load_options
    from elmo_imdb.params import load_params
    from elmo_imdb.pretraining import share_cores_between_directions, usable_cores
    from elmo_imdb.report import spread

    share_cores_between_directions()  # the bound with the stage's threads per op
    load_average = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as folder:
        trees = {"new": (REPO, commit(cwd=REPO))}
        params = {"new": args.params}
        if args.baseline:
            trees["baseline"] = extracted(args.baseline, Path(folder))
            params["baseline"] = baseline_params(args.params, trees["baseline"][0] / "params.yaml")
        sides = [Side(name, tree, params[name], args) for name, (tree, _) in trees.items()]
        started = {side.name: side.reply() for side in sides}
        if len({json.dumps(s["settings"]) for s in started.values()}) > 1:
            sys.exit(f"the sides' params differ, so their steps would not compare: {[s['settings'] for s in started.values()]}")
        # The bound: the faster of one chain of large matmuls and as many chains side by side as
        # ops of the stage's threads per op fit in the cores (all cores busy).
        side_by_side = max(1, usable_cores() // tf.config.threading.get_intra_op_parallelism_threads())
        chains = {n: matmul_chain(args.matmul_size, args.matmul_repeats, n) for n in sorted({1, side_by_side})}
        for chain, _ in chains.values():
            seconds(lambda: chain().numpy())
        matmul_s = {n: [] for n in chains}
        while sum(sides[0].steps["tokens"]) + started[sides[0].name]["first_step_tokens"] < args.tokens:
            order = sides if len(sides[0].rounds) % 2 == 0 else sides[::-1]
            for side in order:
                side.train(args.steps_per_round)
            print(f"round {len(sides[0].rounds)}: " + ", ".join(f"{side.name} {side.rounds[-1]:,.0f} tokens/s" for side in sides),
                  file=sys.stderr, flush=True)
            for n, (chain, _) in chains.items():
                matmul_s[n].append(seconds(lambda: chain().numpy()))
        perplexity = {side.name: side.ask({"perplexity": True}) for side in sides}
        for side in sides:
            side.close()

    p = load_params(args.params).pretrain
    config = BiLMConfig.from_options(load_options(p.options))
    new = started["new"]
    flops = training_flops(config, p.n_samples, new["distinct_types_per_position"])
    matmul_by_chains = {n: flops_n / min(matmul_s[n]) for n, (_, flops_n) in chains.items()}
    matmul = max(matmul_by_chains.values())

    def report(side: Side) -> dict:
        step_s, tokens = side.steps["step_s"], side.steps["tokens"]
        tokens_per_s = sum(tokens) / sum(step_s)
        return {
            "commit": trees[side.name][1],
            "first_step_s": round(started[side.name]["first_step_s"], 2),
            "tokens_per_s_all_steps": round(tokens_per_s, 1),
            "tokens_per_cpu_s_all_steps": round(sum(tokens) / sum(side.steps["cpu_s"]), 1),
            "tokens_per_s_by_round": spread(side.rounds, 1),
            "tokens_per_s_every_round": [round(r, 1) for r in side.rounds],
            "fraction_of_matmul_bound": round(tokens_per_s * flops["training_computed"] / matmul, 3),
            "heldout_perplexity_forward_backward": [round(x, 3) for x in perplexity[side.name]["heldout_perplexity"]],
            "tokens_seen": perplexity[side.name]["tokens_seen"],
            "step_s": [round(t, 4) for t in step_s],
            "cpu_s": [round(t, 4) for t in side.steps["cpu_s"]],
            "loss": side.steps["loss"],
        }

    results = {
        "load_average_1min": {"at_start": round(load_average, 2), "at_end": round(os.getloadavg()[0], 2)},
        "options": p.options,
        "batch_size": p.batch_size,
        "n_samples": p.n_samples,
        "corpus_tokens": new["corpus_tokens"],
        "steps_per_round": args.steps_per_round,
        "tokens_per_step": sides[0].steps["tokens"],
        "distinct_types_per_position": round(new["distinct_types_per_position"], 3),
        "flops_per_training_token": {k: round(v) for k, v in flops.items()},
        "matmul_gflops_per_s_by_chains": {f"{n}_chains": round(f / 1e9, 1) for n, f in matmul_by_chains.items()},
        "matmul_s": {f"{n}_chains": [round(t, 3) for t in ts] for n, ts in matmul_s.items()},
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        **{side.name: report(side) for side in sides},
    }
    if args.baseline:
        new_side, base_side = sides
        ratios = [n / b for n, b in zip(new_side.rounds, base_side.rounds)]
        losses = np.array([new_side.steps["loss"], base_side.steps["loss"]])
        results["speedup"] = {
            "all_steps": round(results["new"]["tokens_per_s_all_steps"] / results["baseline"]["tokens_per_s_all_steps"], 3),
            "all_steps_by_cpu_time": round(
                results["new"]["tokens_per_cpu_s_all_steps"] / results["baseline"]["tokens_per_cpu_s_all_steps"], 3),
            "by_round": spread(ratios, 3),
            "every_round": [round(r, 3) for r in ratios],
        }
        results["same_learning"] = {
            "max_abs_loss_difference": float(np.abs(losses[0] - losses[1]).max()),
            "heldout_perplexity_ratio_new_to_baseline": [
                round(n / b, 5) for n, b in zip(perplexity["new"]["heldout_perplexity"], perplexity["baseline"]["heldout_perplexity"])
            ],
        }
    publish(results, args.out)


if __name__ == "__main__":
    main()

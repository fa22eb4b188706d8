"""Pretraining the biLM on IMDB's reviews: a resumable training loop and the published-format export.

:class:`Pretraining` trains a :class:`~elmo_imdb.bilm.language_model.LanguageModel` on the
windows of an :class:`~elmo_imdb.lm_corpus.LMCorpus` until it has seen a budget of tokens,
measures held-out perplexity (full softmax) along the way, and writes the result as the two
files every ELMo tool reads: ``options.json`` and ``weights.hdf5`` in the published layout
(the softmax is not part of that layout and stays in the checkpoints).

How it trains, and why (docs/pretraining.md has the measurements):

* Adam, learning rate 0.001, gradients clipped to a global norm of 10 (bilm-tf's clipping).
  bilm-tf's Adagrad (learning rate 0.2, accumulators starting at 1.0) was tried first and
  learned far slower in a budget of a few thousand steps: with accumulators at 1.0
  and small gradients it is plain SGD at 0.2 for a long time;
* no dropout: the budget (24 M tokens by default) is about 1.24 passes over the corpus, so no
  window is seen often enough to be memorised (the held-out perplexity keeps falling);
* batches of ``batch_size`` windows of at most ``window`` tokens from zero states: exactly
  how the embed stage will run the biLM.

Resumable: every few minutes, and when interrupted with Ctrl-C or SIGTERM, a checkpoint
(weights, softmax, Adam moments, step) is written to a scratch folder outside DVC's
outputs. The data order and the softmax samples are functions of the step, so a resumed run
computes exactly what an uninterrupted one would, bit for bit with TensorFlow's op determinism
on. A checkpoint made from other data, options, settings or code (:data:`TRAINING_CODE`) is
not resumed: training starts over and says why in one line. The last checkpoint is kept after training, so raising the token budget
continues from it.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from elmo_imdb.atomic import atomic_output, sha256_of_file
from elmo_imdb.bilm import BiLMConfig, random_weights, read_weights, write_weights
from elmo_imdb.bilm.language_model import LanguageModel, type_char_ids
from elmo_imdb.code_fingerprint import code_fingerprint
from elmo_imdb.errors import PipelineError
from elmo_imdb.lm_corpus import LMCorpus, batch_rows
from elmo_imdb.resume_record import ResumeRecord

LEARNING_RATE = 1e-3
BETA_1, BETA_2, EPSILON = 0.9, 0.999, 1e-7  # Adam's usual constants (Keras' defaults)
CLIP_NORM = 10.0
RECIPE = f"adam lr={LEARNING_RATE} beta_1={BETA_1} beta_2={BETA_2} epsilon={EPSILON} clip_norm={CLIP_NORM}"
CHECKPOINT_SECONDS = 300
HELDOUT_BATCH = 32  # windows per held-out step: the full-softmax logits are [~80 x 32, vocab_size] floats
#: The code a checkpoint's numbers depend on, part of its record's identity (a change to any of
#: these files starts training over): this module (the data order and the Adam step), the biLM
#: and its training model (elmo_imdb.bilm: forward pass, sampled softmax, initial weights), and
#: elmo_imdb.lm_corpus, whose batch_rows orders the windows (the corpus's content is in
#: Settings.corpus already). Not the export: it runs from the checkpoint after training.
TRAINING_CODE = ("elmo_imdb.pretraining", "elmo_imdb.bilm", "elmo_imdb.lm_corpus")


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one, as on Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_cores_between_directions() -> None:
    """Split each op over half the CPU cores (at least one) and run ops concurrently.

    Most of a training step is the LSTM loops of the two directions: two chains of small ops
    ([B, 4 * lstm_dim] matmuls and element-wise work) that TensorFlow can run side by side.
    By default every op is sharded over all cores, so each chain keeps waiting for shards
    queued behind the other; on the 2-core machines here, one core per op made the step
    about 15 % faster (docs/pretraining.md). Call it before TensorFlow runs its first op
    (settings cannot change afterwards); a GPU's kernels are not affected.
    """
    cores = usable_cores()
    tf.config.threading.set_intra_op_parallelism_threads(max(1, cores // 2))
    tf.config.threading.set_inter_op_parallelism_threads(max(2, cores))


class PretrainingError(PipelineError):
    """The pretraining settings or the initial weights cannot work."""


@dataclass(frozen=True)
class Settings:
    """Everything a training run's result depends on besides its code (recorded with each
    checkpoint, with :data:`TRAINING_CODE`'s fingerprint; a checkpoint of other settings is not
    resumed). The token budget is not among them: a longer budget continues the same run."""

    options: dict
    init: str | None  # sha256 of the weights.hdf5 training starts from, or None: random
    batch_size: int
    n_samples: int
    seed: int
    corpus: str  # the corpus fingerprint
    recipe: str = RECIPE  # the optimiser and its constants


class Pretraining:
    """One training run: ``run(tokens)`` trains up to that budget, then ``export(folder)``."""

    def __init__(self, corpus: LMCorpus, options: dict, init: str | Path | None, batch_size: int,
                 n_samples: int, seed: int, scratch: str | Path):
        config = BiLMConfig.from_options(options)
        if init is None:
            weights, init_digest = random_weights(config, seed), None
        else:
            weights, init_digest = _initial_weights(Path(init), config), sha256_of_file(init)
        if n_samples >= len(corpus.vocab):
            raise PretrainingError(
                f"pretrain.n_samples={n_samples} must be smaller than the softmax vocabulary ({len(corpus.vocab)})"
            )
        self.corpus, self.options, self.batch_size = corpus, options, batch_size
        self.settings = Settings(options, init_digest, batch_size, n_samples, seed, corpus.fingerprint)
        self.model = LanguageModel(
            options, weights, type_char_ids(corpus.types, config), corpus.target_of_type, len(corpus.vocab), n_samples, seed
        )
        self.step = tf.Variable(0, dtype=tf.int64, trainable=False, name="step")
        self.tokens_seen = tf.Variable(0, dtype=tf.int64, trainable=False, name="tokens_seen")
        self.moments = [
            (tf.Variable(tf.zeros(v.shape), trainable=False, name="m"), tf.Variable(tf.zeros(v.shape), trainable=False, name="v"))
            for v in self.model.weights
        ]
        self.checkpoint = tf.train.Checkpoint(
            model=self.model, moments=self.moments, step=self.step, tokens_seen=self.tokens_seen
        )
        self.scratch = Path(scratch)
        self.record = ResumeRecord(self.scratch / "progress.json", {**asdict(self.settings), "code": code_fingerprint(TRAINING_CODE)})
        self.history: list[dict] = []  # one entry per held-out evaluation: the learning curve
        self.seconds = 0.0  # wall-clock time of training so far (up to the last checkpoint, after a resume)
        windows = tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None], tf.int32)
        self._train_step = tf.function(self._train_step_fn, input_signature=windows)
        self._heldout_nll = tf.function(self.model.full_nll, input_signature=windows)

    # ------------------------------------------------------------------------------ resuming

    def resume(self, tokens: int) -> str:
        """Restore the last checkpoint if its record has this run's identity (settings, code,
        library versions) and it has not trained past a budget of ``tokens`` (a run stops at
        the first step that reaches its budget, so a checkpoint whose previous step had
        already reached it belongs to a longer run); say what happened in one line. A finished
        run's checkpoint is restored too: ``run`` then trains no further and writes its curve
        and metrics again. Starting over deletes the record and the checkpoints at once, and
        whatever a killed write left is deleted in any case."""
        progress, reason = self.record.load()
        if progress is None and not self.record.path.exists():
            remove_checkpoints(self.scratch, keep=None)
            return "no checkpoint: training starts from the beginning"
        if progress is not None:
            step, seen = progress["step"], progress["tokens_seen"]
            if step and seen - int(self.corpus.train.lengths[self._rows(step - 1)].sum()) >= tokens:
                reason = (
                    f"it has trained on {seen:,} tokens, past pretrain.tokens={tokens:,} (a lower budget than the run "
                    "it belongs to); raising the budget again continues from the new run"
                )
            else:
                reason = _unreadable(self.scratch / progress["checkpoint"])
        if reason:
            self.record.delete()
            remove_checkpoints(self.scratch, keep=None)
            return f"starting over, the checkpoint in {self.scratch} cannot be resumed: {reason}"
        remove_checkpoints(self.scratch, keep=progress["checkpoint"])  # what a killed write left
        self.checkpoint.read(str(self.scratch / progress["checkpoint"])).assert_consumed()
        self.history, self.seconds = progress["history"], progress["seconds"]
        return f"resuming at step {int(self.step)}, {int(self.tokens_seen):,} tokens seen"

    def save(self) -> None:
        """Write a checkpoint, then (atomically) the record that points to it; drop older ones."""
        name = f"ckpt-{int(self.step)}"
        self.checkpoint.write(str(self.scratch / name))
        self.record.save({"checkpoint": name, "step": int(self.step), "tokens_seen": int(self.tokens_seen),
                          "history": self.history, "seconds": self.seconds})
        remove_checkpoints(self.scratch, keep=name)

    # ------------------------------------------------------------------------------ training

    def run(self, tokens: int, eval_every: int, metrics: str | Path | None = None) -> None:
        """Train until ``tokens`` tokens have been seen, evaluating every ``eval_every`` tokens
        and then writing the learning curve to the folder ``metrics`` (:func:`write_curve`);
        a run resumed at its end trains no further and writes the same curve again."""
        self.scratch.mkdir(parents=True, exist_ok=True)
        stop = _StopOnSignal()
        last_save = time.monotonic()
        with stop, tqdm(total=tokens, initial=min(int(self.tokens_seen), tokens), unit="tok", unit_scale=True,
                        desc="pretraining", smoothing=0.05, mininterval=1 if sys.stderr.isatty() else 30) as progress:
            while int(self.tokens_seen) < tokens:
                loop_start = time.perf_counter()
                rows = self._rows(int(self.step))
                windows = self.corpus.train.types[rows]
                lengths = self.corpus.train.lengths[rows]
                width = int(lengths.max()) + 2
                loss = float(self._train_step(windows[:, :width], lengths))
                self.seconds += time.perf_counter() - loop_start
                seen = int(self.tokens_seen)
                progress.update(min(seen, tokens) - progress.n)
                progress.set_postfix(loss=f"{loss:.3f}", refresh=False)
                if seen // eval_every > (seen - int(lengths.sum())) // eval_every or seen >= tokens:
                    evaluation_start = time.perf_counter()
                    self._evaluate(loss)
                    if metrics is not None:
                        write_curve(self.history, self.corpus.dropped, metrics)
                    self.seconds += time.perf_counter() - evaluation_start
                    self.save()
                    last_save = time.monotonic()
                elif time.monotonic() - last_save > CHECKPOINT_SECONDS or stop.requested:
                    self.save()
                    last_save = time.monotonic()
                if stop.requested:
                    raise PretrainingError(f"interrupted: checkpoint at step {int(self.step)} saved; run again to resume")
        if metrics is not None and self.history:
            write_curve(self.history, self.corpus.dropped, metrics)

    def _rows(self, step: int) -> np.ndarray:
        """The training windows of batch ``step``."""
        return batch_rows(step, self.batch_size, len(self.corpus.train), self.settings.seed)

    def _train_step_fn(self, windows, lengths):
        variables = self.model.weights
        with tf.GradientTape() as tape:
            loss = self.model.sampled_loss(windows, lengths, self.step)
        gradients, _ = tf.clip_by_global_norm(tape.gradient(loss, variables), CLIP_NORM)
        self.step.assign_add(1)
        t = tf.cast(self.step, tf.float32)
        rate = LEARNING_RATE * tf.sqrt(1.0 - BETA_2**t) / (1.0 - BETA_1**t)  # bias-corrected
        for variable, gradient, (m, v) in zip(variables, gradients, self.moments):
            gradient = tf.convert_to_tensor(gradient)  # IndexedSlices (softmax, char embedding) made dense
            m.assign(BETA_1 * m + (1.0 - BETA_1) * gradient)
            v.assign(BETA_2 * v + (1.0 - BETA_2) * tf.square(gradient))
            variable.assign_sub(rate * m / (tf.sqrt(v) + EPSILON))
        self.tokens_seen.assign_add(tf.cast(tf.reduce_sum(lengths), tf.int64))
        return loss

    def heldout_perplexity(self) -> tuple[float, float]:
        """Full-softmax perplexity of the held-out windows, forward and backward."""
        heldout, total, count = self.corpus.heldout, np.zeros(2), 0
        for start in range(0, len(heldout), HELDOUT_BATCH):
            lengths = heldout.lengths[start : start + HELDOUT_BATCH]
            windows = heldout.types[start : start + HELDOUT_BATCH, : int(lengths.max()) + 2]
            nll, n = self._heldout_nll(windows, lengths)
            total, count = total + nll.numpy(), count + int(n)
        forward, backward = np.exp(total / count)
        return float(forward), float(backward)

    def _evaluate(self, loss: float) -> None:
        forward, backward = self.heldout_perplexity()
        last = self.history[-1] if self.history else {"tokens": 0, "elapsed_s": 0.0}
        tokens_per_s = (int(self.tokens_seen) - last["tokens"]) / (self.seconds - last["elapsed_s"])
        point = {
            "tokens": int(self.tokens_seen),
            "step": int(self.step),
            "train_loss": round(loss, 4),
            "heldout_perplexity_forward": round(forward, 2),
            "heldout_perplexity_backward": round(backward, 2),
            "tokens_per_s": round(tokens_per_s, 1),
            "elapsed_s": round(self.seconds, 1),
        }
        self.history.append(point)
        tqdm.write(", ".join(f"{k} {v:,}" for k, v in point.items()))

    # ------------------------------------------------------------------------------ export

    def export(self, folder: str | Path) -> Path:
        """Write ``options.json``, ``weights.hdf5`` (published layout) and ``vocab.txt`` (the
        softmax's targets, one per line, as bilm-tf's vocabulary files) to ``folder``."""
        folder = Path(folder)
        with atomic_output(folder / "options.json") as tmp:
            tmp.write_text(json.dumps(self.options, indent=2) + "\n")
        with atomic_output(folder / "weights.hdf5") as tmp:
            write_weights(self.model.bilm.published_weights(), tmp)
        with atomic_output(folder / "vocab.txt") as tmp:
            tmp.write_text("\n".join(self.corpus.vocab) + "\n", encoding="utf-8")
        return folder


def write_curve(history: list[dict], dropped: dict[str, int], folder: str | Path) -> None:
    """The learning curve the DVC way: ``metrics.json`` holds the last point (held-out
    perplexities, tokens seen, tokens/s and seconds by the stage's clock since the previous
    point, held-out evaluation included, total time) and how many reviews the corpus left out
    for their text (``dropped``, :func:`~elmo_imdb.lm_corpus.build_corpus`); ``curve.tsv``
    every point, one row per held-out evaluation (for ``dvc plots``: perplexity against
    tokens). Written after every evaluation, so ``dvc metrics show`` and ``dvc plots show``
    follow a run in progress."""
    folder = Path(folder)
    with atomic_output(folder / "metrics.json") as tmp:
        tmp.write_text(json.dumps({**history[-1], "reviews_dropped": dropped}, indent=2) + "\n")
    with atomic_output(folder / "curve.tsv") as tmp:
        rows = ["\t".join(history[0])] + ["\t".join(str(value) for value in point.values()) for point in history]
        tmp.write_text("\n".join(rows) + "\n")


def remove_checkpoints(scratch: Path, keep: str | None) -> None:
    """Delete every checkpoint entry in ``scratch`` but the files of checkpoint ``keep``
    (``ckpt-N.index``, ``ckpt-N.data-*``): older checkpoints, and what a write killed midway
    leaves, a ``ckpt-N_temp/`` folder of TensorFlow's shards or a lone ``ckpt-N.index``."""
    for entry in scratch.glob("ckpt-*"):
        if keep is not None and entry.name.startswith(keep + "."):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink(missing_ok=True)


def _unreadable(checkpoint: Path) -> str:
    """Why the checkpoint files of prefix ``checkpoint`` cannot be read, or ``""``: every
    tensor is read once (TensorFlow checks its CRC) before restoring, which would otherwise
    stop halfway with some variables restored. A few seconds for the default biLM's checkpoint."""
    try:
        reader = tf.train.load_checkpoint(str(checkpoint))
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except (tf.errors.OpError, ValueError) as e:
        return f"its files are unreadable ({type(e).__name__}: {e.message if isinstance(e, tf.errors.OpError) else e})"
    return ""


def _initial_weights(path: Path, config: BiLMConfig) -> dict[str, np.ndarray]:
    if not path.is_file():
        raise PretrainingError(f"pretrain.init: {path} does not exist")
    try:
        return read_weights(path, config)
    except (ValueError, OSError) as e:
        raise PretrainingError(f"pretrain.init: {path} does not fit pretrain.options: {e}") from None


class _StopOnSignal:
    """Within ``with``: SIGINT and SIGTERM set ``requested`` instead of killing the process
    mid-step, so the loop can checkpoint and stop."""

    requested = False

    def __enter__(self):
        self._previous = {sig: signal.signal(sig, self._handle) for sig in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _handle(self, signum, frame):
        self.requested = True

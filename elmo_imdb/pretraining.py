"""Pretraining the biLM on IMDB's reviews: the resumable training run.

:class:`Pretraining` trains a :class:`~elmo_imdb.bilm.language_model.LanguageModel` on the
windows of an :class:`~elmo_imdb.lm_corpus.LMCorpus` until it has seen a budget of tokens,
measures held-out perplexity along the way, and exports the result in the published ELMo
format. Each job has its module; this one runs them in order:

* :mod:`elmo_imdb.pretrain_step`: the Adam step (why Adam, why no dropout);
* :mod:`elmo_imdb.pretrain_evaluation`: held-out perplexity and the curve's points;
* :mod:`elmo_imdb.pretrain_checkpoints`: checkpoints and their record in the scratch folder;
* :mod:`elmo_imdb.pretrain_outputs`: ``options.json``, ``weights.hdf5``, ``vocab.txt``, the curve.

Batches are ``batch_size`` windows of at most ``window`` tokens from zero states: exactly how
the embed stage will run the biLM (the measured runs: docs/journal.md).

Resumable: every few minutes, after every evaluation, and when interrupted with Ctrl-C or
SIGTERM, a checkpoint is written to a scratch folder outside DVC's outputs. The data order and
the softmax samples are functions of the step, so a resumed run computes exactly what an
uninterrupted one would, bit for bit with TensorFlow's op determinism on. A checkpoint made
from other data, options, settings or code (:data:`TRAINING_CODE`) is not resumed: training
starts over and says why in one line. The last checkpoint is kept after training, so raising
the token budget continues from it.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from elmo_imdb.atomic import sha256_of_file
from elmo_imdb.bilm import BiLMConfig, random_weights, read_weights
from elmo_imdb.bilm.language_model import LanguageModel, type_char_ids
from elmo_imdb.code_fingerprint import code_fingerprint
from elmo_imdb.errors import PipelineError
from elmo_imdb.lm_corpus import LMCorpus, batch_rows
from elmo_imdb.pretrain_checkpoints import Checkpoints
from elmo_imdb.pretrain_evaluation import HeldoutPerplexity, curve_point
from elmo_imdb.pretrain_outputs import export_bilm, write_curve
from elmo_imdb.pretrain_step import RECIPE, AdamStep

CHECKPOINT_SECONDS = 300
#: The code a checkpoint's numbers depend on, part of its record's identity (a change to any of
#: these files starts training over): this module (the data order), the Adam step, the held-out
#: evaluation (its points are in the record's curve), the biLM and its training model
#: (elmo_imdb.bilm: forward pass, sampled softmax, initial weights), and elmo_imdb.lm_corpus,
#: whose batch_rows orders the windows (the corpus's content is in Settings.corpus already).
#: Not the checkpoints' nor the outputs' modules: they store and publish the numbers, and
#: changing them must not throw hours of training away.
TRAINING_CODE = (
    "elmo_imdb.pretraining", "elmo_imdb.pretrain_step", "elmo_imdb.pretrain_evaluation", "elmo_imdb.bilm", "elmo_imdb.lm_corpus"
)


def usable_cores() -> int:
    """The CPU cores this process may run on (its affinity where the OS has one, as on Linux)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_cores_between_directions() -> None:
    """Split each op over half the CPU cores (at least one) and run ops concurrently.

    Most of a training step is the LSTM loops of the two directions: two chains of small ops
    ([B, 4 * lstm_dim] matmuls and element-wise work) that TensorFlow can run side by side.
    By default every op is sharded over all cores, so each chain keeps waiting for shards
    queued behind the other; on the 2-core machines here, one core per op made the step
    faster (docs/pretraining.md; that comparison's output was not kept). Call it before TensorFlow runs its first op
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
    """One training run: ``resume(tokens)``, ``run(tokens)`` trains up to that budget, then ``export(folder)``."""

    def __init__(self, corpus: LMCorpus, options: dict, init: str | Path | None, batch_size: int,
                 n_samples: int, seed: int, scratch: str | Path):
        config = BiLMConfig.from_options(options)
        if init is None:
            weights, init_digest = random_weights(config, seed), None
        else:
            weights, init_digest = initial_weights(Path(init), config), sha256_of_file(init)
        if n_samples >= len(corpus.vocab):
            raise PretrainingError(
                f"pretrain.n_samples={n_samples} must be smaller than the softmax vocabulary ({len(corpus.vocab)})"
            )
        self.corpus, self.options, self.batch_size = corpus, options, batch_size
        self.settings = Settings(options, init_digest, batch_size, n_samples, seed, corpus.fingerprint)
        self.model = LanguageModel(
            options, weights, type_char_ids(corpus.types, config), corpus.target_of_type, len(corpus.vocab), n_samples, seed
        )
        self.train_step = AdamStep(self.model)
        self.step, self.tokens_seen = self.train_step.step, self.train_step.tokens_seen
        self.heldout_perplexity = HeldoutPerplexity(self.model, corpus.heldout)
        self.scratch = Path(scratch)
        identity = {**asdict(self.settings), "code": code_fingerprint(TRAINING_CODE)}
        self.checkpoints = Checkpoints(self.scratch, identity, model=self.model, moments=self.train_step.moments,
                                       step=self.step, tokens_seen=self.tokens_seen)
        self.history: list[dict] = []  # one entry per held-out evaluation: the learning curve
        self.seconds = 0.0  # wall-clock time of training so far (up to the last checkpoint, after a resume)

    def resume(self, tokens: int) -> str:
        """Restore the last checkpoint if its record has this run's identity (settings, code,
        library versions) and it has not trained past a budget of ``tokens`` (a run stops at
        the first step that reaches its budget, so a checkpoint whose previous step had
        already reached it belongs to a longer run); say what happened in one line. A finished
        run's checkpoint is restored too: ``run`` then trains no further and writes its curve
        and metrics again. Starting over deletes the record and the checkpoints at once, and
        whatever a killed write left is deleted in any case."""
        progress, reason = self.checkpoints.load()
        if progress is None and not reason:
            self.checkpoints.discard()  # no record: any checkpoint entry is a killed write's
            return "no checkpoint: training starts from the beginning"
        if progress is not None:
            step, seen = progress["step"], progress["tokens_seen"]
            if step and seen - int(self.corpus.train.lengths[self._rows(step - 1)].sum()) >= tokens:
                reason = (
                    f"it has trained on {seen:,} tokens, past pretrain.tokens={tokens:,} (a lower budget than the run "
                    "it belongs to); raising the budget again continues from the new run"
                )
        if reason:
            self.checkpoints.discard()
            return f"starting over, the checkpoint in {self.scratch} cannot be resumed: {reason}"
        self.checkpoints.restore(progress)
        self.history, self.seconds = progress["history"], progress["seconds"]
        return f"resuming at step {int(self.step)}, {int(self.tokens_seen):,} tokens seen"

    def save(self) -> None:
        """Checkpoint the run as it is now."""
        self.checkpoints.save(f"ckpt-{int(self.step)}", {
            "checkpoint": f"ckpt-{int(self.step)}", "step": int(self.step), "tokens_seen": int(self.tokens_seen),
            "history": self.history, "seconds": self.seconds,
        })

    def run(self, tokens: int, eval_every: int, metrics: str | Path | None = None) -> None:
        """Train until ``tokens`` tokens have been seen, evaluating every ``eval_every`` tokens
        and then writing the learning curve to the folder ``metrics`` (:func:`write_curve`);
        a run resumed at its end trains no further and writes the same curve again."""
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
                loss = float(self.train_step(windows[:, :width], lengths))
                if not np.isfinite(loss):  # before any checkpoint holds the diverged weights
                    raise PretrainingError(
                        f"the training loss became {loss} at step {int(self.step)}: the biLM diverged; nothing was "
                        "exported and no checkpoint holds the diverged weights; a resume would diverge again, so "
                        "change pretrain's settings (seed, batch_size or init) and run again"
                    )
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

    def export(self, folder: str | Path) -> Path:
        """The trained biLM in the published format, in ``folder`` (:func:`export_bilm`)."""
        return export_bilm(self.options, self.model.bilm.published_weights(), self.corpus.vocab, folder)

    def _rows(self, step: int) -> np.ndarray:
        """The training windows of batch ``step``."""
        return batch_rows(step, self.batch_size, len(self.corpus.train), self.settings.seed)

    def _evaluate(self, loss: float) -> None:
        point = curve_point(self.history, self.heldout_perplexity(), loss, int(self.tokens_seen), int(self.step), self.seconds)
        self.history.append(point)
        tqdm.write(", ".join(f"{k} {v:,}" for k, v in point.items()))


def initial_weights(path: Path, config: BiLMConfig) -> dict[str, np.ndarray]:
    """The published-format weights at ``path`` (``pretrain.init``), checked against ``config``."""
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

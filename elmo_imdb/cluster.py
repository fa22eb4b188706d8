"""The embed stage on Ray: ELMo on many workers, one writer, the same features.

ELMo is the pipeline's one expensive step (the full-size model costs about 2e8 FLOP a token,
and IMDB's 50,000 reviews hold 3.9 M tokens: the README's cost table says how long). With
``embed.workers`` > 1, or ``embed.cluster`` set, the embed stage runs ELMo on Ray workers, on
this machine or on a cluster of CPU or GPU machines, and nothing else about the stage changes
(docs/scaling.md). Ray Core actors rather than Ray Data: the stage needs its blocks back in row
order, a bounded number in memory, and the resume point of the features file as the first block;
that is a short loop over ``ray.wait`` here, while Ray Data would add pyarrow, convert every
[500, maxlen, 1024] block to Arrow tensors and re-cut blocks to its own sizes.

* **Workers.** An :class:`ElmoWorker` (a Ray actor) loads the model once and embeds whole blocks
  of BLOCK_ROWS reviews: the blocks of :func:`~elmo_imdb.embedders.split_blocks`, each through
  :func:`~elmo_imdb.embedders.embed_block`, the function the in-process stage runs. So a block is
  cut into the same batches whatever computes it, and its vectors are the same.
* **What crosses the network**, per review: to the worker its tokens (a block is a
  :class:`~elmo_imdb.prepared.PreparedSplit` of its rows: about 0.5 KB a review at maxlen 80);
  back, its vectors in the storage dtype, ``[maxlen, *vector_shape]``: 80 x 1024 x 2 bytes =
  160 KB for google/elmo/3 in float16, 40 KB for the ``imdb_small`` biLM, three times that with
  ``embed.output: layers``. Once per worker: this package's code (``runtime_env``), so workers
  compute with the code the stage runs, and the model, which each worker reads from the
  stage's path for it (a path every node can read, or a TF-Hub handle).
* **One writer.** :meth:`RayEmbedder.blocks` yields ``(first_row, vectors)`` in row order, as
  :func:`~elmo_imdb.embedders.embed_blocks` does, so the stage stores them through the same
  :class:`~elmo_imdb.features.ResumableFeatures`: same file, same fingerprint, same resume. A
  block that arrives before its turn waits; at most BLOCKS_PER_WORKER blocks per worker are
  queued, computing or waiting, which bounds the memory they hold.
* **Failures.** Ray restarts a worker whose process or machine dies, up to MAX_RESTARTS times,
  and runs the blocks it held again. Past that, or when Ray is missing, the cluster cannot be
  reached or cannot hold the workers, the stage stops with one line (:class:`ClusterError`);
  the blocks stored so far stay, and the next run continues from them.
* **Threads.** A CPU worker reserves an even share of its machine's CPUs in Ray and runs
  TensorFlow's thread pools at that size, so N workers on one machine share its cores instead
  of each taking all of them (the full-size model's last bits depend on that thread count:
  docs/scaling.md says what is identical when). A GPU worker reserves its GPU share and a CPU.

Ray is imported by this module only, and the stage imports this module only when it is asked
for workers: without Ray installed, ``workers: 1`` runs as before.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator

import numpy as np
import tensorflow as tf

import elmo_imdb
from elmo_imdb import cli
from elmo_imdb.embedders import embed_block, load_embedder, split_blocks, vector_shape, with_progress
from elmo_imdb.console import show_all_output
from elmo_imdb.errors import PipelineError
from elmo_imdb.params import EmbedParams
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.pretraining import usable_cores

MAX_RESTARTS = 3  # per worker: a process or machine lost this often is a fault to look at, not bad luck
BLOCKS_PER_WORKER = 2  # one computing, one queued behind it: a worker never waits for the stage
#: Joining a cluster that is not there takes Ray about 14 minutes of retries by default; these
#: make it about 20 seconds (Ray reads them when it connects; set them to override).
JOIN_TIMEOUTS = {"RAY_gcs_server_port_wait_time_s": "1", "RAY_py_gcs_connect_timeout_s": "10"}


class ClusterError(PipelineError):
    """Ray is missing, the cluster cannot be reached or cannot hold the workers, or a worker
    keeps failing."""


class ElmoWorker:
    """One worker process: the model, loaded once, and the blocks it is asked to embed.

    Run as a Ray actor (:class:`RayEmbedder` makes them). ``threads`` sizes TensorFlow's thread
    pools (None: TensorFlow's default, for GPU workers); ``cwd`` is the stage's working directory,
    against which a relative model path is read.
    """

    def __init__(self, model: str, output: str, dtype: str, threads: int | None, cwd: str):
        if threads:  # before TensorFlow runs its first op
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        if os.path.isdir(cwd):
            os.chdir(cwd)
        self.dtype = dtype
        try:
            self.embedder, self.error = load_embedder(model, output), None
            vector_shape(self.embedder)  # traces the model now, beside the other workers, not in the first block
        except PipelineError as e:  # reported by describe(), so the stage says it in one line
            self.embedder, self.error = None, e

    def describe(self) -> dict:
        """What the stage prints and checks: the model's identity, or why it did not load."""
        import ray

        threads = tf.config.threading.get_intra_op_parallelism_threads()
        threads = f"{threads} thread{'s' * (threads != 1)}" if threads else "TensorFlow's default threads"
        return {"error": self.error, "identity": getattr(self.embedder, "identity", None),
                "where": f"{cli.device()} of {ray.util.get_node_ip_address()} ({threads}, pid {os.getpid()})"}

    def embed(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The embedder's own call: float32 [B, T, *vector_shape]."""
        return self.embedder(tokens, lengths)

    def embed_block(self, block: PreparedSplit, batch_size: int, shape: tuple[int, ...]) -> np.ndarray:
        """``[len(block), maxlen, *shape]`` vectors of ``block`` in the storage dtype (half the bytes
        of float32 to send back in float16; converted by NumPy, as the writer would)."""
        return embed_block(self.embedder, block, batch_size, shape).astype(self.dtype)


class RayEmbedder:
    """ELMo on ``params.workers`` Ray workers, used by the stage as an in-process embedder is
    (``identity``, ``embedder(tokens, lengths)``), with :meth:`blocks` in place of
    :func:`~elmo_imdb.embedders.embed_blocks`.

    A context manager: it starts a local Ray (``params.cluster`` null) or joins the cluster at
    ``params.cluster``, and on exit ends its workers and leaves Ray as it found it. A process
    already connected to Ray (a notebook, a benchmark) keeps its connection, and its cluster is used.
    """

    def __init__(self, model: str, params: EmbedParams):
        self._ray = import_ray(params)
        self._workers = []
        self._started = not self._ray.is_initialized()
        if self._started:
            connect(self._ray, params.cluster)
        try:
            self._workers = start_workers(self._ray, model, params)
            self.identity = self._describe_workers()
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> RayEmbedder:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __call__(self, tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """One call of the model, on the first worker (what :func:`~elmo_imdb.embedders.vector_shape` needs)."""
        return self._get(self._workers[0].embed.remote(tokens, lengths))

    def blocks(
        self, split: PreparedSplit, batch_size: int, shape: tuple[int, ...], first_row: int = 0
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield ``(first_row, vectors)`` for the blocks of ``split`` from ``first_row``, in row order,
        vectors ``[rows, maxlen, *shape]`` in the storage dtype, with a progress bar: the blocks
        and values of :func:`~elmo_imdb.embedders.embed_blocks`, computed by the workers."""
        yield from with_progress(self._in_order(split_blocks(split, first_row), batch_size, shape, first_row), split, first_row)

    def close(self) -> None:
        """End the workers (a worker still computing is stopped), and Ray if this object started it."""
        for worker in self._workers:
            self._ray.kill(worker)
        self._workers = []
        if self._started and self._ray.is_initialized():
            self._ray.shutdown()

    def _in_order(self, blocks: Iterator[tuple[int, PreparedSplit]], batch_size: int, shape, first_row: int):
        """Keep every worker busy with up to BLOCKS_PER_WORKER blocks, and yield the results in
        row order: a block that is done before its turn waits in ``done``."""
        computing = {}  # ObjectRef -> (first row of the block, worker index)
        done = {}  # first row -> ObjectRef of a finished block
        queued = [0] * len(self._workers)
        next_row = first_row
        while True:
            while len(computing) + len(done) < BLOCKS_PER_WORKER * len(self._workers) and (work := next(blocks, None)):
                start, block = work
                worker = queued.index(min(queued))
                computing[self._workers[worker].embed_block.remote(block, batch_size, shape)] = (start, worker)
                queued[worker] += 1
            if next_row in done:
                vectors = self._get(done.pop(next_row))
                yield next_row, vectors
                next_row += len(vectors)
            elif computing:
                [ref], _ = self._ray.wait(list(computing), num_returns=1)
                start, worker = computing.pop(ref)
                queued[worker] -= 1
                done[start] = ref
            else:
                return

    def _describe_workers(self) -> str:
        """Wait for every worker to load the model; print where they run; the model's identity.
        A model that did not load is its own one-line error; workers that loaded different
        models (a path that holds other files on another machine) are refused."""
        described = [self._get(worker.describe.remote()) for worker in self._workers]
        errors = [d["error"] for d in described if d["error"] is not None]
        if errors:
            raise errors[0]
        identities = {d["identity"] for d in described}
        if len(identities) > 1:
            nodes = "; ".join(f"{d['where']}: {d['identity']}" for d in described)
            raise ClusterError(f"the workers loaded different models for the same path ({nodes}); every node must hold the same files")
        print(f"ELMo runs on {len(described)} Ray workers: " + "; ".join(d["where"] for d in described))
        show_all_output()  # the stage's TensorFlow start-up is over, as after cli.print_device
        return identities.pop()

    def _get(self, ref):
        """``ray.get``, with Ray's failures turned into the stage's one-line errors."""
        ray = self._ray
        try:
            return ray.get(ref)
        except ray.exceptions.RayTaskError as e:
            if isinstance(e.cause, PipelineError):
                raise e.cause from None
            raise  # a bug: Ray's message carries the worker's traceback
        except ray.exceptions.RayError as e:
            reason = str(e).strip().splitlines()[0]
            raise ClusterError(
                f"a Ray worker kept failing ({type(e).__name__} after {MAX_RESTARTS} restarts: {reason}); the blocks before it "
                "are stored: re-run the stage to continue (Ray's logs are in /tmp/ray/session_latest/logs on the worker's machine)"
            ) from None


def import_ray(params: EmbedParams):
    """The ``ray`` module, or a :class:`ClusterError` saying how to install it."""
    if params.cluster is not None:
        for name, value in JOIN_TIMEOUTS.items():
            os.environ.setdefault(name, value)
    try:
        import ray
    except ImportError:
        raise ClusterError(
            f"embed.workers: {params.workers} with embed.cluster: {params.cluster or 'null'} runs ELMo on Ray, which is not "
            "installed: pip install 'elmo-imdb[cluster]' (`make repro` installs it), or set embed.workers: 1 and "
            "embed.cluster: null to run it in the stage itself"
        ) from None
    return ray


def connect(ray, address: str | None) -> None:
    """Start a local Ray of the cores this process may use when ``address`` is None, or join the
    cluster at ``address``. Workers get this package's code, whatever their machine has installed."""
    options = dict(log_to_driver=False, logging_level=logging.ERROR, runtime_env={"py_modules": [elmo_imdb]})
    if address is None:
        ray.init(address="local", num_cpus=usable_cores(), include_dashboard=False, **options)
        return
    try:
        ray.init(address=address, **options)
    except (ConnectionError, RuntimeError, ValueError) as e:
        reason = " ".join(str(e).split())[:300]
        raise ClusterError(
            f"no Ray cluster at embed.cluster: {address!r} ({reason}); start one (`ray start --head` on its first machine) "
            "or set embed.cluster: null for a local Ray"
        ) from None


def start_workers(ray, model: str, params: EmbedParams) -> list:
    """``params.workers`` ElmoWorker actors, each reserving its share of the cluster: one GPU
    fraction ``gpus_per_worker`` and a CPU, or else as many CPUs as an even split allows."""
    nodes = [node["Resources"] for node in ray.nodes() if node["Alive"]]
    if params.gpus_per_worker:
        gpus = [node.get("GPU", 0) for node in nodes]
        if sum(int(n // params.gpus_per_worker) for n in gpus) < params.workers:
            raise ClusterError(
                f"embed.workers: {params.workers} with embed.gpus_per_worker: {params.gpus_per_worker:g} do not fit on the "
                f"cluster's GPUs ({', '.join(f'{n:g}' for n in gpus)} per machine)"
            )
        cpus, threads = 1, None
    else:
        cpus = threads = cpus_per_worker([node.get("CPU", 0) for node in nodes], params.workers)
    actor = ray.remote(ElmoWorker).options(
        num_cpus=cpus, num_gpus=params.gpus_per_worker, max_restarts=MAX_RESTARTS, max_task_retries=MAX_RESTARTS
    )
    return [actor.remote(model, params.output, params.dtype, threads, os.getcwd()) for _ in range(params.workers)]


def cpus_per_worker(node_cpus: list[float], workers: int) -> int:
    """The most CPUs each of ``workers`` workers can reserve, every worker on one machine of
    ``node_cpus`` CPUs: 2 workers on one 2-core machine get 1 each; on 8- and 4-core machines, 4."""
    for cpus in range(int(max(node_cpus, default=0)), 0, -1):
        if sum(int(n // cpus) for n in node_cpus) >= workers:
            return cpus
    raise ClusterError(
        f"embed.workers: {workers} needs a CPU per worker; the cluster has {sum(node_cpus):g} "
        f"({', '.join(f'{n:g}' for n in node_cpus)} per machine)"
    )

"""The embed stage on Ray workers against its own process, on one machine; and the single writer's MB/s.

On the first N reviews of a prepared split, with a biLM (a folder with options.json +
weights.hdf5, or random weights of --options: the FLOPs, and so the speed, are the same), runs
the embed stage's loop end to end: blocks computed, then stored in order through
ResumableFeatures into a features file (fsync per block). Six ways, in this order every round:

1. ``in_process``: :func:`~elmo_imdb.embedders.embed_blocks` in this process, TensorFlow's
   default threads (all cores): the stage with ``workers: 1``, no Ray running;
2. ``ray_1``: one Ray worker of all cores: ``workers: 1`` through the engine;
3. ``ray_2_pinned``: two Ray workers of one TensorFlow thread each, pinned to cores 0 and 1;
4. ``ray_1_pinned``: one Ray worker of one thread, pinned to core 0;
5. ``processes_2_pinned`` and 6. ``processes_1_pinned``: the machine's own ceiling for 3 and 4,
   without Ray: two (one) plain processes of one TensorFlow thread, pinned to cores 0 and 1
   (core 0), embedding the blocks between them (block i by process i mod 2) and storing nothing.

Every way starts from fresh workers (model loaded and traced, token cache empty: how the stage
starts; not timed); the time from asking for the first block to storing the last is. For each
way: tokens/s of every round, their mean and spread, and whether its file equals the in-process
file of round 1 byte for byte (if not: how many stored values differ, by how much). Targets:
ray_2_pinned / ray_1_pinned >= 1.8 (processes_2_pinned / processes_1_pinned is what the machine
allows); ray_1 at most 5 % slower than in_process. Then the writer alone: blocks of float16
vectors (what workers send) stored through ResumableFeatures, MB/s per round, for each
--writer-dims width.

Example (2-core machine, nothing else running):
    python benchmarks/embed_scaling.py data/prepared/test.h5 --model data/bilm --reviews 5000 --rounds 5 --out docs/benchmarks/embed_scaling.json
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import ray
import tensorflow as tf
from results import publish

from elmo_imdb.bilm import SHIPPED_OPTIONS, load_options, write_random_weights
from elmo_imdb.cluster import RayEmbedder
from elmo_imdb.embedders import BLOCK_ROWS, embed_block, embed_blocks, load_embedder, split_blocks, vector_shape
from elmo_imdb.features import FeatureIdentity, ResumableFeatures
from elmo_imdb.params import EmbedParams
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.pretraining import usable_cores

WAYS = ("in_process", "ray_1", "ray_2_pinned", "ray_1_pinned", "processes_2_pinned", "processes_1_pinned")
RAY_CPUS = {"ray_1": 2, "ray_2_pinned": 2, "ray_1_pinned": 1}  # of the local Ray each way runs on (its workers' threads)


def store(blocks, split: PreparedSplit, identity: FeatureIdentity, out: Path) -> float:
    """Seconds to store every block of ``blocks(first_row)`` into ``out``, as the stage does."""
    start = time.perf_counter()
    with ResumableFeatures(out, out.parent / "scratch", len(split), identity) as features:
        for first_row, vectors in blocks(features.resume()):
            features.write(first_row, vectors)
        features.finish()
    return time.perf_counter() - start


def pin(pid: int, core: int) -> None:
    """Pin every thread of process ``pid`` (threads it starts later inherit it) to ``core``."""
    for thread in os.listdir(f"/proc/{pid}/task"):
        os.sched_setaffinity(int(thread), {core})


def elmo_worker_pids() -> list[int]:
    """The processes of this benchmark's ElmoWorkers, to pin: Ray titles an actor's process
    ``ray::ElmoWorker...``, and those of the local Ray :func:`local_ray` started descend from this
    process (another program's workers on the machine are left alone)."""
    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    def ours(pid: int) -> bool:
        while pid > 1:
            pid = parent(pid)
            if pid == os.getpid():
                return True
        return False

    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(b"ray::ElmoWorker") and ours(int(entry.name)):
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):  # a process that ended while we looked
            continue
    return sorted(pids)


def run_way(way: str, model: str, split: PreparedSplit, batch_size: int, out: Path) -> dict:
    """One way: seconds to start (model loaded and traced) and to embed and store, the model's
    identity and vector shape; its features file is ``out``."""
    start = time.perf_counter()
    if way == "in_process":
        embedder = load_embedder(model, "elmo")
        shape = vector_shape(embedder)
        blocks = lambda first_row: embed_blocks(embedder, split, batch_size, shape, first_row)  # noqa: E731
        return {"start": time.perf_counter() - start, "seconds": store(blocks, split, identity_of(embedder.identity, shape, split), out),
                "identity": embedder.identity, "shape": shape}
    workers = 2 if way == "ray_2_pinned" else 1
    params = EmbedParams(published="", output="elmo", dtype="float16", batch_size=batch_size, workers=workers, cluster=None, gpus_per_worker=0)
    with RayEmbedder(model, params) as embedder:
        if way.endswith("_pinned"):
            pids = elmo_worker_pids()
            if len(pids) != workers:
                sys.exit(f"{way}: found {len(pids)} ElmoWorker processes to pin, not {workers}")
            for core, pid in enumerate(pids):
                pin(pid, core)
        shape = vector_shape(embedder)
        blocks = lambda first_row: embedder.blocks(split, batch_size, shape, first_row)  # noqa: E731
        return {"start": time.perf_counter() - start, "seconds": store(blocks, split, identity_of(embedder.identity, shape, split), out),
                "identity": embedder.identity, "shape": shape}


def compare(path: Path, reference: Path) -> dict:
    """Whether the features file ``path`` is ``reference`` byte for byte; if not, how many stored
    values differ and by how much at most."""
    if path.read_bytes() == reference.read_bytes():
        return {"identical": True}
    with h5py.File(path) as f, h5py.File(reference) as g:
        a, b = f["features"][:].astype(np.float32), g["features"][:].astype(np.float32)
    return {"identical": False, "values_differing": int((a != b).sum()), "of": int(a.size), "max_abs_difference": float(np.abs(a - b).max())}


def plain_processes(count: int, args: argparse.Namespace, model: str) -> float:
    """Seconds for ``count`` plain processes (no Ray), each of one TensorFlow thread pinned to a
    core of its own, to embed the blocks between them, from a common start (each loads and traces
    the model first, then waits for the others)."""
    command = [sys.executable, __file__, str(args.prepared), "--reviews", str(args.reviews), "--batch-size", str(args.batch_size), "--model", model]
    children = [subprocess.Popen([*command, "--part", f"{i}/{count}"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for i in range(count)]
    for child in children:
        if child.stdout.readline().strip() != "ready":
            sys.exit(f"a plain process failed to start: exit status {child.wait()}")
    start = time.perf_counter()
    for child in children:
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        child.stdout.readline()
    seconds = time.perf_counter() - start
    for child in children:
        child.wait()
    return seconds


def part(args: argparse.Namespace) -> None:
    """One plain process of :func:`plain_processes`: pinned, one thread, its share of the blocks."""
    index, count = map(int, args.part.split("/"))
    pin(os.getpid(), index)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    embedder = load_embedder(args.model, "elmo")
    shape = vector_shape(embedder)
    blocks = [block for k, (_, block) in enumerate(split_blocks(first_reviews(args))) if k % count == index]
    print("ready", flush=True)
    sys.stdin.readline()
    for block in blocks:
        embed_block(embedder, block, args.batch_size, shape)
    print("done", flush=True)


def first_reviews(args: argparse.Namespace) -> PreparedSplit:
    full = PreparedSplit.load(args.prepared)
    n = min(args.reviews, len(full))
    return PreparedSplit(full.tokens[:n], full.labels[:n], full.names[:n], full.maxlen)


def identity_of(elmo: str, shape, split: PreparedSplit) -> FeatureIdentity:
    return FeatureIdentity(elmo, "elmo", "float16", split.maxlen, list(shape), split.fingerprint, 64)


def local_ray(cpus: int | None) -> float:
    """Seconds to start a local Ray of ``cpus`` CPUs (None: none running), kept between the ways
    that share its size. RayEmbedder uses a Ray already running and sizes its workers' threads by
    its CPUs: one CPU makes the one-thread worker of ``ray_1_pinned``, which the stage's own Ray
    (all cores) never starts."""
    if ray.is_initialized() and ray.cluster_resources().get("CPU") == cpus:
        return 0.0
    if ray.is_initialized():
        ray.shutdown()
    if not cpus:
        return 0.0
    start = time.perf_counter()
    ray.init(address="local", num_cpus=cpus, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    return time.perf_counter() - start


def writer_mb_s(dim: int, maxlen: int, blocks: int, folder: Path) -> float:
    """MB/s of ResumableFeatures storing ``blocks`` blocks of float16 [BLOCK_ROWS, maxlen, dim]."""
    vectors = np.random.default_rng(0).normal(size=(BLOCK_ROWS, maxlen, dim)).astype(np.float16)
    identity = FeatureIdentity("writer", "elmo", "float16", maxlen, [dim], "writer", 64)
    out = folder / f"writer{dim}.h5"
    start = time.perf_counter()
    with ResumableFeatures(out, folder / "scratch", blocks * BLOCK_ROWS, identity) as features:
        features.resume()
        for block in range(blocks):
            features.write(block * BLOCK_ROWS, vectors)
        features.finish()
    seconds = time.perf_counter() - start
    out.unlink()
    return blocks * vectors.nbytes / seconds / 1e6


def summary(values: list[float]) -> dict:
    mean = statistics.fmean(values)
    return {"rounds": [round(v, 1) for v in values], "mean": round(mean, 1), "min": round(min(values), 1), "max": round(max(values), 1),
            "stdev": round(statistics.stdev(values), 1) if len(values) > 1 else 0.0,
            "spread_pct": round(100 * (max(values) - min(values)) / mean, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("prepared", type=Path, help="a prepared split, e.g. data/prepared/test.h5")
    parser.add_argument("--reviews", type=int, default=5000, help="reviews to embed (default: %(default)s)")
    parser.add_argument("--model", help="folder with options.json + weights.hdf5 (default: random weights of --options)")
    parser.add_argument("--options", default="imdb_small", help="options for random weights (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=64, help="reviews per ELMo call (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the six ways (default: %(default)s)")
    parser.add_argument("--writer-dims", type=int, nargs="+", default=[256, 1024, 3072], help="vector widths for the writer (default: %(default)s)")
    parser.add_argument("--writer-blocks", type=int, default=10, help="blocks per writer measurement (default: %(default)s)")
    parser.add_argument("--scratch", type=Path, help="folder for the features files (default: a temporary folder on the system's temp disk)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    parser.add_argument("--part", help=argparse.SUPPRESS)  # i/n: run as plain process i of n (see plain_processes)
    args = parser.parse_args()
    if args.part:
        return part(args)
    if usable_cores() < 2:
        parser.error("needs 2 cores to pin two workers")

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    split = first_reviews(args)
    n, tokens = len(split), int(split.lengths.sum())
    with tempfile.TemporaryDirectory(dir=args.scratch) as tmp:
        tmp = Path(tmp)
        if args.model:
            model, elmo = str(Path(args.model).resolve()), f"{args.model} (trained weights)"
        else:
            model, elmo = str(tmp / "model"), f"{args.options} (random weights)"
            (tmp / "model").mkdir()
            (tmp / "model" / "options.json").write_text(Path(SHIPPED_OPTIONS.get(args.options, args.options)).read_text())
            write_random_weights(load_options(args.options), tmp / "model" / "weights.hdf5", seed=0)
        seconds, start_s, identical = ({way: [] for way in WAYS} for _ in range(3))
        ray_init_s, identities = [], set()
        for round_ in range(args.rounds):
            for way in WAYS:
                init = local_ray(RAY_CPUS.get(way))
                if init:
                    ray_init_s.append(round(init, 1))
                if way.startswith("processes_"):
                    seconds[way].append(plain_processes(int(way.split("_")[1]), args, model))
                    print(f"round {round_ + 1} {way}: {seconds[way][-1]:.1f} s, {tokens / seconds[way][-1]:.0f} tokens/s", file=sys.stderr)
                    continue
                out = tmp / f"{way}-{round_}" / "features.h5"
                run = run_way(way, model, split, args.batch_size, out)
                identities.add(run["identity"])
                shape = run["shape"]
                seconds[way].append(run["seconds"])
                start_s[way].append(round(run["start"], 1))
                identical[way].append(compare(out, tmp / "in_process-0" / "features.h5"))
                if round_ or way != "in_process":
                    shutil.rmtree(out.parent)  # only the reference stays: the disk holds one file per way, not per round
                print(f"round {round_ + 1} {way}: {run['seconds']:.1f} s, {tokens / run['seconds']:.0f} tokens/s", file=sys.stderr)
        local_ray(None)
        writer = {dim: [writer_mb_s(dim, split.maxlen, args.writer_blocks, tmp) for _ in range(args.rounds)] for dim in args.writer_dims}

    tokens_s = {way: summary([tokens / s for s in seconds[way]]) for way in WAYS}
    ratio = lambda a, b: {"of_means": round(tokens_s[a]["mean"] / tokens_s[b]["mean"], 3),  # noqa: E731
                          "per_round": [round(y / x, 3) for x, y in zip(seconds[a], seconds[b])]}
    ray_1 = ratio("ray_1", "in_process")
    worker_mb_s = n / statistics.fmean(seconds["ray_1_pinned"]) * split.maxlen * int(np.prod(shape)) * 2 / 1e6  # float16
    results = {
        "load_average_before_after": [load_before, Path("/proc/loadavg").read_text().split()[:3]],
        "reviews": n, "tokens": tokens, "maxlen": split.maxlen, "batch_size": args.batch_size, "block_rows": BLOCK_ROWS,
        "elmo": elmo, "identity": sorted(identities),
        "seconds": {way: [round(s, 2) for s in seconds[way]] for way in WAYS},
        "not_timed": {"start_s": {way: start_s[way] for way in RAY_CPUS | {"in_process": None}}, "ray_init_s": ray_init_s},
        "tokens_s": tokens_s,
        "ray_2_pinned_over_ray_1_pinned": {**ratio("ray_2_pinned", "ray_1_pinned"), "target": ">= 1.8"},
        "processes_2_pinned_over_processes_1_pinned": ratio("processes_2_pinned", "processes_1_pinned"),
        "ray_1_slower_than_in_process_pct": {"of_means": round(100 * (1 - ray_1["of_means"]), 1),
                                             "per_round": [round(100 * (1 - r), 1) for r in ray_1["per_round"]], "target": "<= 5"},
        "files_compared_to_in_process_round_1": {way: identical[way] for way in RAY_CPUS | {"in_process": None}},
        "writer_mb_s": {str(dim): summary(values) for dim, values in writer.items()},
        "one_pinned_worker_sends_mb_s": round(worker_mb_s, 2),
        "workers_the_writer_feeds": {str(dim): round(statistics.fmean(values) / worker_mb_s) for dim, values in writer.items() if dim == int(np.prod(shape))},
    }
    publish(results, args.out)


if __name__ == "__main__":
    main()

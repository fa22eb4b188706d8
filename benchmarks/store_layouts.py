"""How fast the training Sequence reads the feature store, layout by layout.

Copies the first N rows of a features file (e.g. the pipeline's data/elmo/train.h5) into
one file per layout: chunks of 1, 10 or 100 rows, no compression, lzf or gzip, and reads a
shuffled epoch of each through ReviewSequence, the way training does: cold (the file dropped
from the page cache first) and warm. The disk's sequential read speed is measured on the same
files in the same run, cold, interleaved with the Sequence's cold reads. Also measured: the
HDF5 chunk cache (h5py's default 1 MiB against 64 MiB), a batch size that cuts through chunks,
two reader threads and two reader processes against one thread, and h5py's fancy indexing
against the Sequence's slices for the same rows.

Example (after `dvc repro embed`):
    python benchmarks/store_layouts.py data/elmo/train.h5 --reviews 4000 --out docs/benchmarks/store_layouts.json
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
from results import publish

from elmo_imdb.features import DATASET
from elmo_imdb.sequence import ReviewSequence

LAYOUTS = {  # name -> (rows per chunk, compression)
    "chunk1": (1, None),
    "chunk10": (10, None),
    "chunk100": (100, None),
    "chunk10-lzf": (10, "lzf"),
    "chunk10-gzip": (10, "gzip"),
}
DEFAULT_CACHE = 1 << 20  # h5py's rdcc_nbytes
BIG_CACHE = 64 << 20


def write_layout(source: h5py.Dataset, n: int, path: Path, chunk_rows: int, compression: str | None) -> float:
    """Copy the first ``n`` rows of ``source`` to ``path`` with the given chunks; return seconds."""
    start = time.perf_counter()
    with h5py.File(path, "w") as f:
        out = f.create_dataset(
            DATASET, shape=(n, *source.shape[1:]), dtype=source.dtype, chunks=(chunk_rows, *source.shape[1:]), compression=compression
        )
        for first in range(0, n, 500):
            out[first : min(first + 500, n)] = source[first : min(first + 500, n)]
        f.flush()
        os.fsync(f.id.get_vfd_handle())
    return time.perf_counter() - start


def drop_from_page_cache(path: Path) -> int:
    """Ask the kernel to forget the file's cached pages; return the bytes still resident
    (per `fincore`, -1 when it is not installed) so a failed drop shows in the results."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)
    if not shutil.which("fincore"):
        return -1
    out = subprocess.run(["fincore", "--bytes", "--noheadings", "--raw", "-o", "RES", str(path)], capture_output=True, text=True)
    return int(out.stdout.split()[0])


def sequential_read_mb_s(path: Path) -> float:
    """Cold sequential read of the whole file in 16 MB requests."""
    drop_from_page_cache(path)
    start, size = time.perf_counter(), 0
    with open(path, "rb", buffering=0) as f:
        while chunk := f.read(16 << 20):
            size += len(chunk)
    return size / 1e6 / (time.perf_counter() - start)


def open_sequence(path: Path, batch_size: int, cache_bytes: int = DEFAULT_CACHE) -> ReviewSequence:
    features = h5py.File(path, "r", rdcc_nbytes=cache_bytes)[DATASET]
    n = len(features)
    return ReviewSequence(np.zeros((n, features.shape[1]), np.int32), np.zeros(n), features, batch_size, shuffle=True, seed=0)


def epoch_read(seq: ReviewSequence, map_batches=map, batch=None) -> dict:
    """Read every batch of one shuffled epoch with ``batch`` (default ``seq[index]``), mapped
    by ``map_batches``; MB/s of features and batches/s."""
    start = time.perf_counter()
    for _ in map_batches(batch or seq.__getitem__, range(len(seq))):
        pass
    seconds = time.perf_counter() - start
    seq.on_epoch_end()
    nbytes = seq.features.dtype.itemsize * np.prod(seq.features.shape)
    return {"mb_s": round(nbytes / 1e6 / seconds, 1), "batches_s": round(len(seq) / seconds, 2)}


def cold_and_warm(path: Path, batch_size: int, cache_bytes: int = DEFAULT_CACHE) -> dict:
    seq = open_sequence(path, batch_size, cache_bytes)
    resident = drop_from_page_cache(path)
    return {"cold": epoch_read(seq), "warm": epoch_read(seq), "resident_after_drop_bytes": resident}


_worker_sequence = None


def _open_in_worker(path: Path, batch_size: int) -> None:
    global _worker_sequence
    _worker_sequence = open_sequence(path, batch_size)  # each process opens the file itself


def _worker_batch(index: int):
    return _worker_sequence[index]


def parallel_reads(path: Path, batch_size: int) -> dict:
    """A warm epoch read by 1 thread, 2 threads sharing one file, and 2 processes (batches come
    back pickled, as with Keras' use_multiprocessing)."""
    seq = open_sequence(path, batch_size)
    epoch_read(seq)  # warm the page cache
    with ThreadPoolExecutor(2) as threads:
        two_threads = epoch_read(seq, threads.map)
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn"), initializer=_open_in_worker, initargs=(path, batch_size)) as processes:
        list(processes.map(_worker_batch, range(2)))  # start the workers before timing
        two_processes = epoch_read(seq, processes.map, _worker_batch)
    return {"one_thread": epoch_read(seq), "two_threads": two_threads, "two_processes": two_processes}


def fancy_against_slices(path: Path, batch_size: int, batches: int = 20) -> dict:
    """ms per batch for the same rows (the first ``batches`` of an epoch): h5py fancy indexing
    against the Sequence's slices (warm)."""
    seq = open_sequence(path, batch_size)
    epoch_read(seq)
    batches = min(batches, len(seq))
    rows = [seq.rows(b) for b in range(batches)]
    timings = {}
    for name, read in (("fancy_index_ms", lambda r: seq.features[r]), ("slices_ms", seq.read_features)):
        start = time.perf_counter()
        for r in rows:
            read(r)
        timings[name] = round((time.perf_counter() - start) / batches * 1e3, 2)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("features", type=Path, help="a features file, e.g. data/elmo/train.h5")
    parser.add_argument("--reviews", type=int, default=4000, help="rows to copy per layout (default: %(default)s)")
    parser.add_argument("--batch-size", type=int, default=100, help="training batch size (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="cold reads per layout, median reported (default: %(default)s)")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args()

    results = {"reviews": args.reviews, "batch_size": args.batch_size, "layouts": {}}
    with h5py.File(args.features, "r") as f, tempfile.TemporaryDirectory(dir=args.features.parent) as tmp:
        source = f[DATASET]
        results["row_shape"], results["dtype"] = list(source.shape[1:]), str(source.dtype)
        paths = {}
        for name, (chunk_rows, compression) in LAYOUTS.items():
            paths[name] = Path(tmp) / f"{name}.h5"
            seconds = write_layout(source, args.reviews, paths[name], chunk_rows, compression)
            results["layouts"][name] = {
                "chunk_rows": chunk_rows,
                "compression": compression,
                "bytes_per_review": round(paths[name].stat().st_size / args.reviews),
                "write_mb_s": round(source.dtype.itemsize * np.prod(source.shape[1:]) * args.reviews / 1e6 / seconds, 1),
            }
        disk_reads = []
        for name, path in paths.items():
            runs = [(cold_and_warm(path, args.batch_size), sequential_read_mb_s(path)) for _ in range(args.repeats)]
            layout = results["layouts"][name]
            layout["sequence_cold_mb_s"] = statistics.median(r["cold"]["mb_s"] for r, _ in runs)
            layout["sequence_cold_batches_s"] = statistics.median(r["cold"]["batches_s"] for r, _ in runs)
            layout["sequence_warm_mb_s"] = statistics.median(r["warm"]["mb_s"] for r, _ in runs)
            layout["resident_after_drop_bytes"] = max(r["resident_after_drop_bytes"] for r, _ in runs)
            layout["disk_sequential_cold_mb_s"] = [round(d, 1) for _, d in runs]
            disk_reads += layout["disk_sequential_cold_mb_s"]
            print(name, json.dumps(layout), flush=True)
        # One disk, one speed: the median of every cold sequential read in the run (single
        # reads swing with the virtual disk's host-side cache).
        disk = results["disk_sequential_cold_mb_s"] = statistics.median(disk_reads)
        for layout in results["layouts"].values():
            layout["sequence_cold_over_disk"] = round(layout["sequence_cold_mb_s"] / disk, 3)
        results["chunk_cache"] = {
            f"{name}, batch {batch}, cache {cache >> 20} MiB": cold_and_warm(paths[name], batch, cache)
            for name in ("chunk10", "chunk10-gzip")
            for batch in (args.batch_size, 64)
            for cache in (DEFAULT_CACHE, BIG_CACHE)
        }
        print(json.dumps(results["chunk_cache"], indent=1), flush=True)
        results["parallel_reads"] = {name: parallel_reads(paths[name], args.batch_size) for name in ("chunk10", "chunk10-gzip")}
        results["fancy_against_slices"] = fancy_against_slices(paths["chunk10"], args.batch_size)
    publish(results, args.out)


if __name__ == "__main__":
    main()

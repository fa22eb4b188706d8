"""The embed stage on Ray workers (elmo_imdb/cluster.py): the files of the stage's own process,
byte for byte, whatever happens to a worker or to the stage; one-line errors.

One local Ray of two CPUs, started here in the test process (its start-up costs seconds),
serves the module: the stage joins it with two workers of one CPU each, from this process or
from a subprocess. Ray must be installed (the `test` extra brings it): without it these tests
fail, they do not skip.
"""

import importlib.util
import json
import logging
import os
import re
import signal
import subprocess
import sys
import threading
import time
from argparse import Namespace
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, write_random_splits
from hub_fixtures import TINY_HUB_OPTIONS, build_tf1_hub_module
from elmo_imdb import cluster
from elmo_imdb.bilm import write_random_weights
from elmo_imdb.cluster import ClusterError, RayEmbedder, cpus_per_worker
from elmo_imdb.embedders import BLOCK_ROWS, ElmoLoadError, HubElmo, embed_block, vector_shape
from elmo_imdb.params import load_params
from elmo_imdb.prepared import SPLITS, PreparedSplit

N_TRAIN = 3 * BLOCK_ROWS + 100  # four blocks: two for each worker, a short one last
STAGE_SPEC = importlib.util.spec_from_file_location("embed_stage", REPO / "stages" / "embed.py")
STAGE = importlib.util.module_from_spec(STAGE_SPEC)
STAGE_SPEC.loader.exec_module(STAGE)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """Prepared splits of random words (train: four blocks), a tiny biLM folder, and a tiny TF1
    hub module whose vectors depend on what shares their batch, as google/elmo/3's do."""
    root = tmp_path_factory.mktemp("cluster")
    write_random_splits(root / "prepared", N_TRAIN)
    (root / "bilm").mkdir()
    (root / "bilm" / "options.json").write_text(json.dumps(TINY_HUB_OPTIONS))
    write_random_weights(TINY_HUB_OPTIONS, root / "bilm" / "weights.hdf5", seed=0)
    build_tf1_hub_module(root / "hub", batch_dependent=True)
    return root


@pytest.fixture(scope="module")
def ray_address():
    import ray  # no importorskip: Ray is part of the test extra, and a suite that cannot run it must fail

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray.get_runtime_context().gcs_address
    ray.shutdown()


def params_file(root: Path, run: str, **embed) -> Path:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["embed"].update(batch_size=50, **embed)
    path = root / run / "params.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(params))
    return path


def stage_args(root: Path, run: str, model: str, **embed) -> Namespace:
    return Namespace(model=str(root / model), prepared=root / "prepared", out=root / run / "features",
                     scratch=root / run / "scratch", params=params_file(root, run, **embed))


def embed(root: Path, run: str, model: str, **embed) -> Path:
    """Run the embed stage's main in this process (a Ray stage uses this process's Ray); its features folder."""
    args = stage_args(root, run, model, **embed)
    STAGE.main(args, load_params(args.params))
    return args.out


def start_stage(args: Namespace, env=None) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO / "stages/embed.py"), args.model, str(args.prepared), str(args.out),
           "--scratch", str(args.scratch), "--params", str(args.params)]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


REFERENCES = {}


def reference(root: Path, model: str, output: str = "elmo", dtype: str = "float16") -> Path:
    """The features of the stage's own process (`workers: 1`), computed once per setting."""
    key = (model, output, dtype)
    if key not in REFERENCES:
        REFERENCES[key] = embed(root, f"reference-{model}-{output}-{dtype}", model, output=output, dtype=dtype)
    return REFERENCES[key]


#: How far a stored value may be from the stage's own process: on some CPUs (an AVX-512 AMD
#: EPYC, 2026-12-06) the tiny biLM's vectors through Ray differed from the second block on, in
#: about 300 of 19.7 M float16 values by one unit in the last place, and in 1.5 % of float32
#: values by a few; on others none did (docs/scaling.md, "What is identical, and when").
#: dtype: (share of values that may differ, how many ulps of their vector's largest value each may
#: be apart; on CI, 2026-12-06, float32 values near zero were more than 16 of their own ulps apart)
LAST_BITS = {np.dtype("float16"): (1e-4, 1), np.dtype("float32"): (0.05, 16)}


def assert_same_files(features: Path, reference: Path) -> None:
    """Every split's file equals the reference's: attributes and dtype, and every vector,
    byte for byte or (see LAST_BITS) but for a few values a few units in the last place of
    their vector's largest value apart."""
    for name in SPLITS:
        with h5py.File(features / f"{name}.h5") as f, h5py.File(reference / f"{name}.h5") as g:
            ours, theirs = f["features"][:], g["features"][:]
            assert ours.dtype == theirs.dtype and ours.shape == theirs.shape and np.abs(theirs).max() > 0, name
            assert {k: np.asarray(v).tolist() for k, v in f.attrs.items()} == {k: np.asarray(v).tolist() for k, v in g.attrs.items()}
            share, ulps = LAST_BITS[ours.dtype]
            differ = ours != theirs
            assert differ.mean() <= share, f"{name}: {differ.sum()} of {differ.size} values differ"
            # A ulp of the vector's largest value, not of the value itself: a sum's rounding error
            # scales with its terms, so a value near zero may be many of its own ulps off.
            ulp = np.spacing(np.maximum(np.abs(ours), np.abs(theirs)).max(axis=-1, keepdims=True))
            apart = np.abs(ours.astype(np.float64) - theirs)
            assert (apart <= ulps * ulp).all(), f"{name}: values differ by more than {ulps} ulps of their vector's largest value"
            assert ((ours == 0) == (theirs == 0)).all(), f"{name}: padding is not where it was"
        if not differ.any():
            assert (features / f"{name}.h5").read_bytes() == (reference / f"{name}.h5").read_bytes(), f"{name}.h5 differs"


def parent_of(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def worker_pids(title: str) -> list[int]:
    """Processes of this module's Ray (children of its raylet, a child of this process) whose
    title starts with ``title``: Ray names an actor's process ``ray::<class>.<method running>``."""
    pids = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and (entry / "cmdline").read_bytes().startswith(title.encode()) and parent_of(parent_of(int(entry.name))) == os.getpid():
                pids.append(int(entry.name))
        except (OSError, ValueError, IndexError):  # a process that ended while we looked
            continue
    return pids


def kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ----------------------------------------------------------------- same files as the stage's own process


@pytest.mark.slow
@pytest.mark.parametrize("output, dtype", [("elmo", "float16"), ("lstm_outputs1", "float16"), ("lstm_outputs2", "float32"), ("layers", "float16")])
def test_two_workers_write_the_files_of_the_stages_own_process(data, ray_address, output, dtype, capsys):
    expected = reference(data, "bilm", output, dtype)
    features = embed(data, f"ray-{output}-{dtype}", "bilm", output=output, dtype=dtype, workers=2, cluster=ray_address)
    out = capsys.readouterr().out
    assert re.search(r"^ELMo runs on 2 Ray workers: the CPU of \S+ \(1 thread, pid \d+\); the CPU of \S+ \(1 thread, pid \d+\)$", out, re.MULTILINE)
    assert_same_files(features, expected)


@pytest.mark.slow
def test_a_batch_dependent_hub_module_gives_the_same_files_too(data, ray_address):
    """The workers cut a block into the batches the stage's own process cuts it into, so even a
    module whose vectors depend on their batch gives the same files."""
    module = HubElmo(str(data / "hub"), "elmo")
    split = PreparedSplit.load(data / "prepared" / "val.h5")
    shape = vector_shape(module)
    alone, batched = (embed_block(module, split, size, shape) for size in (1, 50))
    assert np.abs(alone - batched).max() > 0.01  # the module does depend on its batch
    assert_same_files(embed(data, "ray-hub", "hub", workers=2, cluster=ray_address), reference(data, "hub"))


# ----------------------------------------------------------------------------- failures, then the same files


@pytest.mark.slow
def test_a_worker_killed_mid_block_is_restarted_and_its_block_computed_again(data, ray_address):
    killed = []

    def kill_a_worker_computing_a_block():
        deadline = time.monotonic() + 120
        while not killed and time.monotonic() < deadline:
            for pid in worker_pids("ray::ElmoWorker.embed_block"):
                kill(pid)
                killed.append(pid)
                break
            time.sleep(0.002)

    killer = threading.Thread(target=kill_a_worker_computing_a_block, daemon=True)
    killer.start()
    features = embed(data, "worker-killed", "bilm", workers=2, cluster=ray_address)
    killer.join()
    assert killed, "no worker was seen computing a block"
    assert_same_files(features, reference(data, "bilm"))


@pytest.mark.slow
def test_a_worker_that_keeps_dying_stops_the_stage_with_one_line(data, ray_address, monkeypatch):
    monkeypatch.setattr(cluster, "MAX_RESTARTS", 1)
    stop = threading.Event()

    def kill_every_worker():
        while not stop.is_set():
            for pid in worker_pids("ray::ElmoWorker"):
                kill(pid)
            time.sleep(0.005)

    killer = threading.Thread(target=kill_every_worker, daemon=True)
    killer.start()
    try:
        with pytest.raises(ClusterError) as error:
            embed(data, "worker-keeps-dying", "bilm", workers=2, cluster=ray_address)
    finally:
        stop.set()
        killer.join()
    message = str(error.value)
    assert "\n" not in message and message.startswith("a Ray worker kept failing (ActorDiedError after 1 restarts: ")
    assert message.endswith("re-run the stage to continue (Ray's logs are in /tmp/ray/session_latest/logs on the worker's machine)")
    assert not (data / "worker-keeps-dying" / "features" / "train.h5").exists()


@pytest.mark.slow
def test_the_stage_killed_mid_run_resumes_to_the_same_files(data, ray_address):
    """SIGKILL while the workers of the module's Ray compute; the re-run starts a Ray of its own."""
    args = stage_args(data, "stage-killed", "bilm", workers=2, cluster=ray_address)
    progress = args.scratch / "train.progress.json"
    stage = start_stage(args)
    deadline = time.monotonic() + 300
    while True:
        assert stage.poll() is None, f"the stage ended before it could be killed: {stage.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline
        try:
            done = json.loads(progress.read_text())["progress"]["rows_done"]
        except (OSError, ValueError):
            done = 0
        if BLOCK_ROWS <= done < N_TRAIN:
            break
        time.sleep(0.002)
    stage.send_signal(signal.SIGKILL)
    stage.communicate(timeout=60)
    assert not (args.out / "train.h5").exists()

    resumed = start_stage(stage_args(data, "stage-killed", "bilm", workers=2, cluster=None))
    out, err = resumed.communicate(timeout=600)
    assert resumed.returncode == 0, err[-3000:]
    assert re.search(rf"^train.h5: resuming at row (\d+) of {N_TRAIN}$", out, re.MULTILINE).group(1) in {str(done), str(done + BLOCK_ROWS)}
    assert "ELMo runs on 2 Ray workers" in out
    assert_same_files(args.out, reference(data, "bilm"))
    assert [p.name for p in args.scratch.iterdir()] == [".lock"]  # the lock file stays (elmo_imdb/locking.py)


def descendants(pid: int) -> set[int]:
    """The processes below ``pid``, from /proc (Linux)."""
    children = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = set(), [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.add(child)
            todo.append(child)
    return found


def alive(pids: set[int]) -> set[int]:
    """Those of ``pids`` still running (a zombie, waiting for init to reap it, is not)."""
    running = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            running.add(pid)
    return running


@pytest.mark.slow
def test_the_ray_of_a_stage_killed_with_sigkill_ends_with_it(data):
    """A stage that started its own Ray, SIGKILLed: its workers end within seconds; Ray's own
    agents within a minute and a half (they wait 60 s for the dead Ray's answer first: Ray's
    publish_error_to_driver timeout); nothing of it stays behind."""
    if not Path("/proc/self/stat").exists():
        pytest.skip("reads the process tree from /proc (Linux)")
    stage = start_stage(stage_args(data, "own-ray-killed", "bilm", workers=2, cluster=None))
    for line in stage.stdout:
        if line.startswith("ELMo runs on 2 Ray workers"):
            break
    workers = {int(pid) for pid in re.findall(r"pid (\d+)\)", line)}
    ray_processes = descendants(stage.pid)
    assert len(workers) == 2 and workers <= ray_processes, (line, ray_processes)
    stage.send_signal(signal.SIGKILL)
    stage.communicate(timeout=60)
    killed = time.monotonic()
    while alive(workers) and time.monotonic() - killed < 15:
        time.sleep(0.5)
    assert not alive(workers), "the Ray workers outlived the stage by 15 s"
    while alive(ray_processes) and time.monotonic() - killed < 90:
        time.sleep(1)
    left = alive(ray_processes)
    assert not left, [Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:80] for pid in left]


# ---------------------------------------------------------------------------------------------- errors


@pytest.mark.slow
def test_without_ray_one_worker_runs_as_before_and_more_say_how_to_install_ray(data, tmp_path):
    hidden = tmp_path / "no-ray"
    (hidden / "ray").mkdir(parents=True)
    (hidden / "ray" / "__init__.py").write_text("raise ImportError(\"No module named 'ray' (hidden by the test)\")\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(hidden), os.environ.get("PYTHONPATH")])), "TF_CPP_MIN_LOG_LEVEL": "3"}

    one = start_stage(stage_args(data, "no-ray-1", "bilm", workers=1), env)
    out, err = one.communicate(timeout=600)
    assert one.returncode == 0, err[-3000:]
    assert re.search(r"^ELMo runs on the CPU$", out, re.MULTILINE)
    assert_same_files(data / "no-ray-1" / "features", reference(data, "bilm"))

    two = start_stage(stage_args(data, "no-ray-2", "bilm", workers=2), env)
    _, err = two.communicate(timeout=600)
    assert two.returncode == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1] == (
        "error: embed.workers: 2 with embed.cluster: null runs ELMo on Ray, which is not installed: "
        "pip install 'elmo-imdb[cluster]' (`make repro` installs it), or set embed.workers: 1 and "
        "embed.cluster: null to run it in the stage itself"
    )
    assert not (data / "no-ray-2" / "features").exists()


@pytest.mark.slow
def test_no_cluster_at_the_address_is_one_line(data):
    env = {**os.environ, "RAY_py_gcs_connect_timeout_s": "3", "TF_CPP_MIN_LOG_LEVEL": "3"}  # 3 s, not the stage's 10
    stage = start_stage(stage_args(data, "no-cluster", "bilm", workers=2, cluster="127.0.0.1:1"), env)
    _, err = stage.communicate(timeout=300)
    assert stage.returncode == 1 and "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: no Ray cluster at embed.cluster: '127.0.0.1:1' (")
    assert last.endswith("start one (`ray start --head` on its first machine) or set embed.cluster: null for a local Ray")
    assert not (data / "no-cluster" / "features").exists()


@pytest.mark.slow
@pytest.mark.parametrize(
    "embed_params, message",
    [
        ({"workers": 3}, "embed.workers: 3 needs a CPU per worker; the cluster has 2 (2 per machine)"),
        ({"workers": 2, "gpus_per_worker": 1}, "embed.workers: 2 with embed.gpus_per_worker: 1 do not fit on the cluster's GPUs (0 per machine)"),
    ],
)
def test_workers_the_cluster_cannot_hold_are_refused(data, ray_address, embed_params, message):
    params = load_params(params_file(data, "too-many", **embed_params))
    with pytest.raises(ClusterError, match=re.escape(message)):
        RayEmbedder(str(data / "bilm"), params.embed)


@pytest.mark.slow
def test_a_model_the_workers_cannot_load_is_the_loaders_own_error(data, ray_address, tmp_path):
    (tmp_path / "weights-only").mkdir()
    (tmp_path / "weights-only" / "weights.hdf5").write_bytes((data / "bilm" / "weights.hdf5").read_bytes())
    params = load_params(params_file(data, "bad-model", workers=2))
    with pytest.raises(ElmoLoadError, match=re.escape(f"{tmp_path / 'weights-only' / 'options.json'} does not exist")):
        RayEmbedder(str(tmp_path / "weights-only"), params.embed)


def test_workers_that_loaded_different_models_are_refused():
    """A model path holding other files on another machine: each worker reports what it loaded."""
    embedder = object.__new__(RayEmbedder)
    embedder._ray = SimpleNamespace(get=lambda ref: ref)
    embedder._workers = [SimpleNamespace(describe=SimpleNamespace(remote=lambda i=i: {
        "error": None, "identity": f"bilm:weights{i}", "where": f"the CPU of 10.0.0.{i} (4 threads, pid {100 + i})"}))
        for i in (1, 2)]
    with pytest.raises(ClusterError, match=re.escape(
        "the workers loaded different models for the same path (the CPU of 10.0.0.1 (4 threads, pid 101): bilm:weights1; "
        "the CPU of 10.0.0.2 (4 threads, pid 102): bilm:weights2); every node must hold the same files"
    )):
        embedder._describe_workers()


@pytest.mark.parametrize(
    "node_cpus, workers, cpus",
    [([2], 1, 2), ([2], 2, 1), ([8, 4], 2, 4), ([8, 4], 3, 4), ([8, 4], 4, 2), ([5, 1], 2, 2), ([5, 1], 3, 1), ([16], 3, 5), ([4, 4, 4], 12, 1)],
)
def test_each_worker_gets_the_most_cpus_an_even_split_allows(node_cpus, workers, cpus):
    assert cpus_per_worker(node_cpus, workers) == cpus


def test_more_workers_than_cpus_is_refused():
    with pytest.raises(ClusterError, match=re.escape("embed.workers: 5 needs a CPU per worker; the cluster has 4 (2, 2 per machine)")):
        cpus_per_worker([2, 2], 5)

"""The pretrain stage as a user runs it: bad input in one line, and killed runs that resume."""

import os
import re
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml
from imdb_fixtures import make_tiny_archive

from conftest import REPO, RUNS_ON
from elmo_imdb.imdb import read_reviews
from elmo_imdb.prepared import prepare_splits

TINY_PRETRAIN = {"options": "imdb_tiny", "vocab_size": 20, "n_samples": 8, "heldout_reviews": 5, "tokens": 3000,
                 "eval_every": 500, "batch_size": 8}


def setup(folder, archive, **pretrain):
    """Prepared splits of ``archive`` and a params file with the tiny pretraining settings."""
    reviews, _ = read_reviews(archive)
    for name, split in prepare_splits(reviews, maxlen=16, val_size=4, seed=0).items():
        split.save(folder / "prepared" / f"{name}.h5")
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["prepare"].update(maxlen=16)
    params["pretrain"].update({**TINY_PRETRAIN, **pretrain})
    (folder / "params.yaml").write_text(yaml.safe_dump(params))


def start(folder, archive, run):
    """The stage, writing folder/run/{bilm,metrics,scratch}."""
    cmd = [sys.executable, str(REPO / "stages/pretrain.py"), str(archive), str(folder / "prepared"), str(folder / run / "bilm"),
           "--metrics", str(folder / run / "metrics"), "--scratch", str(folder / run / "scratch"), "--params", str(folder / "params.yaml")]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def finish(proc):
    out, err = proc.communicate(timeout=900)
    return proc.returncode, out, err


def wait_for_checkpoint(folder, run, proc):
    record = folder / run / "scratch" / "progress.json"
    while not record.exists():
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.2)


def weights(folder, run):
    found = {}
    with h5py.File(folder / run / "bilm" / "weights.hdf5") as f:
        f.visititems(lambda name, obj: found.update({name: obj[()]}) if isinstance(obj, h5py.Dataset) else None)
    return found


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    return make_tiny_archive(tmp_path_factory.mktemp("imdb") / "aclImdb_v1.tar.gz", n_per_class=10)


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM])
def test_a_killed_run_resumes_to_the_uninterrupted_result(tmp_path, archive, sig):
    setup(tmp_path, archive)
    code, out, err = finish(start(tmp_path, archive, "straight"))
    assert code == 0, err

    proc = start(tmp_path, archive, "killed")
    wait_for_checkpoint(tmp_path, "killed", proc)
    proc.send_signal(sig)
    code, out, err = finish(proc)
    assert code != 0 and not (tmp_path / "killed" / "bilm").exists()  # nothing half-written
    if sig == signal.SIGTERM:  # asked to stop: it checkpoints and says so in one line
        assert err.strip().splitlines()[-1].startswith("error: interrupted: checkpoint at step")
    code, out, err = finish(start(tmp_path, archive, "killed"))
    assert code == 0, err
    assert "resuming at step" in out and re.search(RUNS_ON.format("pretraining"), out, re.MULTILINE)
    straight, resumed = weights(tmp_path, "straight"), weights(tmp_path, "killed")
    assert straight.keys() == resumed.keys() and len(straight) > 10
    for name, value in straight.items():
        np.testing.assert_array_equal(resumed[name], value, err_msg=name)  # bit for bit
    assert (tmp_path / "killed/metrics/curve.tsv").read_text().count("\n") == 1 + 6


@pytest.mark.parametrize(
    "archive_options, pretrain, message",
    [
        ({"drop_split": "unsup"}, {}, "error: the archive holds no unlabelled reviews (aclImdb/train/unsup/*.txt)"),
        ({}, {"vocab_size": 5000}, "error: pretrain.vocab_size=5000 exceeds the"),
        ({}, {"tokens": 10}, "error: pretrain.tokens=10 is less than one batch of pretrain.batch_size=8 windows"),
        ({}, {"options": "no_such_preset"}, "error: pretrain.options: cannot read 'no_such_preset'"),
        ({}, {"init": "nowhere.hdf5"}, "error: pretrain.init: nowhere.hdf5 does not exist"),
    ],
)
def test_bad_input_is_one_line_naming_the_key_and_writes_nothing(tmp_path, archive_options, pretrain, message):
    archive = make_tiny_archive(tmp_path / "aclImdb_v1.tar.gz", n_per_class=4, **archive_options)
    setup(tmp_path, archive, **pretrain)
    code, out, err = finish(start(tmp_path, archive, "run"))
    assert code == 1 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith(message)
    assert not (tmp_path / "run" / "bilm").exists() and not (tmp_path / "run" / "metrics").exists()
    if "init" in pretrain:  # told before the corpus is read, not after
        assert "corpus:" not in out


@pytest.mark.slow
def test_a_second_run_on_the_same_checkpoints_is_refused_in_one_line(tmp_path, archive):
    setup(tmp_path, archive, tokens=10**6)
    first = start(tmp_path, archive, "run")
    wait_for_checkpoint(tmp_path, "run", first)
    code, out, err = finish(start(tmp_path, archive, "run"))
    assert code == 1 and "Traceback" not in err and "corpus:" not in out  # refused before any work
    assert err.strip().splitlines() == [
        f"error: another run (pid {first.pid}) is writing {tmp_path / 'run' / 'scratch'}; wait for it to finish or stop it, then run again"
    ]
    first.send_signal(signal.SIGTERM)
    assert finish(first)[0] == 1
    assert (tmp_path / "run" / "scratch" / "progress.json").exists()  # the first run's checkpoint, untouched


@pytest.fixture(scope="module")
def straight(tmp_path_factory, archive):
    """An uninterrupted run of the tiny settings, on a disk with room."""
    folder = tmp_path_factory.mktemp("straight")
    setup(folder, archive)
    code, out, err = finish(start(folder, archive, "run"))
    assert code == 0, err
    return folder / "run" / "bilm"


@pytest.mark.slow
@pytest.mark.parametrize("full, free_bytes, failing, left", [
    ("scratch", 8192, r"ckpt-\d+", {".lock"}),  # the lock fits; the first checkpoint does not
    ("bilm", 4096, "weights.hdf5", {"options.json"}),  # the export: the weights file does not fit
    ("metrics", 0, "metrics.json", set()),  # the first evaluation's metrics
])
def test_a_full_disk_is_one_line_and_after_making_room_the_run_gives_the_same_biLM(
        tmp_path, archive, straight, small_disk, full, free_bytes, failing, left):
    setup(tmp_path, archive)
    (tmp_path / "run").mkdir()
    disk = small_disk(f"run/{full}", free_bytes=free_bytes)
    code, out, err = finish(start(tmp_path, archive, "run"))
    assert code == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"error: writing {re.escape(str(disk))}/{failing} failed: No space left on device; "
                        "make room there and run again", err.strip().splitlines()[-1]), err
    assert {p.name for p in disk.iterdir()} == {".filler"} | left  # no temporary file or folder
    assert not (tmp_path / "run" / "bilm" / "weights.hdf5").exists()
    (disk / ".filler").unlink()  # room made
    code, out, err = finish(start(tmp_path, archive, "run"))
    assert code == 0, err
    for name in ("options.json", "weights.hdf5", "vocab.txt"):
        assert (tmp_path / "run" / "bilm" / name).read_bytes() == (straight / name).read_bytes(), name

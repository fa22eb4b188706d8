"""The embed stage killed at several moments, then resumed: the result equals an uninterrupted run."""

import json
import re
import shutil
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
import yaml

from conftest import REPO, write_random_splits
from elmo_imdb.embedders import BLOCK_ROWS
from elmo_imdb.prepared import PreparedSplit

pytestmark = pytest.mark.slow
N_TRAIN = 3 * BLOCK_ROWS + 100  # four blocks: room for "mid-block" and "between blocks"


@pytest.fixture(scope="module")
def setup(tmp_path_factory, tiny_hub_module):
    """Prepared splits of random words and a params file pointing at the tiny hub module."""
    root = tmp_path_factory.mktemp("resume")
    write_random_splits(root / "prepared", N_TRAIN)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["embed"].update(batch_size=50)
    (root / "params.yaml").write_text(yaml.safe_dump(params))
    (root / "module").symlink_to(tiny_hub_module)
    return root


def start_embed(root, run, scratch="scratch"):
    cmd = [sys.executable, str(REPO / "stages/embed.py"), str(root / "module"), str(root / "prepared"), str(root / run / "features"),
           "--scratch", str(root / run / scratch), "--params", str(root / "params.yaml")]
    # Ctrl-C as a terminal delivers it: to a process whose SIGINT is not ignored (a test run started
    # in the background of a non-interactive shell would otherwise pass its ignored SIGINT on).
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def finish(proc):
    out, err = proc.communicate(timeout=600)
    assert proc.returncode == 0, err
    return out


def rows_done(root, run):
    try:
        return json.loads((root / run / "scratch" / "train.progress.json").read_text())["progress"]["rows_done"]
    except (OSError, ValueError):
        return None


def features(root, run):
    out = {}
    for name in ("train", "val", "test"):
        with h5py.File(root / run / "features" / f"{name}.h5") as f:
            assert f.attrs["complete"]
            out[name] = f["features"][:]
    return out


@pytest.fixture(scope="module")
def reference(setup):
    finish(start_embed(setup, "reference"))
    return features(setup, "reference")


@pytest.mark.parametrize(
    "moment, kill_when, sig",
    [
        ("before the first block", lambda done: done == 0, signal.SIGKILL),
        ("mid-block", lambda done: done == BLOCK_ROWS, "half a block later"),
        ("between blocks", lambda done: done == 2 * BLOCK_ROWS, signal.SIGTERM),
        ("Ctrl-C", lambda done: done == BLOCK_ROWS, signal.SIGINT),
    ],
)
def test_killed_then_resumed_equals_the_uninterrupted_run(setup, reference, moment, kill_when, sig):
    run = moment.replace(" ", "-")
    proc = start_embed(setup, run)
    deadline = time.monotonic() + 300
    while (done := rows_done(setup, run)) is None or not kill_when(done):
        assert proc.poll() is None, f"the stage ended before {moment}: {proc.communicate()[1]}"
        assert time.monotonic() < deadline
        time.sleep(0.005)
    if sig == "half a block later":
        time.sleep(0.3)
        sig = signal.SIGKILL
    proc.send_signal(sig)
    proc.communicate(timeout=60)
    assert not (setup / run / "features" / "train.h5").exists()

    resumed = finish(start_embed(setup, run))
    if done > 0:
        assert f"train.h5: resuming at row {done}" in resumed or f"train.h5: resuming at row {done + BLOCK_ROWS}" in resumed
    result = features(setup, run)
    for name in reference:
        np.testing.assert_array_equal(result[name], reference[name], err_msg=f"{name} after a kill {moment}")
        same_bytes = (setup / run / "features" / f"{name}.h5").read_bytes() == (setup / "reference" / "features" / f"{name}.h5").read_bytes()
        assert same_bytes, f"{name}.h5 after a kill {moment}: same vectors, other file bytes"
    assert [p.name for p in (setup / run / "scratch").iterdir()] == [".lock"]  # the lock file stays (elmo_imdb/locking.py)


@pytest.mark.parametrize("crash_at", ["rename", "cleanup"])
def test_a_crash_during_finalisation_resumes_to_the_same_file(setup, reference, crash_at, monkeypatch):
    """Finalisation is too short to hit with a signal: crash it in-process at each of its steps."""
    from elmo_imdb.features import FeatureIdentity, ResumableFeatures, open_features

    split = PreparedSplit.load(setup / "prepared" / "val.h5")
    with h5py.File(setup / "reference" / "features" / "val.h5") as f:
        attrs = {k: f.attrs[k] for k in FeatureIdentity.__dataclass_fields__}
    identity = FeatureIdentity(**{k: v.tolist() if isinstance(v, (np.ndarray, np.generic)) else v for k, v in attrs.items()})
    out, scratch = setup / crash_at / "val.h5", setup / crash_at / "scratch"
    with ResumableFeatures(out, scratch, len(split), identity) as features:
        features.resume()
        features.write(0, reference["val"].astype(np.float32))
        with monkeypatch.context() as m:
            if crash_at == "rename":
                m.setattr("os.replace", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
            else:
                m.setattr(type(features.record), "delete", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
            with pytest.raises(KeyboardInterrupt):
                features.finish()
    if crash_at == "cleanup":
        out.unlink()  # DVC deletes the stage's outputs before it runs the stage again
    with ResumableFeatures(out, scratch, len(split), identity) as features:
        first_row = features.resume()
        if first_row == 0:
            features.write(0, reference["val"].astype(np.float32))
        features.finish()
    assert first_row == (len(split) if crash_at == "rename" else 0)
    np.testing.assert_array_equal(open_features(out, split)[:], reference["val"])


def test_disk_full_is_a_clear_error_and_resumable(setup, reference):
    """The scratch folder on a 16 MB tmpfs: one block of train fits, the second does not."""
    scratch = setup / "diskfull" / "scratch"
    scratch.mkdir(parents=True)
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(scratch)], capture_output=True).returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root) to fill a disk")
    try:
        proc = start_embed(setup, "diskfull")
        _, err = proc.communicate(timeout=600)
        shutil.copytree(scratch, setup / "diskfull" / "freed")  # what survives, moved to a disk with room
    finally:
        subprocess.run(["umount", "-l", str(scratch)], check=True)
    assert proc.returncode == 1, err
    message = err.strip().splitlines()[-1]
    assert message.startswith(f"error: storing rows {BLOCK_ROWS}-{2 * BLOCK_ROWS} of train.h5 failed")
    assert "No space left on device" in message and f"rows 0-{BLOCK_ROWS} are kept" in message
    assert "re-run `dvc repro` to continue" in message
    assert not (setup / "diskfull" / "features" / "train.h5").exists()

    resumed = finish(start_embed(setup, "diskfull", scratch="freed"))
    assert f"train.h5: resuming at row {BLOCK_ROWS}" in resumed
    result = features(setup, "diskfull")
    for name in reference:
        np.testing.assert_array_equal(result[name], reference[name])


@pytest.mark.parametrize("full, failing, left", [
    ("scratch", "train.h5", {".lock"}),  # creating the partial file (the lock fits in the last page)
    ("features", "train.h5", set()),  # the finished file's move onto another, full, file system
])
def test_a_full_disk_at_creation_or_at_the_final_move_is_one_line_and_leaves_nothing(setup, reference, small_disk, full, failing, left):
    run = f"full-{full}"
    disk = small_disk(f"disk-{full}", free_bytes=4096 if full == "scratch" else 0, size_mb=48)  # with room: train.h5 is 39 MB
    (setup / run).mkdir()
    (setup / run / full).symlink_to(disk)
    proc = start_embed(setup, run)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "Traceback" not in err, err
    assert re.fullmatch(rf"error: writing {re.escape(str(setup / run / full))}/(\.train\.partial-\d+)?{failing}.* failed: "
                        r"No space left on device; make room there and run again", err.strip().splitlines()[-1]), err
    assert {p.name for p in disk.iterdir()} == {".filler"} | left  # no partial file, no temporary copy
    (disk / ".filler").unlink()  # room made
    finish(start_embed(setup, run))
    for name in reference:
        assert (setup / run / "features" / f"{name}.h5").read_bytes() == (setup / "reference" / "features" / f"{name}.h5").read_bytes(), name

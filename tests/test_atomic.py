"""All-or-nothing writes: nothing under the real name until complete, across file systems too."""

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from elmo_imdb import atomic
from elmo_imdb.atomic import atomic_output, move_into_place, write_json


def test_a_failed_write_leaves_neither_the_file_nor_its_temporary_file_or_folder(tmp_path):
    for make in (lambda tmp: tmp.write_text("half"), lambda tmp: (tmp.mkdir(), (tmp / "part").write_text("half"))):
        with pytest.raises(RuntimeError), atomic_output(tmp_path / "out.json") as tmp:
            make(tmp)
            raise RuntimeError("the writer failed")
        assert list(tmp_path.iterdir()) == []


def test_temporary_files_of_dead_writers_are_removed_and_a_live_writers_kept(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    stray = tmp_path / f".out.partial-{dead.stdout.strip()}.json"  # what a SIGKILLed writer leaves
    alive = tmp_path / f".out.partial-{os.getppid()}.json"  # another run, still writing
    stray.write_text("{")
    alive.write_text("{")
    write_json(tmp_path / "out.json", {"a": 1})
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([alive.name, "out.json"])


def test_metrics_are_json_or_nothing(tmp_path):
    with pytest.raises(ValueError, match="not JSON compliant"):
        write_json(tmp_path / "metrics.json", {"val_loss": float("nan")})
    assert not (tmp_path / "metrics.json").exists()
    write_json(tmp_path / "metrics.json", {"val_loss": 0.25})
    assert json.loads((tmp_path / "metrics.json").read_text()) == {"val_loss": 0.25}


def test_a_file_moves_into_place_from_another_file_system(tmp_path):
    other = "/dev/shm"
    if not os.path.isdir(other) or os.stat(other).st_dev == os.stat(tmp_path).st_dev:
        pytest.skip("no tmpfs at /dev/shm on another device than the test's folder")
    source = Path(other) / f"elmo-imdb-test-{os.getpid()}.bin"
    source.write_bytes(b"x" * 100_000)
    try:
        with pytest.raises(OSError) as e:
            os.replace(source, tmp_path / "out.bin")  # what the old code did: EXDEV
        assert e.value.errno == errno.EXDEV
        move_into_place(source, tmp_path / "out" / "out.bin")
        assert (tmp_path / "out" / "out.bin").read_bytes() == b"x" * 100_000
        assert not source.exists() and list((tmp_path / "out").iterdir()) == [tmp_path / "out" / "out.bin"]
    finally:
        source.unlink(missing_ok=True)


def test_a_cross_device_copy_that_fails_leaves_the_source_and_no_partial_target(tmp_path, monkeypatch):
    source = tmp_path / "scratch.bin"
    source.write_bytes(b"data")

    def cross_device(src, dst):
        if str(src) == str(source):
            raise OSError(errno.EXDEV, "Invalid cross-device link")
        return os_replace(src, dst)

    def disk_full(src, dst):
        raise OSError(errno.ENOSPC, "No space left on device", str(dst))

    os_replace = os.replace
    monkeypatch.setattr(atomic.os, "replace", cross_device)
    monkeypatch.setattr(atomic.shutil, "copyfile", disk_full)
    with pytest.raises(OSError, match="No space left"):
        move_into_place(source, tmp_path / "out" / "out.bin")
    assert source.read_bytes() == b"data" and list((tmp_path / "out").iterdir()) == []

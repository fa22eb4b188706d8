"""A full disk in the small stages: one `error:` line naming the path, nothing left behind, and
after making room the same files as a run with room. (The embed and pretrain stages' own
disk-full tests are with their resume tests.)"""

import errno
import io
import re
import runpy
import sys
from contextlib import redirect_stderr

import pytest

from conftest import REPO
from test_stages import params_file, run_stage

ENCODE_LINE = r"^error: writing .*/(vocab.txt|train.h5) failed: No space left on device; make room there and run again$"


def write_prepared(folder, tiny_splits):
    for name, split in tiny_splits.items():
        split.save(folder / "prepared" / f"{name}.h5")


def test_encode_on_a_full_disk_is_one_line_and_a_rerun_with_room_writes_the_same_files(tmp_path, tiny_splits, small_disk):
    write_prepared(tmp_path, tiny_splits)
    full = small_disk("base", free_bytes=0)
    result = run_stage("encode", str(tmp_path / "prepared"), str(full), "--params", str(params_file(tmp_path)))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert re.match(ENCODE_LINE, result.stderr.strip())
    assert sorted(p.name for p in full.iterdir()) == [".filler"]  # no temporary file, no half a file
    (full / ".filler").unlink()  # room made
    assert run_stage("encode", str(tmp_path / "prepared"), str(full), "--params", str(params_file(tmp_path))).returncode == 0
    assert run_stage("encode", str(tmp_path / "prepared"), str(tmp_path / "room"), "--params", str(params_file(tmp_path))).returncode == 0
    for name in ("vocab.txt", "train.h5", "val.h5", "test.h5"):
        assert (full / name).read_bytes() == (tmp_path / "room" / name).read_bytes(), name


def test_a_write_that_fails_with_enospc_anywhere_is_one_line(tmp_path, tiny_splits, monkeypatch):
    """The same without a tmpfs: every write of the stage fails as on a full disk."""
    write_prepared(tmp_path, tiny_splits)
    argv = ["encode.py", str(tmp_path / "prepared"), str(tmp_path / "base"), "--params", str(params_file(tmp_path))]

    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("pathlib.Path.write_bytes", no_space)
    monkeypatch.setattr("pathlib.Path.write_text", no_space)
    monkeypatch.setattr(sys, "argv", argv)
    stderr = io.StringIO()
    with redirect_stderr(stderr), pytest.raises(SystemExit) as exited:
        runpy.run_path(str(REPO / "stages" / "encode.py"), run_name="__main__")
    assert exited.value.code == 1
    assert re.match(ENCODE_LINE, stderr.getvalue().strip())
    assert list((tmp_path / "base").iterdir()) == []

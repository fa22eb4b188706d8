"""One writer per folder: a second holder is refused at once, naming the first; a killed holder frees it."""

import os
import signal
import subprocess
import sys
import time

import pytest

from elmo_imdb.locking import FolderBusyError, one_writer

HOLD = "import sys, time; from elmo_imdb.locking import one_writer\nwith one_writer(sys.argv[1]):\n    print('held', flush=True); time.sleep(60)"


def hold_in_another_process(folder):
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "held\n"
    return proc


def test_a_second_writer_is_refused_naming_the_holders_pid_and_the_folder(tmp_path):
    proc = hold_in_another_process(tmp_path / "scratch")
    try:
        with pytest.raises(FolderBusyError) as refused:
            with one_writer(tmp_path / "scratch"):
                pass
        assert str(refused.value) == (
            f"another run (pid {proc.pid}) is writing {tmp_path / 'scratch'}; wait for it to finish or stop it, then run again"
        )
    finally:
        proc.kill()
        proc.wait()


def test_a_killed_holder_releases_the_folder_and_the_next_writer_records_its_own_pid(tmp_path):
    proc = hold_in_another_process(tmp_path)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with one_writer(tmp_path):  # no stale lock to delete by hand
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"


def test_the_lock_is_held_for_the_block_only(tmp_path):
    with one_writer(tmp_path):
        with pytest.raises(FolderBusyError):  # a second open file description in this very process too
            with one_writer(tmp_path):
                pass
    start = time.monotonic()
    with one_writer(tmp_path):
        pass
    assert time.monotonic() - start < 1  # never waits: refused or taken at once

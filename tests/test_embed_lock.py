"""One writer per scratch folder: a second embed run on a folder in use is refused, and
touches nothing there."""

import os
import re
import subprocess
import sys

import yaml

from conftest import REPO, write_random_splits
from elmo_imdb.locking import one_writer


def test_a_second_embed_run_on_a_busy_scratch_folder_is_refused_in_one_line(tmp_path, tiny_hub_module):
    write_random_splits(tmp_path / "prepared", 20)
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    partial = scratch / "train.h5"
    partial.write_bytes(b"another run's half-written file" * 100)  # what the first run is growing
    before = partial.read_bytes()
    with one_writer(scratch):
        result = subprocess.run(
            [sys.executable, str(REPO / "stages/embed.py"), str(tiny_hub_module), str(tmp_path / "prepared"),
             str(tmp_path / "features"), "--scratch", str(scratch), "--params", str(tmp_path / "params.yaml")],
            capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        )
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: another run (pid {os.getpid()}) is writing {scratch}; wait for it to finish or stop it, then run again"
    )
    assert partial.read_bytes() == before
    assert sorted(p.name for p in scratch.iterdir()) == [".lock", "train.h5"]
    assert not (tmp_path / "features").exists()
    assert not re.search(r"^train: .* reviews", result.stdout, re.M)  # refused before any split was started

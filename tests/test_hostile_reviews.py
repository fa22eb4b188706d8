"""Any bytes a review file may hold: prepare gives aligned tokens or one line naming the file."""

import subprocess
import sys

import numpy as np
import pytest
import yaml
from imdb_fixtures import make_tiny_archive

from conftest import REPO
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.tokenize import tokenize

PIECES = [b"\x00", b"\x01", b"\x08", b"\x1b", b"\x7f", b"\x85", b"\x96", b"\xff", b"\xc3\xa9", b"\xe2\x80\x99",
          b"\xef\xbf\xbd", b"<br />", b"&amp;", b" ", b"\n", b"\t", b"don't", b"film", b"!", b"\xf0\x9f\x8e\xac",
          # entities, numeric and named, that unescape to controls, U+FFFD or text
          b"&#0;", b"&#1;", b"&#x1b;", b"&#127;", b"&#x81;", b"&#129;", b"&#x9d;", b"&#x96;", b"&#xfffd;",
          b"&#65533;", b"&#xd800;", b"&#x110000;", b"&eacute;", b"&lt;", b"&nbsp;", b"&#8217;", b"&amp;#0;"]
NOT_TEXT = {*map(chr, range(0x20)), *map(chr, range(0x7F, 0xA0)), "\ufffd"}  # controls (C0, DEL, C1) and U+FFFD


def random_review(rng) -> bytes:
    """Bytes of a review: random pieces (controls, bad UTF-8, markup, words) and random bytes."""
    parts = [PIECES[i] for i in rng.integers(0, len(PIECES), rng.integers(0, 40))]
    parts.append(rng.integers(0, 256, rng.integers(0, 60), dtype=np.uint8).tobytes())
    rng.shuffle(parts)
    return b"".join(parts)


def prepare(tmp_path, archive, maxlen=20):
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["prepare"].update(maxlen=maxlen, val_size=4)
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return subprocess.run([sys.executable, str(REPO / "stages/prepare.py"), str(archive), str(tmp_path / "prepared"),
                           "--params", str(tmp_path / "params.yaml")], capture_output=True, text=True)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_reviews_of_arbitrary_bytes_give_aligned_tokens_without_control_or_replacement_characters(tmp_path, seed):
    rng = np.random.default_rng(seed)
    extra = {f"{split}/{label}/{100 + i}_{7 if label == 'pos' else 2}.txt": random_review(rng)
             for split in ("train", "test") for label in ("pos", "neg") for i in range(15)}
    archive = make_tiny_archive(tmp_path / "hostile.tar.gz", extra_files=extra)
    result = prepare(tmp_path, archive)
    assert result.returncode == 0, result.stderr
    seen = 0
    for name in ("train", "val", "test"):
        split = PreparedSplit.load(tmp_path / "prepared" / f"{name}.h5")  # checks its own fingerprint
        for tokens, review, label in zip(split.tokens, split.names, split.labels):
            if review in extra:
                content = extra[review]
                text = content.decode("utf-8") if _is_utf8(content) else content.decode("latin-1")
                assert tokens == tokenize(text)[-20:], review  # the row holds its own file's tokens
                assert label == (1 if "/pos/" in review else 0)
                seen += 1
            assert all(t and not any(c.isspace() or c in NOT_TEXT for c in t) for t in tokens), review
    assert seen == len(extra)


def test_a_stray_file_name_is_one_line_naming_it_and_nothing_is_written(tmp_path):
    archive = make_tiny_archive(tmp_path / "stray.tar.gz", extra_files={"train/pos/notes\x01.txt": b"\x00\xff"})
    result = prepare(tmp_path, archive)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: review file train/pos/notes\x01.txt is not named <id>_<rating>.txt")
    assert not (tmp_path / "prepared").exists()


def _is_utf8(content: bytes) -> bool:
    try:
        content.decode("utf-8")
        return True
    except UnicodeDecodeError:
        return False

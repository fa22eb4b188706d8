"""Reading the IMDB dataset from an archive or a folder, and fetching the archive."""

import contextlib
import functools
import gzip
import hashlib
import http.server
import os
import socket
import threading
import time
from pathlib import Path

import pytest
from imdb_fixtures import make_tiny_archive, make_tiny_folder

from elmo_imdb import imdb
from elmo_imdb.imdb import ArchiveError, Review, fetch_archive, read_reviews
from elmo_imdb.tokenize import tokenize

REAL_ARCHIVE = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "aclImdb_v1.tar.gz"


@pytest.fixture
def archive(tmp_path) -> Path:
    return make_tiny_archive(tmp_path / "source" / "aclImdb_v1.tar.gz")


# --- reading a good dataset -------------------------------------------------------------------


def test_archive_and_extracted_folder_give_identical_results(tmp_path, archive):
    folder = make_tiny_folder(tmp_path / "extracted")
    assert read_reviews(archive) == read_reviews(folder)
    assert read_reviews(folder.parent) == read_reviews(folder)


def test_member_order_of_the_archive_does_not_matter(tmp_path):
    one = make_tiny_archive(tmp_path / "one.tar.gz", member_order_seed=1)
    two = make_tiny_archive(tmp_path / "two.tar.gz", member_order_seed=2)
    assert one.read_bytes() != two.read_bytes()
    assert read_reviews(one) == read_reviews(two)


def test_counts_and_labels_follow_the_folders(archive):
    reviews, report = read_reviews(archive)
    assert report.counts == {("test", 0): 6, ("test", 1): 6, ("train", 0): 6, ("train", 1): 6}
    assert len(reviews) == 24
    for review in reviews:
        split, label_folder, file_name = review.name.split("/")
        assert review.split == split
        assert review.label == {"pos": 1, "neg": 0}[label_folder]


def test_reviews_are_sorted_by_split_then_name(archive):
    reviews, _ = read_reviews(archive)
    keys = [(review.split, review.name) for review in reviews]
    assert keys == sorted(keys)
    assert reviews[0].name == "test/neg/0_1.txt"
    assert reviews[-1].name == "train/pos/5_8.txt"


def test_unlabelled_reviews_and_other_files_are_ignored(archive):
    reviews, _ = read_reviews(archive)
    assert all(review.name.split("/")[1] in ("pos", "neg") for review in reviews)
    assert not any("unsup" in review.name or "vocab" in review.name for review in reviews)


def test_text_is_kept_raw_non_ascii_and_markup_included(archive):
    reviews, report = read_reviews(archive)
    by_name = {review.name: review for review in reviews}
    assert by_name["train/pos/0_7.txt"] == Review(
        "train", 1, "train/pos/0_7.txt",
        "Amélie was très bien: charming, delightful, un film magnifique!",
    )
    assert by_name["test/pos/0_7.txt"].text == "<br /><br />"
    assert "<br /><br />" in by_name["train/neg/1_2.txt"].text
    assert report.undecodable == []


def test_empty_reviews_are_kept_and_reported(archive):
    reviews, report = read_reviews(archive)
    assert report.empty == ["train/neg/0_1.txt"]
    assert Review("train", 0, "train/neg/0_1.txt", "") in reviews


def test_non_utf8_reviews_are_read_as_windows_1252_and_reported(tmp_path):
    content = "Très réussi – an “Amélie” for 20€".encode("cp1252") + b"\x81!"  # 0x81: undefined in Windows-1252
    source = make_tiny_archive(tmp_path / "cp1252.tar.gz", extra_files={"train/pos/99_10.txt": content})
    reviews, report = read_reviews(source)
    assert report.undecodable == ["train/pos/99_10.txt"]
    assert report.counts[("train", 1)] == 7
    (review,) = [r for r in reviews if r.name == "train/pos/99_10.txt"]
    assert tokenize(review.text) == ["Très", "réussi", "–", "an", "“", "Amélie", "”", "for", "20", "€", "!"]


# --- reading a bad source ---------------------------------------------------------------------


def test_missing_source(tmp_path):
    with pytest.raises(ArchiveError, match=r"nope\.tar\.gz does not exist; run the fetch stage"):
        read_reviews(tmp_path / "nope.tar.gz")


def test_truncated_archive(tmp_path, archive):
    half = tmp_path / "half.tar.gz"
    half.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    with pytest.raises(ArchiveError, match=r"half\.tar\.gz is truncated or not a \.tar\.gz: .*delete it and fetch again"):
        read_reviews(half)


def test_truncation_is_detected_wherever_the_archive_is_cut(tmp_path, archive):
    """Also after the last review or inside the gzip trailer, where tarfile alone sees nothing wrong."""
    content = archive.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    for size in [*range(1, len(content), 37), len(content) - 8, len(content) - 1]:
        cut.write_bytes(content[:size])
        with pytest.raises(ArchiveError, match="is truncated or not a .tar.gz"):
            read_reviews(cut)


@pytest.mark.parametrize(
    "content",
    [b"", b"this is not an archive", b"\x1f\x8b\x08\x00garbage after a gzip magic number"],
    ids=["empty", "text", "bad gzip"],
)
def test_not_a_gzip_file(tmp_path, content):
    bogus = tmp_path / "bogus.tar.gz"
    bogus.write_bytes(content)
    with pytest.raises(ArchiveError, match=r"bogus\.tar\.gz is truncated or not a \.tar\.gz"):
        read_reviews(bogus)


def test_gzip_file_that_is_not_a_tar(tmp_path):
    bogus = tmp_path / "notes.tar.gz"
    bogus.write_bytes(gzip.compress(b"just some text, no tar headers here\n" * 40))
    with pytest.raises(ArchiveError, match=r"notes\.tar\.gz is truncated or not a \.tar\.gz"):
        read_reviews(bogus)


@pytest.mark.parametrize("make", [make_tiny_archive, make_tiny_folder], ids=["archive", "folder"])
@pytest.mark.parametrize("split", ["train", "test"])
def test_a_missing_split(tmp_path, make, split):
    source = make(tmp_path / "source.tar.gz", drop_split=split)
    with pytest.raises(ArchiveError, match=rf"no labelled {split} reviews in .*aclImdb/{split}/pos/\*\.txt"):
        read_reviews(source)


def test_a_folder_that_is_not_the_dataset(tmp_path):
    (tmp_path / "photos").mkdir()
    with pytest.raises(ArchiveError, match="no labelled train reviews in .*photos"):
        read_reviews(tmp_path / "photos")


@pytest.mark.parametrize("make", [make_tiny_archive, make_tiny_folder], ids=["archive", "folder"])
def test_a_split_with_one_class_only(tmp_path, make):
    source = make(tmp_path / "source.tar.gz", drop_class=("test", "pos"))
    with pytest.raises(ArchiveError, match="the test split of .* has only neg reviews, none in aclImdb/test/pos/"):
        read_reviews(source)


@pytest.mark.parametrize("make", [make_tiny_archive, make_tiny_folder], ids=["archive", "folder"])
@pytest.mark.parametrize("bad_name", ["notes.txt", "12.txt", "12_x.txt", "a_9.txt"])
def test_a_review_file_name_that_does_not_parse(tmp_path, make, bad_name):
    source = make(tmp_path / "source.tar.gz", extra_files={f"train/neg/{bad_name}": b"text"})
    with pytest.raises(ArchiveError, match=rf"review file train/neg/{bad_name} is not named <id>_<rating>\.txt"):
        read_reviews(source)


# --- fetching from a local copy ---------------------------------------------------------------


def test_fetch_copies_a_local_archive_without_checksum(tmp_path, archive):
    dest = tmp_path / "data" / "new" / "aclImdb_v1.tar.gz"
    assert fetch_archive(dest, local=archive) == dest
    assert dest.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["aclImdb_v1.tar.gz"]


@pytest.mark.parametrize("give_parent", [False, True], ids=["aclImdb", "parent"])
def test_fetch_packs_a_local_folder_into_a_readable_archive(tmp_path, give_parent):
    folder = make_tiny_folder(tmp_path / "extracted")
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    fetch_archive(dest, local=folder.parent if give_parent else folder)
    assert read_reviews(dest) == read_reviews(folder)
    assert sorted(p.name for p in dest.parent.iterdir()) == ["aclImdb_v1.tar.gz"]


def test_packing_a_folder_twice_gives_identical_bytes(tmp_path):
    folder = make_tiny_folder(tmp_path / "extracted")
    first = fetch_archive(tmp_path / "first.tar.gz", local=folder)
    time.sleep(1.1)  # the clock, were it written into the archive, now differs
    os.utime(folder / "train" / "pos" / "1_8.txt", (1e9, 1e9))  # and so does a file's date
    second = fetch_archive(tmp_path / "second.tar.gz", local=folder)
    assert first.read_bytes() == second.read_bytes()


def test_fetch_from_a_missing_local_source(tmp_path):
    dest = tmp_path / "aclImdb_v1.tar.gz"
    with pytest.raises(ArchiveError, match=r"local dataset source .*nowhere \(fetch\.local\) does not exist"):
        fetch_archive(dest, local=tmp_path / "nowhere")
    assert not dest.exists()


def test_fetch_from_a_local_folder_without_reviews(tmp_path):
    (tmp_path / "empty").mkdir()
    dest = tmp_path / "out" / "aclImdb_v1.tar.gz"
    with pytest.raises(ArchiveError, match="holds no labelled reviews"):
        fetch_archive(dest, local=tmp_path / "empty")
    assert list(dest.parent.iterdir()) == []


def test_an_interrupted_fetch_leaves_nothing_at_dest(tmp_path, archive, monkeypatch):
    def copy_half_then_interrupt(source, target):
        Path(target).write_bytes(Path(source).read_bytes()[:100])
        raise KeyboardInterrupt

    monkeypatch.setattr(imdb.shutil, "copyfile", copy_half_then_interrupt)
    dest = tmp_path / "out" / "aclImdb_v1.tar.gz"
    with pytest.raises(KeyboardInterrupt):
        fetch_archive(dest, local=archive)
    assert list(dest.parent.iterdir()) == []


# --- fetching by URL --------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):
        pass


class _ShortBodyHandler(_QuietHandler):
    """Announces more bytes than it sends, like a connection dropped mid-download."""

    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Length", "5000")
        self.end_headers()
        self.wfile.write(b"\x1f\x8b" + b"x" * 998)
        self.close_connection = True


@contextlib.contextmanager
def _http_server(folder: Path, handler=_QuietHandler):
    """Serve ``folder`` on 127.0.0.1 from a thread; yield the base URL."""
    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_download_over_http_with_good_checksum(tmp_path, archive):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    with _http_server(archive.parent) as base_url:
        fetch_archive(dest, url=f"{base_url}/{archive.name}", sha256=_sha256(archive))
    assert dest.read_bytes() == archive.read_bytes()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["aclImdb_v1.tar.gz"]


def test_download_from_a_file_url_without_checksum(tmp_path, archive):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    fetch_archive(dest, url=archive.as_uri(), sha256=None)
    assert dest.read_bytes() == archive.read_bytes()


def test_download_with_wrong_checksum_deletes_the_file(tmp_path, archive):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    wrong = "0" * 64
    with _http_server(archive.parent) as base_url:
        with pytest.raises(
            ArchiveError, match=rf"is {_sha256(archive)}, expected {wrong}; the downloaded file was deleted"
        ):
            fetch_archive(dest, url=f"{base_url}/{archive.name}", sha256=wrong)
    assert list(dest.parent.iterdir()) == []


def test_download_with_wrong_checksum_keeps_an_existing_archive(tmp_path, archive):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    dest.parent.mkdir()
    dest.write_bytes(b"previous archive")
    with pytest.raises(ArchiveError, match="the downloaded file was deleted"):
        fetch_archive(dest, url=archive.as_uri(), sha256="0" * 64)
    assert dest.read_bytes() == b"previous archive"
    assert list(dest.parent.iterdir()) == [dest]


def test_download_cut_short_leaves_nothing(tmp_path):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    with _http_server(tmp_path, handler=_ShortBodyHandler) as base_url:
        with pytest.raises(ArchiveError, match=r"stopped after 1000 of 5000 bytes.*fetch\.local"):
            fetch_archive(dest, url=f"{base_url}/aclImdb_v1.tar.gz", sha256=None)
    assert list(dest.parent.iterdir()) == []


def test_http_error_suggests_a_local_copy(tmp_path, archive):
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    with _http_server(archive.parent) as base_url:
        with pytest.raises(ArchiveError, match=r"HTTP Error 404.*fetch\.local"):
            fetch_archive(dest, url=f"{base_url}/missing.tar.gz")
    assert list(dest.parent.iterdir()) == []


def test_no_network_suggests_a_local_copy(tmp_path):
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    dest = tmp_path / "data" / "aclImdb_v1.tar.gz"
    with pytest.raises(
        ArchiveError,
        match=r"could not download .*set the local-archive parameter fetch\.local in params\.yaml.*"
        r"fetch\.local: \.\./shared/data/aclImdb_v1\.tar\.gz",
    ):
        fetch_archive(dest, url=f"http://127.0.0.1:{port}/aclImdb_v1.tar.gz")
    assert list(dest.parent.iterdir()) == []


# --- the real dataset -------------------------------------------------------------------------


def test_the_real_archive_has_12500_reviews_per_class_and_split():
    if not REAL_ARCHIVE.exists():
        pytest.skip(f"the real dataset is not at {REAL_ARCHIVE} (only the project's CI has ../shared)")
    start = time.perf_counter()
    reviews, report = read_reviews(REAL_ARCHIVE)
    elapsed = time.perf_counter() - start
    print(f"read {len(reviews)} reviews from {REAL_ARCHIVE.name} in {elapsed:.1f} s")
    assert report.counts == {("test", 0): 12500, ("test", 1): 12500, ("train", 0): 12500, ("train", 1): 12500}
    assert len({review.name for review in reviews}) == 50_000
    assert any("<br /><br />" in review.text for review in reviews)

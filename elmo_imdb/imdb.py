"""Reading the IMDB Large Movie Review Dataset (Maas et al., ACL 2011) and fetching its archive.

The dataset comes as ``aclImdb_v1.tar.gz``, holding one review per file in
``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``, 50,000 unlabelled reviews in
``aclImdb/train/unsup/<id>_0.txt``, and files this project does not use (``imdb.vocab``,
``urls_*.txt``, ...). :func:`read_reviews` reads the labelled reviews, :func:`read_texts` any
reviews by name (the biLM's pretraining corpus: the unlabelled ones and the training split),
from the archive or from an already extracted copy, without extracting anything to disk. :func:`fetch_archive` puts the archive where the pipeline expects it:
downloaded from the official URL and checked against the official checksum, or taken from a
local copy on machines that cannot download it.
"""

import contextlib
import gzip
import hashlib
import http.client
import re
import shutil
import tarfile
import urllib.request
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from elmo_imdb.atomic import atomic_output
from elmo_imdb.errors import PipelineError

OFFICIAL_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
OFFICIAL_SHA256 = "c40f74a18d3b61f90feba1e17730e0d38e8b97c05fde7008942e91923d1658fe"

SPLITS = ("train", "test")
LABEL_OF_FOLDER = {"pos": 1, "neg": 0}

UNLABELLED_FOLDER = "train/unsup"
# A review inside the archive; some tar tools prefix member names with "./".
_REVIEW_MEMBER = re.compile(r"(?:\./)?aclImdb/(train/(?:pos|neg|unsup)|test/(?:pos|neg))/([^/]+\.txt)")
_REVIEW_FILE_NAME = re.compile(r"\d+_\d+\.txt")

_CHUNK_BYTES = 1 << 20
_DOWNLOAD_TIMEOUT_SECONDS = 60
_LOCAL_SOURCE_HINT = (
    "if this machine cannot download it, set the local-archive parameter fetch.local in "
    "params.yaml instead, e.g. `fetch.local: ../shared/data/aclImdb_v1.tar.gz` "
    "(a .tar.gz archive or an extracted aclImdb/ folder)"
)


class ArchiveError(PipelineError):
    """Bad or unusable dataset source; message says what and what to do."""


@dataclass(frozen=True)
class Review:
    """One labelled review, with its text exactly as stored (tokenising comes later)."""

    split: str  # "train" or "test"
    label: int  # 1 = pos, 0 = neg
    name: str  # path inside the dataset, e.g. "train/pos/123_9.txt"
    text: str  # raw text as stored (UTF-8, or Windows-1252 for a file that is not valid UTF-8)


@dataclass
class ReadReport:
    """What reading found, for the stage to print or log: odd files are kept, not dropped."""

    counts: dict  # {("train", 1): 12500, ...}
    undecodable: list[str]  # names of files that were not valid UTF-8 (decoded as Windows-1252)
    empty: list[str]  # names of empty (or whitespace-only) reviews


def read_reviews(source: Path) -> tuple[list[Review], ReadReport]:
    """Read every labelled review from a ``.tar.gz`` archive or an extracted dataset folder.

    ``source`` is the archive, the extracted ``aclImdb/`` folder, or the folder holding it.
    Reviews come back sorted by (split, name) whatever the order of the archive's members,
    so an archive and its extracted folder give identical results. Raises
    :class:`ArchiveError` when the source is missing, damaged or not the dataset.
    """
    with contextlib.closing(_review_files(source, _is_labelled)) as files:  # its progress bar ends before any error
        reviews, report = _decode_reviews(files)
    _check_both_splits_have_both_labels(report.counts, source)
    return reviews, report


def read_texts(source: Path, include) -> dict[str, str]:
    """``{name: text}`` of every review whose name (``train/unsup/123_0.txt``, ...) ``include``
    accepts, decoded as :func:`read_reviews` decodes, sorted by name."""
    with contextlib.closing(_review_files(source, include)) as files:
        texts = {name: _decode(content)[0] for name, content in files}
    return dict(sorted(texts.items()))


def _is_labelled(name: str) -> bool:
    return not name.startswith(UNLABELLED_FOLDER + "/")


def _review_files(source: Path, include) -> Iterator[tuple[str, bytes]]:
    """(name, content) of the reviews ``include`` accepts, from an archive or a folder."""
    source = Path(source)
    if not source.exists():
        raise ArchiveError(
            f"dataset source {source} does not exist; run the fetch stage first, or point to "
            "the aclImdb_v1.tar.gz archive or the extracted aclImdb/ folder"
        )
    if source.is_dir():
        for name, path in tqdm(_review_files_in_folder(source, include), desc="reading reviews", unit=" reviews"):
            yield name, path.read_bytes()
    else:
        yield from tqdm(_review_files_in_archive(source, include), desc="reading reviews", unit=" reviews")


def fetch_archive(
    dest: Path,
    url: str = OFFICIAL_URL,
    sha256: str | None = OFFICIAL_SHA256,
    local: Path | None = None,
) -> Path:
    """Put the dataset archive at ``dest`` and return ``dest``.

    With ``local``, no network is used and no checksum checked (a local copy may be a rebuild
    whose bytes differ from the official archive): a ``.tar.gz`` file is copied, and an
    extracted ``aclImdb/`` folder (or the folder holding it) is packed into a ``.tar.gz`` in the
    official layout, holding the labelled and the unlabelled reviews. Without ``local``, ``url`` is
    downloaded and, when ``sha256`` is given, checked against it.

    The archive is written to a temporary file beside ``dest`` and renamed to ``dest`` only once
    complete and verified, so a failed or interrupted fetch never leaves a partial archive
    that a later stage would take for a whole one.
    """
    dest = Path(dest)
    local = None if local is None else Path(local)
    if local is not None and not local.exists():
        raise ArchiveError(
            f"local dataset source {local} (fetch.local) does not exist; fix the path in "
            "params.yaml, or remove fetch.local to download the official archive"
        )
    with atomic_output(dest) as partial:
        if local is None:
            _download(url, partial, sha256)
        elif local.is_dir():
            _pack_reviews(local, partial)
        else:
            shutil.copyfile(local, partial)
    return dest


def _review_files_in_folder(folder: Path, include=lambda name: True) -> list[tuple[str, Path]]:
    """(name, path) of every review ``include`` accepts in an extracted dataset, sorted by name."""
    root = folder / "aclImdb" if (folder / "aclImdb").is_dir() else folder
    folders = [f"{split}/{label}" for split in SPLITS for label in LABEL_OF_FOLDER] + [UNLABELLED_FOLDER]
    return sorted(
        (name, path)
        for sub in folders
        for path in (root / sub).glob("*.txt")
        if path.is_file() and include(name := f"{sub}/{path.name}")
    )


def _review_files_in_archive(archive_path: Path, include) -> Iterator[tuple[str, bytes]]:
    """Yield (name, content) of every review ``include`` accepts in a ``.tar.gz``, in archive order.

    The archive is streamed, never extracted. It is decompressed with :mod:`gzip` rather than
    by :mod:`tarfile` itself because tarfile stops at the end-of-archive marker, and in a
    truncated archive may stop early without complaint; reading the gzip stream to its end
    makes gzip check the stream's length and CRC, so truncation is always reported.
    """
    try:
        with (
            gzip.open(archive_path, "rb") as decompressed,
            tarfile.open(fileobj=decompressed, mode="r|") as archive,
        ):
            for member in archive:
                match = _REVIEW_MEMBER.fullmatch(member.name)
                if match and member.isfile() and include(name := "/".join(match.groups())):
                    yield name, archive.extractfile(member).read()
            while decompressed.read(_CHUNK_BYTES):
                pass
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as error:
        raise ArchiveError(
            f"archive {archive_path} is truncated or not a .tar.gz: {error}; "
            "delete it and fetch again"
        ) from error


def _decode(content: bytes) -> tuple[str, bool]:
    """The text of a review file, and whether it was valid UTF-8.

    A file that is not is what text files of the dataset's era mostly are: Windows-1252 (or
    Latin-1, its subset). It is read byte for byte as Latin-1, which puts Windows-1252's
    punctuation bytes 0x80-0x9F at the C1 control characters; the tokeniser's cleaning maps
    those to the Windows-1252 characters (:func:`elmo_imdb.tokenize.clean_review`), so the
    result is Windows-1252's reading, with its five undefined bytes as spaces, and never a
    replacement character splitting a word.
    """
    try:
        return content.decode("utf-8"), True
    except UnicodeDecodeError:
        return content.decode("latin-1"), False


def _decode_reviews(files: Iterable[tuple[str, bytes]]) -> tuple[list[Review], ReadReport]:
    """Turn (name, content) pairs into sorted reviews, noting undecodable and empty ones."""
    reviews, undecodable, empty = [], [], []
    for name, content in files:
        split, label_folder, file_name = name.split("/")
        if not _REVIEW_FILE_NAME.fullmatch(file_name):
            raise ArchiveError(
                f"review file {name} is not named <id>_<rating>.txt as in the IMDB dataset; "
                "remove or rename it"
            )
        text, valid = _decode(content)
        if not valid:
            undecodable.append(name)
        if not text.strip():
            empty.append(name)
        reviews.append(Review(split, LABEL_OF_FOLDER[label_folder], name, text))
    reviews.sort(key=lambda review: (review.split, review.name))
    counts = Counter((review.split, review.label) for review in reviews)
    return reviews, ReadReport(dict(sorted(counts.items())), sorted(undecodable), sorted(empty))


def _check_both_splits_have_both_labels(counts: dict, source: Path) -> None:
    """Refuse a dataset that cannot train or evaluate a classifier: a split or a class missing."""
    for split in SPLITS:
        present = [folder for folder, label in LABEL_OF_FOLDER.items() if (split, label) in counts]
        if not present:
            raise ArchiveError(
                f"no labelled {split} reviews in {source}: expected files "
                f"aclImdb/{split}/pos/*.txt and aclImdb/{split}/neg/*.txt; is this the IMDB "
                "Large Movie Review Dataset?"
            )
        if len(present) == 1:
            missing = "neg" if present == ["pos"] else "pos"
            raise ArchiveError(
                f"the {split} split of {source} has only {present[0]} reviews, none in "
                f"aclImdb/{split}/{missing}/; the dataset is incomplete, fetch it again"
            )


def _pack_reviews(folder: Path, archive_path: Path) -> None:
    """Write the reviews of an extracted dataset as a ``.tar.gz`` in the official layout.

    File dates, owners and the gzip timestamp are left out, so packing the same reviews twice
    gives the same bytes and DVC sees an unchanged output.
    """
    files = _review_files_in_folder(folder)
    if not any(_is_labelled(name) for name, _ in files):
        raise ArchiveError(
            f"local dataset folder {folder} (fetch.local) holds no labelled reviews: expected "
            "aclImdb/{train,test}/{pos,neg}/*.txt inside it"
        )
    with (
        archive_path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as compressed,
        tarfile.open(fileobj=compressed, mode="w") as archive,
    ):
        for name, path in files:
            member = tarfile.TarInfo(f"aclImdb/{name}")
            member.size = path.stat().st_size
            with path.open("rb") as review:
                archive.addfile(member, review)


def _download(url: str, partial: Path, sha256: str | None) -> None:
    """Download ``url`` into ``partial`` with a progress bar, then check length and checksum."""
    try:
        response = urllib.request.urlopen(url, timeout=_DOWNLOAD_TIMEOUT_SECONDS)
    except OSError as error:  # urllib.error.URLError and socket timeouts are OSErrors
        raise ArchiveError(f"could not download {url}: {error}; {_LOCAL_SOURCE_HINT}") from error
    digest = hashlib.sha256()
    received = 0
    with response:
        expected_size = int(response.headers.get("Content-Length") or 0) or None
        with (
            partial.open("wb") as out,
            tqdm(total=expected_size, desc="downloading the dataset", unit="B", unit_scale=True,
                 unit_divisor=1024) as progress,
        ):
            for chunk in _chunks_of_response(response, url):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                progress.update(len(chunk))
    if expected_size is not None and received != expected_size:
        raise ArchiveError(
            f"download of {url} stopped after {received} of {expected_size} bytes; "
            f"run the fetch stage again, or {_LOCAL_SOURCE_HINT}"
        )
    if sha256 is not None and digest.hexdigest() != sha256.lower():
        raise ArchiveError(
            f"sha256 of the file downloaded from {url} is {digest.hexdigest()}, expected "
            f"{sha256}; the downloaded file was deleted. Check the URL, or {_LOCAL_SOURCE_HINT}"
        )


def _chunks_of_response(response, url: str) -> Iterator[bytes]:
    """Yield the body of an HTTP (or file://) response chunk by chunk."""
    while True:
        try:
            chunk = response.read(_CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as error:
            raise ArchiveError(
                f"download of {url} was interrupted: {error!r}; run the fetch stage again, "
                f"or {_LOCAL_SOURCE_HINT}"
            ) from error
        if not chunk:
            return
        yield chunk

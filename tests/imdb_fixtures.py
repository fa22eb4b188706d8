"""Tiny stand-ins for the IMDB dataset, as a ``.tar.gz`` or as an extracted folder.

They have the official layout (``aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt``) plus files
the reader must ignore (``train/unsup/``, ``imdb.vocab``, ``README``, ``urls_pos.txt``), and the
awkward reviews the real data has: ``<br /><br />`` line breaks, non-ASCII text, an empty review
and a review of markup only. Positive reviews use positive words and negative reviews negative
ones, so a classifier trained on them can learn something.

Keyword options build broken variants for error tests. Plain functions, no pytest, so that a
conftest can wrap them in fixtures.
"""

import io
import random
import tarfile
from pathlib import Path

_POSITIVE_WORDS = ["wonderful", "brilliant", "moving", "superb", "delightful", "charming"]
_NEGATIVE_WORDS = ["dreadful", "boring", "awful", "clumsy", "tedious", "lifeless"]

# Files every dataset has besides the labelled reviews; reading them must skip these.
_IGNORED_FILES = {
    "README": b"Large Movie Review Dataset v1.0 (tiny test copy)\n",
    "imdb.vocab": b"the\nand\na\nof\n",
    "train/unsup/0_0.txt": b"An unlabelled review that must not be read.",
    "train/urls_pos.txt": b"http://www.imdb.com/title/tt0000001/usercomments\n",
}
N_UNLABELLED = 40  # train/unsup/<i>_0.txt, i = 0..39: the biLM's pretraining corpus


def tiny_dataset_files(
    n_per_class: int = 6,
    *,
    drop_split: str | None = None,
    drop_class: tuple[str, str] | None = None,
    extra_files: dict[str, bytes] | None = None,
) -> dict[str, bytes]:
    """Contents of a tiny dataset: {path inside ``aclImdb/``: bytes}.

    Review ``i`` of every split and class is distinct and deterministic. Index 0 holds the
    awkward cases: train/pos non-ASCII UTF-8, train/neg empty, test/pos markup only, test/neg
    an HTML entity.

    Options for broken variants:
    - ``drop_split="test"``: no labelled reviews in that split (unsup etc. remain);
      ``drop_split="unsup"``: no unlabelled reviews;
    - ``drop_class=("train", "neg")``: no reviews of that class in that split;
    - ``extra_files={"train/pos/notes.txt": b"..."}``: added as given (bad names, non-UTF-8).
    """
    files = dict(_IGNORED_FILES)
    if drop_split != "unsup":
        files.update({f"train/unsup/{i}_0.txt": _unlabelled_text(i).encode() for i in range(1, N_UNLABELLED)})
    else:
        del files["train/unsup/0_0.txt"]
    for split in ("train", "test"):
        for label_folder in ("pos", "neg"):
            if split == drop_split or (split, label_folder) == drop_class:
                continue
            for i in range(n_per_class):
                rating = 7 + i % 4 if label_folder == "pos" else 1 + i % 4
                name = f"{split}/{label_folder}/{i}_{rating}.txt"
                files[name] = _review_text(split, label_folder, i).encode("utf-8")
    files.update(extra_files or {})
    return files


def make_tiny_archive(
    path: Path, n_per_class: int = 6, *, member_order_seed: int = 0, **options
) -> Path:
    """Write a tiny dataset as a ``.tar.gz`` at ``path`` and return ``path``.

    Members come in a shuffled order (fixed by ``member_order_seed``) with directory entries,
    as in real archives, whose member order a reader must not rely on. ``options`` are those
    of :func:`tiny_dataset_files`.
    """
    content_of_member = {
        f"aclImdb/{name}": content
        for name, content in tiny_dataset_files(n_per_class, **options).items()
    }
    for name in list(content_of_member):
        parts = name.split("/")
        for depth in range(1, len(parts)):
            content_of_member["/".join(parts[:depth])] = None  # a directory entry
    members = sorted(content_of_member)
    random.Random(member_order_seed).shuffle(members)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:gz") as archive:
        for name in members:
            member = tarfile.TarInfo(name)
            content = content_of_member[name]
            if content is None:
                member.type = tarfile.DIRTYPE
                archive.addfile(member)
            else:
                member.size = len(content)
                archive.addfile(member, io.BytesIO(content))
    return path


def make_tiny_folder(path: Path, n_per_class: int = 6, **options) -> Path:
    """Write a tiny dataset extracted under ``path/aclImdb/`` and return that ``aclImdb`` folder.

    ``options`` are those of :func:`tiny_dataset_files`.
    """
    root = path / "aclImdb"
    for name, content in tiny_dataset_files(n_per_class, **options).items():
        file_path = root / name
        file_path.parent.mkdir(parents=True, exist_ok=True)
        file_path.write_bytes(content)
    return root


def _review_text(split: str, label_folder: str, i: int) -> str:
    """Text of review ``i``: distinct per split, class and index, with words of its class."""
    if i == 0:
        special = {
            ("train", "pos"): "Amélie was très bien: charming, delightful, un film magnifique!",
            ("train", "neg"): "",
            ("test", "pos"): "<br /><br />",
            ("test", "neg"): "Tom &amp; Jerry would have been less tedious &ndash; awful.",
        }
        return special[(split, label_folder)]
    words = _POSITIVE_WORDS if label_folder == "pos" else _NEGATIVE_WORDS
    first, second = words[i % len(words)], words[(i + 1) % len(words)]
    verdict = "I loved it" if label_folder == "pos" else "I hated it"
    return (
        f"{split.capitalize()} review {i}: a {first} film with {second} acting."
        f"<br /><br />{verdict}, {i + 1} times over."
    )


def _unlabelled_text(i: int) -> str:
    """An unlabelled review: words of both classes, in a varying, deterministic order."""
    rng = random.Random(i)
    words = rng.sample(_POSITIVE_WORDS + _NEGATIVE_WORDS, 5)
    return f"Review {i}: the film was {words[0]} and {words[1]}, the acting {words[2]}.<br />A {words[3]}, {words[4]} story."

"""elmo-imdb predict: classify reviews with a run the pipeline trained.

    elmo-imdb predict bilstm-elmo_imdb-1 "A wonderful film." "A waste of two hours."
    elmo-imdb predict bilstm-base-1 < reviews.txt          # one review a line
    elmo-imdb predict cnn-elmo_imdb-1 --input reviews.jsonl --json

Each review's line is its probability of being positive and its label (``0.9731  positive``),
or a JSON object with ``--json``. The command is a thin layer over
:func:`elmo_imdb.load_classifier` (:mod:`elmo_imdb.classify`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console
from elmo_imdb.errors import PipelineError

PROGRESS_FROM = 300  # reviews: a progress bar on inputs longer than this


class InputError(PipelineError):
    """The reviews to classify cannot be read."""


def read_reviews(texts: list[str], input_path: Path | None) -> list[str]:
    """The reviews to score: ``texts`` if any, else the lines of ``input_path`` (``-`` or None: stdin),
    or the ``text`` field of each line of a ``.jsonl`` file. Every line of a text input is a review,
    a blank one too (scored as an empty review), so output line i answers input line i."""
    if texts:
        return texts
    if input_path is None or str(input_path) == "-":
        name, data = "stdin", sys.stdin.buffer.read()
    else:
        if not input_path.is_file():
            raise InputError(f"--input {input_path} does not exist")
        name, data = str(input_path), input_path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise InputError(f"{name} is not UTF-8 text (line {line}, byte {e.start}); convert it, e.g. with iconv -t utf-8") from None
    lines = text.splitlines()
    if input_path is not None and input_path.suffix == ".jsonl":
        return [_jsonl_text(line, number, name) for number, line in enumerate(lines, 1) if line.strip()]
    return lines


def _jsonl_text(line: str, number: int, name: str) -> str:
    try:
        value = json.loads(line)
    except ValueError as e:
        raise InputError(f"{name} line {number} is not JSON ({e})") from None
    if not isinstance(value, dict) or not isinstance(value.get("text"), str):
        raise InputError(f"{name} line {number} has no \"text\" string field")
    return value["text"]


def predict(args: argparse.Namespace) -> None:
    from tqdm import tqdm

    from elmo_imdb.classify import load_classifier

    reviews = read_reviews(args.text, args.input)
    if not reviews:
        raise InputError("no review to classify: give texts as arguments, on stdin (one a line) or with --input")
    classifier = load_classifier(args.run, args.root, args.elmo)
    with tqdm(total=len(reviews), unit="review", disable=len(reviews) <= PROGRESS_FROM, file=sys.stderr) as bar:
        scores = classifier.predict(reviews, progress=bar.update)
    for text, p in zip(reviews, scores):
        label = "positive" if p >= 0.5 else "negative"
        if args.json:
            print(json.dumps({"text": text, "p_positive": round(float(p), 6), "label": label}, ensure_ascii=False))
        else:
            print(f"{p:.4f}\t{label}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="elmo-imdb", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("predict", help="classify reviews with a trained run", description=__doc__,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("run", help="a trained run (bilstm-elmo_imdb-1: models/<run>.keras) or the path of its .keras file")
    p.add_argument("text", nargs="*", help="reviews to classify (default: --input, else stdin, one review a line)")
    p.add_argument("--input", type=Path, help="a file of reviews: one a line, or .jsonl with a \"text\" field")
    p.add_argument("--json", action="store_true", help="print one JSON object a review")
    p.add_argument("--elmo", help="the ELMo source to use instead of the recorded one (a local copy of google/elmo/3, say)")
    p.add_argument("--root", type=Path, default=Path("."), help="the project folder holding models/ and data/ (default: %(default)s)")
    args = parser.parse_args(argv)
    cli.guarded(predict, args)


if __name__ == "__main__":
    main()

"""Stage prepare: read the labelled reviews, tokenise them for ELMo, keep the last `maxlen`
tokens, hold out a stratified validation split from train, shuffle, and write
OUT/{train,val,test}.h5 (layout: elmo_imdb/prepared.py).
"""

from pathlib import Path

from elmo_imdb import cli
from elmo_imdb.imdb import read_reviews
from elmo_imdb.prepared import prepare_splits


def main(args, params):
    p = params.prepare
    reviews, report = read_reviews(args.archive)
    print(f"read {len(reviews)} reviews; {len(report.empty)} empty, {len(report.undecodable)} not valid UTF-8 (read as Windows-1252)")
    for name, split in prepare_splits(reviews, p.maxlen, p.val_size, p.seed).items():
        split.save(args.out / f"{name}.h5")
        truncated = (split.lengths == p.maxlen).mean()
        print(f"{name}: {len(split)} reviews, {split.labels.mean():.1%} positive, {truncated:.1%} filled to maxlen={p.maxlen}")


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("archive", type=Path, help="aclImdb_v1.tar.gz or an extracted aclImdb/ folder")
    parser.add_argument("out", type=Path, help="folder for the prepared splits")
    cli.run(main, parser.parse_args())

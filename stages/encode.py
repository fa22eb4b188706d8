"""Stage encode: build the Embedding vocabulary from the training split and write the
left-padded token ids of every split (layout: elmo_imdb/vocabulary.py).

A stage of its own so that changing `encode.max_features` never invalidates the ELMo
features, which depend on the prepared tokens only.
"""

from pathlib import Path

from elmo_imdb import cli
from elmo_imdb.prepared import SPLITS, PreparedSplit
from elmo_imdb.vocabulary import OOV_ID, Vocabulary, save_ids


def main(args, params):
    splits = {name: PreparedSplit.load(args.prepared / f"{name}.h5") for name in SPLITS}
    vocab = Vocabulary.build(splits["train"], params.encode.max_features)
    vocab.save(args.out / "vocab.txt")
    for name, split in splits.items():
        ids = vocab.encode(split)
        save_ids(args.out / f"{name}.h5", ids, split)
        oov = (ids == OOV_ID).sum() / max(split.lengths.sum(), 1)
        print(f"{name}: {oov:.2%} of tokens out of the {vocab.size}-id vocabulary")


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("prepared", type=Path, help="folder of the prepared splits")
    parser.add_argument("out", type=Path, help="folder for vocab.txt and the encoded splits")
    cli.run(main, parser.parse_args())

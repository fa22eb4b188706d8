"""Stage embed: run an ELMo model once over every prepared split and store the vectors in
OUT/{train,val,test}.h5 (layout: elmo_imdb/features.py).

MODEL is a folder holding a published-format options.json + weights.hdf5 (the biLM of the
pretrain stage, or AllenNLP's downloads), or else a TF-Hub handle or module folder
(google/elmo/3). This is the expensive stage (see README: an hour or more on a CPU for the
full-size model, minutes on a GPU); TensorFlow uses a GPU when it sees one. `embed.batch_size`
changes speed and memory only. Interrupt it at any moment: the next run continues from the
last stored block.
"""

from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console
from elmo_imdb.embedders import embed_blocks, load_embedder, vector_shape
from elmo_imdb.features import FeatureIdentity, ResumableFeatures
from elmo_imdb.prepared import SPLITS, PreparedSplit


def main(args, params):
    p = params.embed
    splits = {name: PreparedSplit.load(args.prepared / f"{name}.h5") for name in SPLITS}
    cli.print_device("ELMo")
    embedder = load_embedder(args.model, p.output)
    shape = vector_shape(embedder)
    scratch = args.scratch or Path("data/elmo.partial") / args.out.name
    for name, split in splits.items():
        identity = FeatureIdentity(
            elmo=embedder.identity,
            output=p.output,
            dtype=p.dtype,
            maxlen=split.maxlen,
            vector_shape=list(shape),
            prepared_fingerprint=split.fingerprint,
        )
        print(f"{name}: {len(split)} reviews -> {args.out / f'{name}.h5'}")
        with ResumableFeatures(args.out / f"{name}.h5", scratch, len(split), identity) as features:
            first_row = features.resume()
            for start, vectors in embed_blocks(embedder, split, p.batch_size, shape, first_row):
                features.write(start, vectors)
            features.finish()


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("model", help="folder with options.json + weights.hdf5, or a TF-Hub handle or module folder")
    parser.add_argument("prepared", type=Path, help="folder of the prepared splits")
    parser.add_argument("out", type=Path, help="folder for the features files")
    parser.add_argument(
        "--scratch",
        type=Path,
        help="where unfinished files wait to be resumed; not a DVC output, so it survives a re-run "
        "(default: data/elmo.partial/<name of OUT>)",
    )
    cli.run(main, parser.parse_args())

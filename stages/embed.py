"""Stage embed: run an ELMo model once over every prepared split and store the vectors in
OUT/{train,val,test}.h5 (layout: elmo_imdb/features.py).

MODEL is a folder holding a published-format options.json + weights.hdf5 (the biLM of the
pretrain stage, or AllenNLP's downloads), or else a TF-Hub handle or module folder
(google/elmo/3). This is the expensive stage (its time on a 2-core CPU: the README's cost
table); TensorFlow uses a GPU when it sees one. `embed.batch_size`
sets speed and memory, and also the stored bytes (a batch is padded to its longest review, and
one float16 ulp in about ten million values differs between batch sizes): it is a dependency
of the stage and part of a partial file's resume identity. `embed.workers` and `embed.cluster`
change speed only: with more than one worker, or a cluster, ELMo runs on Ray workers and this
process writes what they compute (elmo_imdb/cluster.py, docs/scaling.md). Interrupt it at any moment: the next run continues
from the last stored block. What this run embedded and how long it took (reviews, tokens,
seconds of the embedding loop per split, start-up not counted; a resumed run counts only its
own part and says so) goes to --metrics, for the README's cost table.
"""

import time
from datetime import datetime, timezone
from functools import partial
from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console
from elmo_imdb.atomic import write_json
from elmo_imdb.embedders import embed_blocks, load_embedder, vector_shape
from elmo_imdb.features import FeatureIdentity, ResumableFeatures
from elmo_imdb.locking import one_writer
from elmo_imdb.prepared import SPLITS, PreparedSplit


def main(args, params):
    p = params.embed
    splits = {name: PreparedSplit.load(args.prepared / f"{name}.h5") for name in SPLITS}
    if p.workers == 1 and p.cluster is None:
        cli.print_device("ELMo")
        embedder = load_embedder(args.model, p.output)
        done = store(args, p, splits, embedder, partial(embed_blocks, embedder))
    else:
        from elmo_imdb.cluster import RayEmbedder  # Ray only when asked for: `workers: 1` runs without it

        with RayEmbedder(args.model, p) as embedder:
            done = store(args, p, splits, embedder, embedder.blocks)
    reviews, tokens, seconds = (sum(split[key] for split in done.values()) for key in ("reviews", "tokens", "elapsed_s"))
    if args.metrics:
        write_json(args.metrics, {"date": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "device": cli.device() if p.workers == 1 and p.cluster is None else f"{p.workers} Ray workers",
                                  "model": args.model, "workers": p.workers, "batch_size": p.batch_size,
                                  "resumed": any(split["resumed_at_row"] for split in done.values()),
                                  "reviews": reviews, "tokens": tokens, "elapsed_s": round(seconds, 1), "splits": done})


def store(args, p, splits, embedder, blocks):
    """Every split's features, block by block from where a previous run stopped, as ``blocks``
    (:func:`embed_blocks` with ``embedder``, or the Ray workers') computes them. The scratch
    folder is locked for the whole run: a second run on it is refused before it opens a file.
    Returns ``{split: {"reviews", "tokens", "elapsed_s"}}`` of what this run embedded."""
    shape = vector_shape(embedder)
    scratch = args.scratch or Path("data/elmo.partial") / args.out.name
    with one_writer(scratch):
        return {name: store_split(args, p, name, split, shape, scratch, embedder, blocks) for name, split in splits.items()}


def store_split(args, p, name, split, shape, scratch, embedder, blocks):
    identity = FeatureIdentity(
        elmo=embedder.identity,
        output=p.output,
        dtype=p.dtype,
        maxlen=split.maxlen,
        vector_shape=list(shape),
        prepared_fingerprint=split.fingerprint,
        batch_size=p.batch_size,
    )
    print(f"{name}: {len(split)} reviews -> {args.out / f'{name}.h5'}")
    with ResumableFeatures(args.out / f"{name}.h5", scratch, len(split), identity, split.names) as features:
        first_row = features.resume()
        started = time.perf_counter()
        for start, vectors in blocks(split, p.batch_size, shape, first_row):
            features.write(start, vectors)
        features.finish()
    return {"resumed_at_row": first_row, "reviews": len(split) - first_row, "tokens": int(split.lengths[first_row:].sum()),
            "elapsed_s": round(time.perf_counter() - started, 1)}


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
    parser.add_argument("--metrics", type=Path, help="also write what this run embedded and its seconds to this JSON file")
    cli.run(main, parser.parse_args())

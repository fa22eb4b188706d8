"""Stage pretrain: train the biLM on IMDB's unlabelled reviews and the training split, and write
OUT/{options.json,weights.hdf5,vocab.txt}, the published ELMo format (elmo_imdb/pretraining.py).

Reviews are cut into windows of prepare.maxlen tokens, the way the embed stage will run the
biLM. Held-out perplexity, tokens seen, tokens/s and time go to METRICS/metrics.json, the
learning curve (perplexity against tokens) to METRICS/curve.tsv. TensorFlow uses a GPU when it sees one.
Interrupt it at any moment: the next run continues from the last checkpoint in --scratch.
"""

from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console

import tensorflow as tf  # noqa: I001
from elmo_imdb.bilm import BiLMConfig, load_options
from elmo_imdb.lm_corpus import read_corpus
from elmo_imdb.locking import one_writer
from elmo_imdb.pretraining import Pretraining, PretrainingError, initial_weights, share_cores_between_directions


def main(args, params):
    p = params.pretrain
    share_cores_between_directions()
    tf.config.experimental.enable_op_determinism()  # a resumed run then equals an uninterrupted one, bit for bit
    cli.print_device("pretraining")
    try:
        options = load_options(p.options)
    except OSError as e:
        raise PretrainingError(f"pretrain.options: cannot read {p.options!r} ({e.strerror})") from None
    if p.init is not None:  # a wrong path or shape fails now, not after the corpus is read
        initial_weights(Path(p.init), BiLMConfig.from_options(options))
    with one_writer(args.scratch):  # a second run on the same checkpoints is refused at once, in one line
        corpus = read_corpus(args.archive, args.prepared / "train.h5", params.prepare.maxlen, p.vocab_size, p.heldout_reviews, p.seed)
        print(
            f"corpus: {len(corpus.train):,} training windows ({corpus.train.n_tokens:,} tokens), "
            f"{len(corpus.heldout):,} held-out windows ({corpus.heldout.n_tokens:,} tokens), "
            f"{len(corpus.types):,} token types, softmax over {len(corpus.vocab):,}; reviews left out for their text: "
            f"{corpus.dropped['as_validation_or_test']:,} equal to a validation or test review, "
            f"{corpus.dropped['as_heldout']:,} to a held-out one"
        )
        if p.tokens < p.batch_size * corpus.train.lengths.mean():
            raise PretrainingError(f"pretrain.tokens={p.tokens} is less than one batch of pretrain.batch_size={p.batch_size} windows")
        training = Pretraining(corpus, options, p.init, p.batch_size, p.n_samples, p.seed, args.scratch)
        print(training.resume(p.tokens))
        training.run(p.tokens, p.eval_every, args.metrics)
        training.export(args.out)
    print(f"wrote {args.out}/options.json, weights.hdf5, vocab.txt")


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("archive", type=Path, help="aclImdb_v1.tar.gz or an extracted aclImdb/ folder")
    parser.add_argument("prepared", type=Path, help="folder of the prepared splits (the train split's reviews join the corpus)")
    parser.add_argument("out", type=Path, help="folder for options.json, weights.hdf5 and vocab.txt")
    parser.add_argument("--metrics", type=Path, default=Path("reports/pretrain"), help="folder for metrics.json and curve.tsv (default: %(default)s)")
    parser.add_argument(
        "--scratch",
        type=Path,
        default=Path("data/bilm.partial"),
        help="checkpoints; not a DVC output, so they survive a re-run (default: %(default)s)",
    )
    cli.run(main, parser.parse_args())

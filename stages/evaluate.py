"""Stage evaluate: score a trained variant on the test split (never seen in training) and
write RESULTS/{metrics.json,roc.csv,predictions.csv} for `dvc metrics show` and `dvc plots`.
"""

from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console

import keras  # noqa: I001

from elmo_imdb import layers  # noqa: F401  (registers the custom layers the saved models use)
from elmo_imdb.evaluation import predict, write_reports
from elmo_imdb.params import VARIANTS
from elmo_imdb.prepared import PreparedSplit, require_file
from elmo_imdb.sequence import open_sequence


def main(args, params):
    cli.print_device("evaluation")
    model = keras.models.load_model(require_file(args.model, f"train@{args.model.stem}"))
    elmo = None if args.variant == "base" else args.elmo or Path("data") / args.variant
    test = open_sequence("test", args.prepared, args.base, elmo, params.train.batch_size)
    names = PreparedSplit.load(args.prepared / "test.h5").names
    print(write_reports(args.results, test.labels, predict(model, test), names))


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--model", type=Path, required=True, help="trained .keras model")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="default: %(default)s")
    parser.add_argument("--base", type=Path, default=Path("data/base"), help="vocabulary and ids (default: %(default)s)")
    parser.add_argument("--elmo", type=Path, help="cached ELMo features of an ELMo variant (default: data/VARIANT)")
    parser.add_argument("--results", type=Path, required=True, help="folder for the metrics and plot data")
    cli.run(main, parser.parse_args())

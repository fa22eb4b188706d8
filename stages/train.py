"""Stage train: fit one classifier on one variant, early-stopping on the validation split.

CLASSIFIER is a builder of elmo_imdb/classifiers.py with its line `classifiers.CLASSIFIER` in
params.yaml. VARIANT `base` reads token ids only; `elmo_published` and `elmo_imdb` also read that
ELMo source's cached vectors (data/VARIANT) through the HDF5-backed Sequence. Writes the model,
its run record beside it (MODEL with .json: what it was trained with, for `elmo-imdb predict`)
and RESULTS/{history.csv,train.json}.
"""

from pathlib import Path

from elmo_imdb import cli  # first: it keeps TensorFlow's start-up lines off the console

import keras  # noqa: I001
import numpy as np
from elmo_imdb.atomic import atomic_output, write_json
from elmo_imdb.classify import write_run_record
from elmo_imdb.classifiers import CLASSIFIERS, build_classifier, hyperparameters
from elmo_imdb.params import VARIANTS
from elmo_imdb.sequence import open_sequence
from elmo_imdb.training import fit
from elmo_imdb.vocabulary import Vocabulary


def main(args, params):
    hyper = hyperparameters(args.classifier, params.classifiers)  # a bad line fails before any work
    cli.print_device("training")
    p = params.train
    keras.utils.set_random_seed(args.seed)
    elmo = None if args.variant == "base" else args.elmo or Path("data") / args.variant
    train = open_sequence("train", args.prepared, args.base, elmo, p.batch_size, shuffle=True, seed=args.seed)
    val = open_sequence("val", args.prepared, args.base, elmo, p.batch_size)
    vocab_size = Vocabulary.load(args.base / "vocab.txt").size
    elmo_shape = train.features.shape[2:] if train.features is not None else None
    model = build_classifier(args.classifier, hyper, p, train.ids.shape[1], vocab_size, elmo_shape)
    model.summary()

    history = fit(model, train, val, p, args.results / "history.csv").history
    with atomic_output(args.model) as tmp:
        model.save(tmp)
    features = elmo / "train.h5" if elmo is not None else None
    write_run_record(args.model.with_suffix(".json"), args.model.stem, args.classifier, args.variant, args.seed,
                     train.ids.shape[1], args.base / "vocab.txt", features, params)
    best = int(np.argmin(history["val_loss"]))
    summary = {
        "epochs": len(history["val_loss"]),
        "best_epoch": best + 1,
        "val_loss": round(history["val_loss"][best], 5),
        "val_accuracy": round(history["val_accuracy"][best], 5),
        "mean_epoch_time_s": round(float(np.mean(history["epoch_time_s"])), 2),
    }
    write_json(args.results / "train.json", summary)
    print(summary)


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("classifier", help=f"one of: {', '.join(CLASSIFIERS)}")
    parser.add_argument("variant", choices=VARIANTS)
    parser.add_argument("--seed", type=int, default=42, help="seed of weights, dropout and batch order (default: %(default)s)")
    parser.add_argument("--prepared", type=Path, default=Path("data/prepared"), help="default: %(default)s")
    parser.add_argument("--base", type=Path, default=Path("data/base"), help="vocabulary and ids (default: %(default)s)")
    parser.add_argument("--elmo", type=Path, help="cached ELMo features of an ELMo variant (default: data/VARIANT)")
    parser.add_argument("--model", type=Path, required=True, help="where to save the trained .keras model")
    parser.add_argument("--results", type=Path, required=True, help="folder for history.csv and train.json")
    cli.run(main, parser.parse_args())

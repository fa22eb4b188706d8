"""`elmo-imdb predict`'s speed on real reviews: the start-up, one review's latency, a file's throughput.

For a base run and an ELMo run of the BiLSTM (params.yaml's sizes: Embedding(max_features,
embedding_dim), BiLSTM(lstm_units)), scores the first N test reviews of the archive through
:class:`~elmo_imdb.classify.Classifier`, the path `predict` takes (tokenise, tail cut, vocabulary,
ELMo on the fly, model). The models are untrained and the biLM has random weights of
``pretrain.options`` (the trained files are not in a fresh clone; the FLOPs, and so the speed,
are the same). Reported per run kind:

* ``startup_s``: building the embedder and the first call on one review (TensorFlow's tracing),
  the price `predict` pays once per command;
* ``latency_ms``: one review at a time after that, every call, its mean and spread;
* ``reviews_per_s``: all N reviews in one call (what `--input` of a file does), every round.

Example (2-core machine, nothing else running):
    python benchmarks/predict_throughput.py ../shared/data/aclImdb_v1.tar.gz --reviews 2000 --rounds 3 --out docs/benchmarks/predict_throughput.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
from results import publish

from elmo_imdb.bilm import SHIPPED_OPTIONS, load_options, write_random_weights
from elmo_imdb.classifiers import build_classifier, hyperparameters
from elmo_imdb.classify import Classifier
from elmo_imdb.embedders import BilmElmo, vector_shape
from elmo_imdb.imdb import read_reviews
from elmo_imdb.params import load_params
from elmo_imdb.prepared import PreparedSplit
from elmo_imdb.tokenize import tokenize
from elmo_imdb.vocabulary import Vocabulary


def spread(values: list[float]) -> dict:
    return {"mean": round(statistics.mean(values), 3), "sd": round(statistics.stdev(values), 3) if len(values) > 1 else 0.0,
            "min": round(min(values), 3), "max": round(max(values), 3)}


def measure(make_classifier, texts: list[str], rounds: int, single_calls: int) -> dict:
    start = time.perf_counter()
    classifier = make_classifier()
    classifier.predict(texts[:1])
    startup = time.perf_counter() - start
    latencies = []
    for text in texts[1 : 1 + single_calls]:
        start = time.perf_counter()
        classifier.predict([text])
        latencies.append(1000 * (time.perf_counter() - start))
    rates = []
    for _ in range(rounds):
        start = time.perf_counter()
        classifier.predict(texts)
        rates.append(len(texts) / (time.perf_counter() - start))
    return {"startup_s": round(startup, 2), "latency_ms": {"every_call": [round(x, 1) for x in latencies], **spread(latencies)},
            "reviews_per_s": {"every_round": [round(x, 1) for x in rates], **spread(rates)}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("archive", type=Path, help="aclImdb_v1.tar.gz or an extracted aclImdb/ folder")
    parser.add_argument("--reviews", type=int, default=2000, help="test reviews per round (default: %(default)s)")
    parser.add_argument("--rounds", type=int, default=3, help="default: %(default)s")
    parser.add_argument("--single-calls", type=int, default=20, help="one-review calls timed for the latency (default: %(default)s)")
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--out", type=Path, help="also write the results to this JSON file")
    args = parser.parse_args()

    params = load_params(args.params)
    reviews, _ = read_reviews(args.archive)
    texts = [r.text for r in reviews if r.split == "test"][: args.reviews]
    maxlen = params.prepare.maxlen
    train_tokens = [tokenize(r.text)[-maxlen:] for r in reviews if r.split == "train"]
    vocabulary = Vocabulary.build(PreparedSplit(train_tokens, np.zeros(len(train_tokens), np.int8), [""] * len(train_tokens), maxlen),
                                  params.encode.max_features)
    hyper = hyperparameters("bilstm", params.classifiers)
    options_path = SHIPPED_OPTIONS.get(params.pretrain.options, params.pretrain.options)
    with tempfile.TemporaryDirectory() as tmp:
        weights = write_random_weights(load_options(params.pretrain.options), Path(tmp) / "weights.hdf5")

        def base():
            return Classifier(build_classifier("bilstm", hyper, params.train, maxlen, vocabulary.size, None), vocabulary, maxlen)

        def elmo():
            embedder = BilmElmo(str(options_path), str(weights), params.embed.output)
            model = build_classifier("bilstm", hyper, params.train, maxlen, vocabulary.size, vector_shape(embedder))
            return Classifier(model, vocabulary, maxlen, embedder, params.embed.dtype, params.embed.batch_size)

        results = {
            "reviews": len(texts),
            "biLM": f"random weights of pretrain.options {params.pretrain.options}",
            "bilstm-base": measure(base, texts, args.rounds, args.single_calls),
            "bilstm-elmo_imdb": measure(elmo, texts, args.rounds, args.single_calls),
        }
    publish(results, args.out)


if __name__ == "__main__":
    main()

"""Stage summarize: every run (classifier x variant x seed) in RESULTS, and per
classifier and variant the mean and spread of test accuracy over the seeds and the gain over
base: OUT/summary.json, the table OUT/results.md and the figure OUT/summary.png
(elmo_imdb/report.py).
"""

from pathlib import Path

from elmo_imdb import cli
from elmo_imdb.report import run_names, write_summary


def main(args, params):
    names = run_names(params.classifiers, params.variants, params.seeds)  # not the folders of runs dropped since
    for name, group in write_summary(args.results, args.out, names).items():
        accuracy, gain = group["test_accuracy"], group.get("gain_over_base_points")
        print(f"{name}: test accuracy {accuracy['mean']:.4f} (sd {accuracy['sd']}, seeds {group['seeds']})"
              + ("" if gain is None else f", {gain['mean']:+.2f} points over base"))


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("results", type=Path, help="folder of the runs' results (RUN/train.json, RUN/test/metrics.json)")
    parser.add_argument("out", type=Path, help="folder for summary.json, results.md and summary.png")
    cli.run(main, parser.parse_args())

"""Stage summarize: test accuracy and mean epoch time of every run (classifier x features
variant) in RESULTS, as OUT/summary.json and the figure OUT/summary.png (elmo_imdb/report.py).
"""

from pathlib import Path

from elmo_imdb import cli
from elmo_imdb.report import write_summary


def main(args, params):
    for run, numbers in write_summary(args.results, args.out).items():
        print(f"{run}: test accuracy {numbers['test_accuracy']:.4f}, {numbers['mean_epoch_time_s']} s/epoch")


if __name__ == "__main__":
    parser = cli.parser(__doc__)
    parser.add_argument("results", type=Path, help="folder of the runs' results (RUN/train.json, RUN/test/metrics.json)")
    parser.add_argument("out", type=Path, help="folder for summary.json and summary.png")
    cli.run(main, parser.parse_args())

#!/usr/bin/env bash
# Show what docs/classifiers.md, "Comparing and experimenting", says: the pipeline on the tiny
# test data in a fresh git repository, then an experiment, metrics and plots diffs, and a queue
# of two, each re-running only the runs its parameter reaches. Run from the repository root
# after `make test` (it needs .venv); it works in a temporary folder and prints where the
# output is.
set -euo pipefail
REPO=$(pwd)
export PATH=$REPO/.venv/bin:$PATH TF_CPP_MIN_LOG_LEVEL=3
WORK=$(mktemp -d)
mkdir "$WORK/repo" && cd "$WORK/repo"
cp -r "$REPO"/{dvc.yaml,params.yaml,.dvcignore,.gitignore,stages,elmo_imdb} .
find . -name __pycache__ -prune -exec rm -rf {} +
python - "$REPO/tests" "$WORK" <<'PY'
import sys
from pathlib import Path

import yaml

sys.path.insert(0, sys.argv[1])
from imdb_fixtures import make_tiny_archive  # noqa: E402

from elmo_imdb.bilm import build_tiny_hub_module  # noqa: E402

work = Path(sys.argv[2])
params = yaml.safe_load(open("params.yaml"))
params["fetch"]["local"] = str(make_tiny_archive(work / "aclImdb_v1.tar.gz", n_per_class=10))
params["prepare"].update(maxlen=16, val_size=8)
params["embed"].update(published=str(build_tiny_hub_module(work / "tiny_elmo", seed=0)), batch_size=7)
params["pretrain"].update(options="imdb_tiny", vocab_size=20, n_samples=8, heldout_reviews=5, tokens=1500, eval_every=500, batch_size=8)
params["train"].update(embedding_dim=8, batch_size=8, epochs=2)
params["seeds"] = [1]
params["classifiers"]["bilstm"]["lstm_units"] = 4
params["classifiers"]["cnn"].update(filters=4, hidden_units=4)
yaml.safe_dump(params, open("params.yaml", "w"), sort_keys=False)
PY
git init -q && git config user.email demo@example.com && git config user.name demo
dvc init -q && dvc repro -q > "$WORK/repro.log" 2>&1
git add -A > /dev/null && git commit -qm "tiny pipeline"

show() {  # the command, then its output without TensorFlow's log lines
    echo "\$ $*"
    "$@" 2>&1 | grep -v '^\s*$\|^[IEW]0000\|^WARNING\|^To enable\|oneDNN\|cuda' || true
    echo
}
{
    show dvc exp run -n bilstm64 -S classifiers.bilstm.lstm_units=64
    show dvc exp show --md --drop '.*' --keep 'Experiment|.*lstm_units|results/bilstm-(base|elmo_published|elmo_imdb)-[0-9]+/(train.json:mean_epoch_time_s|test/metrics.json:accuracy)'
    show dvc metrics diff --md
    show dvc plots diff -o "$WORK/plots_diff"
    git checkout -q -- params.yaml dvc.lock
    show dvc exp run --queue -n cnn32 -S classifiers.cnn.filters=32
    show dvc exp run --queue -n cnn64 -S classifiers.cnn.filters=64
    show dvc queue status
    show dvc exp run --run-all
    show dvc queue status
    show dvc exp show --md --drop '.*' --keep 'Experiment|.*cnn.filters|results/cnn-(base|elmo_published|elmo_imdb)-[0-9]+/(train.json:mean_epoch_time_s|test/metrics.json:accuracy)'
} > "$WORK/output.txt"
echo "output: $WORK/output.txt, plots: $WORK/plots_diff/index.html"

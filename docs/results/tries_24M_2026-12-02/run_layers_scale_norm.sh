#!/usr/bin/env bash
# Try: the CNN and the pooled model on all three biLM layers mixed by ScalarMix (embed.output: layers),
# the 24 M biLM of /work/run24, 3 seeds, with the pipeline's own stage scripts.
set -euo pipefail
cd /work/run24
PY=/work/run24/.venv/bin/python
T=/work/try_layers
date -u
$PY stages/embed.py data/bilm data/prepared $T/elmo_layers --scratch $T/elmo.partial --params $T/params_layers.yaml 2>&1 | tr '\r' '\n' | grep -v "^ELMo:.*review/s\]$" || true
date -u
for clf in cnn pooled; do
  for seed in 42 1 2; do
    run=$clf-elmo_imdb-$seed
    $PY stages/train.py $clf elmo_imdb --seed $seed --elmo $T/elmo_layers --model $T/models/$run.keras --results $T/results/$run --params $T/params_layers.yaml > $T/logs/$run.train.log 2>&1
    $PY stages/evaluate.py elmo_imdb --elmo $T/elmo_layers --model $T/models/$run.keras --results $T/results/$run/test --params $T/params_layers.yaml > $T/logs/$run.eval.log 2>&1
    echo "$(date -u +%T) $run $(grep -o '"accuracy": [0-9.]*' $T/results/$run/test/metrics.json)"
  done
done

#!/usr/bin/env bash
# Try: all three layers mixed by ScalarMix, then concatenated as they come (no ScaleNorm), bilstm and cnn, 3 seeds.
set -euo pipefail
cd /work/run24
PY=/work/run24/.venv/bin/python
T=/work/try_raw
L=/work/try_layers
export PYTHONPATH=$T
for clf in cnn bilstm; do
  for seed in 42 1 2; do
    run=$clf-elmo_imdb-$seed
    $PY stages/train.py $clf elmo_imdb --seed $seed --elmo $L/elmo_layers --model $T/layers/models/$run.keras --results $T/layers/results/$run --params $L/params_layers.yaml > $T/logs/layers-$run.train.log 2>&1
    $PY stages/evaluate.py elmo_imdb --elmo $L/elmo_layers --model $T/layers/models/$run.keras --results $T/layers/results/$run/test --params $L/params_layers.yaml > $T/logs/layers-$run.eval.log 2>&1
    echo "$(date -u +%T) layers raw $run $(grep -o '"accuracy": [0-9.]*' $T/layers/results/$run/test/metrics.json)"
  done
done

#!/usr/bin/env bash
# Try: the BiLSTM on raw ELMo (no ScaleNorm: the vectors concatenated as cached), the 24 M biLM of /work/run24, 3 seeds.
set -euo pipefail
cd /work/run24
PY=/work/run24/.venv/bin/python
T=/work/try_raw
export PYTHONPATH=$T
for seed in 42 1 2; do
  run=bilstm-elmo_imdb-$seed
  $PY stages/train.py bilstm elmo_imdb --seed $seed --model $T/models/$run.keras --results $T/results/$run > $T/logs/$run.train.log 2>&1
  $PY stages/evaluate.py elmo_imdb --model $T/models/$run.keras --results $T/results/$run/test > $T/logs/$run.eval.log 2>&1
  echo "$(date -u +%T) $run $(grep -o '"accuracy": [0-9.]*' $T/results/$run/test/metrics.json)"
done

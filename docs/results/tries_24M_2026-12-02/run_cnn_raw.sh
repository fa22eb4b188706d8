#!/usr/bin/env bash
# Try: the CNN on raw ELMo (embed.output: elmo as cached, no ScaleNorm), the 24 M biLM, 3 seeds.
set -euo pipefail
cd /work/run24
PY=/work/run24/.venv/bin/python
T=/work/try_raw
export PYTHONPATH=$T
for seed in 42 1 2; do
  run=cnn-elmo_imdb-$seed
  $PY stages/train.py cnn elmo_imdb --seed $seed --model $T/models/$run.keras --results $T/results/$run > $T/logs/$run.train.log 2>&1
  $PY stages/evaluate.py elmo_imdb --model $T/models/$run.keras --results $T/results/$run/test > $T/logs/$run.eval.log 2>&1
  echo "$(date -u +%T) $run $(grep -o '"accuracy": [0-9.]*' $T/results/$run/test/metrics.json)"
done

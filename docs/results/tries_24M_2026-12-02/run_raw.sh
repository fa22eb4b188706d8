#!/usr/bin/env bash
# Try: CLASSIFIER (bilstm, then cnn) on raw ELMo (embed.output: elmo as cached, no ScaleNorm: raw_elmo.patch
# applied to a copy of elmo_imdb/ in /work/try_raw), the 24 M biLM of /work/run24, 3 seeds.
# Ran as `run_raw.sh bilstm`, then `run_raw.sh cnn` (each as its own script with the classifier written in).
set -euo pipefail
clf=$1
cd /work/run24
PY=/work/run24/.venv/bin/python
T=/work/try_raw
export PYTHONPATH=$T
for seed in 42 1 2; do
  run=$clf-elmo_imdb-$seed
  $PY stages/train.py $clf elmo_imdb --seed $seed --model $T/models/$run.keras --results $T/results/$run > $T/logs/$run.train.log 2>&1
  $PY stages/evaluate.py elmo_imdb --model $T/models/$run.keras --results $T/results/$run/test > $T/logs/$run.eval.log 2>&1
  echo "$(date -u +%T) $run $(grep -o '"accuracy": [0-9.]*' $T/results/$run/test/metrics.json)"
done

#!/usr/bin/env bash
# usage: run.sh NAME CLASSIFIER VARIANT ELMO_DIR PARAMS SEED...   (train + evaluate, the stages themselves)
set -euo pipefail
name=$1 classifier=$2 variant=$3 elmo=$4 params=$5; shift 5
cd /work/real; CODE=${CODE:-/work/real}
export PYTHONPATH=$CODE PATH=/work/main/.venv/bin:$PATH
for seed in "$@"; do
  out=/work/tries/$name/$classifier-$variant-$seed
  [ -f $out/test/metrics.json ] && continue
  mkdir -p $out
  extra=(); [ "$variant" != base ] && extra=(--elmo "$elmo")
  python $CODE/stages/train.py $classifier $variant --seed $seed "${extra[@]}" --params $params --model $out/model.keras --results $out > $out/train.log 2>&1
  python $CODE/stages/evaluate.py $variant "${extra[@]}" --params $params --model $out/model.keras --results $out/test > $out/evaluate.log 2>&1
  echo "$name $classifier-$variant-$seed: $(cat $out/test/metrics.json | tr -d '\n ')"
done

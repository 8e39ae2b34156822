#!/usr/bin/env bash
# The main job: sets up .venv and trains a small SL-ViT (SPT + LSA) on the
# digits that ship with scikit-learn, then plots its attention. Offline.
# Results: outputs/sl_vit_digits/ (metrics.json, *.png).
# Usage: bash scripts/main-job.sh [--epochs N]   (KERAS_BACKEND picks the
# backend, jax by default; KVISION_SMOKE=1 for a seconds-long run)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" TF_CPP_MIN_LOG_LEVEL=3
"${KVISION_VENV:-.venv}/bin/python" examples/sl_vit_digits.py \
  --out outputs/sl_vit_digits "$@"

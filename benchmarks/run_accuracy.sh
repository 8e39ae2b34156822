#!/usr/bin/env bash
# Runs the accuracy-under-budget benchmark once per Keras backend, each in its
# own process (the backend is fixed when keras is imported), then rebuilds the
# combined table and plot in benchmarks/results/.
# Usage: bash benchmarks/run_accuracy.sh [extra arguments for the script]
#   KVISION_BACKENDS="jax torch" limits the backends; KVISION_VENV picks the
#   virtual environment (default .venv, made by scripts/setup-venv.sh).
set -euo pipefail
cd "$(dirname "$0")/.."

python="${KVISION_VENV:-.venv}/bin/python"
export TF_CPP_MIN_LOG_LEVEL=3
keras_home=$(mktemp -d)
trap 'rm -rf "$keras_home"' EXIT

for backend in ${KVISION_BACKENDS:-tensorflow jax torch}; do
  echo "== accuracy under budget, KERAS_BACKEND=$backend"
  start=$SECONDS
  KERAS_BACKEND=$backend KERAS_HOME="$keras_home/$backend" \
    "$python" -m benchmarks.accuracy_under_budget "$@"
  echo "== $backend took $((SECONDS - start)) s"
done
"$python" -m benchmarks.accuracy_under_budget --report-only "$@"

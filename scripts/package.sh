#!/usr/bin/env bash
# The package check (scripts/test.sh runs it): builds the sdist and the
# wheel, checks their metadata with twine, then does what a Colab user does,
# away from the source tree: a clean virtual environment with what Colab
# already has (Keras, one backend - JAX, the smallest, to keep this short -
# scikit-learn, matplotlib, Jupyter's kernel) but no kvision, a faked
# `google.colab`, and notebook 01 run in smoke mode; its install cell
# installs kvision from the wheel alone.
# Usage: bash scripts/package.sh   (KVISION_KEEP=1 keeps the work folder)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
venv=$(cd "${KVISION_VENV:-.venv}" && pwd)
python="${PYTHON:-python3}"
work=$(mktemp -d)
if [ "${KVISION_KEEP:-0}" != 1 ]; then
  trap 'rm -rf "$work"' EXIT
fi
# The build back end and everything below install at the pinned versions.
export PIP_CONSTRAINT="$repo/.ci/constraints.txt"
export PIP_DISABLE_PIP_VERSION_CHECK=1

start=$SECONDS
echo "-- build sdist and wheel"
"$venv/bin/python" -m build --outdir "$work/dist" . >"$work/build.log" 2>&1 ||
  { cat "$work/build.log"; exit 1; }
ls "$work/dist"
"$venv/bin/python" -m twine check --strict "$work"/dist/*
echo "   $((SECONDS - start)) s"

echo "-- clean virtual environment, as on Colab but without kvision"
"$python" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet keras "jax[cpu]" \
  scikit-learn matplotlib ipykernel nbclient nbformat >"$work/pip.log" 2>&1 ||
  { cat "$work/pip.log"; exit 1; }
echo "   $((SECONDS - start)) s"

echo "-- notebook 01 on faked Colab (smoke mode), kvision from the wheel"
KERAS_BACKEND=jax KERAS_HOME="$work/keras_home" TF_CPP_MIN_LOG_LEVEL=3 \
  "$work/venv/bin/python" "$repo/scripts/colab_smoke.py" \
  "$repo/notebooks/01_vit_small_datasets.ipynb" "$work"/dist/*.whl \
  "$work/run"
"$work/venv/bin/python" -m pip check
echo "   $((SECONDS - start)) s in all"

#!/usr/bin/env bash
# Creates (or refreshes) the project's virtual environment in .venv with the
# three Keras backends, the dev tools and the notebook tools (jupytext,
# nbclient, and ipykernel, whose "python3" kernelspec lands in the venv so
# notebooks execute with the venv's Python), pinned by .ci/constraints.txt.
# Usage: bash scripts/setup-venv.sh   (then: source .venv/bin/activate)
set -euo pipefail
cd "$(dirname "$0")/.."

venv="${KVISION_VENV:-.venv}"
python="${PYTHON:-python3}"
extras="tensorflow-cpu,jax,torch,dev"

if [ ! -x "$venv/bin/python" ]; then
  "$python" -m venv "$venv"
fi
# Reinstall only when what we install from has changed.
stamp="$venv/.kvision-installed"
want=$(cat pyproject.toml .ci/constraints.txt | sha256sum | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  "$venv/bin/python" -m pip install --quiet --upgrade pip
  "$venv/bin/python" -m pip install --quiet \
    -c .ci/constraints.txt -e ".[$extras]"
  echo "$want" > "$stamp"
fi
"$venv/bin/python" -m pip check

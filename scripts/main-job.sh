#!/usr/bin/env bash
# The main job: sets up .venv, then executes notebook 01 (a plain ViT against
# SL-ViT, SPT + LSA, trained under the same budget over three seeds, and
# their attention) end to end, CPU-sized, on scikit-learn's digits: offline.
# Results in outputs/main-job/: 01_vit_small_datasets.ipynb (the executed
# notebook, figures inline), its figures as PNGs, the trained models
# (.keras) and metrics.json.
# Usage: bash scripts/main-job.sh   (KERAS_BACKEND picks the backend, jax by
# default; KVISION_DATASET=shapes the other offline dataset; KVISION_SMOKE=1
# a short run that only checks everything works)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup-venv.sh
venv=$(cd "${KVISION_VENV:-.venv}" && pwd)
out="$PWD/outputs/main-job"
mkdir -p "$out"
export KERAS_BACKEND="${KERAS_BACKEND:-jax}" TF_CPP_MIN_LOG_LEVEL=3
export KVISION_DATASET="${KVISION_DATASET:-digits}" KVISION_OUTPUT_DIR="$out"
# The kernel must be this environment's Python, not a user-wide kernelspec.
export JUPYTER_PREFER_ENV_PATH=1

"$venv/bin/python" - notebooks/01_vit_small_datasets.ipynb "$out" <<'PY'
import json
import pathlib
import sys
import time

import nbclient
import nbformat

source, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
notebook = nbformat.read(source, as_version=4)
start = time.perf_counter()


def progress(cell, cell_index, **_):
    title = next(iter(cell.source.splitlines()), "")
    print(
        f"[{time.perf_counter() - start:6.0f} s] cell {cell_index + 1}/"
        f"{len(notebook.cells)} done: {title[:50]}",
        flush=True,
    )


client = nbclient.NotebookClient(
    notebook,
    kernel_name="python3",
    timeout=None,
    resources={"metadata": {"path": str(out)}},
    on_cell_executed=progress,
)
try:
    client.execute()
finally:
    nbformat.write(notebook, out / source.name)
    print(f"executed notebook: {out / source.name}")
metrics = json.loads((out / "metrics.json").read_text())
for label, numbers in metrics["models"].items():
    print(
        f"{label}: test accuracy {numbers['test_accuracy_mean']:.3f} ± "
        f"{numbers['test_accuracy_std']:.3f} over {len(metrics['seeds'])} "
        f"seeds, attention divergence "
        f"{numbers['mean_attention_divergence']:.3f} nats"
    )
print(f"{metrics['dataset']}, {metrics['epochs']} epochs, backend "
      f"{metrics['backend']}: {time.perf_counter() - start:.0f} s in all")
PY

#!/usr/bin/env bash
# Builds the documentation site: executes the tutorial notebooks, then runs a
# strict, offline `mkdocs build` into site/.
# Usage:
#   bash scripts/docs.sh          build into site/ and print the build time
#                                 and page count
#   bash scripts/docs.sh serve    build (in memory, strict) and serve with
#                                 live reload on http://127.0.0.1:8000
#                                 (KVISION_DOCS_ADDR); Ctrl-C stops
# Environment:
#   KVISION_SMOKE=1          smoke-sized notebooks (seconds each; what CI uses)
#   KERAS_BACKEND            backend the notebooks run on (default: torch; the
#                            docs' Benchmarks page compares the backends)
#   KVISION_DATASET          dataset of the notebooks (default: digits, offline)
#   KVISION_DOCS_EXECUTE=0   do not execute notebooks; render the executed ones
#                            already in build/ (or, failing that, the committed
#                            notebooks, without outputs)
#   KVISION_DOCS_SETUP=0     use the venv as it is (no setup-venv.sh/pip step)
# Executed notebooks go to build/docs-notebooks/ and their figures to
# build/docs-outputs/: build products, never committed. A notebook is only
# re-executed when its source, kvision/ or these settings changed.
set -euo pipefail
cd "$(dirname "$0")/.."

mode="${1:-build}"
case "$mode" in
  build | serve) ;;
  *) echo "usage: bash scripts/docs.sh [build|serve]" >&2; exit 2 ;;
esac

venv="${KVISION_VENV:-.venv}"
if [ "${KVISION_DOCS_SETUP:-1}" = 1 ]; then
  bash scripts/setup-venv.sh
  # The docs pins live in .ci/constraints-docs.txt until they are merged
  # into .ci/constraints.txt.
  constraints=(-c .ci/constraints.txt)
  [ -f .ci/constraints-docs.txt ] && constraints+=(-c .ci/constraints-docs.txt)
  stamp="$venv/.kvision-docs-installed"
  want=$(cat pyproject.toml .ci/constraints*.txt | sha256sum | cut -d' ' -f1)
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    "$venv/bin/python" -m pip install --quiet "${constraints[@]}" -e ".[docs]"
    "$venv/bin/python" -m pip check
    echo "$want" > "$stamp"
  fi
fi
venv=$(cd "$venv" && pwd)
export PATH="$venv/bin:$PATH"

export KERAS_BACKEND="${KERAS_BACKEND:-torch}"
export KVISION_DATASET="${KVISION_DATASET:-digits}"
export KVISION_SMOKE="${KVISION_SMOKE:-0}"
export KVISION_DOCS_NOTEBOOKS="$PWD/build/docs-notebooks"
export TF_CPP_MIN_LOG_LEVEL=3 NO_MKDOCS_2_WARNING=1 PYDEVD_DISABLE_FILE_VALIDATION=1
export KERAS_HOME="${KERAS_HOME:-$PWD/build/keras-home}"
mkdir -p "$KVISION_DOCS_NOTEBOOKS" "$KERAS_HOME"

if [ "${KVISION_DOCS_EXECUTE:-1}" = 1 ]; then
  echo "== executing notebooks (KERAS_BACKEND=$KERAS_BACKEND," \
    "KVISION_DATASET=$KVISION_DATASET, KVISION_SMOKE=$KVISION_SMOKE)"
  python - <<'PY'
import hashlib
import os
import pathlib
import re
import sys
import time

import jupytext
import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

root = pathlib.Path.cwd()
target = pathlib.Path(os.environ["KVISION_DOCS_NOTEBOOKS"])
outputs = root / "build" / "docs-outputs"
settings = " ".join(
    f"{k}={os.environ.get(k, '')}"
    for k in ("KERAS_BACKEND", "KVISION_DATASET", "KVISION_SMOKE")
)
# Outputs depend on the library and on this script, too.
library = hashlib.sha256((root / "scripts" / "docs.sh").read_bytes())
for path in sorted((root / "kvision").rglob("*.py")):
    library.update(path.read_bytes())

# TensorFlow's C++ start-up lines (absl logging ignores
# TF_CPP_MIN_LOG_LEVEL): noise on a rendered page, removed from the outputs.
ABSL_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\)"
    r"|[IWE]\d{4} [\d:. ]+\d+ \w+\.cc:\d+\] )"
)


def drop_noise(notebook):
    for cell in notebook.cells:
        kept = []
        for output in cell.get("outputs", []):
            if output.get("name") == "stderr":
                lines = output["text"].splitlines(keepends=True)
                lines = [x for x in lines if not ABSL_NOISE.match(x)]
                output["text"] = "".join(lines)
                if not output["text"].strip():
                    continue
            kept.append(output)
        if "outputs" in cell:
            cell["outputs"] = kept


failed = []
sources = sorted((root / "notebooks").glob("[0-9][0-9]_*.py"))
for source in sources:
    executed = target / f"{source.stem}.ipynb"
    stamp = target / f"{source.stem}.stamp"
    key = hashlib.sha256(
        source.read_bytes() + library.digest() + settings.encode()
    ).hexdigest()
    if executed.is_file() and stamp.is_file() and stamp.read_text() == key:
        print(f"   {source.name}: up to date")
        continue
    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }
    out_dir = outputs / source.stem
    out_dir.mkdir(parents=True, exist_ok=True)
    os.environ["KVISION_OUTPUT_DIR"] = str(out_dir)
    client = NotebookClient(
        notebook,
        timeout=int(os.environ.get("KVISION_DOCS_CELL_TIMEOUT", 3600)),
        kernel_name="python3",
        resources={"metadata": {"path": str(source.parent)}},
    )
    start = time.monotonic()
    try:
        client.execute()
    except CellExecutionError as error:
        print(f"   {source.name}: FAILED\n{error}", file=sys.stderr)
        failed.append(source.name)
        stamp.unlink(missing_ok=True)
        executed.unlink(missing_ok=True)
        continue
    drop_noise(notebook)
    nbformat.write(notebook, executed)
    stamp.write_text(key)
    print(f"   {source.name}: executed in {time.monotonic() - start:.0f} s")
if not sources:
    print("   no notebooks/NN_*.py yet")
if failed:
    sys.exit(f"notebooks failed: {', '.join(failed)}")
PY
fi

if [ "$mode" = serve ]; then
  addr="${KVISION_DOCS_ADDR:-127.0.0.1:8000}"
  echo "== serving on http://$addr (live reload; Ctrl-C stops)"
  watch=()
  for path in kvision notebooks benchmarks/results build/docs-notebooks; do
    [ -d "$path" ] && watch+=(--watch "$path")
  done
  exec mkdocs serve --dev-addr "$addr" "${watch[@]}"
fi

echo "== mkdocs build --strict"
start=$(date +%s%N)
# Not --quiet: it hides the warnings that --strict turns into a failure.
mkdocs build --strict
seconds=$(awk "BEGIN { printf \"%.1f\", ($(date +%s%N) - $start) / 1e9 }")
pages=$(find site -name index.html | wc -l)
echo "== site/ built in $seconds s: $pages pages"

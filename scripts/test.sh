#!/usr/bin/env bash
# The test command: sets up .venv, lints, then runs the whole test suite once
# per Keras backend, each in its own process, then checks the docs site in a
# browser. Fails if any step fails (KVISION_SKIP_DOCS=1 skips the docs).
# Usage: bash scripts/test.sh [extra pytest arguments]
set -uo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-venv.sh || exit 1
venv=$(cd "${KVISION_VENV:-.venv}" && pwd)
export PATH="$venv/bin:$PATH"
export TF_CPP_MIN_LOG_LEVEL=3

echo "== ruff (lint and format)"
ruff check . && ruff format --check . || exit 1

reports=$(mktemp -d)
status=0
for backend in ${KVISION_BACKENDS:-tensorflow jax torch}; do
  echo "== pytest, KERAS_BACKEND=$backend"
  start=$SECONDS
  KERAS_BACKEND=$backend KERAS_HOME="$reports/keras-$backend" \
    python -m pytest -p no:cacheprovider --junitxml="$reports/$backend.xml" \
    "$@" || status=1
  echo "== $backend took $((SECONDS - start)) s"
done

# The docs site: strict build with smoke-sized tutorials, then browser checks
# in headless Chromium (installed by the script when missing).
if [ "${KVISION_SKIP_DOCS:-0}" != 1 ]; then
  echo "== docs site"
  start=$SECONDS
  bash scripts/check-docs.sh --junitxml="$reports/docs.xml" || status=1
  echo "== docs took $((SECONDS - start)) s"
fi

python - "$reports" <<'PY'
import pathlib
import sys
import xml.etree.ElementTree as ET

totals = {"passed": 0, "failed": 0, "skipped": 0}
for report in sorted(pathlib.Path(sys.argv[1]).glob("*.xml")):
    suite = ET.parse(report).getroot().find("testsuite")
    tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
    failed = int(suite.get("failures")) + int(suite.get("errors"))
    print(f"{report.stem}: {tests - failed - skipped} passed, {failed} "
          f"failed, {skipped} skipped")
    totals["passed"] += tests - failed - skipped
    totals["failed"] += failed
    totals["skipped"] += skipped
print("all: {passed} passed, {failed} failed, {skipped} skipped".format(
    **totals))
PY
exit $status

#!/usr/bin/env bash
# The test command: sets up .venv, lints, then runs the whole test suite once
# per Keras backend, each in its own process, then checks the package (see
# scripts/package.sh) and the docs site in a
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

# Test workers per backend (pytest-xdist): most of a test's time is one
# thread tracing, compiling or dispatching small ops, so two workers keep two
# cores busy. Tests that share an expensive fixture name an xdist_group and
# stay on one worker (--dist loadgroup). KVISION_TEST_WORKERS=0: one process.
workers=${KVISION_TEST_WORKERS:-2}
parallel=()
if [ "$workers" != 0 ]; then
  parallel=(-n "$workers" --dist loadgroup)
fi

reports=$(mktemp -d)
status=0
for backend in ${KVISION_BACKENDS:-tensorflow jax torch}; do
  echo "== pytest, KERAS_BACKEND=$backend"
  start=$SECONDS
  KERAS_BACKEND=$backend KERAS_HOME="$reports/keras-$backend" \
    python -m pytest -p no:cacheprovider --junitxml="$reports/$backend.xml" \
    "${parallel[@]}" "$@" || status=1
  echo "== $backend took $((SECONDS - start)) s"
  python scripts/junit_report.py times "$reports/$backend.xml"
done

# The package: sdist and wheel, twine check, then the wheel alone in a clean
# environment with one backend (JAX) running notebook 01 in smoke mode with
# Colab faked (KVISION_SKIP_PACKAGE=1 skips it).
if [ "${KVISION_SKIP_PACKAGE:-0}" != 1 ]; then
  echo "== package check"
  start=$SECONDS
  bash scripts/package.sh || status=1
  echo "== package check took $((SECONDS - start)) s"
fi

# The docs site: strict build with smoke-sized tutorials, then browser checks
# in headless Chromium (installed by the script when missing).
if [ "${KVISION_SKIP_DOCS:-0}" != 1 ]; then
  echo "== docs site"
  start=$SECONDS
  bash scripts/check-docs.sh --junitxml="$reports/docs.xml" || status=1
  echo "== docs took $((SECONDS - start)) s"
fi

# Seconds per test file and backend (slowest first, so growth shows), then
# the counts of every report and the closing "all: N passed, ..." line.
echo "== summary"
reports_in_order=()
for name in ${KVISION_BACKENDS:-tensorflow jax torch} docs; do
  reports_in_order+=("$reports/$name.xml")
done
python scripts/junit_report.py summary "${reports_in_order[@]}"
exit $status

#!/usr/bin/env bash
# CI check of the documentation site: installs Debian's Chromium if missing,
# builds the site strictly with smoke-sized tutorial notebooks
# (scripts/docs.sh), serves site/ on 127.0.0.1, and runs the browser and
# link checks of tests/docs/ in headless Chromium. Exits non-zero on any
# failure. Screenshots: outputs/docs-screenshots/ (KVISION_DOCS_SCREENSHOTS).
# Usage: bash scripts/check-docs.sh [extra pytest arguments]
# (KVISION_SMOKE=0 checks a full-size build instead; it takes much longer.)
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

echo "== chromium"
if ! command -v chromium > /dev/null; then
  if [ "$(id -u)" != 0 ]; then
    echo "Chromium is missing; install it as root: apt-get install -y" \
      "chromium" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  # The package lists may be absent or stale on a fresh machine.
  if ! apt-get install -y -qq chromium > /dev/null 2>&1; then
    apt-get update -qq
    apt-get install -y -qq chromium > /dev/null
  fi
fi
chromium=$(command -v chromium)
"$chromium" --version 2> /dev/null || true

KVISION_SMOKE="${KVISION_SMOKE:-1}" bash scripts/docs.sh build

venv=$(cd "${KVISION_VENV:-.venv}" && pwd)
python="$venv/bin/python"
port=$("$python" -c "
import socket
s = socket.socket()
s.bind(('127.0.0.1', 0))
print(s.getsockname()[1])
")
log=build/docs-http.log
mkdir -p build
"$python" -m http.server "$port" --bind 127.0.0.1 --directory site \
  > "$log" 2>&1 &
server=$!
trap 'kill "$server" 2> /dev/null || true' EXIT
url="http://127.0.0.1:$port/"
"$python" - "$url" <<'PY'
import sys
import time
import urllib.request

for _ in range(100):
    try:
        urllib.request.urlopen(sys.argv[1], timeout=2).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit(f"the site server at {sys.argv[1]} did not start")
PY
echo "== browser checks against $url"

status=0
KVISION_DOCS_URL="$url" KVISION_DOCS_SITE="$PWD/site" \
  KVISION_CHROMIUM="$chromium" \
  KVISION_DOCS_SCREENSHOTS="${KVISION_DOCS_SCREENSHOTS:-outputs/docs-screenshots}" \
  "$python" -m pytest -p no:cacheprovider --confcutdir=tests/docs \
  tests/docs "$@" || status=$?
echo "== screenshots in ${KVISION_DOCS_SCREENSHOTS:-outputs/docs-screenshots}/"
echo "== docs check took $((SECONDS - start)) s (exit $status)"
exit $status

#!/usr/bin/env bash
# The whole test suite: quality gates, Python tests, browser tests. Stops at the first failure.
set -euo pipefail
cd "$(dirname "$0")/.."

step() {
  local name="$1"
  shift
  echo
  echo "==> $name"
  local started=$SECONDS
  if ! "$@"; then
    echo
    echo "FAILED: $name" >&2
    exit 1
  fi
  echo "    ok ($((SECONDS - started)) s)"
}

pytest_all() {
  # pytest exits 5 when it collected no test: that is a failure here too.
  local rc=0
  python -m pytest "$@" || rc=$?
  if [[ $rc -eq 5 ]]; then
    echo "pytest collected no tests" >&2
  fi
  return $rc
}

browser_tests() {
  # A free port unless one is given, so parallel runs on one machine do not collide.
  export JRA_UI_TEST_PORT="${JRA_UI_TEST_PORT:-$(python -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}"
  (cd ui-tests && jlpm install --immutable && ../node_modules/.bin/tsc -p . && jlpm playwright test)
}

step "install (when needed)" scripts/ensure-installed.sh "[test]"
[[ -d node_modules ]] || step "jlpm install" jlpm install --immutable
step "ruff check" ruff check .
step "ruff format --check" ruff format --check .
step "mypy jupyter_research_agent" mypy jupyter_research_agent
step "eslint" jlpm eslint:check
step "prettier" jlpm prettier:check
step "tsc --noEmit (strict)" jlpm tsc --noEmit
step "pytest" pytest_all
step "browser tests (Playwright, /usr/bin/chromium)" browser_tests

echo
echo "All checks passed."

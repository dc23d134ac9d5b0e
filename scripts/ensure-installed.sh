#!/usr/bin/env bash
# Install the package in editable mode when it is missing or its frontend bundle is stale.
# Usage: scripts/ensure-installed.sh [pip extras, e.g. "[test]"]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
installed="$(python -c 'import sys; print(sys.prefix)')/share/jupyter/labextensions/jupyter-research-agent/package.json"

needs_install=""
if ! python -c 'import importlib.metadata as m; m.version("jupyter_research_agent")' 2>/dev/null; then
  needs_install="package not installed"
elif [[ ! -f "$installed" ]]; then
  needs_install="lab extension not installed"
elif [[ -n "$(find src style schema package.json pyproject.toml -newer "$installed" -print -quit)" ]]; then
  needs_install="frontend sources changed since the last install"
elif [[ "$extras" == *test* ]] \
  && ! python -c 'import pytest_jupyter, pytest_asyncio, papermill, kernel_gateway, httpx' 2>/dev/null; then
  needs_install="test dependencies missing"
fi

if [[ -n "$needs_install" ]]; then
  echo "==> Installing jupyter_research_agent${extras} ($needs_install)"
  python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
fi

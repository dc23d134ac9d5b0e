#!/usr/bin/env bash
# Install the package in editable mode when it is missing, and rebuild the frontend when its
# sources changed since the last build. Usage: scripts/ensure-installed.sh [pip extras, "[test]"]
set -euo pipefail
cd "$(dirname "$0")/.."

extras="${1:-}"
shared="$(python -c 'import sys; print(sys.prefix)')/share/jupyter/labextensions/jupyter-research-agent"
bundle="jupyter_research_agent/labextension"

sources_newer_than() {
  [[ ! -f "$1" ]] || [[ -n "$(find src style schema package.json -newer "$1" -print -quit)" ]]
}

pip_install() {
  echo "==> Installing jupyter_research_agent${extras} ($1)"
  # A `jupyter labextension develop` link would make pip write the bundle onto itself.
  if [[ -L "$shared" ]]; then rm "$shared"; fi
  python -m pip install --quiet --disable-pip-version-check -e ".${extras}"
}

if ! python -c 'import importlib.metadata as m; m.version("jupyter_research_agent")' 2>/dev/null; then
  pip_install "package not installed"
elif [[ "$extras" == *test* ]] \
  && ! python -c 'import pytest_jupyter, pytest_asyncio, papermill, kernel_gateway, httpx' 2>/dev/null; then
  pip_install "test dependencies missing"
elif [[ -L "$shared" ]]; then
  # Development link (`jupyter labextension develop`): the server serves the build folder.
  if sources_newer_than "$bundle/package.json"; then
    echo "==> Rebuilding the frontend (sources changed)"
    jlpm build
  fi
elif [[ ! -f "$shared/package.json" ]]; then
  pip_install "lab extension not installed"
elif sources_newer_than "$shared/package.json"; then
  pip_install "frontend sources changed since the last install"
fi

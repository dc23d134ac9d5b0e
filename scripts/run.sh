#!/usr/bin/env bash
# Set up (when needed) and start JupyterLab with the research agent on the example notebook.
# Works without any API key: the offline proposer is used then.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-installed.sh
exec jupyter lab examples/exploration.ipynb "$@"

#!/usr/bin/env bash
# Set up (when needed) and start JupyterLab with the research agent on the example notebook.
# Works without any API key: the offline proposer is used then.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-installed.sh

extra=()
# Jupyter refuses to start as root unless told so (containers and fresh VMs often run as root).
if [[ "$(id -u)" == "0" ]]; then
  extra+=(--allow-root)
fi
exec jupyter lab examples/exploration.ipynb "${extra[@]}" "$@"

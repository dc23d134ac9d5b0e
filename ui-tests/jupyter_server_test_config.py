"""Jupyter Server configuration for the browser tests (never use it for real work)."""

import json
import os
import tempfile

# A throwaway home for notebooks, settings and workspaces: tests never touch the user's own.
_root = tempfile.mkdtemp(prefix="jra-ui-tests-")

c.ServerApp.ip = "127.0.0.1"
c.ServerApp.port = int(os.environ.get("JRA_UI_TEST_PORT", "8899"))
c.ServerApp.port_retries = 0
c.ServerApp.open_browser = False
c.ServerApp.allow_root = True
c.ServerApp.root_dir = _root
c.IdentityProvider.token = os.environ.get("JRA_UI_TEST_TOKEN", "research-agent-ui-test")
c.LabApp.extension_manager = "readonly"
c.LabApp.user_settings_dir = os.path.join(_root, ".settings")
c.LabApp.workspaces_dir = os.path.join(_root, ".workspaces")
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"

# Deterministic status: no language model, whatever the developer's environment says.
c.ResearchAgent.model = ""
c.ResearchAgent.base_url = ""
c.ResearchAgent.api_key = ""

# Two side kernels keep the browser tests quick on two cores; the ledger stays in the
# throwaway root so tests never see (or write) the developer's own explorations.
c.ResearchAgent.pool_size = 2
c.ResearchAgent.ledger_path = os.path.join(_root, ".research_agent", "ledger.sqlite")

# Keep JupyterLab's news prompt away: it would cover the UI under test.
_settings = os.path.join(_root, ".settings", "@jupyterlab", "apputils-extension")
os.makedirs(_settings)
with open(os.path.join(_settings, "notification.jupyterlab-settings"), "w") as f:
    json.dump({"fetchNews": "false"}, f)

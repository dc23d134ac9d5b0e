"""Jupyter Server configuration for the browser tests (never use it for real work)."""

import json
import os
import tempfile

# A throwaway home for notebooks, settings and workspaces: tests never touch the user's own.
_root = tempfile.mkdtemp(prefix="jra-ui-tests-")

c.ServerApp.ip = "127.0.0.1"  # noqa: F821
c.ServerApp.port = int(os.environ.get("JRA_UI_TEST_PORT", "8899"))  # noqa: F821
c.ServerApp.port_retries = 0  # noqa: F821
c.ServerApp.open_browser = False  # noqa: F821
c.ServerApp.allow_root = True  # noqa: F821
c.ServerApp.root_dir = _root  # noqa: F821
c.IdentityProvider.token = os.environ.get("JRA_UI_TEST_TOKEN", "research-agent-ui-test")  # noqa: F821
c.LabApp.extension_manager = "readonly"  # noqa: F821
c.LabApp.user_settings_dir = os.path.join(_root, ".settings")  # noqa: F821
c.LabApp.workspaces_dir = os.path.join(_root, ".workspaces")  # noqa: F821
c.LabApp.check_for_updates_class = "jupyterlab.NeverCheckForUpdate"  # noqa: F821

# Deterministic status: no language model, whatever the developer's environment says.
c.ResearchAgent.model = ""  # noqa: F821
c.ResearchAgent.base_url = ""  # noqa: F821
c.ResearchAgent.api_key = ""  # noqa: F821

# Keep JupyterLab's news prompt away: it would cover the UI under test.
_settings = os.path.join(_root, ".settings", "@jupyterlab", "apputils-extension")
os.makedirs(_settings)
with open(os.path.join(_settings, "notification.jupyterlab-settings"), "w") as f:
    json.dump({"fetchNews": "false"}, f)

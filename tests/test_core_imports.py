"""The domain core imports no server code."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = """
import importlib, json, pkgutil, sys
import jupyter_research_agent.core as core
names = [m.name for m in pkgutil.walk_packages(core.__path__, core.__name__ + ".")]
for name in names:
    importlib.import_module(name)
leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tornado", "jupyter_server"))
print(json.dumps({"modules": names, "leaked": leaked}))
"""


def test_core_modules_import_no_server_code() -> None:
    # Given a fresh interpreter
    # When every module of jupyter_research_agent.core is imported
    result = subprocess.run(
        [sys.executable, "-c", CHECK], capture_output=True, text=True, timeout=120, check=False
    )

    # Then the imports succeed and neither tornado nor jupyter_server was loaded
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["modules"], "no core module found"
    assert report["leaked"] == [], f"core pulled in server modules: {report['leaked']}"

"""The magics in terminal IPython, where no kernel runs: a clear line, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_research_list_outside_a_kernel_says_one_clear_line(tmp_path: Path) -> None:
    # Given terminal IPython (no kernel, so no connection file) and a server that is not there
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO),
        "IPYTHONDIR": str(tmp_path / "ipython"),
        "RESEARCH_AGENT_SERVER_URL": "http://127.0.0.1:9",
        "RESEARCH_AGENT_NOTEBOOK_PATH": "n.ipynb",
    }
    # When `%research list` runs
    proc = subprocess.run(
        [
            sys.executable, "-m", "IPython", "--no-banner", "--colors=NoColor", "-c",
            "%load_ext jupyter_research_agent\n%research list",
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    # Then it prints one line saying what is missing, and no traceback
    output = proc.stdout + proc.stderr
    assert "Traceback" not in output and "MultipleInstanceError" not in output, output
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1, output
    assert lines[0].startswith("research-agent: no Jupyter server reachable"), output

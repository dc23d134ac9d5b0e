"""Notebooks for the agent wiring tests: a cell that really failed in a kernel, and engines."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient
from pydantic import SecretStr

from jupyter_research_agent.core.config import EngineConfig, LLMConfig

SETUP = "import pandas as pd\ndf = pd.DataFrame({'cost': [1.0, 2.0, 3.0]})"
FAILING = "print('summing')\ntotal = df['price'].sum()\nprint(f'total: {total}')"
FIXED = "total = df['cost'].sum()\nprint(f'total: {total}')"
STILL_BROKEN = "total = df['Price'].sum()\nprint(f'total: {total}')"
SENTINEL_KEY = "sk-test-WIRINGSENTINEL0123456789abcdef"


def model_server_options(ledger_dir: Path, base_url: str, **options: Any) -> dict[str, Any]:
    """`c.ResearchAgent` options for a test server whose model is the fake one at base_url."""
    return {
        "ledger_path": str(ledger_dir / "ledger.sqlite"),
        "pool_size": 1,
        "model": "test-model",
        "base_url": base_url,
        "api_key": SENTINEL_KEY,
        "max_retries": 0,
        "request_timeout": 30.0,
        **options,
    }


def executed_notebook(path: Path, sources: list[tuple[str, str]]) -> Path:
    """Write a notebook whose cells ran in a real kernel (errors allowed), outputs kept."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [nbformat.v4.new_code_cell(source, id=cell_id) for cell_id, source in sources]
    NotebookClient(nb, timeout=60, kernel_name="python3", allow_errors=True).execute()
    path.write_text(nbformat.writes(nb))
    return path


def failed_notebook(root: Path, name: str = "analysis.ipynb") -> Path:
    """``setup`` builds a frame with a ``cost`` column; ``sum`` fails on ``price``."""
    return executed_notebook(root / name, [("setup", SETUP), ("sum", FAILING)])


def outputs_of(path: Path, cell_id: str) -> list[dict[str, Any]]:
    nb = nbformat.read(str(path), as_version=4)
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return list(json.loads(json.dumps(cell.outputs)))


def engine_config(root: Path, base_url: str | None = None, **extra: Any) -> EngineConfig:
    """Fast settings; a model at ``base_url`` (the fake server) when given."""
    llm = (
        LLMConfig(
            model="test-model",
            base_url=base_url,
            api_key=SecretStr(SENTINEL_KEY),
            timeout_s=10,
            max_retries=0,
        )
        if base_url
        else LLMConfig()
    )
    settings: dict[str, Any] = {
        "root_dir": root,
        "ledger_path": root / "ledger.sqlite",
        "pool_size": 2,
        "run_timeout_s": 60,
        "llm": llm,
    }
    settings.update(extra)
    return EngineConfig(**settings)

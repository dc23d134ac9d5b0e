"""Helpers for the autopilot tests: notebooks, engines that clean up, lineage checks."""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nbformat

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.models import CreateExploration, Exploration, Proposal

FILES = Path(__file__).parent / "files"


def copy_files(root: Path, *names: str) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copy(FILES / name, root / name)
    return root


def write_notebook(root: Path, name: str, cells: list[tuple[str, str]]) -> Path:
    """A notebook of code cells given as (id, source)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell_id, source in cells:
        cell = nbformat.v4.new_code_cell(source)
        cell["id"] = cell_id
        nb.cells.append(cell)
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, str(path))
    return path


def engine_config(root: Path, **changes: Any) -> EngineConfig:
    settings: dict[str, Any] = {
        "root_dir": root,
        "ledger_path": root.parent / "ledger" / "ledger.sqlite",
        "pool_size": 2,
        "run_timeout_s": 60,
        "kernel_start_timeout_s": 30,
        "interrupt_grace_s": 1,
    }
    settings.update(changes)
    return EngineConfig(**settings)


@asynccontextmanager
async def running_engine(config: EngineConfig) -> AsyncIterator[Engine]:
    engine = Engine(config)
    try:
        yield engine
    finally:
        await engine.close()


def explore(notebook: str = "poor_lr.ipynb", cell: str = "train", **changes: Any) -> Any:
    fields: dict[str, Any] = {
        "notebook_path": notebook,
        "cell_id": cell,
        "offline": True,
        "max_proposals": 2,
        "metric": "accuracy",
    }
    fields.update(changes)
    return CreateExploration.model_validate(fields)


def by_id(exp: Exploration) -> dict[str, Proposal]:
    return {p.id: p for p in exp.proposals}


def run_count(exp: Exploration) -> int:
    return len(exp.runs) + (exp.baseline is not None)


def value(exp: Exploration, proposal_id: str | None) -> float:
    for row in exp.comparison.rows:
        if (proposal_id is None and row.is_baseline) or row.proposal_id == proposal_id:
            assert exp.comparison.metric is not None
            return row.metrics[exp.comparison.metric]
    raise AssertionError(f"no row for {proposal_id}")

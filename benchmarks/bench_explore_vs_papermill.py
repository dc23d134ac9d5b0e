"""Exploring N variations of a cell with the engine vs running them with papermill in turn.

Both sides do the same work: the baseline plus the same N variations (the engine's offline
proposals; papermill gets each one's changed values as injected parameters), every run in
a fresh kernel that replays the notebook. Measured in one process, one after the other:

    python benchmarks/bench_explore_vs_papermill.py [--variations 4] [--parallel P]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.metrics import extract_metrics
from jupyter_research_agent.core.models import CreateExploration, Exploration, RunStatus

_nbf: Any = nbformat

SETUP = """\
import numpy as np

rng = np.random.default_rng(0)
X = rng.normal(loc=1.0, size=(4000, 20))
true_w = rng.normal(size=20)
y = (X @ true_w + rng.normal(scale=0.5, size=4000) > X.mean() * true_w.sum()).astype(float)
"""
PARAMS = "lr = 0.01\nepochs = 300\n"
TRAIN = """\
w = np.zeros(X.shape[1])
b = 0.0
for _ in range(epochs):
    p = 1 / (1 + np.exp(-(X @ w + b)))
    w -= lr * X.T @ (p - y) / len(y)
    b -= lr * float(np.mean(p - y))
"""
EVALUATE = """\
p = 1 / (1 + np.exp(-(X @ w + b)))
print(f"accuracy: {np.mean((p > 0.5) == y):.4f}")
"""


def write_notebook(path: Path) -> None:
    nb = _nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    nb.metadata["language_info"] = {"name": "python"}
    params = _nbf.v4.new_code_cell(PARAMS, id="params")
    params.metadata["tags"] = ["parameters"]  # where papermill injects its parameters
    nb.cells = [
        _nbf.v4.new_code_cell(SETUP, id="setup"),
        params,
        _nbf.v4.new_code_cell(TRAIN, id="train"),
        _nbf.v4.new_code_cell(EVALUATE, id="evaluate"),
    ]
    _nbf.write(nb, str(path))


async def explore(root: Path, variations: int, parallel: int) -> tuple[float, Exploration]:
    config = EngineConfig(
        root_dir=root,
        ledger_path=root / "ledger.sqlite",
        pool_size=parallel,
        run_timeout_s=300,
    )
    engine = Engine(config)
    started = time.perf_counter()
    try:
        request = CreateExploration(
            notebook_path="bench.ipynb", cell_id="params", offline=True, max_proposals=variations
        )
        exp = await engine.wait_proposals((await engine.create_exploration(request)).id)
        for proposal in exp.proposals:
            await engine.approve(proposal.id, proposal.code_sha256)
        done = await engine.wait_runs(exp.id)
    finally:
        await engine.close()
    return time.perf_counter() - started, done


def run_papermill(
    root: Path, parameter_sets: list[dict[str, Any]]
) -> tuple[float, list[dict[str, float]]]:
    started = time.perf_counter()
    outputs = []
    for index, parameters in enumerate(parameter_sets):
        out = root / f"papermill-{index}.ipynb"
        papermill.execute_notebook(
            str(root / "bench.ipynb"),
            str(out),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(root),
        )
        outputs.append(out)
    elapsed = time.perf_counter() - started
    found = []
    for out in outputs:
        nb = _nbf.read(str(out), as_version=4)
        found.append(extract_metrics([o for c in nb.cells for o in c.get("outputs", [])]))
    return elapsed, found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variations", type=int, default=4)
    parser.add_argument("--parallel", type=int, default=os.cpu_count() or 2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_notebook(root / "bench.ipynb")
        engine_s, exp = asyncio.run(explore(root, args.variations, args.parallel))
        runs = [exp.baseline, *exp.runs]
        failed = [r for r in runs if r is None or r.status != RunStatus.SUCCEEDED]
        if failed or len(exp.proposals) != args.variations:
            sys.stderr.write(f"the engine did not run every variation: {failed}\n")
            return 1
        # The baseline runs as written (no parameters), then each variation's changed values.
        parameter_sets = [{}, *(p.overrides for p in exp.proposals)]
        papermill_s, papermill_metrics = run_papermill(root, parameter_sets)
    engine_metrics = [exp.baseline.metrics if exp.baseline else {}] + [
        next(r.metrics for r in exp.runs if r.proposal_id == p.id) for p in exp.proposals
    ]
    print(f"variations: {args.variations} (+ baseline), side kernels in parallel: {args.parallel}")
    for proposal in exp.proposals:
        print(f"  {proposal.title}  {proposal.overrides}")
    print(f"engine explore:        {engine_s:7.2f} s")
    print(f"papermill, one by one: {papermill_s:7.2f} s")
    print(f"ratio papermill/engine: {papermill_s / engine_s:.2f}x")
    same = engine_metrics == papermill_metrics
    print(f"same metrics on both sides: {'yes' if same else 'NO'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

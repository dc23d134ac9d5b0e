"""How fast variations start: state rebuilt once per exploration, copied, or taken from the
live kernel, against replays and papermill. Three scenarios, each measured side by side:

1. ``setup``: a setup cell of 8 s, a target under 0.1 s, four variations. The whole exploration
   (baseline included, from creating it to the last result) against one replay of the setup
   (kernel start + the setup cell) and against papermill running the five notebooks in turn.
2. ``live``: the notebook's own kernel is running: approval to first executed line and to first
   result, with the state copied from that kernel.
3. ``many``: 40 variations of a 0.25 s (CPU) cell on a pool of 2: against the ideal
   (40 x 0.25 s / 2) and papermill one after another.

    python benchmarks/bench_state_rebuild.py [setup] [live] [many] [--setup-s 8]

Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat
import papermill
from jupyter_client.manager import AsyncKernelManager

from jupyter_research_agent.core.config import EngineConfig
from jupyter_research_agent.core.engine import Engine
from jupyter_research_agent.core.live import ClientKernelSource, LiveKernelSource
from jupyter_research_agent.core.metrics import extract_metrics
from jupyter_research_agent.core.models import (
    AddProposal,
    CreateExploration,
    EngineEvent,
    Exploration,
    RunStatus,
)

_nbf: Any = nbformat

SETUP = """\
import time
import numpy as np

time.sleep({setup_s})
rng = np.random.default_rng(0)
X = rng.normal(size=(20000, 20))
w_true = rng.normal(size=20)
y = X @ w_true + rng.normal(scale=0.1, size=20000)
"""
PARAMS = "lr = 0.1\n"
TRAIN = """\
w = np.zeros(X.shape[1])
for _ in range(10):
    w -= lr * X.T @ (X @ w - y) / len(y)
print(f"mse: {float(np.mean((X @ w - y) ** 2)):.6f}")
"""
BUSY = """\
end = time.perf_counter() + 0.25
n = 0
while time.perf_counter() < end:
    n += 1
print(f"score: {k * 1.0}")
"""


def write_notebook(path: Path, cells: list[tuple[str, str]], params: str | None = None) -> None:
    nb = _nbf.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    for cell_id, source in cells:
        cell = _nbf.v4.new_code_cell(source, id=cell_id)
        if cell_id == params:
            cell.metadata["tags"] = ["parameters"]  # where papermill injects its parameters
        nb.cells.append(cell)
    _nbf.write(nb, str(path))


def engine_for(root: Path, pool: int = 2) -> Engine:
    config = EngineConfig(
        root_dir=root, ledger_path=root / "ledger.sqlite", pool_size=pool, run_timeout_s=600
    )
    return Engine(config)


async def explore(
    engine: Engine, notebook: str, cell: str, codes: list[str], read_s: float = 0.0
) -> tuple[Exploration, dict[str, float]]:
    """Create, add the variations, approve all; times of the steps since creation.

    ``read_s``: how long the researcher reads the proposals before approving (kernels warm
    meanwhile)."""
    marks: dict[str, float] = {}
    first: dict[str, float] = {}

    def listen(event: EngineEvent) -> None:
        now = time.perf_counter()
        if event.type != "run":
            return
        if event.status == "running":
            first.setdefault("running", now)
        if event.status == "succeeded":
            first.setdefault("result", now)

    engine.subscribe(listen)
    marks["start"] = time.perf_counter()
    request = CreateExploration(notebook_path=notebook, cell_id=cell, offline=True, max_proposals=0)
    exp = await engine.wait_proposals((await engine.create_exploration(request)).id)
    proposals = [
        await engine.add_proposal(exp.id, AddProposal(code=code, title=f"v{i}"))
        for i, code in enumerate(codes)
    ]
    await asyncio.sleep(read_s)
    marks["approve"] = time.perf_counter()
    for proposal in proposals:
        await engine.approve(proposal.id, proposal.code_sha256)
    marks["approved"] = time.perf_counter()
    done = await engine.wait_runs(exp.id)
    marks["done"] = time.perf_counter()
    marks.update(first)
    return done, marks


def check(exp: Exploration, expected: int) -> list[dict[str, float]]:
    runs = [r for r in [exp.baseline, *exp.runs] if r is not None]
    bad = [r for r in runs if r.status != RunStatus.SUCCEEDED]
    if bad or len(runs) != expected:
        raise SystemExit(f"runs failed or missing: {[(r.status, r.reason) for r in bad]}")
    return [r.metrics for r in runs]


def papermill_runs(root: Path, name: str, parameter_sets: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    for index, parameters in enumerate(parameter_sets):
        papermill.execute_notebook(
            str(root / name),
            str(root / f"pm-{index}.ipynb"),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            cwd=str(root),
        )
    return time.perf_counter() - started


def papermill_metrics(root: Path, count: int) -> list[dict[str, float]]:
    found = []
    for index in range(count):
        nb = _nbf.read(str(root / f"pm-{index}.ipynb"), as_version=4)
        found.append(extract_metrics([o for c in nb.cells for o in c.get("outputs", [])]))
    return found


async def one_replay(root: Path, code: str) -> float:
    """A fresh kernel running the setup once: what a single replay costs."""
    started = time.perf_counter()
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(cwd=str(root))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        await execute(client, code)
        return time.perf_counter() - started
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)


async def execute(client: Any, code: str) -> dict[str, Any]:
    msg_id = client.execute(code)
    while True:
        reply = await client.get_shell_msg(timeout=600)
        if reply["parent_header"].get("msg_id") == msg_id:
            content: dict[str, Any] = reply["content"]
            return content


def ratio_line(label: str, value: float, target: str, ok: bool) -> None:
    print(f"  {label:<52} {value:7.2f}   target {target:<8} {'ok' if ok else 'MISSED'}")


# ---------------------------------------------------------------- scenarios


async def scenario_setup(root: Path, setup_s: float) -> None:
    setup = SETUP.format(setup_s=setup_s)
    write_notebook(
        root / "setup.ipynb",
        [("setup", setup), ("params", PARAMS), ("train", TRAIN)],
        params="params",
    )
    lrs = [0.05, 0.2, 0.3, 0.4]
    engine = engine_for(root)
    try:
        exp, marks = await explore(engine, "setup.ipynb", "params", [f"lr = {v}\n" for v in lrs])
    finally:
        await engine.close()
    ours = check(exp, 5)
    whole = marks["done"] - marks["start"]
    replay = await one_replay(root, setup)
    pm = papermill_runs(root, "setup.ipynb", [{}, *({"lr": v} for v in lrs)])
    same = ours == papermill_metrics(root, 5)
    runs = [exp.baseline, *exp.runs]
    print(f"\n1. setup cell {setup_s:g} s, target < 0.1 s, baseline + 4 variations (pool 2)")
    print(f"  whole exploration (create -> last result): {whole:6.2f} s")
    print(f"  one replay of the setup (kernel + setup):  {replay:6.2f} s")
    print(f"  papermill, five notebooks in turn:         {pm:6.2f} s")
    print(
        "  strategies: "
        + ", ".join(sorted({r.state_strategy.value for r in runs if r and r.state_strategy}))
    )
    print(f"  same metrics as papermill: {'yes' if same else 'NO'}")
    ratio_line("exploration / one replay", whole / replay, "<= 1.5", whole / replay <= 1.5)
    ratio_line("papermill / exploration", pm / whole, ">= 4", pm / whole >= 4)


async def scenario_live(root: Path) -> None:
    setup = SETUP.format(setup_s=1)
    write_notebook(root / "live.ipynb", [("setup", setup), ("params", PARAMS), ("train", TRAIN)])
    manager = AsyncKernelManager(kernel_name="python3")
    await manager.start_kernel(cwd=str(root))
    client = manager.client()
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        await execute(client, setup)  # the researcher ran the setup in their own kernel

        async def live(path: str) -> LiveKernelSource | None:
            return ClientKernelSource(manager.get_connection_info())

        timings: list[dict[str, float]] = []
        for _ in range(3):
            engine = engine_for(root)
            engine.use_live_kernels(live)
            try:
                # The researcher reads the proposals for a moment: kernels warm meanwhile.
                exp, marks = await explore_after_reading(engine, "live.ipynb", "params")
            finally:
                await engine.close()
            check(exp, 2)
            strategies = {r.state_strategy for r in [exp.baseline, *exp.runs] if r}
            marks["live"] = float(all(s and s.value == "snapshot_live" for s in strategies))
            timings.append(marks)
    finally:
        client.stop_channels()
        await manager.shutdown_kernel(now=True)
    to_line = statistics.median(m["running"] - m["approve"] for m in timings)
    to_result = statistics.median(m["result"] - m["approve"] for m in timings)
    print("\n2. live kernel: approval -> first executed line / first result (median of 3)")
    print(f"  every run copied from the live kernel: {all(m['live'] for m in timings)}")
    ratio_line("approval -> first executed line (s)", to_line, "< 1 s", to_line < 1)
    ratio_line("approval -> first result (s)", to_result, "< 1 s", to_result < 1)


async def explore_after_reading(
    engine: Engine, notebook: str, cell: str
) -> tuple[Exploration, dict[str, float]]:
    first: dict[str, float] = {}

    def listen(event: EngineEvent) -> None:
        now = time.perf_counter()
        if event.type == "run" and event.status == "running":
            first.setdefault("running", now)
        if event.type == "run" and event.status == "succeeded":
            first.setdefault("result", now)

    engine.subscribe(listen)
    request = CreateExploration(notebook_path=notebook, cell_id=cell, offline=True, max_proposals=0)
    exp = await engine.wait_proposals((await engine.create_exploration(request)).id)
    proposal = await engine.add_proposal(exp.id, AddProposal(code="lr = 0.2\n"))
    await asyncio.sleep(3.0)
    approve = time.perf_counter()
    await engine.approve(proposal.id, proposal.code_sha256)
    done = await engine.wait_runs(exp.id)
    return done, {"approve": approve, **first}


async def scenario_many(root: Path, count: int) -> None:
    write_notebook(
        root / "many.ipynb",
        [("setup", "import time\n"), ("params", "k = 1\n"), ("busy", BUSY)],
        params="params",
    )
    codes = [f"k = {i + 2}\n" for i in range(count)]
    engine = engine_for(root, pool=2)
    try:
        exp, marks = await explore(engine, "many.ipynb", "params", codes, read_s=3.0)
    finally:
        await engine.close()
    check(exp, count + 1)
    runs = [r for r in [exp.baseline, *exp.runs] if r is not None]
    from_approve = marks["done"] - marks["approve"]
    whole = marks["done"] - marks["start"]
    ideal = count * 0.25 / 2
    pm = papermill_runs(root, "many.ipynb", [{}, *({"k": i + 2} for i in range(count))])
    print(f"\n3. {count} variations of a 0.25 s cell (+ baseline), pool of 2")
    print(f"  approval -> last result: {from_approve:6.2f} s (create -> last: {whole:.2f} s)")
    approving = marks["approved"] - marks["approve"]
    print(f"  of which the {count} approve calls themselves: {approving:.2f} s")
    print(f"  ideal ({count} x 0.25 s / 2):  {ideal:6.2f} s")
    print(f"  papermill one after another: {pm:6.2f} s")
    reused = len({r.kernel_id for r in runs})
    print(f"  side kernels used for {len(runs)} runs: {reused}")
    ratio_line("engine / ideal", from_approve / ideal, "<= 1.3", from_approve / ideal <= 1.3)
    ratio_line("papermill / engine", pm / from_approve, ">= 8", pm / from_approve >= 8)


async def warm_up(root: Path) -> None:
    """One small exploration first, as a running server has done: one-time imports (the
    result reader's model client, pandas) are not what is measured."""
    write_notebook(root / "warm.ipynb", [("a", "x = 1\n"), ("b", "print(f'score: {x}')\n")])
    engine = engine_for(root)
    try:
        await explore(engine, "warm.ipynb", "a", ["x = 2\n"])
    finally:
        await engine.close()


async def main_async(which: list[str], setup_s: float, count: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        await warm_up(root)
        if "setup" in which:
            await scenario_setup(root, setup_s)
        if "live" in which:
            await scenario_live(root)
        if "many" in which:
            await scenario_many(root, count)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("scenarios", nargs="*", default=["setup", "live", "many"])
    parser.add_argument("--setup-s", type=float, default=8.0)
    parser.add_argument("--variations", type=int, default=40)
    args = parser.parse_args()
    asyncio.run(main_async(args.scenarios, args.setup_s, args.variations))
    return 0


if __name__ == "__main__":
    sys.exit(main())

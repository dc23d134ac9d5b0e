"""How a run's state is rebuilt before its target cell: the strategy and what it executes.

In order of preference (``EngineConfig.state_mode = "auto"``):

1. ``snapshot_live``: the target's inputs are copied from the researcher's running kernel, when
   the server offers it, it is idle, and the run's cells do not change those inputs (the live
   kernel may already hold their changed values).
2. ``snapshot_prepared``: a prepared kernel replays the sliced prefix once per exploration; runs
   copy the inputs from it.
3. ``sliced_replay``: the run's own kernel replays only the prefix cells the analysis keeps.
4. ``full_replay``: every prefix cell, when the analysis is unsure.

Values that do not copy are rebuilt in the run's kernel by replaying the cells that define
them (a self-contained slice); functions and classes of the notebook by re-running their
``def``/``class`` statements. Every route has a fallback: if loading the snapshot fails,
the run replays the sliced prefix on the same kernel.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import EngineConfig
from .kernels import KernelKey, KernelPool
from .live import LiveKernels
from .models import Cell, CellOutputs, StateStrategy
from .prepared import PreparedKernels, PrepareKey
from .snapshot import Snapshot, load_code, take_snapshot
from .state import (
    StatePlan,
    backward_slice,
    definition_statements,
    expression_names,
    import_statements,
    plan_run,
    statement_inputs,
)

if TYPE_CHECKING:
    from .runner import RunSpec

log = logging.getLogger(__name__)

LIVE_TTL_S = 30.0  # one burst of approvals shares one copy of the live kernel's variables
LIVE_KEEP = 8
LIVE_TIMEOUT_S = 60.0


@dataclass
class StateRoute:
    """What a run's kernel executes to get its state, then the run's own cells."""

    strategy: StateStrategy
    cells: list[Cell]  # executed and captured in order: rebuild cells, then the run's cells
    target_index: int | None  # position of the target in ``cells``
    load: str | None = None  # hidden code run first (loads a snapshot)
    prefix_outputs: list[CellOutputs] = field(default_factory=list)  # shown before ``cells``
    seed_prelude: bool = True  # False when the snapshot restored the random generators
    wait_s: float = 0.0  # time spent getting the snapshot (part of rebuild_s)
    fallback: StateRoute | None = None  # when loading fails
    recyclable: bool = False  # the kernel may serve another run after this one
    note: str = ""
    on_release: Callable[[], None] | None = None

    def release(self) -> None:
        """The snapshot file is no longer needed by this run (idempotent)."""
        done, self.on_release = self.on_release, None
        if done is not None:
            done()


@dataclass
class _LiveEntry:
    task: asyncio.Task[Snapshot | None]
    taken_at: float = field(default_factory=time.monotonic)
    users: int = 0


class StateBuilder:
    """Chooses and prepares the state route of each run; owns prepared kernels and live copies."""

    def __init__(self, pool: KernelPool, config: EngineConfig) -> None:
        self.mode = config.state_mode
        self.pool = pool
        self.prepared = PreparedKernels(
            pool, timeout_s=config.run_timeout_s, output_cap_bytes=config.output_cap_bytes
        )
        self.live_kernels: LiveKernels | None = None
        self._live: dict[tuple[str, frozenset[str]], _LiveEntry] = {}
        self._closed = False

    async def route(self, spec: RunSpec) -> StateRoute:
        cells = [c for c in spec.cells if c.cell_type == "code"]
        target = spec.target_index
        full = StateRoute(StateStrategy.FULL_REPLAY, cells, target)
        if target is None or self.mode == "full_replay":
            return full
        plan = plan_run(cells, target, expression_names(spec.user_expressions.values()))
        if not plan.sure:
            log.info("run %s replays every cell: %s", spec.run_id, plan.reason)
            full.note = plan.reason
            return full
        sliced = _sliced(plan, cells)
        # Snapshots travel as files on this machine: kernels on a gateway cannot read them.
        if self.mode == "sliced_replay" or not plan.prefix or self.pool.remote:
            return sliced
        wanted = statement_inputs(plan, plan.inputs)
        statements = definition_statements(plan, wanted)
        copy = frozenset(wanted - statements.keys())
        started = time.monotonic()
        route: StateRoute | None = None
        if (
            self.mode == "auto"
            and self.live_kernels is not None
            and spec.notebook_path
            and not plan.changed_inputs
        ):
            route = await self._live_route(spec.notebook_path, plan, cells, copy, statements)
        if route is None:
            route = await self._prepared_route(spec, plan, cells, copy, statements)
        if route is None:
            route = sliced
        route.wait_s = time.monotonic() - started
        route.fallback = sliced
        return route

    async def close(self) -> None:
        self._closed = True
        for entry in self._live.values():
            entry.task.cancel()
            with contextlib.suppress(BaseException):
                snap = await entry.task
                if snap is not None:
                    snap.delete()
        self._live.clear()
        await self.prepared.close()

    # ---------------------------------------------------------------- routes

    async def _prepared_route(
        self,
        spec: RunSpec,
        plan: StatePlan,
        cells: list[Cell],
        copy: frozenset[str],
        statements: dict[str, str],
    ) -> StateRoute | None:
        prefix = [cells[i] for i in plan.prefix]
        key = PrepareKey(
            KernelKey(spec.kernel_name, spec.cwd),
            tuple((c.id, c.source) for c in prefix),
            spec.seed,
        )
        got = await self.prepared.snapshot(key, prefix, copy)
        if got is None:
            return None
        entry, snap = got
        route = _from_snapshot(
            StateStrategy.SNAPSHOT_PREPARED, plan, cells, snap, statements, missing_too=False
        )
        replayed = {c.id for c in route.cells[: route.target_index or 0]}
        route.prefix_outputs = [o for o in entry.outputs if o.cell_id not in replayed]
        route.seed_prelude = not snap.rng
        route.on_release = lambda: self.prepared.release(entry)
        return route

    async def _live_route(
        self,
        notebook_path: str,
        plan: StatePlan,
        cells: list[Cell],
        copy: frozenset[str],
        statements: dict[str, str],
    ) -> StateRoute | None:
        entry = await self._live_snapshot(notebook_path, copy)
        if entry is None:
            return None
        snap = entry.task.result()
        if snap is None:
            return None
        entry.users += 1
        route = _from_snapshot(
            StateStrategy.SNAPSHOT_LIVE, plan, cells, snap, statements, missing_too=True
        )

        def release() -> None:
            entry.users -= 1

        route.on_release = release
        return route

    async def _live_snapshot(self, notebook_path: str, names: frozenset[str]) -> _LiveEntry | None:
        self._expire_live()
        key = (notebook_path, names)
        entry = self._live.get(key)
        if entry is None:
            provider = self.live_kernels
            if provider is None or self._closed:
                return None
            try:
                source = await provider(notebook_path)
            except Exception:  # the server's lookup failing must not fail the run
                log.warning("looking up the live kernel of %s failed", notebook_path, exc_info=True)
                return None
            if source is None:
                return None

            async def run(code: str) -> bool:
                return await source.run_silently(code, LIVE_TIMEOUT_S)

            stem = f"live-{len(self._live)}-{int(time.monotonic() * 1000)}"
            directory = self.prepared.directory
            task = asyncio.ensure_future(take_snapshot(run, names, directory, stem, with_rng=False))
            entry = self._live[key] = _LiveEntry(task)
        snap = await asyncio.shield(entry.task)
        if snap is None:
            # Busy or failed: ask again next time rather than remember the refusal.
            if self._live.get(key) is entry:
                del self._live[key]
            return None
        return entry

    def _expire_live(self) -> None:
        now = time.monotonic()
        stale = [
            key
            for key, entry in self._live.items()
            if entry.users == 0
            and entry.task.done()
            and (now - entry.taken_at > LIVE_TTL_S or len(self._live) > LIVE_KEEP)
        ]
        for key in stale:
            entry = self._live.pop(key)
            with contextlib.suppress(BaseException):
                snap = entry.task.result()
                if snap is not None:
                    snap.delete()


def _sliced(plan: StatePlan, cells: list[Cell]) -> StateRoute:
    prefix = [cells[i] for i in plan.prefix]
    return StateRoute(
        StateStrategy.SLICED_REPLAY,
        prefix + cells[plan.target_index :],
        len(prefix),
        recyclable=plan.module_clean,
        note=f"replays {len(prefix)} of {plan.target_index} earlier cells",
    )


def _from_snapshot(
    strategy: StateStrategy,
    plan: StatePlan,
    cells: list[Cell],
    snap: Snapshot,
    statements: dict[str, str],
    *,
    missing_too: bool,
) -> StateRoute:
    """Load what was copied, re-run def/class statements, replay the cells of the rest."""
    rebuild = set(snap.failed) | (set(snap.missing) if missing_too else set())
    replay = backward_slice(plan.resolved, plan.prefix, rebuild) if rebuild else []
    replayed = set(replay)
    ordered = [
        source
        for index in plan.prefix
        if index not in replayed
        for name, (source, _) in plan.facts[index].statements.items()
        if statements.get(name) == source
    ]
    load = load_code(snap.path, snap.saved, import_statements(plan), ordered)
    note = f"copied {len(snap.saved)} variables"
    if replay:
        note += f", replays {len(replay)} cells for {', '.join(sorted(rebuild))}"
    return StateRoute(
        strategy,
        [cells[i] for i in replay] + cells[plan.target_index :],
        len(replay),
        load=load,
        recyclable=plan.module_clean,
        note=note,
    )

"""The engine's working set: explorations and notebooks in memory, backed by the ledger.

An exploration in memory is the one object every request sees (and changes); anything not in
memory comes from the ledger, e.g. after a restart. Active explorations (proposing, running,
or pinned by the engine) always stay; of the others only the ``capacity`` most recently used
are kept, so memory stays flat over hundreds of explorations. Every change is in the ledger
before it is announced, so an evicted exploration loads back whole.
"""

from __future__ import annotations

from collections import OrderedDict

from . import exploration_tasks as tasks
from .errors import Conflict, NotFound
from .ledger import Ledger
from .models import Exploration, ExplorationStatus, NotebookDoc, Proposal, Run

# Finished explorations kept in memory, most recently used first out of the ledger.
DEFAULT_CAPACITY = 64


class ExplorationStore:
    def __init__(self, ledger: Ledger, capacity: int = DEFAULT_CAPACITY) -> None:
        self.ledger = ledger
        self.capacity = capacity
        self.explorations: OrderedDict[str, Exploration] = OrderedDict()
        self._notebooks: dict[str, NotebookDoc] = {}
        # Ids the engine still works on outside of runs (e.g. writing the interpretation).
        self.pinned: set[str] = set()

    def add(self, exp: Exploration, nb: NotebookDoc) -> None:
        self.explorations[exp.id] = exp
        self._notebooks[exp.id] = nb
        self.ledger.save_exploration(exp)
        self.ledger.save_notebook(exp.id, nb)
        self._evict()

    def load(self, exploration_id: str) -> Exploration:
        exp = self.explorations.get(exploration_id)
        if exp is None:
            exp = self.ledger.load_exploration(exploration_id)
            self.explorations[exp.id] = exp
            self._evict()
        else:
            self.explorations.move_to_end(exploration_id)
        return exp

    def _active(self, exp: Exploration) -> bool:
        return (
            exp.id in self.pinned
            or exp.status in (ExplorationStatus.PROPOSING, ExplorationStatus.RUNNING)
            or bool(tasks.active_runs(exp))
        )

    def _evict(self) -> None:
        """Drop the least recently used finished explorations beyond ``capacity``."""
        idle = [e for e in self.explorations.values() if not self._active(e)]
        for exp in idle[: max(0, len(idle) - self.capacity)]:
            del self.explorations[exp.id]
            self._notebooks.pop(exp.id, None)

    def notebook(self, exp: Exploration) -> NotebookDoc:
        """The notebook snapshot the exploration runs against (kept since its creation)."""
        nb = self._notebooks.get(exp.id)
        if nb is None:
            nb = self.ledger.load_notebook(exp.id)
            if nb is None:
                raise Conflict(f"exploration {exp.id} has no stored notebook; start a new one")
            self._notebooks[exp.id] = nb
        return nb

    def find_proposal(self, proposal_id: str) -> tuple[Exploration, Proposal]:
        for exp in self.explorations.values():
            found = tasks.find_proposal(exp, proposal_id)
            if found is not None:
                return exp, found
        exp = self.load(self.ledger.find_proposal(proposal_id).exploration_id)
        found = tasks.find_proposal(exp, proposal_id)
        if found is None:
            raise NotFound(f"no proposal {proposal_id!r}")
        return exp, found

    def live_run(self, run_id: str) -> Run | None:
        for exp in self.explorations.values():
            found = tasks.find_run(exp, run_id)
            if found is not None:
                return found
        return None

    def find_run(self, run_id: str) -> tuple[Exploration, Run]:
        live = self.live_run(run_id)
        exp_id = live.exploration_id if live else self.ledger.find_run(run_id).exploration_id
        exp = self.load(exp_id)
        found = tasks.find_run(exp, run_id)
        if found is None:
            raise NotFound(f"no run {run_id!r}")
        return exp, found

"""The engine's working set: explorations and notebooks in memory, backed by the ledger.

An exploration loaded once stays in memory, so every request sees (and changes) the same
objects; anything not in memory comes from the ledger, e.g. after a restart.
"""

from __future__ import annotations

from . import exploration_tasks as tasks
from .errors import Conflict, NotFound
from .ledger import Ledger
from .models import Exploration, NotebookDoc, Proposal, Run


class ExplorationStore:
    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self.explorations: dict[str, Exploration] = {}
        self._notebooks: dict[str, NotebookDoc] = {}

    def add(self, exp: Exploration, nb: NotebookDoc) -> None:
        self.explorations[exp.id] = exp
        self._notebooks[exp.id] = nb
        self.ledger.save_exploration(exp)
        self.ledger.save_notebook(exp.id, nb)

    def load(self, exploration_id: str) -> Exploration:
        exp = self.explorations.get(exploration_id)
        if exp is None:
            exp = self.ledger.load_exploration(exploration_id)
            self.explorations[exp.id] = exp
        return exp

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

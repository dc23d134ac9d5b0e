"""What each `%research` subcommand does, as calls to the server's API.

The kernel only talks to the server: proposals are made there (the model key stays there) and
runs go to side kernels, never to this kernel.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from ..core.models import CreateExploration, Exploration, ExplorationStatus, Proposal
from ..core.models import ProposalStatus as PS
from . import args as a
from .cells import cells_with_body, magic_cell_index, resolve
from .client import ClientError, ResearchClient, wait_for
from .frames import comparison_frame, describe, explorations_frame
from .locate import Target, locate
from .widgets import ExplorationView, is_active

PROPOSING_TIMEOUT_S = 600.0


class NoExploration(ClientError):
    pass


class ResearchSession:
    """State of the magics in one kernel: where the server is, the explorations shown."""

    def __init__(
        self,
        *,
        env: Mapping[str, str],
        runtime_dir: str | Path,
        kernel_id: str | None,
        magic_cell_id: Callable[[], str | None],
        display: Callable[[Any], None],
        echo: Callable[[str], None] = print,
        poll_interval: float = 0.5,
    ) -> None:
        self.env = env
        self.runtime_dir = runtime_dir
        self.kernel_id = kernel_id
        self.magic_cell_id = magic_cell_id
        self.display = display
        self.echo = echo
        self.poll_interval = poll_interval
        self.current_id: str | None = None
        self.views: dict[str, ExplorationView] = {}
        self._target: Target | None = None
        self._client: ResearchClient | None = None

    # ------------------------------------------------------------ plumbing

    @property
    def target(self) -> Target:
        if self._target is None:
            self._target = locate(self.env, self.runtime_dir, self.kernel_id)
        return self._target

    @property
    def client(self) -> ResearchClient:
        if self._client is None:
            server = self.target.server
            self._client = ResearchClient(server.url, server.token)
        return self._client

    def forget_server(self) -> None:
        """Look the server up again next time (it may have restarted on another port)."""
        self._target = None
        self._client = None

    def close(self) -> None:
        for view in self.views.values():
            view.close()

    def execute(self, command: a.Command, line: str) -> Any:
        match command:
            case a.ProposeArgs() | a.FixArgs() | a.SeedsArgs():
                return self.propose(command, line)
            case a.ApproveArgs():
                return self.approve(command.ids)
            case a.RunArgs():
                return self.run()
            case a.StatusArgs():
                return self.status(command.exploration_id)
            case a.ResultsArgs():
                return self.results(command)
            case a.ListArgs():
                return explorations_frame(self.client.list_explorations(self.notebook_path))
            case a.OpenArgs():
                return self.show(self.client.get_exploration(command.exploration_id))

    @property
    def notebook_path(self) -> str:
        return self.target.notebook_path

    # ------------------------------------------------------------ subcommands

    def propose(self, args: a.ProposeArgs | a.FixArgs | a.SeedsArgs, line: str) -> None:
        notebook = self.client.notebook(self.notebook_path)
        cells: list[dict[str, Any]] = notebook.get("cells", [])
        kernelspec = notebook.get("metadata", {}).get("kernelspec", {})
        magic_id = self.magic_cell_id()
        unsaved = None
        if args.body is not None:
            index = magic_cell_index(cells, magic_id, f"%%research {line.strip()}")
            cell_id, unsaved = cells_with_body(cells, magic_id, index, args.body)
        else:
            cell_id = resolve(
                cells, args.cell, magic_cell_id=magic_id, magic_line=f"%research {line.strip()}"
            )
        request = CreateExploration(
            notebook_path=self.notebook_path,
            cell_id=cell_id,
            kind=args.kind,
            cells=unsaved,
            kernel_name=kernelspec.get("name"),
            metric=args.metric,
            direction=args.direction,
            sweep=args.sweep,
            instructions=args.instructions,
            max_proposals=args.max_proposals,
            seeds=args.seeds,
            offline=args.offline,
        )
        exploration = self.client.create_exploration(request)
        self.current_id = exploration.id
        self.echo(f"research-agent: {exploration.id} on cell {cell_id}: proposing…")
        exploration = wait_for(
            lambda: self.client.get_exploration(exploration.id),
            lambda exp: exp.status is not ExplorationStatus.PROPOSING,
            timeout=PROPOSING_TIMEOUT_S,
            interval=self.poll_interval,
        )
        self.show(exploration)

    def show(self, exploration: Exploration) -> None:
        self.current_id = exploration.id
        view = self.views.get(exploration.id)
        if view is None:
            view = ExplorationView(self.client, exploration, interval=self.poll_interval)
            self.views[exploration.id] = view
        else:
            view.render(exploration)
        self.display(view)

    def approve(self, ids: list[str]) -> list[Proposal]:
        approved: list[Proposal] = []
        for item in ids:
            if item.startswith("exp-"):
                approved.extend(self._approve_all(self.client.get_exploration(item)))
            else:
                proposal = self._find_proposal(item)
                approved.append(self.client.approve(proposal.id, proposal.code_sha256))
                self._touch(proposal.exploration_id)
        self.echo(f"research-agent: approved {len(approved)} proposal(s)")
        return approved

    def run(self) -> list[Proposal]:
        exploration = self._exploration(None)
        approved = self._approve_all(exploration)
        self.echo(f"research-agent: approved {len(approved)} proposal(s) of {exploration.id}")
        return approved

    def status(self, exploration_id: str | None) -> None:
        if exploration_id is None and self.current_id is None:
            status = self.client.status()
            model = status.get("model", {})
            name = model.get("name") or "offline proposer"
            self.echo(f"research-agent {status.get('version')} at {self.client.base_url}: {name}")
            return
        self.echo(describe(self._exploration(exploration_id)))

    def results(self, args: a.ResultsArgs) -> pd.DataFrame:
        exploration = self._exploration(args.exploration_id)
        if args.wait and is_active(exploration):
            exploration = wait_for(
                lambda: self.client.get_exploration(exploration.id),
                lambda exp: not is_active(exp),
                timeout=args.timeout,
                interval=self.poll_interval,
            )
        return comparison_frame(exploration)

    # ------------------------------------------------------------ helpers

    def _exploration(self, exploration_id: str | None) -> Exploration:
        exploration_id = exploration_id or self.current_id
        if exploration_id is None:
            raise NoExploration("no exploration yet: `%research propose` or `%research open ID`")
        self.current_id = exploration_id
        return self.client.get_exploration(exploration_id)

    def _approve_all(self, exploration: Exploration) -> list[Proposal]:
        if exploration.status is ExplorationStatus.PROPOSING:
            exploration = wait_for(
                lambda: self.client.get_exploration(exploration.id),
                lambda exp: exp.status is not ExplorationStatus.PROPOSING,
                timeout=PROPOSING_TIMEOUT_S,
                interval=self.poll_interval,
            )
        approved = [
            self.client.approve(p.id, p.code_sha256)
            for p in exploration.proposals
            if p.status is PS.PROPOSED and p.approvable
        ]
        self._touch(exploration.id)
        return approved

    def _find_proposal(self, proposal_id: str) -> Proposal:
        known = [view.exploration for view in self.views.values()]
        for exploration in [*known, *self.client.list_explorations(self.notebook_path)]:
            for proposal in exploration.proposals:
                if proposal.id == proposal_id:
                    # Refetch: the hash must be the one the server holds now.
                    fresh = self.client.get_exploration(exploration.id)
                    return next((p for p in fresh.proposals if p.id == proposal_id), proposal)
        raise NoExploration(f"no proposal {proposal_id} among this notebook's explorations")

    def _touch(self, exploration_id: str) -> None:
        """Wake the view of an exploration whose runs were just started."""
        self.current_id = exploration_id
        view = self.views.get(exploration_id)
        if view is not None:
            view.refresh(restart=True)


def default_session(shell: Any) -> ResearchSession:
    """A session wired to the running ipykernel (connection file, parent message, display)."""
    from IPython.display import display
    from jupyter_core.paths import jupyter_runtime_dir

    from .locate import kernel_id_from_connection_file

    kernel = getattr(shell, "kernel", None)
    kernel_id = None
    try:
        from ipykernel import get_connection_file

        kernel_id = kernel_id_from_connection_file(get_connection_file())
    except Exception:
        # No kernel (terminal IPython): traitlets' MultipleInstanceError, among others. The
        # kernel id only helps find the notebook; the session says what else it needs.
        kernel_id = None

    def magic_cell_id() -> str | None:
        # JupyterLab sends the executing cell's id in the request metadata (ipykernel >= 6).
        get_parent = getattr(kernel, "get_parent", None)
        parent = get_parent() if callable(get_parent) else None
        metadata = (parent or {}).get("metadata") or {}
        cell_id = metadata.get("cellId")
        return str(cell_id) if cell_id else None

    return ResearchSession(
        env=os.environ,
        runtime_dir=jupyter_runtime_dir(),
        kernel_id=kernel_id,
        magic_cell_id=magic_cell_id,
        display=display,
    )

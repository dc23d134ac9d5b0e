"""The ipywidgets view of one exploration: proposals to approve, live progress, comparison.

Model text (titles, rationales, code, run output) is untrusted: it goes into ``Label`` and
read-only ``Textarea`` values, which render as text, and into ``HTML`` only through
``html.escape``. No widget here allows HTML in its description.

While displayed and while the exploration is proposing or running, a daemon thread polls the
API every ``interval`` seconds; it stops when the exploration settles, after ``max_poll_s``,
after repeated errors, or on ``close()``.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

import ipywidgets as widgets
import pandas as pd
from pydantic import ValidationError

from ..core.models import (
    EditProposal,
    Exploration,
    ExplorationStatus,
    Proposal,
    ProposalStatus,
    Run,
)
from .client import ClientError, ResearchClient
from .frames import comparison_frame, describe

MAX_POLL_ERRORS = 5


def is_active(exploration: Exploration) -> bool:
    """Whether the exploration can still change without the researcher doing anything."""
    if exploration.status in (ExplorationStatus.PROPOSING, ExplorationStatus.RUNNING):
        return True
    runs = [*exploration.runs, *([exploration.baseline] if exploration.baseline else [])]
    return any(not run.status.terminal for run in runs)


class ProposalRow:
    """Checkbox, title, metadata, rationale, code and the edit buttons of one proposal."""

    def __init__(self, view: ExplorationView, proposal: Proposal) -> None:
        self.view = view
        self.proposal = proposal
        self.editing = False
        self.checkbox = widgets.Checkbox(value=False, indent=False, layout={"width": "2em"})
        self.title = widgets.Label()
        self.meta = widgets.Label()
        self.rationale = widgets.Label()
        self.code = widgets.Textarea(disabled=True, layout={"width": "100%"})
        self.edit_button = widgets.Button(description="Edit", icon="pencil")
        self.save_button = widgets.Button(description="Save", button_style="primary")
        self.cancel_button = widgets.Button(description="Cancel")
        self.edit_button.on_click(lambda _: self.start_edit())
        self.save_button.on_click(lambda _: self.save())
        self.cancel_button.on_click(lambda _: self.cancel_edit())
        self.buttons = widgets.HBox([self.edit_button])
        self.box = widgets.VBox(
            [
                widgets.HBox([self.checkbox, self.title]),
                self.meta,
                self.rationale,
                self.code,
                self.buttons,
            ],
            layout={"border": "1px solid #ddd", "padding": "4px", "margin": "2px 0"},
        )
        self.update(proposal)

    def update(self, proposal: Proposal) -> None:
        self.proposal = proposal
        self.title.value = proposal.title
        parts = [proposal.kind.value, proposal.origin.value, proposal.status.value]
        if proposal.seed is not None:
            parts.append(f"seed {proposal.seed}")
        if not proposal.approvable:
            parts.append("not approvable")
        parts.extend(f"warning: {warning}" for warning in proposal.warnings)
        self.meta.value = " · ".join(parts)
        self.rationale.value = " ".join(
            text for text in (proposal.rationale, proposal.expected_effect) if text
        )
        if not self.editing:
            self.code.value = proposal.code
            self.code.rows = min(max(proposal.code.count("\n") + 1, 2), 20)
        can_act = proposal.status is not ProposalStatus.REJECTED and proposal.approvable
        self.checkbox.disabled = not can_act
        if not can_act:
            self.checkbox.value = False
        self.edit_button.disabled = proposal.status is ProposalStatus.REJECTED

    def start_edit(self) -> None:
        self.editing = True
        self.code.disabled = False
        self.buttons.children = (self.save_button, self.cancel_button)

    def cancel_edit(self) -> None:
        self._stop_edit()
        self.code.value = self.proposal.code

    def save(self) -> None:
        try:
            updated = self.view.client.edit(self.proposal.id, EditProposal(code=self.code.value))
        except (ClientError, ValidationError) as err:
            self.view.say(f"could not save {self.proposal.id}: {_one_line(err)}")
            return
        self._stop_edit()
        self.update(updated)
        self.view.say(f"saved {updated.id}; approve it again to run the edited code")

    def _stop_edit(self) -> None:
        self.editing = False
        self.code.disabled = True
        self.buttons.children = (self.edit_button,)


class ExplorationView:
    """Widgets for one exploration; display the object itself (it starts polling when shown)."""

    def __init__(
        self,
        client: ResearchClient,
        exploration: Exploration,
        *,
        interval: float = 0.5,
        max_poll_s: float = 4 * 3600,
    ) -> None:
        self.client = client
        self.exploration = exploration
        self.interval = interval
        self.max_poll_s = max_poll_s
        self.comparison: pd.DataFrame | None = None
        self.rows: dict[str, ProposalRow] = {}
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

        self.header = widgets.HTML()
        self.message = widgets.Label()
        self.rows_box = widgets.VBox()
        self.approve_button = widgets.Button(description="Approve", button_style="success")
        self.reject_button = widgets.Button(description="Reject", button_style="warning")
        self.run_all_button = widgets.Button(description="Run all", button_style="primary")
        self.refresh_button = widgets.Button(description="Refresh", icon="refresh")
        self.approve_button.on_click(lambda _: self.approve_checked())
        self.reject_button.on_click(lambda _: self.reject_checked())
        self.run_all_button.on_click(lambda _: self.run_all())
        self.refresh_button.on_click(lambda _: self.refresh(restart=True))
        self.progress = widgets.HTML()
        self.comparison_out = widgets.Output()
        self.widget = widgets.VBox(
            [
                self.header,
                self.rows_box,
                widgets.HBox(
                    [
                        self.approve_button,
                        self.reject_button,
                        self.run_all_button,
                        self.refresh_button,
                    ]
                ),
                self.message,
                self.progress,
                self.comparison_out,
            ]
        )
        self.render(exploration)

    # ------------------------------------------------------------ display and polling

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        self.start()
        bundle: dict[str, Any] = self.widget._repr_mimebundle_(**kwargs)
        bundle["text/plain"] = describe(self.exploration)
        return bundle

    @property
    def polling(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        """Poll in the background while the exploration is active (no-op if already polling)."""
        with self._lock:
            if self.polling or not is_active(self.exploration):
                return
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._poll, name=f"research-view-{self.exploration.id}", daemon=True
            )
            self._thread.start()

    def close(self, timeout: float = 5.0) -> None:
        """Stop polling and wait for the thread to end; the widgets stay as they are."""
        self._stop.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _poll(self) -> None:
        deadline = time.monotonic() + self.max_poll_s
        errors = 0
        while not self._stop.wait(self.interval):
            if time.monotonic() > deadline:
                self.say("stopped live updates; press Refresh")
                return
            try:
                exploration = self.client.get_exploration(self.exploration.id)
            except ClientError as err:
                errors += 1
                self.say(f"update failed: {_one_line(err)}")
                if errors >= MAX_POLL_ERRORS:
                    return
                continue
            errors = 0
            self.render(exploration)
            if not is_active(exploration):
                return

    # ------------------------------------------------------------ actions

    def refresh(self, *, restart: bool = False) -> Exploration:
        try:
            exploration = self.client.get_exploration(self.exploration.id)
        except ClientError as err:
            self.say(f"refresh failed: {_one_line(err)}")
            return self.exploration
        self.render(exploration)
        if restart:
            self.start()
        return exploration

    def _rows(self) -> list[ProposalRow]:
        # A snapshot: the polling thread may add rows meanwhile.
        with self._lock:
            return list(self.rows.values())

    def checked(self) -> list[Proposal]:
        return [row.proposal for row in self._rows() if row.checkbox.value]

    def approve_checked(self) -> list[Proposal]:
        return self._approve(self.checked(), "check a proposal first")

    def run_all(self) -> list[Proposal]:
        waiting = [
            row.proposal
            for row in self._rows()
            if row.proposal.status is ProposalStatus.PROPOSED and row.proposal.approvable
        ]
        return self._approve(waiting, "nothing left to approve")

    def reject_checked(self) -> list[Proposal]:
        rejected = []
        for proposal in self.checked():
            try:
                rejected.append(self.client.reject(proposal.id))
            except ClientError as err:
                self.say(f"could not reject {proposal.id}: {_one_line(err)}")
        if rejected:
            self.say(f"rejected {len(rejected)} proposal(s)")
            self.refresh()
        return rejected

    def _approve(self, proposals: list[Proposal], if_none: str) -> list[Proposal]:
        if not proposals:
            self.say(if_none)
            return []
        approved = []
        for proposal in proposals:
            try:
                # The hash binds approval to the code the server holds, not to unsaved edits.
                approved.append(self.client.approve(proposal.id, proposal.code_sha256))
            except ClientError as err:
                self.say(f"could not approve {proposal.id}: {_one_line(err)}")
        for row in self._rows():
            row.checkbox.value = False
        if approved:
            self.say(f"approved {len(approved)} proposal(s); runs start in side kernels")
            self.refresh(restart=True)
        return approved

    def say(self, text: str) -> None:
        self.message.value = text

    # ------------------------------------------------------------ rendering

    def render(self, exploration: Exploration) -> None:
        with self._lock:
            self.exploration = exploration
            self.header.value = _header_html(exploration)
            for proposal in exploration.proposals:
                row = self.rows.get(proposal.id)
                if row is None:
                    self.rows[proposal.id] = ProposalRow(self, proposal)
                else:
                    row.update(proposal)
            boxes = tuple(self.rows[p.id].box for p in exploration.proposals)
            if boxes != self.rows_box.children:
                self.rows_box.children = boxes
            self.progress.value = _progress_html(exploration)
            self._render_comparison(exploration)

    def _render_comparison(self, exploration: Exploration) -> None:
        if exploration.status is not ExplorationStatus.DONE or not exploration.comparison.rows:
            return
        frame = comparison_frame(exploration)
        if self.comparison is not None and frame.equals(self.comparison):
            return
        self.comparison = frame
        self.comparison_out.outputs = ()
        self.comparison_out.append_display_data(frame)


def _header_html(exploration: Exploration) -> str:
    text = (
        f"<b>{html.escape(exploration.id)}</b> · cell {html.escape(exploration.cell_id)} · "
        f"{html.escape(exploration.kind.value)} · <b>{html.escape(exploration.status.value)}</b>"
    )
    if exploration.error:
        text += f"<br><span style='color:#b00'>{html.escape(exploration.error)}</span>"
    if exploration.comparison.summary:
        text += f"<br>{html.escape(exploration.comparison.summary)}"
    return text


def _progress_html(exploration: Exploration) -> str:
    runs = [*([exploration.baseline] if exploration.baseline else []), *exploration.runs]
    if not runs:
        return ""
    titles = {p.id: p.title for p in exploration.proposals}
    lines = "".join(_run_html(run, titles) for run in runs)
    head = "<tr><th>run</th><th>status</th><th>progress</th><th>metrics</th><th>last output</th>"
    return f"<table>{head}</tr>{lines}</table>"


def _run_html(run: Run, titles: dict[str, str]) -> str:
    label = "baseline" if run.is_baseline else titles.get(run.proposal_id or "", run.id)
    if run.seed is not None:
        label += f" (seed {run.seed})"
    progress = f"{run.progress.done}/{run.progress.total}" if run.progress.total else ""
    metrics = ", ".join(f"{name}={value:.6g}" for name, value in run.metrics.items())
    status = run.status.value + (f": {run.reason}" if run.reason else "")
    cells = (label, status, progress, metrics, run.tail[-1] if run.tail else "")
    return "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells) + "</tr>"


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__

"""The ipywidgets view driven by hand (values set, buttons clicked) against a real server.

The view's client blocks, and the server runs on this test's event loop: every click that
talks to the server runs in a worker thread (`asyncio.to_thread`) so the loop keeps serving.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import ipywidgets as widgets
import pytest
from IPython.core.interactiveshell import InteractiveShell

from jupyter_research_agent.core.models import (
    AddProposal,
    CreateExploration,
    Exploration,
    ExplorationStatus,
    ProposalStatus,
)
from jupyter_research_agent.magics.client import ResearchClient, wait_for
from jupyter_research_agent.magics.widgets import ExplorationView, is_active
from tests.server_support import training_notebook, write_notebook

XSS = "<img src=x onerror=alert(1)>"


@pytest.fixture
def client(jp_serverapp: Any, http_server: Any) -> ResearchClient:
    # `http_server` makes the test server listen on its port, as a real one does.
    return ResearchClient(jp_serverapp.connection_url, jp_serverapp.identity_provider.token)


@pytest.fixture(autouse=True)
def shell() -> InteractiveShell:
    # The comparison is formatted by the shell; in a kernel it exists already. Made here, on the
    # main thread, not lazily by the polling thread (its history database is per thread).
    return InteractiveShell.instance()


@pytest.fixture
def views() -> Iterator[list[ExplorationView]]:
    made: list[ExplorationView] = []
    yield made
    for view in made:
        view.close()
        assert not view.polling


async def explore(client: ResearchClient, **fields: Any) -> Exploration:
    """Create an exploration and wait (in a thread) until its proposals are ready."""
    created = await asyncio.to_thread(client.create_exploration, CreateExploration(**fields))
    return await asyncio.to_thread(
        wait_for,
        lambda: client.get_exploration(created.id),
        lambda exp: exp.status is not ExplorationStatus.PROPOSING,
        timeout=60,
        interval=0.1,
    )


async def eventually(check: Callable[[], bool], within_s: float = 90.0) -> None:
    deadline = time.monotonic() + within_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.1)


def all_widgets(root: widgets.Widget) -> list[widgets.Widget]:
    found = [root]
    for child in getattr(root, "children", ()):
        found.extend(all_widgets(child))
    return found


async def test_model_text_is_never_rendered_as_html(
    client: ResearchClient, jp_root_dir: Path, views: list[ExplorationView]
) -> None:
    # Given a proposal whose title, rationale and code carry an HTML payload
    training_notebook(jp_root_dir)
    exp = await explore(client, notebook_path="exp.ipynb", cell_id="train", offline=True)
    await asyncio.to_thread(
        client.add_proposal,
        exp.id,
        AddProposal(code=f"lr = 0.2  # {XSS}", title=XSS, rationale=f"because {XSS}"),
    )
    exp = await asyncio.to_thread(client.get_exploration, exp.id)

    # When the view renders it
    view = ExplorationView(client, exp)
    views.append(view)

    # Then the payload appears only as text: in Labels and the read-only code, never in HTML
    parts = all_widgets(view.widget)
    html_values = [w.value for w in parts if isinstance(w, widgets.HTML)]
    assert html_values
    assert all("<img" not in value for value in html_values)
    texts = [w.value for w in parts if isinstance(w, widgets.Label | widgets.Textarea)]
    assert XSS in texts
    assert f"because {XSS}" in texts
    assert all(not getattr(w, "description_allow_html", False) for w in parts)
    row = next(r for r in view.rows.values() if r.proposal.title == XSS)
    assert row.code.disabled
    assert XSS in row.code.value


async def test_widgets_approve_edit_reject_run_and_compare(
    client: ResearchClient, jp_root_dir: Path, views: list[ExplorationView]
) -> None:
    # Given a sweep of three learning rates on the training cell
    training_notebook(jp_root_dir)
    exp = await explore(
        client,
        notebook_path="exp.ipynb",
        cell_id="train",
        sweep="lr=0.2,0.3,0.4",
        metric="score",
        direction="maximize",
        max_proposals=0,
        offline=True,
    )
    view = ExplorationView(client, exp, interval=0.2)
    views.append(view)
    by_lr = {p.overrides.get("lr"): view.rows[p.id] for p in exp.proposals if p.overrides}
    assert set(by_lr) >= {0.2, 0.3, 0.4}, [p.title for p in exp.proposals]

    # When the first is checked and approved with the Approve button
    by_lr[0.2].checkbox.value = True
    await asyncio.to_thread(view.approve_button.click)
    # Then it is approved and the view polls the runs
    assert by_lr[0.2].proposal.status is ProposalStatus.APPROVED
    assert by_lr[0.2].checkbox.value is False

    # When the second is edited and saved
    edited = "lr = 0.35\nscore = base + lr\nprint(f'score={score}')"
    by_lr[0.3].edit_button.click()
    assert by_lr[0.3].code.disabled is False
    by_lr[0.3].code.value = edited
    await asyncio.to_thread(by_lr[0.3].save_button.click)
    # Then the server holds the new code, and it waits for approval again
    assert by_lr[0.3].proposal.code == edited
    assert by_lr[0.3].proposal.status is ProposalStatus.PROPOSED
    assert by_lr[0.3].code.disabled is True
    assert "approve it again" in view.message.value

    # When the third is checked and rejected
    by_lr[0.4].checkbox.value = True
    await asyncio.to_thread(view.reject_button.click)
    # Then it is rejected and can no longer be checked
    assert by_lr[0.4].proposal.status is ProposalStatus.REJECTED
    assert by_lr[0.4].checkbox.disabled is True

    # When Run all is clicked
    approved = await asyncio.to_thread(view.run_all)
    # Then only the edited proposal was still waiting, and it is approved with its new hash
    assert [p.id for p in approved] == [by_lr[0.3].proposal.id]

    # And the progress area follows the runs until the comparison is shown
    await eventually(lambda: view.comparison is not None and not view.polling)
    assert not is_active(view.exploration)
    assert "succeeded" in view.progress.value
    frame = view.comparison
    assert frame is not None
    scores = dict(zip(frame["variation"], frame["score"], strict=True))
    assert len(scores) == 3  # baseline and two variations; the rejected one never ran
    assert sorted(round(s, 6) for s in scores.values()) == [0.6, 0.7, 0.85]
    assert frame.loc[frame["best"], "score"].round(6).tolist() == [0.85]
    shown = view.comparison_out.outputs
    assert len(shown) == 1
    assert "text/html" in shown[0]["data"]


async def test_closing_the_view_stops_its_polling_thread(
    client: ResearchClient, jp_root_dir: Path, views: list[ExplorationView]
) -> None:
    # Given a view polling a run that takes a while
    write_notebook(jp_root_dir, "slow.ipynb", [("wait", "import time\ntime.sleep(0.5)")])
    exp = await explore(client, notebook_path="slow.ipynb", cell_id="wait", offline=True)
    add = AddProposal(code="import time\ntime.sleep(20)")
    proposal = await asyncio.to_thread(client.add_proposal, exp.id, add)
    await asyncio.to_thread(client.approve, proposal.id, proposal.code_sha256)
    view = ExplorationView(client, await asyncio.to_thread(client.get_exploration, exp.id))
    views.append(view)
    view.start()
    assert view.polling

    # When the view is closed / Then the thread ends at once, though runs go on
    started = time.monotonic()
    await asyncio.to_thread(view.close)
    assert not view.polling
    assert time.monotonic() - started < 3
    for run in view.exploration.runs:
        await asyncio.to_thread(client.cancel_run, run.id)


async def test_refresh_shows_new_proposals_and_displaying_starts_polling(
    client: ResearchClient, jp_root_dir: Path, views: list[ExplorationView]
) -> None:
    # Given a view of an exploration that is ready and idle
    training_notebook(jp_root_dir)
    exp = await explore(client, notebook_path="exp.ipynb", cell_id="train", offline=True)
    view = ExplorationView(client, exp, interval=0.1)
    views.append(view)
    before = len(view.rows)

    # When a proposal is added elsewhere (the panel) and Refresh is clicked
    await asyncio.to_thread(client.add_proposal, exp.id, AddProposal(code="lr = 0.01"))
    await asyncio.to_thread(view.refresh_button.click)
    # Then the view shows it
    assert len(view.rows) == before + 1
    assert len(view.rows_box.children) == before + 1

    # And its text form (for frontends without widgets) lists the proposals
    bundle = view._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert exp.id in bundle["text/plain"]
    assert not view.polling  # nothing is running, so nothing to poll

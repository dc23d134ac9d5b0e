"""End to end: a kernel started by a real server session runs the magics against that server.

The kernel finds the server through the runtime file the server wrote and the notebook through
its session, exactly as in JupyterLab; cells are executed over the kernel's own zmq channels,
with the `cellId` metadata JupyterLab sends.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from jupyter_client.asynchronous.client import AsyncKernelClient

from tests.server_support import TRAIN_SOURCE, write_notebook

pytestmark = pytest.mark.slow

MAGIC = '%research propose --offline --sweep "lr=0.2,0.3" --max-proposals 0 --metric score'


class Kernel:
    """Executes cells in a session kernel like a frontend does."""

    def __init__(self, client: AsyncKernelClient) -> None:
        self.client = client

    async def execute(
        self, code: str, cell_id: str, expressions: dict[str, str] | None = None
    ) -> dict[str, Any]:
        content = {
            "code": code,
            "silent": False,
            "store_history": True,
            "user_expressions": expressions or {},
            "allow_stdin": False,
            "stop_on_error": True,
        }
        msg = self.client.session.msg("execute_request", content, metadata={"cellId": cell_id})
        self.client.shell_channel.send(msg)
        parent = msg["header"]["msg_id"]
        stdout, stderr, shown, errors = "", "", [], []
        deadline = time.monotonic() + 180
        while True:
            assert time.monotonic() < deadline, f"no idle for {code!r}"
            reply = await self.client.get_iopub_msg(timeout=180)
            if reply["parent_header"].get("msg_id") != parent:
                continue
            kind, body = reply["msg_type"], reply["content"]
            if kind == "stream":
                if body["name"] == "stdout":
                    stdout += body["text"]
                else:
                    stderr += body["text"]
            elif kind in ("display_data", "execute_result"):
                shown.append(body["data"])
            elif kind == "error":
                errors.append(f"{body['ename']}: {body['evalue']}")
            elif kind == "status" and body["execution_state"] == "idle":
                break
        while True:
            shell = await self.client.get_shell_msg(timeout=30)
            if shell["parent_header"].get("msg_id") == parent:
                break
        assert not errors, errors
        return {
            "stdout": stdout,
            "stderr": stderr,
            "shown": shown,
            "expressions": shell["content"].get("user_expressions", {}),
        }


@asynccontextmanager
async def session_kernel(serverapp: Any, fetch: Any, root_dir: Path) -> AsyncIterator[Kernel]:
    """A session kernel on a notebook in a subfolder of the server root, with magic cells."""
    write_notebook(
        root_dir,
        "work/exp.ipynb",
        [
            ("ext", "%load_ext jupyter_research_agent"),
            ("setup", "base = 0.5"),
            ("train", TRAIN_SOURCE),
            ("magic", MAGIC),
        ],
    )
    # A session as JupyterLab creates it (so the kernel gets JPY_SESSION_NAME)
    body = {
        "path": "work/exp.ipynb",
        "name": "exp.ipynb",
        "type": "notebook",
        "kernel": {"name": "python3"},
    }
    reply = await fetch("api", "sessions", method="POST", body=json.dumps(body))
    session = json.loads(reply.body)
    manager = serverapp.kernel_manager.get_kernel(session["kernel"]["id"])
    # The manager's own client reads the same connection file; its liveness check asks the
    # manager, where a bare client's heartbeat check can report a fresh kernel as dead.
    client: AsyncKernelClient = manager.client()
    assert client.connection_file == manager.connection_file
    client.start_channels()
    try:
        await client.wait_for_ready(timeout=60)
        yield Kernel(client)
    finally:
        client.stop_channels()
        await fetch("api", "sessions", session["id"], method="DELETE")


@pytest.fixture
def kernel_in_session(
    jp_serverapp: Any, http_server: Any, jp_fetch: Any, jp_root_dir: Path
) -> Callable[[], AbstractAsyncContextManager[Kernel]]:
    # `http_server` makes the test server listen on the port its runtime file names.
    return lambda: session_kernel(jp_serverapp, jp_fetch, jp_root_dir)


KernelFactory = Callable[[], AbstractAsyncContextManager[Kernel]]
FRAME = "df.to_json(orient='records')"


async def test_magics_in_a_session_kernel_propose_run_and_compare(
    kernel_in_session: KernelFactory, jp_fetch: Any
) -> None:
    async with kernel_in_session() as kernel:
        await propose_run_and_compare(kernel, jp_fetch)


async def propose_run_and_compare(kernel: Kernel, jp_fetch: Any) -> None:
    # Given the extension loaded in the researcher's kernel
    loaded = await kernel.execute("%load_ext jupyter_research_agent", "ext")
    assert loaded["stderr"] == ""

    # When the magic cell proposes a sweep of the code cell above it
    proposed = await kernel.execute(MAGIC, "magic")
    # Then an exploration of cell "train" is created and its two proposals are shown
    assert "on cell train: proposing" in proposed["stdout"], proposed
    text = proposed["shown"][-1]["text/plain"]
    exploration_id = text.split()[0]
    assert text.count("[proposed]") == 2
    assert "application/vnd.jupyter.widget-view+json" in proposed["shown"][-1]

    # When every shown proposal is approved and the results are awaited
    ran = await kernel.execute("%research run", "run")
    assert f"approved 2 proposal(s) of {exploration_id}" in ran["stdout"], ran
    result = await kernel.execute("df = %research results --timeout 120", "res", {"df": FRAME})

    # Then the kernel holds a DataFrame with the real metrics of the side runs
    assert result["stderr"] == "", result
    value = result["expressions"]["df"]
    assert value["status"] == "ok", value
    rows = json.loads(value["data"]["text/plain"].strip("'"))
    assert [row["status"] for row in rows] == ["succeeded"] * 3
    scores = sorted(round(row["score"], 6) for row in rows)
    assert scores == [0.6, 0.7, 0.8]
    best = [round(row["score"], 6) for row in rows if row["best"]]
    assert best == [0.8]
    assert {"variation", "delta", "pct_change", "duration_s"} <= set(rows[0])

    # And the researcher's own kernel never ran a variation
    untouched = await kernel.execute("", "check", {"lr": "'lr' in globals()"})
    assert untouched["expressions"]["lr"]["data"]["text/plain"] == "False"

    # And the exploration is listed for this notebook, here and through the API (the panel)
    listed = await kernel.execute("ls = %research list", "list", {"ids": "list(ls['id'])"})
    assert exploration_id in listed["expressions"]["ids"]["data"]["text/plain"]
    reply = await jp_fetch(
        "api", "research-agent", "explorations", params={"notebook_path": "work/exp.ipynb"}
    )
    assert exploration_id in [e["id"] for e in json.loads(reply.body)["explorations"]]


async def test_cell_form_explores_the_magic_cells_own_body(
    kernel_in_session: KernelFactory,
) -> None:
    async with kernel_in_session() as kernel:
        await cell_form(kernel)


async def cell_form(kernel: Kernel) -> None:
    await kernel.execute("%load_ext jupyter_research_agent", "ext")

    # When a new (unsaved) cell holds `%%research propose` over its own code
    body = 'lr = 0.1\nscore = base + 2 * lr\nprint(f"score={score}")'
    cell = '%%research propose --offline --sweep "lr=0.4,0.5" --max-proposals 0 --metric score\n'
    proposed = await kernel.execute(cell + body, "draft-cell")
    assert "on cell draft-cell: proposing" in proposed["stdout"], proposed

    # And one proposal is approved by its id, then the rest by the exploration's id
    summary = proposed["shown"][-1]["text/plain"]
    exploration_id = summary.split()[0]
    proposal_ids = [w for w in summary.split() if w.startswith("prop-")]
    assert len(proposal_ids) == 2
    one = await kernel.execute(f"%research approve {proposal_ids[0]}", "approve-1")
    assert "approved 1 proposal(s)" in one["stdout"], one
    rest = await kernel.execute(f"%research approve {exploration_id}", "approve-2")
    assert "approved 1 proposal(s)" in rest["stdout"], rest
    result = await kernel.execute("df = %research results", "res", {"df": FRAME})

    # Then the runs used that body, after the saved cells: 0.5 + 2 * lr for 0.1, 0.4 and 0.5
    rows = json.loads(result["expressions"]["df"]["data"]["text/plain"].strip("'"))
    assert sorted(round(row["score"], 6) for row in rows) == [0.7, 1.3, 1.5]

    # And `status` describes it, `open` shows it again in the widget view
    status = await kernel.execute("%research status", "status")
    assert status["stdout"].startswith(f"{exploration_id} · cell draft-cell · variations · done")
    opened = await kernel.execute(f"%research open {exploration_id}", "open")
    assert "application/vnd.jupyter.widget-view+json" in opened["shown"][-1]


async def test_bad_cell_reference_is_one_line_in_the_kernel(
    kernel_in_session: KernelFactory,
) -> None:
    async with kernel_in_session() as kernel:
        await kernel.execute("%load_ext jupyter_research_agent", "ext")
        # When the magic names a cell that does not exist / Then one line on stderr
        result = await kernel.execute("%research propose nowhere --offline", "magic")
    assert result["stderr"] == "research-agent: no cell with id 'nowhere' in the saved notebook\n"

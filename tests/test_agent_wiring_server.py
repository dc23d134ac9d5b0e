"""The agent over the REST API: provider failures on the exploration, triage and verification."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nbformat
import pytest
from agent_wiring_support import SENTINEL_KEY, model_server_options
from openai_server import FakeOpenAI, chat, error, fake_openai, proposals_answer
from server_support import Fetch, all_runs_ended, approve, call, poll, training_notebook

ERROR_OUTPUT = {
    "output_type": "error",
    "ename": "ZeroDivisionError",
    "evalue": "division by zero",
    "traceback": [
        "\x1b[0;31mZeroDivisionError\x1b[0m   Traceback (most recent call last)",
        "Cell \x1b[0;32mIn[2], line 1\x1b[0m\n\x1b[0;32m----> 1\x1b[0m rate = total / count",
        "\x1b[0;31mZeroDivisionError\x1b[0m: division by zero",
    ],
}
FIXED = "rate = total / max(count, 1)\nprint(f'rate: {rate}')"

__all__ = ["fake_openai"]


@pytest.fixture
def jp_server_config(
    jp_server_config: dict[str, Any], tmp_path: Path, fake_openai: FakeOpenAI
) -> dict[str, Any]:
    jp_server_config["ResearchAgent"].update(
        model_server_options(tmp_path, fake_openai.url, pool_size=2, request_timeout=10.0)
    )
    return jp_server_config


def failed_notebook(root: Path) -> None:
    """A notebook saved after its `rate` cell failed (the error output is on disk)."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    setup = nbformat.v4.new_code_cell("total, count = 10.0, 0", id="setup")
    rate = nbformat.v4.new_code_cell("rate = total / count\nprint(f'rate: {rate}')", id="rate")
    rate.outputs = [nbformat.from_dict(ERROR_OUTPUT)]
    nb.cells = [setup, rate]
    nbformat.write(nb, str(root / "rate.ipynb"))


async def test_a_rejected_key_fails_the_exploration_with_a_clear_error(
    jp_fetch: Fetch, jp_root_dir: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a model endpoint that rejects the key
    training_notebook(jp_root_dir)
    fake_openai.always(error(401, "Incorrect API key provided"))
    # When an exploration is created
    created = await call(
        jp_fetch, "POST", "explorations", body={"notebook_path": "exp.ipynb", "cell_id": "train"}
    )
    # Then creation itself succeeds (proposing is in the background) ...
    assert created.code == 201, created.text
    exp = await poll(
        jp_fetch, ("explorations", created.body["id"]), lambda e: e["status"] != "proposing"
    )
    # ... and the exploration fails with what to fix, never the key
    assert exp["status"] == "failed"
    assert "rejected the API key (401)" in exp["error"]
    assert "OPENAI_API_KEY" in exp["error"]
    shown = await call(jp_fetch, "GET", "explorations", created.body["id"])
    assert SENTINEL_KEY not in shown.text


async def test_fix_over_the_api_is_triaged_then_verified(
    jp_fetch: Fetch, jp_root_dir: Path, fake_openai: FakeOpenAI
) -> None:
    # Given a saved notebook whose `rate` cell failed, and a model proposing one fix
    failed_notebook(jp_root_dir)
    cause = "count is zero."
    fake_openai.script(chat(proposals_answer(FIXED, kind="fix", cause=cause)))
    # When a fix exploration is created
    created = await call(
        jp_fetch,
        "POST",
        "explorations",
        body={"notebook_path": "rate.ipynb", "cell_id": "rate", "kind": "fix"},
    )
    assert created.code == 201, created.text
    exp = await poll(
        jp_fetch, ("explorations", created.body["id"]), lambda e: e["status"] != "proposing"
    )
    # Then the exploration JSON carries the triage report and the unverified fix
    assert exp["status"] == "ready", exp["error"]
    assert exp["triage"]["ename"] == "ZeroDivisionError"
    assert exp["triage"]["category"] == "zero_division"
    assert exp["triage"]["likely_cause"] == cause
    [fix] = exp["proposals"]
    assert fix["kind"] == "fix" and fix["origin"] == "llm" and fix["verification"] == "unverified"
    # When the fix is approved and its run ends
    assert (await approve(jp_fetch, fix)).code == 200
    done = await poll(jp_fetch, ("explorations", exp["id"]), all_runs_ended, wait_s=90)
    # Then it is shown as verified, in the proposal and in the summary
    done = await poll(jp_fetch, ("explorations", exp["id"]), lambda e: bool(e["interpretation"]))
    assert done["proposals"][0]["verification"] == "verified: the cell now runs"
    assert done["comparison"]["summary"].startswith("1 of 1 fixes verified in a side kernel")
    assert done["interpretation"] == done["comparison"]["summary"]


async def test_fix_of_a_cell_without_error_is_400(jp_fetch: Fetch, jp_root_dir: Path) -> None:
    training_notebook(jp_root_dir)
    reply = await call(
        jp_fetch,
        "POST",
        "explorations",
        body={"notebook_path": "exp.ipynb", "cell_id": "train", "kind": "fix"},
    )
    assert reply.code == 400
    assert "no error in its outputs" in reply.body["message"]
